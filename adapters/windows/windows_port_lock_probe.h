// WindowsPortLockProbe: a PortProbe decorator that makes several port
// servers on one host share ports safely (the counterpart of
// LinuxPortLockProbe). Before a port can be called free, the server must
// hold the port's host-wide lock: the named mutex
// "Global\portserver-port-lock-<port>". Holding means having created it:
// a named kernel object exists while any process has a handle to it, and
// Windows closes every handle of a process that exits, even through
// TerminateProcess, so no stale lock outlives a server. The "Global\"
// namespace spans sessions (a service and interactive users), as ports do.
//
// The lock is held exactly while the port is leased: from Check() saying
// leasable (or Reserve() for a lease restored from the journal) until the
// domain calls Release() (the owner died), or until this object is destroyed
// (the server exits). A port whose lock another server holds (the name exists,
// or it belongs to another user and opening it is denied) is "not free".
//
// Example:
//   WindowsPortProbe binds;
//   WindowsPortLockProbe probe(binds);
//   probe.Check(20000);    // creates Global\portserver-port-lock-20000
//   probe.Release(20000);  // the lease ended: lets go of it
//
// Thread-compatible. `inner` must outlive this object. Uses one handle per
// locked port.
#ifndef PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_PORT_LOCK_PROBE_H_
#define PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_PORT_LOCK_PROBE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "adapters/windows/windows_error.h"
#include "domain/port_probe.h"

namespace portserver {

class WindowsPortLockProbe final : public PortProbe {
 public:
  static constexpr char kDefaultPrefix[] = "Global\\portserver-port-lock-";

  explicit WindowsPortLockProbe(PortProbe& inner,
                                std::string prefix = kDefaultPrefix);
  WindowsPortLockProbe(const WindowsPortLockProbe&) = delete;
  WindowsPortLockProbe& operator=(const WindowsPortLockProbe&) = delete;
  ~WindowsPortLockProbe() override = default;  // Closes the handles.

  // inner.Check(port) once this server holds (or just took) the port's
  // lock; kBusy if another process holds it, kUnknown if the lock object
  // could not be made. When the answer is not leasable no lock is held.
  PortState Check(uint16_t port) override;
  // IsLeasable(Check(port)).
  bool IsFree(uint16_t port) override;
  // True if another process has the port's lock object: another port
  // server (or a tool that keeps off leased ports by the same name). False
  // if this probe holds it or it does not exist (one made is not kept).
  bool HeldByAnotherServer(uint16_t port) override;
  // Gives the port's lock back.
  void Release(uint16_t port) override;
  // Takes the port's lock without a bind test (a lease restored from the
  // journal, whose owner may have bound the port); false if another
  // process holds it or it cannot be made.
  bool Reserve(uint16_t port) override;

  size_t locks_held() const { return held_.size(); }

 private:
  // Creates the lock object; an empty handle with `*state` set if it exists
  // already (kBusy: another process holds it) or cannot be made (kUnknown).
  ScopedHandle TryLock(uint16_t port, PortState* state) const;

  PortProbe& inner_;
  const std::string prefix_;
  std::unordered_map<uint16_t, ScopedHandle> held_;  // port -> lock
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_PORT_LOCK_PROBE_H_
