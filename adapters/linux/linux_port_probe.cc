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

// The address families one bind covers: kDualStack is an IPv6 socket with
// IPV6_V6ONLY=0 bound to [::], which conflicts with every IPv4 and every
// IPv6 binding of the port (ipv6(7); the kernel's ipv6_rcv_saddr_equal()).
enum class Family { kDualStack, kIpv6Only, kIpv4 };

enum class BindOutcome { kBound, kNoSuchFamily, kInUse, kFailed, kNoResources };

bool OutOfResources(int error) {
  return error == EMFILE || error == ENFILE || error == ENOBUFS ||
         error == ENOMEM;
}

// One bind of the wildcard address of `family`. `reuse_addr` sets
// SO_REUSEADDR first and then also listens (TCP): only the TIME_WAIT retry
// does, and there a bind's success alone is not what a server needs. A plain
// bind() that succeeds needs no listen(): listen() checks the same conflicts
// again (inet_csk_listen_start() -> get_port()), and without SO_REUSEADDR
// every socket on an overlapping address already conflicted at bind()
// (LinuxPortProbeEquivalence tests).
BindOutcome TryBind(Family family, int type, uint16_t port, bool reuse_addr) {
  const int domain = family == Family::kIpv4 ? AF_INET : AF_INET6;
  ScopedSocket sock(socket(domain, type | SOCK_CLOEXEC, 0));
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
  if (domain == AF_INET6) {
    int v6only = family == Family::kIpv6Only ? 1 : 0;
    if (setsockopt(sock.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
                   sizeof(v6only)) != 0) {
      // No dual-stack sockets here: the caller binds each family alone.
      return BindOutcome::kNoSuchFamily;
    }
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
  if (reuse_addr && type == SOCK_STREAM && listen(sock.get(), 1) != 0) {
    return errno == EADDRINUSE ? BindOutcome::kInUse : BindOutcome::kFailed;
  }
  return BindOutcome::kBound;
}

// The state of `port` for `type` as seen by one bind of `family` (and, for
// TCP, a retry with SO_REUSEADDR if that bind was refused: TIME_WAIT).
// UDP has no TIME_WAIT: a UDP port a plain bind cannot take is used by a
// live socket (one that set SO_REUSEADDR shares its datagrams), so its first
// answer decides.
BindOutcome CheckFamily(Family family, int type, uint16_t port,
                        PortState* state) {
  BindOutcome plain = TryBind(family, type, port, /*reuse_addr=*/false);
  if (plain == BindOutcome::kInUse && type == SOCK_STREAM) {
    plain = TryBind(family, type, port, /*reuse_addr=*/true);
    if (plain == BindOutcome::kBound) *state = PortState::kReuseAddrOnly;
  }
  return plain;
}

PortState FromOutcome(BindOutcome outcome, PortState state) {
  switch (outcome) {
    case BindOutcome::kNoResources:
      return PortState::kUnknown;
    case BindOutcome::kInUse:
    case BindOutcome::kFailed:
    case BindOutcome::kNoSuchFamily:
      return PortState::kBusy;
    case BindOutcome::kBound:
      break;
  }
  return state;
}

// The state of `port` for `type` on every family the host has (kBusy if it
// has none): one dual-stack bind where the host has IPv6 (and `dual_stack`
// is true), else the IPv6 (v6-only) and IPv4 wildcards one by one.
PortState CheckFor(int type, uint16_t port, bool dual_stack) {
  PortState state = PortState::kFree;
  if (dual_stack) {
    BindOutcome dual = CheckFamily(Family::kDualStack, type, port, &state);
    if (dual != BindOutcome::kNoSuchFamily) return FromOutcome(dual, state);
  }
  bool got_socket = false;
  for (Family family : {Family::kIpv6Only, Family::kIpv4}) {
    BindOutcome outcome = CheckFamily(family, type, port, &state);
    if (outcome == BindOutcome::kNoSuchFamily) continue;
    if (outcome != BindOutcome::kBound) return FromOutcome(outcome, state);
    got_socket = true;
  }
  return got_socket ? state : PortState::kBusy;
}

}  // namespace

PortState LinuxPortProbe::Check(uint16_t port) {
  if (port == 0) return PortState::kBusy;
  PortState tcp = CheckFor(SOCK_STREAM, port, dual_stack_);
  if (!IsLeasable(tcp)) return tcp;
  PortState udp = CheckFor(SOCK_DGRAM, port, dual_stack_);
  if (!IsLeasable(udp)) return udp;
  return tcp == PortState::kFree && udp == PortState::kFree
             ? PortState::kFree
             : PortState::kReuseAddrOnly;
}

bool LinuxPortProbe::IsFree(uint16_t port) { return IsLeasable(Check(port)); }

}  // namespace portserver
