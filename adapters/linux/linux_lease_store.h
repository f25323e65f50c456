// LinuxLeaseStore: the lease journal in a file.
//
// Append() is one write(2) on an O_APPEND descriptor: after kill -9 every
// appended record is in the file (the page cache outlives the process).
// Replace() writes "<path>.tmp", fdatasync()s it, rename()s it over the
// journal and fsync()s the directory: a crash leaves the old file or the
// new one. Records are not fsync()ed one by one, so a power loss can drop
// the last few seconds of appends; it also ends every owner, so no lease of
// a live process is lost by it.
//
// The file is flock()ed for the lifetime of the object: a second server
// given the same journal fails to open it instead of corrupting it.
//
// It never overwrites or deletes a file it would not have written: Open()
// refuses a journal or a leftover "<path>.tmp" that is not a regular file
// (a directory, a symlink, a FIFO, a device) or, given `is_journal`, whose
// contents fail it (someone else's file named by mistake), and a
// "<path>.lock" that is not an empty regular file (the only kind it
// makes). Replace() and Remove() check again before they overwrite or
// delete a file that has appeared since.
//
// Intact() compares the inode the path names now (st_dev, st_ino) with the
// one we write, for the journal and for its lock: a /tmp cleaner or an
// operator that deletes either is noticed, and Replace() then writes a fresh
// journal and takes a fresh lock. Remove() deletes both (and the directory,
// if it was made for us and is empty) at a clean stop.
//
// Example:
//   std::string contents;
//   auto store = LinuxLeaseStore::Open("/run/user/1000/portserver/x.journal",
//                                      &contents, false, StartsAsJournal);
//   service.Restore(ParseJournal(contents).leases);
//   service.AttachStore(store->get());
//
// Thread-compatible.
#ifndef PORTSERVER_ADAPTERS_LINUX_LINUX_LEASE_STORE_H_
#define PORTSERVER_ADAPTERS_LINUX_LINUX_LEASE_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "domain/lease_store.h"

namespace portserver {

class LinuxLeaseStore final : public LeaseStore {
 public:
  // What the contents of an existing file (or their start) must pass for
  // the store to take it as its journal or leftover .tmp, e.g.
  // StartsAsJournal (domain/lease_journal.h).
  using JournalTest = std::function<bool(std::string_view contents)>;

  // Opens (creating, mode 0600) the journal at `path` and locks it. Its
  // directory must exist. `*contents` receives what the file holds.
  // `remove_directory`: Remove() also removes the journal's directory if it
  // is then empty (a default directory made for us). Fails
  // (FailedPrecondition, the message saying what to do) on a file that is
  // not its to overwrite or delete (see above); null `is_journal`: any
  // regular file may be the journal.
  // `fallback_directory` (with `remove_directory`): where the journal moves
  // if its directory is removed together with the directory above it while
  // the store is open (logind removes /run/user/<uid> at the last logout,
  // and with it $XDG_RUNTIME_DIR/portserver): made private there, it is
  // written whole under the same name, where a restart looks ("" = no
  // move: the journal stays unwritten until its directory can be made).
  static absl::StatusOr<std::unique_ptr<LinuxLeaseStore>> Open(
      const std::string& path, std::string* contents,
      bool remove_directory = false, JournalTest is_journal = nullptr,
      std::string fallback_directory = "");

  // Creates `dir` (mode 0700) if missing. Fails unless it is then a real
  // directory (not a symlink) owned by this user and closed to others: a
  // shared place such as /tmp must not let another user plant the journal.
  static absl::Status MakePrivateDirectory(const std::string& dir);

  ~LinuxLeaseStore() override;

  StoreResult Append(std::string_view record) override;
  // Also re-takes the lock if its file was deleted or replaced (making the
  // directory again first if it was made for us and is gone, or moving to
  // the fallback directory if the one above it is gone too); fails (and
  // writes nothing) if another server holds the new lock by then.
  StoreResult Replace(std::string_view contents) override;
  // Two stat(2)s.
  bool Intact() override;
  // Deletes only the files that are still the store's.
  bool Remove() override;  // True.

  const std::string& path() const { return path_; }
  std::string Location() const override { return path_; }

 private:
  LinuxLeaseStore(std::string path, int fd, int lock_fd, bool remove_directory,
                  JournalTest is_journal, std::string fallback_directory)
      : path_(std::move(path)),
        lock_path_(path_ + ".lock"),
        tmp_path_(path_ + ".tmp"),
        fd_(fd),
        lock_fd_(lock_fd),
        remove_directory_(remove_directory),
        is_journal_(std::move(is_journal)),
        fallback_directory_(std::move(fallback_directory)),
        written_(SizeOf(fd)) {}

  // Makes the journal's directory again (remove_directory_), or moves the
  // journal's names to fallback_directory_ if the directory above it is
  // gone too.
  absl::Status RemakeDirectory();

  static int64_t SizeOf(int fd);

  // Takes a fresh lock if lock_path_ no longer names the file we hold.
  StoreResult RelockIfLost();

  std::string path_;  // Change only on a move (RemakeDirectory).
  std::string lock_path_;
  std::string tmp_path_;
  int fd_;       // O_APPEND descriptor of the current file.
  int lock_fd_;  // Holds the flock on lock_path_ (replaced if it is deleted).
  const bool remove_directory_;
  const JournalTest is_journal_;  // May be null.
  const std::string fallback_directory_;
  // Bytes the current file holds as far as this store knows: its size when
  // opened or replaced, plus what was appended since. Fewer: truncated.
  int64_t written_;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_LINUX_LINUX_LEASE_STORE_H_
