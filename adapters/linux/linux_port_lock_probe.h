// LinuxPortLockProbe: a PortProbe decorator that makes several port servers
// in one network namespace share ports safely. Before a port can be called
// free, the server must hold the port's host-wide lock: the abstract AF_UNIX
// name "@portserver-port-lock-<port>". Only one process can bind a name; the
// kernel drops it when the holder exits, even by kill -9, so no stale lock
// outlives a server; and abstract names live in the network namespace, the
// same scope as the ports they guard.
//
// The lock is held exactly while the port is leased: from Check() saying
// the port is leasable until the domain calls Release() (the owner died, or
// the port was not taken), or until this object is destroyed (the server
// exits). A port whose lock another server holds is kBusy. Every server
// takes the locks (whatever its flags), so two servers never lease the same
// port, in either direction.
//
// Example:
//   LinuxPortProbe binds;
//   LinuxPortLockProbe probe(binds);
//   probe.Check(20000);    // takes @portserver-port-lock-20000 if it can
//   probe.Release(20000);  // the lease ended: lets go of it
//
// Cost: one descriptor and one AF_UNIX socket (its inode and name, about
// 1.3 KB of kernel memory; README "Guarantees") per leased port. Out of
// descriptors (EMFILE, ENFILE) or memory, Check() says kUnknown: the port is
// not leased without its lock.
//
// Thread-compatible. `inner` must outlive this object.
#ifndef PORTSERVER_ADAPTERS_LINUX_LINUX_PORT_LOCK_PROBE_H_
#define PORTSERVER_ADAPTERS_LINUX_LINUX_PORT_LOCK_PROBE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "domain/port_probe.h"

namespace portserver {

class LinuxPortLockProbe final : public PortProbe {
 public:
  static constexpr char kDefaultPrefix[] = "portserver-port-lock-";

  explicit LinuxPortLockProbe(PortProbe& inner,
                              std::string prefix = kDefaultPrefix);
  LinuxPortLockProbe(const LinuxPortLockProbe&) = delete;
  LinuxPortLockProbe& operator=(const LinuxPortLockProbe&) = delete;
  ~LinuxPortLockProbe() override;

  // inner.Check(port) once this server holds (or just took) the port's
  // lock; kBusy if another process holds it, kUnknown if no lock socket
  // could be made. When the answer is not leasable no lock is held for it.
  PortState Check(uint16_t port) override;
  // IsLeasable(Check(port)).
  bool IsFree(uint16_t port) override;
  // Gives the port's lock back.
  void Release(uint16_t port) override;
  // Takes the port's lock without a bind test (a restored lease, whose
  // owner may have bound it); false if another process holds it or no lock
  // socket could be made.
  bool Reserve(uint16_t port) override;

  size_t locks_held() const { return held_.size(); }

 private:
  // Binds the lock name; returns the descriptor, or -1 with `*state` set:
  // kBusy if another process holds it, kUnknown if no socket could be made.
  int TryLock(uint16_t port, PortState* state) const;

  PortProbe& inner_;
  const std::string prefix_;
  std::unordered_map<uint16_t, int> held_;  // port -> lock descriptor
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_LINUX_LINUX_PORT_LOCK_PROBE_H_
