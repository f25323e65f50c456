// LinuxPortProbe: a PortProbe that tries to bind the port, as the python
// portpicker server's _is_port_free() does: TCP (bound and listening) then
// UDP, each on the IPv6 then the IPv4 wildcard address. Unlike the
// reference, each bind is first tried without SO_REUSEADDR, as a plain
// program binds: only if a TCP bind fails with EADDRINUSE is it tried again
// with SO_REUSEADDR, and success then means PortState::kReuseAddrOnly (a TCP
// socket of the port's last user lingers in TIME_WAIT, tcp(7)). UDP is never
// retried: it has no TIME_WAIT, and SO_REUSEADDR would join a live UDP
// socket that set it too, so such a UDP port is kBusy. A family the
// host lacks (socket() fails with EAFNOSUPPORT) is skipped; running out of
// descriptors or memory is kUnknown; any other failure means kBusy.
// IPV6_V6ONLY is left at the system default, as in the reference, so on a
// dual-stack host the IPv6 bind also covers IPv4.
//
// Example:
//   LinuxPortProbe probe;
//   if (probe.Check(15000) == PortState::kFree) Lease(15000);
//
// Thread-safe: it keeps no state; it opens and closes its own sockets.
#ifndef PORTSERVER_ADAPTERS_LINUX_LINUX_PORT_PROBE_H_
#define PORTSERVER_ADAPTERS_LINUX_LINUX_PORT_PROBE_H_

#include <cstdint>

#include "domain/port_probe.h"

namespace portserver {

class LinuxPortProbe final : public PortProbe {
 public:
  LinuxPortProbe() = default;

  // kFree if `port` could be bound without SO_REUSEADDR for TCP and for UDP
  // on every address family for which a socket could be created, and at
  // least one family worked for each protocol; kReuseAddrOnly if some of
  // the TCP binds needed SO_REUSEADDR; kBusy if one failed even with it, or
  // a UDP bind failed (or
  // no family worked); kUnknown if socket() failed for want of descriptors
  // or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM). Port 0 is kBusy.
  PortState Check(uint16_t port) override;
  // IsLeasable(Check(port)).
  bool IsFree(uint16_t port) override;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_LINUX_LINUX_PORT_PROBE_H_
