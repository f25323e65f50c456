#include "adapters/linux/linux_port_probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

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

enum class BindOutcome { kBound, kNoSuchFamily, kFailed };

BindOutcome TryBind(int family, int type, uint16_t port) {
  ScopedSocket sock(socket(family, type | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) return BindOutcome::kNoSuchFamily;
  int one = 1;
  if (setsockopt(sock.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) !=
      0) {
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
  if (bound != 0) return BindOutcome::kFailed;
  if (type == SOCK_STREAM && listen(sock.get(), 1) != 0) {
    return BindOutcome::kFailed;
  }
  return BindOutcome::kBound;
}

// True if `port` binds for `type` on every family the host has, and the
// host has at least one.
bool IsFreeFor(int type, uint16_t port) {
  bool got_socket = false;
  for (int family : {AF_INET6, AF_INET}) {
    switch (TryBind(family, type, port)) {
      case BindOutcome::kNoSuchFamily:
        break;
      case BindOutcome::kFailed:
        return false;
      case BindOutcome::kBound:
        got_socket = true;
        break;
    }
  }
  return got_socket;
}

}  // namespace

bool LinuxPortProbe::IsFree(uint16_t port) {
  if (port == 0) return false;
  return IsFreeFor(SOCK_STREAM, port) && IsFreeFor(SOCK_DGRAM, port);
}

}  // namespace portserver
