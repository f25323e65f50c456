#include "client/socket_address.h"

#include <netinet/in.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace portpicker {

absl::StatusOr<SocketAddress> ParseUnixAddress(const std::string& text) {
  SocketAddress result{};
  auto* un = reinterpret_cast<sockaddr_un*>(&result.storage);
  un->sun_family = AF_UNIX;
  if (text.empty() || text.size() > sizeof(un->sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad portserver address \"", text, "\": want 1 to ",
                     sizeof(un->sun_path), " bytes"));
  }
  std::memcpy(un->sun_path, text.data(), text.size());
  if (text[0] == '@') un->sun_path[0] = '\0';
  result.size =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + text.size());
  return result;
}

SocketAddress WildcardAddress(int family, int port) {
  SocketAddress result{};
  if (family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&result.storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_any;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    result.size = sizeof(*in6);
  } else {
    auto* in4 = reinterpret_cast<sockaddr_in*>(&result.storage);
    in4->sin_family = AF_INET;
    in4->sin_addr.s_addr = htonl(INADDR_ANY);
    in4->sin_port = htons(static_cast<uint16_t>(port));
    result.size = sizeof(*in4);
  }
  return result;
}

int BoundPort(int fd) {
  sockaddr_storage bound{};
  socklen_t size = sizeof(bound);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &size) != 0) {
    return 0;
  }
  return ntohs(bound.ss_family == AF_INET6
                   ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                   : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

}  // namespace portpicker
