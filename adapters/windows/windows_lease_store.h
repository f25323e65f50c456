// WindowsLeaseStore: the lease journal in a file, on Win32 file APIs (the
// counterpart of LinuxLeaseStore; same format, domain/lease_journal.h).
//
// Append() is one WriteFile on a handle opened for FILE_APPEND_DATA only,
// so each record lands at the end of the file: after the server is killed
// (TerminateProcess) every appended record is in the file (the system
// cache outlives the process). Replace() writes "<path>.tmp",
// FlushFileBuffers it, and moves it over the journal with
// MoveFileExW(MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH): a crash
// leaves the old file or the new one. Records are not flushed one by one,
// so a power loss can drop the last seconds of appends; it also ends every
// owner, so no lease of a live process is lost by it.
//
// "<path>.lock" is locked with LockFileEx for the lifetime of the object: a
// second server given the same journal fails to open it instead of
// corrupting it. Windows drops the lock when the holder dies.
//
// It never overwrites a file it would not have written (as LinuxLeaseStore):
// Open() refuses a journal or a leftover "<path>.tmp" that is a directory,
// a link (reparse point) or a device or, given `is_journal`, whose contents
// fail it (someone else's file named by mistake), and a "<path>.lock" that
// is not an empty regular file (the only kind it makes); Replace() checks
// the .tmp again before it writes it.
//
// Example:
//   std::string contents;
//   auto store = WindowsLeaseStore::Open(
//       "C:\\Users\\me\\AppData\\Local\\portserver\\x.journal", &contents,
//       StartsAsJournal);
//   service.Restore(ParseJournal(contents).leases);
//   service.AttachStore(store->get());
//
// Thread-compatible. Paths are in the ANSI code page (as argv).
#ifndef PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_LEASE_STORE_H_
#define PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_LEASE_STORE_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "adapters/windows/windows_error.h"
#include "domain/lease_store.h"

namespace portserver {

class WindowsLeaseStore final : public LeaseStore {
 public:
  // What the contents of an existing file (or their start) must pass for
  // the store to take it as its journal or leftover .tmp, e.g.
  // StartsAsJournal (domain/lease_journal.h).
  using JournalTest = std::function<bool(std::string_view contents)>;

  // True if `utf8_path` names a device rather than a disk file: a DOS
  // device name in any directory and with any extension (NUL, CON, COM1,
  // "nul.journal"; GetFullPathNameW makes it \\.\NUL), or an existing path
  // whose handle is not a disk file (GetFileType; under wine a Unix device
  // such as Z:\dev\null). Opening such a path can block (a serial port)
  // or lose what is written. Thread-safe.
  static bool IsDevice(const std::string& utf8_path);

  // `utf8_path` as Windows resolves it: absolute, `.`, `..` and `/`
  // resolved and trailing dots and spaces of each name dropped
  // (GetFullPathNameW), and short 8.3 names made long where the file or
  // its directories exist (GetLongPathNameW). Two spellings of one file
  // ("X\sj" and "X\sj.") then derive one lock and one temporary file.
  // `utf8_path` as given if Windows cannot resolve it. Thread-safe.
  static std::string FullPath(const std::string& utf8_path);

  // Opens (creating) the journal at `path` and locks it. Its directory must
  // exist. `*contents` receives what the file holds. AlreadyExists if
  // another server holds the lock; FailedPrecondition (the message saying
  // what to do) on a file that is not its to overwrite (see above); null
  // `is_journal`: any regular file may be the journal.
  static absl::StatusOr<std::unique_ptr<WindowsLeaseStore>> Open(
      const std::string& path, std::string* contents,
      JournalTest is_journal = nullptr);

  // The default directory: "%LOCALAPPDATA%\portserver", created if missing
  // (per user: the profile is closed to other users). FailedPrecondition if
  // LOCALAPPDATA is unset.
  static absl::StatusOr<std::string> DefaultDirectory();

  StoreResult Append(std::string_view record) override;
  StoreResult Replace(std::string_view contents) override;

  const std::string& path() const { return path_; }

 private:
  WindowsLeaseStore(std::string path, ScopedHandle file, ScopedHandle lock,
                    JournalTest is_journal)
      : path_(std::move(path)),
        file_(std::move(file)),
        lock_(std::move(lock)),
        is_journal_(std::move(is_journal)) {}

  const std::string path_;
  ScopedHandle file_;  // FILE_APPEND_DATA handle of the current file.
  ScopedHandle lock_;  // "<path>.lock", locked; never replaced.
  const JournalTest is_journal_;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_LEASE_STORE_H_
