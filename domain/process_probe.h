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
    // The user the owner runs as, where the probe can tell (kAlive only).
    bool uid_known = false;
    uint32_t uid = 0;
    // Set (with state kGone) when the pid names a live thread that is not
    // its process's main thread: the id of that process (its thread group).
    // A thread id is not a process: an owner is always a whole process.
    int64_t thread_of = 0;
  };

  // A pid named by a caller, mapped into the server's pid namespace.
  struct Mapping {
    enum class Kind {
      kSame,        // The caller shares our namespace: `pid` is as named.
      kTranslated,  // Named in the caller's namespace; `pid` is ours for it.
      kCaller,      // Could not be translated: `pid` is the caller itself.
      kNotFound,    // No process of the caller's namespace has that pid.
    };
    Kind kind = Kind::kSame;
    int64_t pid = 0;
  };

  ProcessProbe() = default;
  ProcessProbe(const ProcessProbe&) = delete;
  ProcessProbe& operator=(const ProcessProbe&) = delete;
  virtual ~ProcessProbe() = default;

  // Reports the state of owner `pid` now. `pid` is > 0. Never blocks for long.
  virtual Result Probe(int64_t pid) = 0;

  // Maps `named`, a pid (> 0) named by the process `caller` (as the kernel
  // reports it, in our namespace), into our namespace. A caller in another
  // pid namespace (a container sharing our network) names pids of its own;
  // a pid number must never be matched to an unrelated process of ours.
  // Pid 1 of the caller's namespace (the caller itself, as a container's
  // entrypoint) is translated like any other pid.
  // The default suits owners that are not processes: kSame.
  virtual Mapping MapNamedPid(int64_t caller, int64_t named) {
    return Mapping{Mapping::Kind::kSame, named};
  }

  // Gives back what the probe keeps only to save work (the Linux probe's
  // remembered pidfds) but what it keeps for pid `keep` (0: none): called
  // when the process is out of descriptors (the port probe could not tell
  // whether a port is free, a connection or an owner's watch could not be
  // had), so that the descriptors go to the ports' locks, connections and
  // watches. `keep` is the owner of the request at hand, which would need
  // a descriptor again to be probed. True if anything was given back (then
  // the caller tries once more). The default keeps nothing: false.
  virtual bool ReleaseCaches(int64_t keep) { return false; }
};

}  // namespace portserver

#endif  // PORTSERVER_DOMAIN_PROCESS_PROBE_H_
