// ProcessProbe: tells whether the owner of a lease is still alive, and which
// incarnation of it is alive, so that a reused pid never inherits leases.
//
// Example:
//   ProcessProbe::Result r = probe.Probe(pid);
//   if (r.state == ProcessProbe::State::kAlive) Remember(pid, r.incarnation);
//
// Thread-compatible: the domain calls it under its own lock.
#ifndef PORTSERVER_DOMAIN_PROCESS_PROBE_H_
#define PORTSERVER_DOMAIN_PROCESS_PROBE_H_

#include <cstdint>

namespace portserver {

class ProcessProbe {
 public:
  enum class State {
    kAlive,  // The owner exists; `incarnation` identifies this life of it.
    kGone,   // No such owner (never existed or exited).
    kError,  // The probe could not tell. The domain keeps existing leases
             // and denies new ones: a lease is never dropped on a guess.
  };
  struct Result {
    State state = State::kError;
    // Distinguishes two owners that reuse one id (on Linux the process start
    // time in clock ticks since boot). Only meaningful when kAlive.
    uint64_t incarnation = 0;
  };

  ProcessProbe() = default;
  ProcessProbe(const ProcessProbe&) = delete;
  ProcessProbe& operator=(const ProcessProbe&) = delete;
  virtual ~ProcessProbe() = default;

  // Reports the state of owner `pid` now. `pid` is > 0. Never blocks for long.
  virtual Result Probe(int64_t pid) = 0;
};

}  // namespace portserver

#endif  // PORTSERVER_DOMAIN_PROCESS_PROBE_H_
