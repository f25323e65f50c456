// POSIX side of //client:portpicker (portpicker_platform.h): the port
// server over an AF_UNIX stream socket, binds with BSD sockets.
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "client/cli_platform.h"
#include "client/portpicker.h"
#include "client/portpicker_platform.h"
#include "client/socket_address.h"

namespace portpicker {
namespace {

std::string ErrnoText(int error) { return std::strerror(error); }

bool IsValidPort(int port) { return port >= 1 && port <= 65535; }

// Owns a descriptor.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// A socket of `family` and `type` bound to the wildcard address and `port`
// with SO_REUSEADDR. Returns -1 with errno set on failure; `*no_socket` says
// whether socket() itself failed (the family is not to be had here: not
// supported, or refused by a sandbox's seccomp, AppArmor or SELinux rules
// with EACCES or EPERM), as opposed to the bind.
int BindReusable(int family, int type, int port, bool* no_socket) {
  ScopedFd fd(socket(family, type | SOCK_CLOEXEC, 0));
  *no_socket = fd.get() < 0;
  if (fd.get() < 0) return -1;
  const int one = 1;
  const SocketAddress address = WildcardAddress(family, port);
  if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      bind(fd.get(), address.get(), address.size) != 0) {
    return -1;
  }
  return fd.release();
}

// python's bind(): binds `port` (0: the kernel chooses) for `type` on IPv6,
// then IPv4, listening for TCP, and closes. Returns the port bound, or 0 if a
// bind failed or no family had sockets. A family whose socket() fails is
// skipped, whatever the error, as python 1.6 skips it (an IPv6 socket
// refused with EACCES made every pick fail).
int BindBothFamiliesOfType(int port, int type) {
  bool got_socket = false;
  for (int family : {AF_INET6, AF_INET}) {
    bool no_socket = false;
    ScopedFd fd(BindReusable(family, type, port, &no_socket));
    if (fd.get() < 0) {
      if (no_socket) continue;  // This family is not to be had here.
      return 0;
    }
    got_socket = true;
    if (type == SOCK_STREAM && listen(fd.get(), 1) != 0) return 0;
    port = BoundPort(fd.get());
    if (port == 0) return 0;
    // As python 1.6: close() alone leaves the TCP state machine lagging.
    if (type == SOCK_STREAM) shutdown(fd.get(), SHUT_RDWR);
  }
  return got_socket ? port : 0;
}

absl::Status SetSendTimeout(int fd, absl::Duration timeout) {
  // A zero timeval would mean "no timeout".
  timeval tv = absl::ToTimeval(std::max(timeout, absl::Microseconds(1)));
  if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
    return absl::InternalError(
        absl::StrCat("setsockopt(SO_SNDTIMEO): ", ErrnoText(errno)));
  }
  return absl::OkStatus();
}

// The status of a failed connect/send/recv on the server's socket.
absl::Status IoError(absl::string_view what, const std::string& address,
                     int error) {
  std::string message =
      absl::StrCat(what, " portserver at ", address, ": ", ErrnoText(error));
  if (error == EPIPE || error == ECONNRESET) {
    // Closed before it read the request: our server does that at its
    // connection cap and when no descriptor is left for the connection,
    // and says which in its log (a new user read "Broken pipe" alone).
    absl::StrAppend(&message,
                    " (the server closed the connection unread: at its "
                    "connection cap, or out of descriptors; its log says "
                    "which)");
  }
  if (error == ENOENT && !address.empty() && address[0] != '@') {
    // The '@' is what a newcomer drops (PORTSERVER_ADDRESS=unittest-
    // portserver): a path was looked for (a new user's trial).
    absl::StrAppend(&message,
                    " (no socket file at that path; an abstract address, "
                    "such as the default @unittest-portserver, starts with "
                    "'@')");
  }
  if (error == EAGAIN || error == EWOULDBLOCK || error == EINPROGRESS) {
    return absl::DeadlineExceededError(message);
  }
  return absl::UnavailableError(message);
}

}  // namespace

namespace internal {

absl::StatusOr<std::string> ExchangeWithServer(const std::string& address,
                                               const std::string& request,
                                               absl::Duration timeout,
                                               size_t max_reply_bytes,
                                               bool until_newline) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<SocketAddress> un = ParseUnixAddress(address);
  if (!un.ok()) return un.status();
  ScopedFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return IoError("socket for", address, errno);
  // SO_SNDTIMEO bounds connect() to a server with a full backlog and send().
  absl::Status status = SetSendTimeout(fd.get(), timeout);
  if (!status.ok()) return status;
  if (connect(fd.get(), un->get(), un->size) != 0) {
    return IoError("cannot connect to", address, errno);
  }
  status = SetSendTimeout(fd.get(), deadline - absl::Now());
  if (!status.ok()) return status;
  for (size_t sent = 0; sent < request.size();) {
    // MSG_NOSIGNAL: a server that hung up must not kill us with SIGPIPE.
    ssize_t n = send(fd.get(), request.data() + sent, request.size() - sent,
                     MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError("cannot send to", address, errno);
    sent += static_cast<size_t>(n);
  }

  // Until EOF, or the first newline in case a server does not close.
  std::string reply;
  while (!until_newline || reply.find('\n') == std::string::npos) {
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    pollfd p = {fd.get(), POLLIN, 0};
    const int ready =
        left_ms <= 0 ? 0
                     : poll(&p, 1,
                            static_cast<int>(std::min<int64_t>(
                                left_ms, std::numeric_limits<int>::max())));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return IoError("cannot poll", address, errno);
    if (ready == 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("portserver at ", address, " did not answer within ",
                       absl::FormatDuration(timeout)));
    }
    char buffer[4096];
    ssize_t n = recv(fd.get(), buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    // Extended protocol: a server that answers before reading all of an
    // overlong request closes with bytes unread, and the kernel resets the
    // connection after the reply: the reply is whole or not by its "end"
    // line, as at EOF (control_client.cc).
    if (n < 0 && errno == ECONNRESET && !until_newline) break;
    if (n < 0) return IoError("cannot read from", address, errno);
    if (n == 0) break;
    reply.append(buffer, static_cast<size_t>(n));
    if (reply.size() > max_reply_bytes) {
      return absl::InternalError(absl::StrCat("portserver at ", address,
                                              " sent a reply of more than ",
                                              max_reply_bytes, " bytes"));
    }
  }
  return reply;
}

int BindBothFamilies(int port, Protocol protocol) {
  return BindBothFamiliesOfType(
      port, protocol == Protocol::kTcp ? SOCK_STREAM : SOCK_DGRAM);
}

int64_t CurrentPid() { return getpid(); }

}  // namespace internal

std::optional<std::string> EnvironmentUtf8(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

std::vector<std::string> ArgumentsUtf8(int argc, char** argv) {
  return std::vector<std::string>(argv + (argc > 0 ? 1 : 0), argv + argc);
}

void UseUtf8Console() {}

absl::StatusOr<int> HoldPort(int port) {
  if (!IsValidPort(port)) {
    return absl::InvalidArgumentError(absl::StrCat("bad port ", port));
  }
  bool no_socket = false;
  int fd = BindReusable(AF_INET6, SOCK_STREAM, port, &no_socket);
  if (fd < 0 && no_socket) {
    fd = BindReusable(AF_INET, SOCK_STREAM, port, &no_socket);
  }
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot bind port ", port, ": ", ErrnoText(errno)));
  }
  return fd;
}

}  // namespace portpicker
