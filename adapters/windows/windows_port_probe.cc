#include "adapters/windows/windows_port_probe.h"

#include <ws2tcpip.h>

#include <cstring>
#include <initializer_list>

#include "adapters/windows/windows_error.h"

namespace portserver {
namespace {

// kNoResources: this process could not make a socket (WSAEMFILE, WSAENOBUFS),
// which says nothing about the port.
enum class BindOutcome { kBound, kNoSuchFamily, kFailed, kNoResources };

BindOutcome TryBind(int family, int type, uint16_t port) {
  ScopedSocket sock(
      WSASocketW(family, type, 0, nullptr, 0,
                 WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT));
  if (!sock.valid()) {
    int error = WSAGetLastError();
    if (error == WSAEMFILE || error == WSAENOBUFS) {
      return BindOutcome::kNoResources;
    }
    return error == WSAEAFNOSUPPORT || error == WSAEPROTONOSUPPORT ||
                   error == WSAESOCKTNOSUPPORT
               ? BindOutcome::kNoSuchFamily
               : BindOutcome::kFailed;
  }
  BOOL one = TRUE;
  if (setsockopt(sock.get(), SOL_SOCKET, SO_EXCLUSIVEADDRUSE,
                 reinterpret_cast<const char*>(&one), sizeof(one)) != 0) {
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
  // WSAEADDRINUSE: someone holds it; WSAEACCES: an excluded port range (or a
  // socket bound with SO_EXCLUSIVEADDRUSE by another user). Both are busy.
  if (bound != 0) return BindOutcome::kFailed;
  if (type == SOCK_STREAM && listen(sock.get(), 1) != 0) {
    return BindOutcome::kFailed;
  }
  return BindOutcome::kBound;
}

PortState StateFor(int type, uint16_t port) {
  bool got_socket = false;
  for (int family : {AF_INET6, AF_INET}) {
    switch (TryBind(family, type, port)) {
      case BindOutcome::kNoSuchFamily:
        break;
      case BindOutcome::kNoResources:
        return PortState::kUnknown;
      case BindOutcome::kFailed:
        return PortState::kBusy;
      case BindOutcome::kBound:
        got_socket = true;
        break;
    }
  }
  return got_socket ? PortState::kFree : PortState::kBusy;
}

}  // namespace

WindowsPortProbe::WindowsPortProbe() { EnsureWinsock(); }

PortState WindowsPortProbe::Check(uint16_t port) {
  if (port == 0) return PortState::kBusy;
  PortState tcp = StateFor(SOCK_STREAM, port);
  if (tcp != PortState::kFree) return tcp;
  return StateFor(SOCK_DGRAM, port);
}

bool WindowsPortProbe::IsFree(uint16_t port) { return IsLeasable(Check(port)); }

}  // namespace portserver
