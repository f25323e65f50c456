#include "adapters/linux/linux_port_probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

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
