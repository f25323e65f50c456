#include "adapters/windows/windows_port_probe.h"

#include <ws2tcpip.h>

#include <cstring>

#include "adapters/windows/windows_error.h"
#include "gtest/gtest.h"

namespace portserver {
namespace {

struct Holder {
  ScopedSocket socket;
  uint16_t port = 0;
};

// A socket of `family` and `type` bound to the loopback address on a port
// the system picks (and listening, for TCP): another program holding a
// port. Empty if the host lacks the family.
Holder Hold(int family, int type) {
  Holder holder;
  holder.socket.Reset(socket(family, type, 0));
  if (!holder.socket.valid()) return holder;
  sockaddr_storage storage{};
  int size;
  if (family == AF_INET6) {
    auto* addr = reinterpret_cast<sockaddr_in6*>(&storage);
    addr->sin6_family = AF_INET6;
    addr->sin6_addr = in6addr_loopback;
    size = sizeof(sockaddr_in6);
  } else {
    auto* addr = reinterpret_cast<sockaddr_in*>(&storage);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    size = sizeof(sockaddr_in);
  }
  if (bind(holder.socket.get(), reinterpret_cast<sockaddr*>(&storage), size) !=
      0) {
    holder.socket.Reset();
    return holder;
  }
  if (type == SOCK_STREAM) listen(holder.socket.get(), 1);
  getsockname(holder.socket.get(), reinterpret_cast<sockaddr*>(&storage),
              &size);
  holder.port = ntohs(family == AF_INET6
                          ? reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port
                          : reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
  return holder;
}

struct Case {
  const char* name;
  int family;
  int type;
};

class WindowsPortProbeHeldTest : public ::testing::TestWithParam<Case> {};

TEST_P(WindowsPortProbeHeldTest, PortHeldByAnotherSocketIsBusy) {
  ASSERT_EQ(EnsureWinsock(), 0);
  WindowsPortProbe probe;
  Holder holder = Hold(GetParam().family, GetParam().type);
  if (!holder.socket.valid()) {
    GTEST_SKIP() << "this host has no " << GetParam().name;
  }
  EXPECT_FALSE(probe.IsFree(holder.port));
  EXPECT_EQ(probe.Check(holder.port), PortState::kBusy);
  // Once the holder lets go, the same port is free again (the probe's own
  // sockets left nothing behind).
  holder.socket.Reset();
  EXPECT_EQ(probe.Check(holder.port), PortState::kFree);
  EXPECT_TRUE(probe.IsFree(holder.port));
}

INSTANTIATE_TEST_SUITE_P(
    AllProtocolsAndFamilies, WindowsPortProbeHeldTest,
    ::testing::Values(Case{"TcpIpv4", AF_INET, SOCK_STREAM},
                      Case{"TcpIpv6", AF_INET6, SOCK_STREAM},
                      Case{"UdpIpv4", AF_INET, SOCK_DGRAM},
                      Case{"UdpIpv6", AF_INET6, SOCK_DGRAM}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(WindowsPortProbe, PortZeroIsNeverFree) {
  WindowsPortProbe probe;
  EXPECT_FALSE(probe.IsFree(0));
  EXPECT_EQ(probe.Check(0), PortState::kBusy);
}

}  // namespace
}  // namespace portserver
