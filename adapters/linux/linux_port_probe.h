// LinuxPortProbe: a PortProbe that tries to bind the port, as the python
// portpicker server's _is_port_free() does, for TCP then UDP, but with one
// socket per protocol where the reference uses two: an IPv6 socket with
// IPV6_V6ONLY=0 bound to the wildcard [::], which the kernel refuses if any
// IPv4 or IPv6 socket holds the port on any address (127.0.0.1, ::1,
// 0.0.0.0, a v6-only [::], ...; ipv6(7)). Where the host has no IPv6, or no
// dual-stack sockets, the IPv6 (v6-only) and IPv4 wildcards are bound one by
// one. //adapters/linux:linux_port_probe_equivalence_test checks on the real
// kernel that this answers as the two-socket probe does, holder by holder.
//
// Each bind is first tried without SO_REUSEADDR, as a plain program binds,
// and alone decides (no listen(): for such a socket listen() re-checks the
// same conflicts). Only a TCP bind refused with EADDRINUSE is tried again
// with SO_REUSEADDR (bound and listening); success then means
// PortState::kReuseAddrOnly (a TCP socket of the port's last user lingers in
// TIME_WAIT, tcp(7)). UDP has no TIME_WAIT: a refused UDP bind is kBusy,
// even if the holder set SO_REUSEADDR (it is live and shares the port).
// Running out of descriptors or memory is kUnknown; any other failure means
// kBusy.
//
// Cost for a free port: 2 x (socket, setsockopt, bind, close).
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
  // With `dual_stack` false, always the separate IPv6 (v6-only) and IPv4
  // binds that serve hosts without IPv6: for tests of that path.
  explicit LinuxPortProbe(bool dual_stack) : dual_stack_(dual_stack) {}

  // kFree if `port` could be bound without SO_REUSEADDR for TCP and for UDP
  // on every address family for which a socket could be created, and at
  // least one family worked for each protocol; kReuseAddrOnly if a TCP bind
  // needed SO_REUSEADDR; kBusy if one failed even with it, a UDP bind
  // failed, or no family worked; kUnknown if socket() failed for want of
  // descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM). Port 0 is kBusy.
  PortState Check(uint16_t port) override;
  // IsLeasable(Check(port)).
  bool IsFree(uint16_t port) override;

 private:
  const bool dual_stack_ = true;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_LINUX_LINUX_PORT_PROBE_H_
