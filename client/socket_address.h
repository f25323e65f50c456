// Internal to //client: socket addresses shared by the library and its
// tests: the AF_UNIX address of a port server address string, and the
// wildcard IPv4/IPv6 address of a port.
//
// Example:
//   absl::StatusOr<SocketAddress> a = ParseUnixAddress("@unittest-portserver");
//   connect(fd, a->get(), a->size);
//   SocketAddress any = WildcardAddress(AF_INET6, 15000);
//   bind(fd, any.get(), any.size);
//   int port = BoundPort(fd);
//
// Thread-safe (no state).
#ifndef PORTSERVER_CLIENT_SOCKET_ADDRESS_H_
#define PORTSERVER_CLIENT_SOCKET_ADDRESS_H_

#include <sys/socket.h>

#include <string>

#include "absl/status/statusor.h"

namespace portpicker {

struct SocketAddress {
  sockaddr_storage storage;
  socklen_t size;

  const sockaddr* get() const {
    return reinterpret_cast<const sockaddr*>(&storage);
  }
};

// `text` is a filesystem path, or "@name" for the Linux abstract name "name":
// the '@' becomes a NUL byte and the size covers exactly the name, with no
// trailing NUL (as python's portpicker and portserver do). Returns
// InvalidArgument if `text` is empty or longer than sun_path.
absl::StatusOr<SocketAddress> ParseUnixAddress(const std::string& text);

// The wildcard address (:: or 0.0.0.0) of `family` (AF_INET6 or AF_INET)
// with `port`.
SocketAddress WildcardAddress(int family, int port);

// The local port of the IPv4 or IPv6 socket `fd`, or 0 if getsockname fails.
int BoundPort(int fd);

}  // namespace portpicker

#endif  // PORTSERVER_CLIENT_SOCKET_ADDRESS_H_
