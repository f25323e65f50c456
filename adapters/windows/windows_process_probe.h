// WindowsProcessProbe: a ProcessProbe on OpenProcess and GetProcessTimes.
// The incarnation is the process creation time (FILETIME, 100 ns units since
// 1601), so a pid that Windows reuses for a new process gets a new
// incarnation and never inherits leases. The uid is that of the user SID of
// the process token (adapters/windows/windows_user.h).
//
// Example:
//   WindowsProcessProbe probe;
//   ProcessProbe::Result r = probe.Probe(GetCurrentProcessId());  // kAlive
//
// A process that has exited is gone even while some handle keeps its object
// (and so its pid) alive: the probe waits on it with a zero timeout (or asks
// GetExitCodeProcess where SYNCHRONIZE is not granted).
//
// Thread-safe: Probe() keeps no state between calls.
#ifndef PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_PROCESS_PROBE_H_
#define PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_PROCESS_PROBE_H_

#include <cstdint>

#include "domain/process_probe.h"

namespace portserver {

class WindowsProcessProbe final : public ProcessProbe {
 public:
  WindowsProcessProbe() = default;

  // kAlive with the creation time as incarnation (and the uid when the
  // token can be read); kGone if no process has the pid (OpenProcess says
  // ERROR_INVALID_PARAMETER) or it has exited; kError if it exists but
  // cannot be opened (ERROR_ACCESS_DENIED: a process of another user, when
  // the server is not an administrator) or its times cannot be read.
  // Pids beyond 32 bits are gone.
  Result Probe(int64_t pid) override;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_PROCESS_PROBE_H_
