#include "adapters/linux/linux_lease_store.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace portserver {
namespace {

std::string ErrnoText(const std::string& what, int error) {
  return absl::StrCat(what, ": ", std::strerror(error));
}

absl::Status ErrnoStatus(const std::string& what, int error) {
  return absl::ErrnoToStatus(error, what);
}

// Writes all of `data` to `fd`; false with errno set on failure.
bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// True if `path` names the file open as `fd`.
bool NamesFile(const std::string& path, int fd) {
  struct stat named {
  }, open{};
  if (stat(path.c_str(), &named) != 0 || fstat(fd, &open) != 0) return false;
  return named.st_dev == open.st_dev && named.st_ino == open.st_ino;
}

// Opens (creating) and flocks `lock_path`, making sure that the locked file
// is still the one the path names (a server that stops cleanly removes its
// lock file: a lock taken on the removed file would lock nothing). -1 with
// `*error` (EWOULDBLOCK: held by another server).
int TakeLock(const std::string& lock_path, int* error) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      *error = errno;
      return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      *error = errno;
      close(fd);
      return -1;
    }
    if (NamesFile(lock_path, fd)) return fd;
    close(fd);  // Removed or replaced under us: try the new one.
  }
  *error = EAGAIN;
  return -1;
}

std::string DirectoryOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

absl::Status LinuxLeaseStore::MakePrivateDirectory(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(absl::StrCat("cannot create ", dir), errno);
  }
  struct stat st {};
  if (lstat(dir.c_str(), &st) != 0) {
    return ErrnoStatus(absl::StrCat("cannot stat ", dir), errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, " is not a directory (a symlink?)"));
  }
  if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, " must be owned by uid ", geteuid(), " and closed to others"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<LinuxLeaseStore>> LinuxLeaseStore::Open(
    const std::string& path, std::string* contents, bool remove_directory) {
  std::string lock_path = path + ".lock";
  int error = 0;
  int lock_fd = TakeLock(lock_path, &error);
  if (lock_fd < 0) {
    if (error == EWOULDBLOCK) {
      return absl::AlreadyExistsError(absl::StrCat(
          "state file ", path, " is in use by another port server"));
    }
    return ErrnoStatus(absl::StrCat("cannot lock ", lock_path), error);
  }
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    int error = errno;
    close(lock_fd);
    return ErrnoStatus(absl::StrCat("cannot open state file ", path), error);
  }
  contents->clear();
  char buffer[65536];
  while (true) {
    ssize_t n =
        pread(fd, buffer, sizeof(buffer), static_cast<off_t>(contents->size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      close(fd);
      close(lock_fd);
      return ErrnoStatus(absl::StrCat("cannot read state file ", path), error);
    }
    if (n == 0) break;
    contents->append(buffer, static_cast<size_t>(n));
  }
  return std::unique_ptr<LinuxLeaseStore>(
      new LinuxLeaseStore(path, fd, lock_fd, remove_directory));
}

bool LinuxLeaseStore::Intact() {
  return NamesFile(path_, fd_) && NamesFile(lock_path_, lock_fd_);
}

StoreResult LinuxLeaseStore::RelockIfLost() {
  if (NamesFile(lock_path_, lock_fd_)) return {};
  if (remove_directory_) {
    // Our default directory may have gone with the files: make it again
    // (checked private, as at start-up).
    absl::Status made = MakePrivateDirectory(DirectoryOf(path_));
    if (!made.ok()) return StoreResult{false, std::string(made.message())};
  }
  int error = 0;
  int fresh = TakeLock(lock_path_, &error);
  if (fresh < 0) {
    if (error == EWOULDBLOCK) {
      return StoreResult{false, absl::StrCat("the lock ", lock_path_,
                                             " was deleted and another port "
                                             "server holds it now")};
    }
    return StoreResult{false, ErrnoText("cannot lock " + lock_path_, error)};
  }
  close(lock_fd_);
  lock_fd_ = fresh;
  return {};
}

void LinuxLeaseStore::Remove() {
  // The lock last: until then no other server may take the journal.
  unlink(path_.c_str());
  unlink((path_ + ".tmp").c_str());
  if (NamesFile(lock_path_, lock_fd_)) unlink(lock_path_.c_str());
  if (remove_directory_) rmdir(DirectoryOf(path_).c_str());  // If empty.
}

LinuxLeaseStore::~LinuxLeaseStore() {
  close(fd_);
  close(lock_fd_);
}

StoreResult LinuxLeaseStore::Append(std::string_view record) {
  if (!WriteAll(fd_, record)) {
    return StoreResult{false, ErrnoText("cannot append to " + path_, errno)};
  }
  return {};
}

StoreResult LinuxLeaseStore::Replace(std::string_view contents) {
  if (StoreResult locked = RelockIfLost(); !locked.ok) return locked;
  std::string tmp = path_ + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return StoreResult{false, ErrnoText("cannot create " + tmp, errno)};
  if (!WriteAll(fd, contents) || fdatasync(fd) != 0) {
    int error = errno;
    close(fd);
    unlink(tmp.c_str());
    return StoreResult{false, ErrnoText("cannot write " + tmp, error)};
  }
  close(fd);
  if (rename(tmp.c_str(), path_.c_str()) != 0) {
    int error = errno;
    unlink(tmp.c_str());
    return StoreResult{false, ErrnoText("cannot rename " + tmp, error)};
  }
  int dir =
      open(DirectoryOf(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    fsync(dir);
    close(dir);
  }
  int fresh = open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fresh < 0) {
    return StoreResult{false, ErrnoText("cannot reopen " + path_, errno)};
  }
  close(fd_);
  fd_ = fresh;
  return {};
}

}  // namespace portserver
