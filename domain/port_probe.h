// PortProbe: tells whether a local port can be used right now.
//
// Example:
//   if (probe.IsFree(port)) Lease(port);
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
  // Never blocks for long.
  virtual bool IsFree(uint16_t port) = 0;
};

}  // namespace portserver

#endif  // PORTSERVER_DOMAIN_PORT_PROBE_H_
