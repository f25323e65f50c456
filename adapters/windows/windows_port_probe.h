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
// Check() says kFree or kBusy, and kUnknown when this process cannot make
// a socket (WSAEMFILE, WSAENOBUFS). It never says kReuseAddrOnly: Windows
// has no "only with SO_REUSEADDR" state to report. There, SO_REUSEADDR lets
// a bind take a port that another socket is bound to (it is no test of
// TIME_WAIT), and programs that care bind with SO_EXCLUSIVEADDRUSE, as the
// probe does. A TCP connection lingering in TIME_WAIT on the port does not
// stop a plain (or SO_EXCLUSIVEADDRUSE) bind of the wildcard address, unless
// the socket that made it was itself bound with SO_EXCLUSIVEADDRUSE: then
// the bind fails with WSAEADDRINUSE until TIME_WAIT ends (about 240 s by
// default, TcpTimedWaitDelay) and the port is kBusy meanwhile, which is
// what every program would see.
//
// Example:
//   WindowsPortProbe probe;
//   if (probe.Check(15000) == PortState::kFree) Lease(15000);
//
// Thread-safe: Check() keeps no state; it opens and closes its own sockets.
#ifndef PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_PORT_PROBE_H_
#define PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_PORT_PROBE_H_

#include <cstdint>

#include "domain/port_probe.h"

namespace portserver {

class WindowsPortProbe final : public PortProbe {
 public:
  // Starts Winsock if needed.
  WindowsPortProbe();

  // kFree if `port` could be bound for TCP and for UDP on every address
  // family for which a socket could be created, and at least one family
  // worked for each protocol; kUnknown if no socket could be made for want
  // of resources; else kBusy. Port 0 is never free.
  PortState Check(uint16_t port) override;
  // IsLeasable(Check(port)).
  bool IsFree(uint16_t port) override;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_PORT_PROBE_H_
