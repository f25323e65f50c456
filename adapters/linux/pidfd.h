// pidfds (Linux 5.3+): a descriptor that names one process, not a pid
// number, and becomes readable once that process has exited (zombie
// included). Shared by the process probe and the exit watcher.
//
// Example:
//   int fd = PidfdOpen(pid);          // -1 with errno (ESRCH: no such pid)
//   if (fd >= 0 && !PidfdSaysExited(fd)) { /* the same process lives */ }
#ifndef PORTSERVER_ADAPTERS_LINUX_PIDFD_H_
#define PORTSERVER_ADAPTERS_LINUX_PIDFD_H_

#include <errno.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace portserver {

inline int PidfdOpen(int64_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0));
}

// True once the process has exited, or if poll() fails: then the caller
// must not trust what it remembered about the process.
inline bool PidfdSaysExited(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  int n;
  do {
    n = poll(&p, 1, 0);
  } while (n < 0 && errno == EINTR);
  return n != 0;
}

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_LINUX_PIDFD_H_
