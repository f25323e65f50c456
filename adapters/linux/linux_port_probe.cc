#include "adapters/linux/linux_port_probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <initializer_list>

namespace portserver {
namespace {

// Owns a socket descriptor; closes it when it goes out of scope.
class ScopedSocket final {
 public:
  explicit ScopedSocket(int fd) : fd_(fd) {}
  ScopedSocket(const ScopedSocket&) = delete;
  ScopedSocket& operator=(const ScopedSocket&) = delete;
  ~ScopedSocket() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  const int fd_;
};

enum class BindOutcome { kBound, kNoSuchFamily, kInUse, kFailed, kNoResources };

bool OutOfResources(int error) {
  return error == EMFILE || error == ENFILE || error == ENOBUFS ||
         error == ENOMEM;
}

BindOutcome TryBind(int family, int type, uint16_t port, bool reuse_addr) {
  ScopedSocket sock(socket(family, type | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) {
    return OutOfResources(errno) ? BindOutcome::kNoResources
                                 : BindOutcome::kNoSuchFamily;
  }
  int one = 1;
  if (reuse_addr && setsockopt(sock.get(), SOL_SOCKET, SO_REUSEADDR, &one,
                               sizeof(one)) != 0) {
    return BindOutcome::kFailed;
  }
  int bound;
  if (family == AF_INET6) {
    sockaddr_in6 addr;
    std::memset(&addr, 0, sizeof(addr));
    addr.sin6_family = AF_INET6;
    addr.sin6_addr = in6addr_any;
    addr.sin6_port = htons(port);
    bound = bind(sock.get(), reinterpret_cast<const sockaddr*>(&addr),
                 sizeof(addr));
  } else {
    sockaddr_in addr;
    std::memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons(port);
    bound = bind(sock.get(), reinterpret_cast<const sockaddr*>(&addr),
                 sizeof(addr));
  }
  if (bound != 0) {
    return errno == EADDRINUSE ? BindOutcome::kInUse : BindOutcome::kFailed;
  }
  if (type == SOCK_STREAM && listen(sock.get(), 1) != 0) {
    return errno == EADDRINUSE ? BindOutcome::kInUse : BindOutcome::kFailed;
  }
  return BindOutcome::kBound;
}

// The state of `port` for `type` on every family the host has (kBusy if it
// has none).
PortState CheckFor(int type, uint16_t port) {
  bool got_socket = false;
  PortState state = PortState::kFree;
  for (int family : {AF_INET6, AF_INET}) {
    BindOutcome plain = TryBind(family, type, port, /*reuse_addr=*/false);
    if (plain == BindOutcome::kInUse && type == SOCK_STREAM) {
      // Would a bind with SO_REUSEADDR take it (TIME_WAIT)? TCP only: UDP
      // has no TIME_WAIT, and a bind with SO_REUSEADDR joins a live UDP
      // socket that set it too, so a UDP port a plain bind() cannot take is
      // busy.
      plain = TryBind(family, type, port, /*reuse_addr=*/true);
      if (plain == BindOutcome::kBound) state = PortState::kReuseAddrOnly;
    }
    switch (plain) {
      case BindOutcome::kNoSuchFamily:
        break;
      case BindOutcome::kNoResources:
        return PortState::kUnknown;
      case BindOutcome::kInUse:
      case BindOutcome::kFailed:
        return PortState::kBusy;
      case BindOutcome::kBound:
        got_socket = true;
        break;
    }
  }
  return got_socket ? state : PortState::kBusy;
}

}  // namespace

PortState LinuxPortProbe::Check(uint16_t port) {
  if (port == 0) return PortState::kBusy;
  PortState tcp = CheckFor(SOCK_STREAM, port);
  if (!IsLeasable(tcp)) return tcp;
  PortState udp = CheckFor(SOCK_DGRAM, port);
  if (!IsLeasable(udp)) return udp;
  return tcp == PortState::kFree && udp == PortState::kFree
             ? PortState::kFree
             : PortState::kReuseAddrOnly;
}

bool LinuxPortProbe::IsFree(uint16_t port) { return IsLeasable(Check(port)); }

}  // namespace portserver
