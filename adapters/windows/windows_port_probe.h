// WindowsPortProbe: a PortProbe that tries to bind the port with Winsock:
// TCP (bound and listening) then UDP, each on the IPv6 then the IPv4
// wildcard address, every socket with SO_EXCLUSIVEADDRUSE so that a port
// that anyone else holds on any address counts as busy. Windows keeps IPv4
// and IPv6 apart (IPV6_V6ONLY is on by default), so both are tried. A family
// the host lacks (socket() fails with WSAEAFNOSUPPORT) is skipped.
//
// A bind refused with WSAEACCES is busy, not an error: Windows refuses
// ports in its excluded ranges (Hyper-V, WinNAT; `netsh int ipv4 show
// excludedportrange protocol=tcp`) that way, and a server must go on.
//
// Example:
//   WindowsPortProbe probe;
//   if (probe.IsFree(15000)) Lease(15000);
//
// Thread-safe: IsFree() keeps no state; it opens and closes its own sockets.
#ifndef PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_PORT_PROBE_H_
#define PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_PORT_PROBE_H_

#include <cstdint>

#include "domain/port_probe.h"

namespace portserver {

class WindowsPortProbe final : public PortProbe {
 public:
  // Starts Winsock if needed.
  WindowsPortProbe();

  // True if `port` could be bound for TCP and for UDP on every address
  // family for which a socket could be created, and at least one family
  // worked for each protocol. Port 0 is never free.
  bool IsFree(uint16_t port) override;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_PORT_PROBE_H_
