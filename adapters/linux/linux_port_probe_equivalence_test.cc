#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "adapters/linux/linux_port_lock_probe.h"
#include "adapters/linux/linux_port_probe.h"
#include "gtest/gtest.h"

// LinuxPortProbe against the probe it replaced, the obvious definition of
// "free for a plain bind() on TCP and UDP, IPv4 and IPv6": a socket per
// address family (the IPv6 wildcard with the system's default IPV6_V6ONLY,
// then the IPv4 wildcard), TCP bound *and listening*, each tried without
// SO_REUSEADDR and, if a TCP bind was refused, with it. For every kind of
// holder that matters (a port held on 127.0.0.1, 127.0.0.2, ::1,
// ::ffff:127.0.0.1, 0.0.0.0, [::] v6-only or dual-stack, TCP or UDP, listening
// or not, with SO_REUSEADDR or not, TIME_WAIT on IPv4 and IPv6) both must give
// the same answer, and the expected one. The kernel decides: nothing is mocked.
// So must the lock probe with its io_uring batches (LinuxPortBatch), which
// binds the same sockets without a system call each.
namespace portserver {
namespace {

enum Bind { kPlain, kReuse };

bool HostHasIpv6() {
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  close(fd);
  return true;
}

// `text` ("127.0.0.1", "::1", ...) with `port` as a sockaddr; its family.
int MakeAddress(const std::string& text, uint16_t port,
                sockaddr_storage* storage, socklen_t* length) {
  std::memset(storage, 0, sizeof(*storage));
  auto* v4 = reinterpret_cast<sockaddr_in*>(storage);
  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    *length = sizeof(*v4);
    return AF_INET;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(storage);
  if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    *length = sizeof(*v6);
    return AF_INET6;
  }
  return -1;
}

// The probe that LinuxPortProbe replaced, kept here as the reference.
enum class Outcome { kBound, kNoSuchFamily, kInUse, kFailed };

Outcome ReferenceBind(int family, int type, uint16_t port, bool reuse) {
  int fd = socket(family, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return Outcome::kNoSuchFamily;
  int one = 1;
  if (reuse) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_storage storage;
  socklen_t length;
  MakeAddress(family == AF_INET6 ? "::" : "0.0.0.0", port, &storage, &length);
  Outcome outcome = Outcome::kBound;
  if (bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0 ||
      (type == SOCK_STREAM && listen(fd, 1) != 0)) {
    outcome = errno == EADDRINUSE ? Outcome::kInUse : Outcome::kFailed;
  }
  close(fd);
  return outcome;
}

PortState ReferenceCheckFor(int type, uint16_t port) {
  bool got_socket = false;
  PortState state = PortState::kFree;
  for (int family : {AF_INET6, AF_INET}) {
    Outcome outcome = ReferenceBind(family, type, port, false);
    if (outcome == Outcome::kInUse && type == SOCK_STREAM) {
      outcome = ReferenceBind(family, type, port, true);
      if (outcome == Outcome::kBound) state = PortState::kReuseAddrOnly;
    }
    if (outcome == Outcome::kNoSuchFamily) continue;
    if (outcome != Outcome::kBound) return PortState::kBusy;
    got_socket = true;
  }
  return got_socket ? state : PortState::kBusy;
}

PortState ReferenceCheck(uint16_t port) {
  PortState tcp = ReferenceCheckFor(SOCK_STREAM, port);
  if (!IsLeasable(tcp)) return tcp;
  PortState udp = ReferenceCheckFor(SOCK_DGRAM, port);
  if (!IsLeasable(udp)) return udp;
  return tcp == PortState::kFree && udp == PortState::kFree
             ? PortState::kFree
             : PortState::kReuseAddrOnly;
}

// A socket bound to `address` on a port the kernel picks.
struct Holder {
  std::string address;
  int type;
  bool listening = false;
  bool reuse_addr = false;
  int v6only = -1;  // -1: the system default.
};

class HeldPort {
 public:
  explicit HeldPort(const Holder& h) {
    sockaddr_storage storage;
    socklen_t length;
    int family = MakeAddress(h.address, 0, &storage, &length);
    fd_ = socket(family, h.type | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    int one = 1;
    if (h.reuse_addr) {
      setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    }
    if (h.v6only >= 0) {
      setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &h.v6only, sizeof(h.v6only));
    }
    if (bind(fd_, reinterpret_cast<sockaddr*>(&storage), length) != 0 ||
        (h.listening && listen(fd_, 1) != 0) ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
      close(fd_);
      fd_ = -1;
      return;
    }
    port_ = ntohs(family == AF_INET6
                      ? reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port
                      : reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
  }
  ~HeldPort() {
    if (fd_ >= 0) close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// Check() of the lock probe with io_uring batches over LinuxPortProbe, as
// the server runs it; the lock is let go of. Where the kernel has no
// batches (LinuxPortBatchTest.WorksWhereTheKernelHasEveryOperation says
// where it must), the inner probe's answer.
PortState BatchedCheck(uint16_t port) {
  LinuxPortProbe binds;
  LinuxPortLockProbe batched(
      binds, "portserver-equivalence-" + std::to_string(getpid()) + "-");
  std::string why;
  const bool batches = batched.UseKernelBatches(&why);
  PortState state = batched.Check(port);
  if (batches) EXPECT_EQ(batched.kernel_submissions(), 1u);
  batched.Release(port);
  return state;
}

// Both probes on a port held as `h`: the expected answer, from each, and
// from LinuxPortProbe's fallback for hosts without dual-stack sockets.
void ExpectBoth(const Holder& h, PortState expected) {
  SCOPED_TRACE(h.address + (h.type == SOCK_STREAM ? " tcp" : " udp") +
               (h.listening ? " listening" : "") +
               (h.reuse_addr ? " SO_REUSEADDR" : "") +
               (h.v6only == 1   ? " v6only"
                : h.v6only == 0 ? " dual"
                                : ""));
  HeldPort held(h);
  ASSERT_NE(held.port(), 0);
  LinuxPortProbe probe;
  LinuxPortProbe separate(/*dual_stack=*/false);
  EXPECT_EQ(probe.Check(held.port()), expected);
  EXPECT_EQ(separate.Check(held.port()), expected);
  EXPECT_EQ(ReferenceCheck(held.port()), expected);
  EXPECT_EQ(BatchedCheck(held.port()), expected);
}

TEST(LinuxPortProbeEquivalence, Ipv4Holders) {
  for (const char* address : {"127.0.0.1", "127.0.0.2", "0.0.0.0"}) {
    for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
      ExpectBoth({address, type}, PortState::kBusy);
    }
    ExpectBoth({address, SOCK_STREAM, /*listening=*/true}, PortState::kBusy);
    // A listener with SO_REUSEADDR keeps the port even from a bind that
    // sets it too.
    ExpectBoth({address, SOCK_STREAM, true, /*reuse_addr=*/true},
               PortState::kBusy);
  }
}

TEST(LinuxPortProbeEquivalence, Ipv6Holders) {
  if (!HostHasIpv6()) GTEST_SKIP() << "no IPv6 on this host";
  for (const char* address : {"::1", "::", "::ffff:127.0.0.1"}) {
    for (int v6only : {-1, 0, 1}) {
      if (v6only == 1 && std::string(address) == "::ffff:127.0.0.1") continue;
      for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
        ExpectBoth({address, type, false, false, v6only}, PortState::kBusy);
      }
      ExpectBoth({address, SOCK_STREAM, true, false, v6only}, PortState::kBusy);
      ExpectBoth({address, SOCK_STREAM, true, true, v6only}, PortState::kBusy);
    }
  }
}

TEST(LinuxPortProbeEquivalence, ReleasedPortIsFree) {
  uint16_t port;
  {
    HeldPort held({"0.0.0.0", SOCK_DGRAM});
    port = held.port();
    ASSERT_NE(port, 0);
  }
  LinuxPortProbe probe;
  EXPECT_EQ(probe.Check(port), PortState::kFree);
  EXPECT_EQ(LinuxPortProbe(false).Check(port), PortState::kFree);
  EXPECT_EQ(ReferenceCheck(port), PortState::kFree);
  EXPECT_EQ(BatchedCheck(port), PortState::kFree);
}

// A live UDP socket that set SO_REUSEADDR would let a bind with it join the
// port (both get datagrams): busy, not a TIME_WAIT fallback.
TEST(LinuxPortProbeEquivalence, UdpHeldWithReuseAddrIsBusy) {
  ExpectBoth({"0.0.0.0", SOCK_DGRAM, false, /*reuse_addr=*/true},
             PortState::kBusy);
  if (!HostHasIpv6()) return;
  ExpectBoth({"::", SOCK_DGRAM, false, /*reuse_addr=*/true}, PortState::kBusy);
}

// Leaves a TCP socket in TIME_WAIT on `loopback` (its listener set
// SO_REUSEADDR); the port, or 0. Bounded wait for the state, by polling a
// plain bind (EADDRINUSE once the server side is in TIME_WAIT).
uint16_t MakeTimeWait(const std::string& loopback) {
  sockaddr_storage storage;
  socklen_t length;
  int family = MakeAddress(loopback, 0, &storage, &length);
  int listener = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) return 0;
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  uint16_t port = 0;
  int client = -1, served = -1;
  char byte;
  if (bind(listener, reinterpret_cast<sockaddr*>(&storage), length) == 0 &&
      listen(listener, 1) == 0 &&
      getsockname(listener, reinterpret_cast<sockaddr*>(&storage), &length) ==
          0 &&
      (client = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0 &&
      connect(client, reinterpret_cast<sockaddr*>(&storage), length) == 0 &&
      (served = accept(listener, nullptr, nullptr)) >= 0) {
    close(served);  // The server side closes first: it goes to TIME_WAIT.
    served = -1;
    if (read(client, &byte, 1) == 0) {
      port = ntohs(family == AF_INET6
                       ? reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port
                       : reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
    }
  }
  if (served >= 0) close(served);
  if (client >= 0) close(client);
  close(listener);
  if (port == 0) return 0;
  for (int i = 0; i < 2000; ++i) {
    if (ReferenceBind(family, SOCK_STREAM, port, false) == Outcome::kInUse) {
      return port;
    }
    usleep(1000);
  }
  return 0;
}

TEST(LinuxPortProbeEquivalence, TimeWaitIpv4) {
  uint16_t port = MakeTimeWait("127.0.0.1");
  ASSERT_NE(port, 0);
  LinuxPortProbe probe;
  EXPECT_EQ(probe.Check(port), PortState::kReuseAddrOnly);
  EXPECT_EQ(LinuxPortProbe(false).Check(port), PortState::kReuseAddrOnly);
  EXPECT_EQ(ReferenceCheck(port), PortState::kReuseAddrOnly);
  EXPECT_EQ(BatchedCheck(port), PortState::kReuseAddrOnly);
}

TEST(LinuxPortProbeEquivalence, TimeWaitIpv6) {
  if (!HostHasIpv6()) GTEST_SKIP() << "no IPv6 on this host";
  uint16_t port = MakeTimeWait("::1");
  ASSERT_NE(port, 0);
  LinuxPortProbe probe;
  EXPECT_EQ(probe.Check(port), PortState::kReuseAddrOnly);
  EXPECT_EQ(LinuxPortProbe(false).Check(port), PortState::kReuseAddrOnly);
  EXPECT_EQ(ReferenceCheck(port), PortState::kReuseAddrOnly);
  EXPECT_EQ(BatchedCheck(port), PortState::kReuseAddrOnly);
}

}  // namespace
}  // namespace portserver
