// PortProbe: tells whether a local port can be used right now, and may
// reserve it while the domain leases it.
//
// Example:
//   if (probe.IsFree(port)) Lease(port);
//   ...                     // the owner dies
//   probe.Release(port);
//
// Thread-compatible: the domain calls it under its own lock.
#ifndef PORTSERVER_DOMAIN_PORT_PROBE_H_
#define PORTSERVER_DOMAIN_PORT_PROBE_H_

#include <cstdint>

namespace portserver {

class PortProbe {
 public:
  PortProbe() = default;
  PortProbe(const PortProbe&) = delete;
  PortProbe& operator=(const PortProbe&) = delete;
  virtual ~PortProbe() = default;

  // True if `port` (1-65535) can be bound now for both TCP and UDP on every
  // address family the host has. Any failure to tell counts as "not free".
  // Never blocks for long. An implementation may reserve the port when it
  // answers true (e.g. a host-wide lock shared with other servers); the
  // domain then leases it, and calls Release() when the lease ends.
  virtual bool IsFree(uint16_t port) = 0;

  // The port, which IsFree() found free, is no longer leased: its owner
  // died, or it was not taken. A probe that reserves ports lets go of it.
  virtual void Release(uint16_t port) {}
};

}  // namespace portserver

#endif  // PORTSERVER_DOMAIN_PORT_PROBE_H_
