// PortProbe: tells whether a local port can be used right now, and how (a
// plain bind(), or only a bind with SO_REUSEADDR), and may reserve it while
// the domain leases it.
//
// Example:
//   switch (probe.Check(port)) {
//     case PortState::kFree: Lease(port); break;          // reserved now
//     case PortState::kReuseAddrOnly: probe.Release(port); break;  // later
//     case PortState::kBusy: case PortState::kUnknown: break;  // not reserved
//   }
//   ...                     // the owner dies
//   probe.Release(port);
//
// Thread-compatible: the domain calls it under its own lock.
#ifndef PORTSERVER_DOMAIN_PORT_PROBE_H_
#define PORTSERVER_DOMAIN_PORT_PROBE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace portserver {

// What a probe found out about one port, best first.
enum class PortState {
  // A plain bind() (no SO_REUSEADDR) would succeed, for TCP and UDP on every
  // address family the host has: any program can use the port.
  kFree,
  // Only a bind with SO_REUSEADDR would succeed: typically a TCP socket of an
  // earlier user lingers in TIME_WAIT (RFC 9293 3.6.1; about 60 s on Linux,
  // tcp(7)). Programs that set SO_REUSEADDR (the reference server's probe,
  // most test frameworks) can use it; a plain bind() fails with EADDRINUSE.
  kReuseAddrOnly,
  // Someone else uses the port.
  kBusy,
  // The probe could not tell, for want of a resource of its own (e.g. out
  // of descriptors): the port says nothing about the ports after it.
  kUnknown,
};

// True for the states in which the port may be leased (and in which a
// reserving probe holds its reservation until Release()).
inline bool IsLeasable(PortState state) {
  return state == PortState::kFree || state == PortState::kReuseAddrOnly;
}

class PortProbe {
 public:
  PortProbe() = default;
  PortProbe(const PortProbe&) = delete;
  PortProbe& operator=(const PortProbe&) = delete;
  virtual ~PortProbe() = default;

  // The state of `port` (1-65535) now. Never blocks for long. An
  // implementation may reserve the port when the answer IsLeasable() (e.g. a
  // host-wide lock shared with other servers); the domain then leases it, or
  // calls Release() at once if it does not take it, and calls Release() when
  // the lease ends. For kBusy and kUnknown nothing is reserved.
  //
  // The default serves probes that only tell free from busy: IsFree() ?
  // kFree : kBusy. Of the two, the domain calls only Check().
  virtual PortState Check(uint16_t port) {
    return IsFree(port) ? PortState::kFree : PortState::kBusy;
  }

  // Check() of each of `ports` (distinct, 1-65535), answers in the same
  // order, with Check()'s reservation rule for every leasable answer. A
  // request for several ports asks this way, so that an implementation may
  // probe them at once (LinuxPortLockProbe does, on several threads); the
  // default checks them one after another. An implementation that probes at
  // once must give each port the same answer Check() would have given.
  virtual std::vector<PortState> CheckMany(const std::vector<uint16_t>& ports) {
    std::vector<PortState> states;
    states.reserve(ports.size());
    for (uint16_t port : ports) states.push_back(Check(port));
    return states;
  }

  // A hint that CheckMany(ports) will probably follow soon on this thread,
  // after other work: a request for several ports names them before its
  // owner's checks. A probe may start checking them now on threads of its
  // own, so that the two overlap (LinuxPortLockProbe does), and return at
  // once. Whatever is called next settles the hint first: CheckMany() and
  // Check() answer each port of the hint as checked then (a reservation is
  // held from then on), and every reservation the hint made that the call
  // does not answer for is released, as CancelPrefetch() does. The answers
  // must be those Check() would have given. Default: nothing.
  virtual void Prefetch(const std::vector<uint16_t>& ports) {}

  // Settles a Prefetch() that no CheckMany() or Check() followed (the
  // request was denied before its ports were checked): its checks stop
  // (at most one port each on the probe's threads) and its reservations
  // are released. A no-op without one. Default: nothing.
  virtual void CancelPrefetch() {}

  // For a port Check() has just found kBusy: true if another port server
  // holds its reservation (a neighbouring server leased it), as far as this
  // probe can tell; false if someone else uses the port, or this probe
  // reserves nothing. Reserves nothing. Default: false.
  virtual bool HeldByAnotherServer(uint16_t port) { return false; }

  // True if `port` may be leased now: IsLeasable(Check(port)) for a probe
  // that overrides Check(). Any failure to tell counts as "not free". Same
  // reservation rule as Check().
  virtual bool IsFree(uint16_t port) = 0;

  // The port, which Check() or IsFree() found leasable, is no longer leased:
  // its owner died, or it was not taken. A probe that reserves ports lets go
  // of it.
  virtual void Release(uint16_t port) {}

  // Reserves `port` for a lease restored from the journal, before serving:
  // no bind test, since its owner may be using it. True if the port is
  // reserved now (or this probe reserves nothing); false if it cannot be
  // (another server holds it, or out of descriptors). Either way the domain
  // keeps the lease and calls Release() when it ends.
  virtual bool Reserve(uint16_t port) { return true; }
};

}  // namespace portserver

#endif  // PORTSERVER_DOMAIN_PORT_PROBE_H_
