#include "adapters/linux/linux_socket_activation.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <climits>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace portserver {
namespace {

// A plain non-negative decimal number (no sign, no spaces), as systemd
// writes them.
bool ParseDecimal(absl::string_view text, uint64_t* value) {
  if (text.empty() || text.size() > 19) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return absl::SimpleAtoi(text, value);
}

}  // namespace

absl::StatusOr<std::vector<ActivatedSocket>> ParseListenEnvironment(
    const ListenEnvironment& env, pid_t pid) {
  std::vector<ActivatedSocket> sockets;
  if (env.listen_pid == nullptr || env.listen_fds == nullptr) return sockets;
  uint64_t listen_pid = 0;
  if (!ParseDecimal(env.listen_pid, &listen_pid) || listen_pid == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket activation: LISTEN_PID=\"", env.listen_pid,
                     "\" is not a process id"));
  }
  if (listen_pid != static_cast<uint64_t>(pid)) return sockets;
  uint64_t count = 0;
  if (!ParseDecimal(env.listen_fds, &count)) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket activation: LISTEN_FDS=\"", env.listen_fds,
                     "\" is not a number of descriptors"));
  }
  if (count > static_cast<uint64_t>(INT_MAX - kListenFdsStart)) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket activation: LISTEN_FDS=", count, " is too large"));
  }
  if (count == 0) return sockets;
  std::vector<std::string> names;
  if (env.listen_fdnames != nullptr) {
    names = absl::StrSplit(env.listen_fdnames, ':');
    if (names.size() != count) {
      return absl::InvalidArgumentError(absl::StrCat(
          "socket activation: LISTEN_FDNAMES=\"", env.listen_fdnames,
          "\" names ", names.size(), " socket(s) but LISTEN_FDS is ", count));
    }
  }
  for (uint64_t i = 0; i < count; ++i) {
    sockets.push_back(ActivatedSocket{kListenFdsStart + static_cast<int>(i),
                                      names.empty() ? "" : names[i]});
  }
  return sockets;
}

absl::StatusOr<std::vector<ActivatedSocket>> TakeActivatedSockets() {
  ListenEnvironment env;
  env.listen_pid = std::getenv("LISTEN_PID");
  env.listen_fds = std::getenv("LISTEN_FDS");
  env.listen_fdnames = std::getenv("LISTEN_FDNAMES");
  absl::StatusOr<std::vector<ActivatedSocket>> sockets =
      ParseListenEnvironment(env, getpid());
  // As sd_listen_fds(3): whatever they said, they are not for our children.
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  if (!sockets.ok()) return sockets;
  for (const ActivatedSocket& socket : *sockets) {
    if (fcntl(socket.fd, F_SETFD, FD_CLOEXEC) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("socket activation: LISTEN_FDS=", sockets->size(),
                       " but descriptor ", socket.fd, " is not open"));
    }
  }
  return sockets;
}

std::string LocalSocketName(int fd) {
  sockaddr_un addr{};
  socklen_t length = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0 ||
      addr.sun_family != AF_UNIX) {
    return "(not an AF_UNIX socket)";
  }
  size_t size = length > offsetof(sockaddr_un, sun_path)
                    ? length - offsetof(sockaddr_un, sun_path)
                    : 0;
  if (size == 0) return "(unnamed)";
  if (addr.sun_path[0] == '\0') {
    return "@" + std::string(addr.sun_path + 1, size - 1);
  }
  return std::string(addr.sun_path, strnlen(addr.sun_path, size));
}

}  // namespace portserver
