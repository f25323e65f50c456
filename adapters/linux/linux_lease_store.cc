#include "adapters/linux/linux_lease_store.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "domain/lease_journal.h"

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

constexpr char kRemedy[] =
    "remove it or choose another --portserver_state_file";

const char* KindOf(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// Appends what `fd` holds from `out->size()` on, up to `limit` bytes in all,
// to `*out`; false with errno set on failure.
bool ReadUpTo(int fd, size_t limit, std::string* out) {
  char buffer[65536];
  while (out->size() < limit) {
    size_t want = std::min(sizeof(buffer), limit - out->size());
    ssize_t n = pread(fd, buffer, want, static_cast<off_t>(out->size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    out->append(buffer, static_cast<size_t>(n));
  }
  return true;
}

// Why the store must not take the file `path` names as its journal (or
// leftover .tmp), nor write over it, or "" if it may: missing, or a regular
// file whose start passes `is_journal` (if given), or with `unwritten_ok`
// (a .tmp) one of NULs only, whole (a snapshot a power loss cut before its
// blocks were written). `what` names it.
std::string NotAJournal(const std::string& path, const std::string& what,
                        const LinuxLeaseStore::JournalTest& is_journal,
                        bool unwritten_ok = false) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return "";  // Missing: a new file.
  if (!S_ISREG(st.st_mode)) {
    return absl::StrCat(what, " is ", KindOf(st.st_mode),
                        ", not a portserver journal");
  }
  if (!is_journal) return "";
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return "";  // Gone, or unreadable: opening it to write says.
  std::string start;
  bool ours =
      fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ReadUpTo(fd, 4096, &start);
  const bool nuls = start.find_first_not_of('\0') == std::string::npos;
  if (ours && !is_journal(start)) {
    // NULs so far: all of it (read on), or someone else's file.
    ours = unwritten_ok && nuls && st.st_size <= (int64_t{64} << 20) &&
           ReadUpTo(fd, static_cast<size_t>(st.st_size), &start) &&
           start.find_first_not_of('\0') == std::string::npos;
  }
  close(fd);
  return ours ? "" : NotAJournalMessage(what);
}

// Why the server must not take `lock_path` (`st` from lstat or fstat) as its
// lock file, and so delete it at a clean stop, or "" if it may: its lock
// files are always empty regular files.
std::string NotALockFile(const std::string& lock_path, const struct stat& st) {
  if (!S_ISREG(st.st_mode)) {
    return absl::StrCat(lock_path, " is ", KindOf(st.st_mode),
                        ", not a port server's lock file");
  }
  if (st.st_size != 0) {
    return absl::StrCat(lock_path,
                        " is not empty, so not a port server's lock file "
                        "(those always are), and the server would delete it");
  }
  return "";
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
// `*error` (EWOULDBLOCK: held by another server), or with `*foreign` saying
// why the file there is not a lock file (NotALockFile).
int TakeLock(const std::string& lock_path, int* error, std::string* foreign) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    int fd = open(lock_path.c_str(),
                  O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    if (fd < 0) {
      *error = errno;
      return -1;
    }
    struct stat st {};
    if (fstat(fd, &st) != 0) {
      *error = errno;
      close(fd);
      return -1;
    }
    if (std::string why = NotALockFile(lock_path, st); !why.empty()) {
      *foreign = std::move(why);
      close(fd);
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
    const std::string& path, std::string* contents, bool remove_directory,
    JournalTest is_journal, std::string fallback_directory) {
  auto refuse = [](const std::string& why) {
    return absl::FailedPreconditionError(absl::StrCat(why, ": ", kRemedy));
  };
  // Checked before anything is created: a refusal leaves no trace.
  std::string state_file = absl::StrCat("state file ", path);
  if (std::string why = NotAJournal(path, state_file, is_journal);
      !why.empty()) {
    return refuse(why);
  }
  std::string tmp_path = path + ".tmp";  // Left by a crash in Replace().
  if (std::string why =
          NotAJournal(tmp_path, tmp_path, is_journal, /*unwritten_ok=*/true);
      !why.empty()) {
    return refuse(why);
  }
  std::string lock_path = path + ".lock";
  struct stat lock_st {};
  bool lock_existed = lstat(lock_path.c_str(), &lock_st) == 0;
  if (lock_existed) {
    if (std::string why = NotALockFile(lock_path, lock_st); !why.empty()) {
      return refuse(why);
    }
  }
  int error = 0;
  std::string foreign;
  int lock_fd = TakeLock(lock_path, &error, &foreign);
  if (lock_fd < 0) {
    if (!foreign.empty()) return refuse(foreign);
    if (error == EWOULDBLOCK) {
      return absl::AlreadyExistsError(absl::StrCat(
          "state file ", path, " is in use by another port server"));
    }
    if (error == ENOENT) {  // The journal's directory, not the lock.
      return ErrnoStatus(
          absl::StrCat("cannot open state file ", path, ": its directory ",
                       DirectoryOf(path), " does not exist"),
          error);
    }
    return ErrnoStatus(absl::StrCat("cannot lock ", lock_path), error);
  }
  auto unlock = [&] {
    // A lock file made just now goes again (we hold its lock).
    if (!lock_existed && NamesFile(lock_path, lock_fd)) {
      unlink(lock_path.c_str());
    }
    close(lock_fd);
  };
  int fd = open(path.c_str(),
                O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    int error = errno;
    unlock();
    if (error == ELOOP) {  // A symlink planted since the check above.
      return refuse(absl::StrCat(state_file, " is a symbolic link"));
    }
    return ErrnoStatus(absl::StrCat("cannot open state file ", path), error);
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    unlock();
    return refuse(absl::StrCat(state_file, " is not a regular file"));
  }
  contents->clear();
  if (!ReadUpTo(fd, std::string::npos, contents)) {
    int error = errno;
    close(fd);
    unlock();
    return ErrnoStatus(absl::StrCat("cannot read state file ", path), error);
  }
  if (is_journal && !is_journal(*contents)) {  // Written since the check.
    close(fd);
    unlock();
    return refuse(NotAJournalMessage(state_file));
  }
  return std::unique_ptr<LinuxLeaseStore>(new LinuxLeaseStore(
      path, fd, lock_fd, remove_directory, std::move(is_journal),
      std::move(fallback_directory)));
}

int64_t LinuxLeaseStore::SizeOf(int fd) {
  struct stat st {};
  return fstat(fd, &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

bool LinuxLeaseStore::Intact() {
  // Deleted or replaced, or truncated (`: > journal`): what was written is
  // gone, and a journal of appended records alone would lack its header.
  return NamesFile(path_, fd_) && NamesFile(lock_path_, lock_fd_) &&
         SizeOf(fd_) >= written_;
}

absl::Status LinuxLeaseStore::RemakeDirectory() {
  const std::string dir = DirectoryOf(path_);
  absl::Status made = MakePrivateDirectory(dir);
  if (made.ok() || fallback_directory_.empty() || fallback_directory_ == dir) {
    return made;
  }
  struct stat parent {};
  if (stat(DirectoryOf(dir).c_str(), &parent) == 0) return made;
  // The directory above is gone too ($XDG_RUNTIME_DIR at the last logout):
  // the journal moves where a restart looks for it, locked there first,
  // and never over a file already there (another journal of this address,
  // whose leases would be lost): then it stays unwritten, as without a
  // fallback.
  const std::string moved = fallback_directory_ + path_.substr(dir.size());
  absl::Status fallback = MakePrivateDirectory(fallback_directory_);
  if (!fallback.ok()) return fallback;
  struct stat existing {};
  if (lstat(moved.c_str(), &existing) == 0) {
    return absl::AlreadyExistsError(
        absl::StrCat(made.message(), "; ", moved,
                     " exists already, so the journal does not move there"));
  }
  int error = 0;
  std::string foreign;
  const int fresh = TakeLock(moved + ".lock", &error, &foreign);
  if (fresh < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        made.message(), "; cannot lock ", moved, ".lock to move there: ",
        foreign.empty() ? std::string(std::strerror(error)) : foreign));
  }
  close(lock_fd_);
  lock_fd_ = fresh;
  path_ = moved;
  lock_path_ = path_ + ".lock";
  tmp_path_ = path_ + ".tmp";
  return absl::OkStatus();
}

StoreResult LinuxLeaseStore::RelockIfLost() {
  if (NamesFile(lock_path_, lock_fd_)) return {};
  if (remove_directory_) {
    // Our default directory may have gone with the files: make it again
    // (checked private, as at start-up), or move, locked (RemakeDirectory).
    absl::Status made = RemakeDirectory();
    if (!made.ok()) return StoreResult{false, std::string(made.message())};
    if (NamesFile(lock_path_, lock_fd_)) return {};
  }
  int error = 0;
  std::string foreign;
  int fresh = TakeLock(lock_path_, &error, &foreign);
  if (fresh < 0) {
    if (!foreign.empty()) {
      return StoreResult{false, absl::StrCat("the lock was deleted and ",
                                             foreign, ": ", kRemedy)};
    }
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

bool LinuxLeaseStore::Remove() {
  // The lock last: until then no other server may take the journal. Only
  // our own files: whatever took the place of a deleted journal stays.
  if (NamesFile(path_, fd_)) unlink(path_.c_str());
  if (NotAJournal(tmp_path_, tmp_path_, is_journal_, /*unwritten_ok=*/true)
          .empty()) {
    unlink(tmp_path_.c_str());
  }
  if (NamesFile(lock_path_, lock_fd_)) unlink(lock_path_.c_str());
  if (remove_directory_) rmdir(DirectoryOf(path_).c_str());  // If empty.
  return true;
}

LinuxLeaseStore::~LinuxLeaseStore() {
  close(fd_);
  close(lock_fd_);
}

StoreResult LinuxLeaseStore::Append(std::string_view record) {
  if (!WriteAll(fd_, record)) {
    return StoreResult{false, ErrnoText("cannot append to " + path_, errno)};
  }
  written_ += static_cast<int64_t>(record.size());
  return {};
}

StoreResult LinuxLeaseStore::Replace(std::string_view contents) {
  if (StoreResult locked = RelockIfLost(); !locked.ok) return locked;
  const std::string& tmp = tmp_path_;
  // Nothing that is not ours is written over: not a file that appeared as
  // the .tmp, nor one that took the place of a deleted journal.
  if (std::string why =
          NotAJournal(tmp, tmp, is_journal_, /*unwritten_ok=*/true);
      !why.empty()) {
    return StoreResult{false, absl::StrCat(why, ": ", kRemedy)};
  }
  if (!NamesFile(path_, fd_)) {
    std::string why =
        NotAJournal(path_, "the file now at " + path_, is_journal_);
    if (!why.empty()) {
      return StoreResult{false, absl::StrCat(why, ": ", kRemedy)};
    }
  }
  int fd = open(tmp.c_str(),
                O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
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
  int fresh = open(path_.c_str(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
  if (fresh < 0) {
    return StoreResult{false, ErrnoText("cannot reopen " + path_, errno)};
  }
  close(fd_);
  fd_ = fresh;
  written_ = static_cast<int64_t>(contents.size());
  return {};
}

}  // namespace portserver
