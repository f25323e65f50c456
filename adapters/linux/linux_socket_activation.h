// Socket activation: the listening sockets that systemd (or
// systemd-socket-activate, or any service manager speaking the same
// protocol) passes to the server, read as sd_listen_fds(3) and
// sd_listen_fds_with_names(3) do.
//
// Protocol (sd_listen_fds(3), "Socket activation" in systemd's
// file-descriptor passing documentation): when LISTEN_PID is this process's
// pid, LISTEN_FDS=N says that descriptors 3 .. 3+N-1 are passed, and
// LISTEN_FDNAMES, if set, names them, colon-separated, in order. Variables
// meant for another process (LISTEN_PID differs) are ignored. The variables
// are removed from the environment once read, whatever LISTEN_PID says (as
// sd_listen_fds(3) does when asked to unset them), and the passed
// descriptors are made close-on-exec.
//
// Example:
//   absl::StatusOr<std::vector<ActivatedSocket>> passed =
//       TakeActivatedSockets();          // Reads and clears the variables.
//   if (!passed.ok()) return Fail(2, passed.status());
//   if (passed->empty()) { /* not activated: bind as usual */ }
//
// Written by hand rather than linked from libsystemd: the daemon links
// statically and Debian ships no static libsystemd, and the protocol is
// three environment variables with a stable, documented meaning.
//
// Not thread-safe: it reads and changes the environment; call it from main
// before any other thread starts.
#ifndef PORTSERVER_ADAPTERS_LINUX_LINUX_SOCKET_ACTIVATION_H_
#define PORTSERVER_ADAPTERS_LINUX_LINUX_SOCKET_ACTIVATION_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace portserver {

// SD_LISTEN_FDS_START: the first passed descriptor.
inline constexpr int kListenFdsStart = 3;

struct ActivatedSocket {
  int fd;            // kListenFdsStart + index. Owned by the caller.
  std::string name;  // From LISTEN_FDNAMES; "" if none was passed.
};

// What the three variables hold; unset ones are nullptr.
struct ListenEnvironment {
  const char* listen_pid = nullptr;
  const char* listen_fds = nullptr;
  const char* listen_fdnames = nullptr;
};

// Parses `env` for process `pid`, without touching descriptors or the
// environment. Returns the sockets passed (empty when LISTEN_PID or
// LISTEN_FDS is unset, LISTEN_PID names another process, or LISTEN_FDS is
// 0). Errors (InvalidArgument, naming the variable): LISTEN_PID or
// LISTEN_FDS not a plain decimal number, LISTEN_FDS so large that the
// descriptors would overflow an int, LISTEN_FDNAMES naming a different
// number of sockets than LISTEN_FDS.
absl::StatusOr<std::vector<ActivatedSocket>> ParseListenEnvironment(
    const ListenEnvironment& env, pid_t pid);

// ParseListenEnvironment on this process's environment and pid; then
// unsets the three variables and marks each passed descriptor
// close-on-exec. A passed descriptor that is not open is an
// InvalidArgument error. Checking that each is a socket of the kind wanted
// is the caller's (LinuxUnixTransport's) job.
absl::StatusOr<std::vector<ActivatedSocket>> TakeActivatedSockets();

// The local address `fd` is bound to, as a --portserver_address would name
// it: "@name" (abstract), a path, "(unnamed)" or, for other families or on
// error, "(not an AF_UNIX socket)". For messages.
std::string LocalSocketName(int fd);

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_LINUX_LINUX_SOCKET_ACTIVATION_H_
