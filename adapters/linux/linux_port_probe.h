// LinuxPortProbe: a PortProbe that tries to bind the port, as the python
// portpicker server's _is_port_free() does: TCP (bound and listening) then
// UDP, each on the IPv6 then the IPv4 wildcard address with SO_REUSEADDR.
// A family the host lacks (socket() fails) is skipped; any other failure
// means "not free". IPV6_V6ONLY is left at the system default, as in the
// reference, so on a dual-stack host the IPv6 bind also covers IPv4.
//
// Example:
//   LinuxPortProbe probe;
//   if (probe.IsFree(15000)) Lease(15000);
//
// Thread-safe: IsFree() keeps no state; it opens and closes its own sockets.
#ifndef PORTSERVER_ADAPTERS_LINUX_LINUX_PORT_PROBE_H_
#define PORTSERVER_ADAPTERS_LINUX_LINUX_PORT_PROBE_H_

#include <cstdint>

#include "domain/port_probe.h"

namespace portserver {

class LinuxPortProbe final : public PortProbe {
 public:
  LinuxPortProbe() = default;

  // True if `port` could be bound for TCP and for UDP on every address
  // family for which a socket could be created, and at least one family
  // worked for each protocol. Port 0 is never free.
  bool IsFree(uint16_t port) override;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_LINUX_LINUX_PORT_PROBE_H_
