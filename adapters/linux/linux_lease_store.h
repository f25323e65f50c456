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
  static absl::StatusOr<std::unique_ptr<LinuxLeaseStore>> Open(
      const std::string& path, std::string* contents);

  // Creates `dir` (mode 0700) if missing. Fails unless it is then a real
  // directory (not a symlink) owned by this user and closed to others: a
  // shared place such as /tmp must not let another user plant the journal.
  static absl::Status MakePrivateDirectory(const std::string& dir);

  ~LinuxLeaseStore() override;

  StoreResult Append(std::string_view record) override;
  StoreResult Replace(std::string_view contents) override;

  const std::string& path() const { return path_; }

 private:
  LinuxLeaseStore(std::string path, int fd, int lock_fd)
      : path_(std::move(path)), fd_(fd), lock_fd_(lock_fd) {}

  const std::string path_;
  int fd_;       // O_APPEND descriptor of the current file.
  int lock_fd_;  // Holds the flock; "<path>.lock", never replaced.
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_LINUX_LINUX_LEASE_STORE_H_
