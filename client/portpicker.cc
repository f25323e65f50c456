#include "client/portpicker.h"

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
#include <random>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "client/control_client.h"
#include "client/socket_address.h"
#include "domain/control_protocol.h"

namespace portpicker {
namespace {

constexpr int kMinPort = 1;
constexpr int kMaxPort = 65535;
// A reply is "<port>\n"; anything longer is not a reply.
constexpr size_t kMaxReplySize = 64;

bool IsValidPort(int port) { return port >= kMinPort && port <= kMaxPort; }

std::string ErrnoText(int error) { return std::strerror(error); }

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
// with SO_REUSEADDR. Returns -1 with errno set on failure.
int BindReusable(int family, int type, int port) {
  ScopedFd fd(socket(family, type | SOCK_CLOEXEC, 0));
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
// bind failed or no family had sockets.
int BindBothFamilies(int port, int type) {
  bool got_socket = false;
  for (int family : {AF_INET6, AF_INET}) {
    ScopedFd fd(BindReusable(family, type, port));
    if (fd.get() < 0) {
      if (errno == EAFNOSUPPORT) continue;  // The host lacks this family.
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

// python's _pick_unused_port_without_server(), never returning a port in
// `avoid`.
absl::StatusOr<int> PickWithoutServer(const std::set<int>& avoid) {
  // The kernel's choice first, TCP before UDP: on some kernels a UDP port 0
  // bind returns the same port over and over.
  for (int i = 0; i < 10; ++i) {
    const int port = BindBothFamilies(0, SOCK_STREAM);
    if (port != 0 && avoid.count(port) == 0 &&
        BindBothFamilies(port, SOCK_DGRAM) != 0) {
      return port;
    }
  }
  std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int> range(15000, 24999);
  for (int i = 0; i < 10; ++i) {
    const int port = range(random);
    if (avoid.count(port) == 0 && IsPortFree(port)) return port;
  }
  return absl::ResourceExhaustedError(
      "no free port found without a port server (10 kernel-chosen and 10 "
      "random ports tried)");
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
  if (error == EAGAIN || error == EWOULDBLOCK || error == EINPROGRESS) {
    return absl::DeadlineExceededError(message);
  }
  return absl::UnavailableError(message);
}

absl::StatusOr<int> ParseReply(absl::string_view reply,
                               const std::string& address, int64_t pid) {
  if (reply.empty()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("portserver at ", address, " denied a port to pid ", pid,
                     " (closed without a reply)"));
  }
  // As python: the first line counts; it may lack its newline.
  absl::string_view line =
      absl::StripAsciiWhitespace(reply.substr(0, reply.find('\n')));
  int port = 0;
  if (line.empty() || !absl::ascii_isdigit(line[0]) ||
      !absl::SimpleAtoi(line, &port) || port > kMaxPort) {
    return absl::InternalError(absl::StrCat(
        "portserver at ", address, " sent a reply that is not a port: \"",
        absl::CEscape(reply), "\""));
  }
  if (port == 0) {
    return absl::ResourceExhaustedError(absl::StrCat("portserver at ", address,
                                                     " denied a port to pid ",
                                                     pid, " (replied 0)"));
  }
  return port;
}

}  // namespace

absl::StatusOr<int> GetPortFromPortServer(const std::string& address,
                                          int64_t pid, absl::Duration timeout) {
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
  const std::string request = absl::StrCat(pid, "\n");
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
  while (reply.find('\n') == std::string::npos) {
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
    char buffer[kMaxReplySize];
    ssize_t n = recv(fd.get(), buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError("cannot read from", address, errno);
    if (n == 0) break;
    reply.append(buffer, static_cast<size_t>(n));
    if (reply.size() > kMaxReplySize) {
      return absl::InternalError(absl::StrCat("portserver at ", address,
                                              " sent a reply of more than ",
                                              kMaxReplySize, " bytes"));
    }
  }
  return ParseReply(reply, address, pid);
}

bool IsPortFree(int port) {
  return IsValidPort(port) && BindBothFamilies(port, SOCK_STREAM) != 0 &&
         BindBothFamilies(port, SOCK_DGRAM) != 0;
}

absl::StatusOr<int> PickUnusedPortWithoutServer() {
  return PickWithoutServer({});
}

absl::StatusOr<int> HoldPort(int port) {
  if (!IsValidPort(port)) {
    return absl::InvalidArgumentError(absl::StrCat("bad port ", port));
  }
  int fd = BindReusable(AF_INET6, SOCK_STREAM, port);
  if (fd < 0 && errno == EAFNOSUPPORT) {
    fd = BindReusable(AF_INET, SOCK_STREAM, port);
  }
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot bind port ", port, ": ", ErrnoText(errno)));
  }
  return fd;
}

absl::StatusOr<int> PortPicker::PickUnusedPort(int64_t pid) {
  {
    absl::MutexLock lock(&mu_);
    if (!free_.empty()) {
      const int port = *free_.begin();
      free_.erase(free_.begin());
      owned_.insert(port);
      return port;
    }
  }
  const char* address = std::getenv(kPortServerAddressEnv);
  absl::StatusOr<int> from_server =
      address != nullptr && address[0] != '\0'
          ? GetPortFromPortServer(address, pid)
          : absl::StatusOr<int>(absl::NotFoundError("no port server"));

  absl::MutexLock lock(&mu_);
  if (from_server.ok() && owned_.count(*from_server) == 0 &&
      random_.count(*from_server) == 0) {
    free_.erase(*from_server);  // In case AddReservedPort added it meanwhile.
    owned_.insert(*from_server);
    return *from_server;
  }
  std::set<int> avoid = owned_;
  avoid.insert(free_.begin(), free_.end());
  avoid.insert(random_.begin(), random_.end());
  absl::StatusOr<int> port = PickWithoutServer(avoid);
  if (port.ok()) random_.insert(*port);
  return port;
}

absl::StatusOr<int> PortPicker::PickUnusedPort() {
  return PickUnusedPort(getpid());
}

absl::StatusOr<std::vector<int>> PortPicker::PickUnusedPorts(int n) {
  if (n <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("want a positive number of ports, not ", n));
  }
  std::vector<int> ports;
  {
    absl::MutexLock lock(&mu_);
    while (static_cast<int>(ports.size()) < n && !free_.empty()) {
      const int port = *free_.begin();
      free_.erase(free_.begin());
      owned_.insert(port);
      ports.push_back(port);
    }
  }
  const int missing = n - static_cast<int>(ports.size());
  const char* address = std::getenv(kPortServerAddressEnv);
  if (missing > 1 && address != nullptr && address[0] != '\0' &&
      missing <= static_cast<int>(portserver::kMaxPortsPerRequest)) {
    // One round trip to a server of the extended protocol; a server without
    // it (python's) or a refusal falls through to one request per port.
    absl::StatusOr<std::vector<int>> got =
        GetPortsFromPortServer(address, getpid(), missing, DefaultLabel());
    if (got.ok()) {
      absl::MutexLock lock(&mu_);
      bool fresh = true;
      for (int port : *got) {
        fresh = fresh && owned_.count(port) == 0 && random_.count(port) == 0;
      }
      if (fresh) {
        for (int port : *got) {
          free_.erase(port);
          owned_.insert(port);
          ports.push_back(port);
        }
        return ports;
      }
    }
  }
  while (static_cast<int>(ports.size()) < n) {
    absl::StatusOr<int> port = PickUnusedPort();
    if (!port.ok()) {
      for (int picked : ports) ReturnPort(picked).IgnoreError();
      return port.status();
    }
    ports.push_back(*port);
  }
  return ports;
}

absl::Status PortPicker::ReturnPort(int port) {
  absl::MutexLock lock(&mu_);
  if (random_.erase(port) > 0) return absl::OkStatus();
  if (owned_.erase(port) > 0) {
    free_.insert(port);
    return absl::OkStatus();
  }
  if (free_.count(port) > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("port ", port, " was already returned"));
  }
  return absl::NotFoundError(
      absl::StrCat("port ", port, " was not handed out by portpicker"));
}

void PortPicker::AddReservedPort(int port) {
  if (!IsValidPort(port)) return;
  absl::MutexLock lock(&mu_);
  free_.insert(port);
}

namespace {

PortPicker& ProcessPicker() {
  static PortPicker* const picker = new PortPicker;
  return *picker;
}

}  // namespace

absl::StatusOr<int> PickUnusedPort() {
  return ProcessPicker().PickUnusedPort();
}

absl::StatusOr<std::vector<int>> PickUnusedPorts(int n) {
  return ProcessPicker().PickUnusedPorts(n);
}

absl::Status ReturnPort(int port) { return ProcessPicker().ReturnPort(port); }

void AddReservedPort(int port) { ProcessPicker().AddReservedPort(port); }

}  // namespace portpicker
