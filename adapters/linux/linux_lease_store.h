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
// Intact() compares the inode the path names now (st_dev, st_ino) with the
// one we write, for the journal and for its lock: a /tmp cleaner or an
// operator that deletes either is noticed, and Replace() then writes a fresh
// journal and takes a fresh lock. Remove() deletes both (and the directory,
// if it was made for us and is empty) at a clean stop.
//
// Example:
//   std::string contents;
//   auto store = LinuxLeaseStore::Open("/run/user/1000/portserver/x.journal",
//                                      &contents);
//   service.Restore(ParseJournal(contents).leases);
//   service.AttachStore(store->get());
//
// Thread-compatible.
#ifndef PORTSERVER_ADAPTERS_LINUX_LINUX_LEASE_STORE_H_
#define PORTSERVER_ADAPTERS_LINUX_LINUX_LEASE_STORE_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "domain/lease_store.h"

namespace portserver {

class LinuxLeaseStore final : public LeaseStore {
 public:
  // Opens (creating, mode 0600) the journal at `path` and locks it. Its
  // directory must exist. `*contents` receives what the file holds.
  // `remove_directory`: Remove() also removes the journal's directory if it
  // is then empty (a default directory made for us).
  static absl::StatusOr<std::unique_ptr<LinuxLeaseStore>> Open(
      const std::string& path, std::string* contents,
      bool remove_directory = false);

  // Creates `dir` (mode 0700) if missing. Fails unless it is then a real
  // directory (not a symlink) owned by this user and closed to others: a
  // shared place such as /tmp must not let another user plant the journal.
  static absl::Status MakePrivateDirectory(const std::string& dir);

  ~LinuxLeaseStore() override;

  StoreResult Append(std::string_view record) override;
  // Also re-takes the lock if its file was deleted or replaced (making the
  // directory again first if it was made for us and is gone); fails (and
  // writes nothing) if another server holds the new lock by then.
  StoreResult Replace(std::string_view contents) override;
  // Two stat(2)s.
  bool Intact() override;
  void Remove() override;

  const std::string& path() const { return path_; }

 private:
  LinuxLeaseStore(std::string path, int fd, int lock_fd, bool remove_directory)
      : path_(std::move(path)),
        lock_path_(path_ + ".lock"),
        fd_(fd),
        lock_fd_(lock_fd),
        remove_directory_(remove_directory) {}

  // Takes a fresh lock if lock_path_ no longer names the file we hold.
  StoreResult RelockIfLost();

  const std::string path_;
  const std::string lock_path_;
  int fd_;       // O_APPEND descriptor of the current file.
  int lock_fd_;  // Holds the flock on lock_path_ (replaced if it is deleted).
  const bool remove_directory_;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_LINUX_LINUX_LEASE_STORE_H_
