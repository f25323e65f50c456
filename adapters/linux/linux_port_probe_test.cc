#include "adapters/linux/linux_port_probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "gtest/gtest.h"

namespace portserver {
namespace {

// A socket the test binds to a port the kernel picks (port 0), without
// SO_REUSEADDR, so that nobody else can bind the port while it is open.
class BoundSocket {
 public:
  BoundSocket(int family, int type) {
    fd_ = socket(family, type | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    sockaddr_storage storage;
    std::memset(&storage, 0, sizeof(storage));
    socklen_t length;
    if (family == AF_INET6) {
      auto* addr = reinterpret_cast<sockaddr_in6*>(&storage);
      addr->sin6_family = AF_INET6;
      addr->sin6_addr = in6addr_any;
      length = sizeof(*addr);
    } else {
      auto* addr = reinterpret_cast<sockaddr_in*>(&storage);
      addr->sin_family = AF_INET;
      addr->sin_addr.s_addr = htonl(INADDR_ANY);
      length = sizeof(*addr);
    }
    if (bind(fd_, reinterpret_cast<sockaddr*>(&storage), length) != 0 ||
        (type == SOCK_STREAM && listen(fd_, 1) != 0) ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
      Close();
      return;
    }
    port_ = ntohs(family == AF_INET6
                      ? reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port
                      : reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
  }
  ~BoundSocket() { Close(); }

  bool ok() const { return fd_ >= 0 && port_ != 0; }
  uint16_t port() const { return port_; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

bool HostHasIpv6() {
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  close(fd);
  return true;
}

TEST(LinuxPortProbe, TcpListeningOnIpv4IsNotFreeUntilClosed) {
  BoundSocket held(AF_INET, SOCK_STREAM);
  ASSERT_TRUE(held.ok());
  LinuxPortProbe probe;
  EXPECT_FALSE(probe.IsFree(held.port()));
  held.Close();
  EXPECT_TRUE(probe.IsFree(held.port()));
}

TEST(LinuxPortProbe, UdpBoundOnIpv4IsNotFreeUntilClosed) {
  BoundSocket held(AF_INET, SOCK_DGRAM);
  ASSERT_TRUE(held.ok());
  LinuxPortProbe probe;
  EXPECT_FALSE(probe.IsFree(held.port()));
  held.Close();
  EXPECT_TRUE(probe.IsFree(held.port()));
}

TEST(LinuxPortProbe, TcpListeningOnIpv6IsNotFreeUntilClosed) {
  if (!HostHasIpv6()) GTEST_SKIP() << "no IPv6 on this host";
  BoundSocket held(AF_INET6, SOCK_STREAM);
  ASSERT_TRUE(held.ok());
  LinuxPortProbe probe;
  EXPECT_FALSE(probe.IsFree(held.port()));
  held.Close();
  EXPECT_TRUE(probe.IsFree(held.port()));
}

TEST(LinuxPortProbe, UdpBoundOnIpv6IsNotFreeUntilClosed) {
  if (!HostHasIpv6()) GTEST_SKIP() << "no IPv6 on this host";
  BoundSocket held(AF_INET6, SOCK_DGRAM);
  ASSERT_TRUE(held.ok());
  LinuxPortProbe probe;
  EXPECT_FALSE(probe.IsFree(held.port()));
  held.Close();
  EXPECT_TRUE(probe.IsFree(held.port()));
}

// Leaves a socket in TIME_WAIT on a port of the loopback address of
// `family`: a listener's accepted connection is closed first (active close),
// then the client; returns the port, or 0 on failure. The listener sets
// SO_REUSEADDR, as most servers do: the TIME_WAIT socket inherits it, and
// only then may another SO_REUSEADDR socket bind the port (without it the
// port is busy for everyone until TIME_WAIT ends). The state is
// checked, bounded, with a plain bind (EADDRINUSE while TIME_WAIT lasts).
uint16_t MakeTimeWait(int family) {
  sockaddr_storage storage;
  std::memset(&storage, 0, sizeof(storage));
  socklen_t length;
  if (family == AF_INET6) {
    auto* addr = reinterpret_cast<sockaddr_in6*>(&storage);
    addr->sin6_family = AF_INET6;
    addr->sin6_addr = in6addr_loopback;
    length = sizeof(*addr);
  } else {
    auto* addr = reinterpret_cast<sockaddr_in*>(&storage);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    length = sizeof(*addr);
  }
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
    if (read(client, &byte, 1) == 0) {  // Its FIN arrived.
      port = ntohs(family == AF_INET6
                       ? reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port
                       : reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
    }
  }
  if (served >= 0) close(served);
  if (client >= 0) close(client);
  close(listener);
  return port;
}

// A plain bind() of the wildcard address of `family`, as a program that does
// not set SO_REUSEADDR binds.
int PlainBindError(int family, uint16_t port) {
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage storage;
  std::memset(&storage, 0, sizeof(storage));
  socklen_t length;
  if (family == AF_INET6) {
    auto* addr = reinterpret_cast<sockaddr_in6*>(&storage);
    addr->sin6_family = AF_INET6;
    addr->sin6_addr = in6addr_any;
    addr->sin6_port = htons(port);
    length = sizeof(*addr);
  } else {
    auto* addr = reinterpret_cast<sockaddr_in*>(&storage);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_ANY);
    addr->sin_port = htons(port);
    length = sizeof(*addr);
  }
  int error =
      bind(fd, reinterpret_cast<sockaddr*>(&storage), length) == 0 ? 0 : errno;
  close(fd);
  return error;
}

// Waits (bounded) until the client's FIN has put the server side in
// TIME_WAIT, which a plain bind then reports.
bool PlainBindFailsSoon(int family, uint16_t port) {
  for (int i = 0; i < 2000; ++i) {
    if (PlainBindError(family, port) == EADDRINUSE) return true;
    usleep(1000);
  }
  return false;
}

TEST(LinuxPortProbe, TimeWaitOnIpv4IsReuseAddrOnly) {
  uint16_t port = MakeTimeWait(AF_INET);
  ASSERT_NE(port, 0);
  ASSERT_TRUE(PlainBindFailsSoon(AF_INET, port));
  LinuxPortProbe probe;
  EXPECT_EQ(probe.Check(port), PortState::kReuseAddrOnly);
  EXPECT_TRUE(probe.IsFree(port));  // What the reference's probe says.
}

TEST(LinuxPortProbe, TimeWaitOnIpv6IsReuseAddrOnly) {
  if (!HostHasIpv6()) GTEST_SKIP() << "no IPv6 on this host";
  uint16_t port = MakeTimeWait(AF_INET6);
  ASSERT_NE(port, 0);
  ASSERT_TRUE(PlainBindFailsSoon(AF_INET6, port));
  LinuxPortProbe probe;
  EXPECT_EQ(probe.Check(port), PortState::kReuseAddrOnly);
}

TEST(LinuxPortProbe, UnusedPortIsFreeAndListenerIsBusy) {
  BoundSocket held(AF_INET, SOCK_STREAM);
  ASSERT_TRUE(held.ok());
  LinuxPortProbe probe;
  EXPECT_EQ(probe.Check(held.port()), PortState::kBusy);
  held.Close();
  EXPECT_EQ(probe.Check(held.port()), PortState::kFree);
}

TEST(LinuxPortProbe, PortZeroIsNeverFree) {
  LinuxPortProbe probe;
  EXPECT_FALSE(probe.IsFree(0));
}

TEST(LinuxPortProbe, ProbingDoesNotLeakDescriptors) {
  BoundSocket held(AF_INET, SOCK_STREAM);
  ASSERT_TRUE(held.ok());
  LinuxPortProbe probe;
  int before = dup(0);
  ASSERT_GE(before, 0);
  close(before);
  for (int i = 0; i < 100; ++i) {
    probe.IsFree(held.port());  // Fails in the TCP bind.
    probe.IsFree(held.port() == 65535 ? 1 : held.port() + 1);
  }
  int after = dup(0);
  ASSERT_GE(after, 0);
  close(after);
  EXPECT_EQ(after, before);  // The lowest free descriptor is unchanged.
}

}  // namespace
}  // namespace portserver
