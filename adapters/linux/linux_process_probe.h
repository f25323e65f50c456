// LinuxProcessProbe: a ProcessProbe that reads /proc/<pid>/stat. The
// incarnation is the process start time (field 22, clock ticks since boot),
// so a pid that is reused by a new process gets a new incarnation.
//
// Example:
//   LinuxProcessProbe probe;  // or LinuxProcessProbe probe("/fixture/proc");
//   ProcessProbe::Result r = probe.Probe(getpid());  // kAlive
//
// Thread-safe: Probe() keeps no state between calls.
#ifndef PORTSERVER_ADAPTERS_LINUX_LINUX_PROCESS_PROBE_H_
#define PORTSERVER_ADAPTERS_LINUX_LINUX_PROCESS_PROBE_H_

#include <cstdint>
#include <string>

#include "domain/process_probe.h"

namespace portserver {

class LinuxProcessProbe final : public ProcessProbe {
 public:
  // `proc_root` is where procfs is mounted; tests point it at a fixture
  // directory that holds <pid>/stat files.
  explicit LinuxProcessProbe(std::string proc_root = "/proc");

  // kAlive with the start time as incarnation; kGone if <proc_root>/<pid>
  // does not exist or the process is a zombie ('Z') or dead ('X', 'x'):
  // such a process has closed its ports. kError if the stat file cannot be
  // read or parsed.
  Result Probe(int64_t pid) override;

  const std::string& proc_root() const { return proc_root_; }

 private:
  const std::string proc_root_;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_LINUX_LINUX_PROCESS_PROBE_H_
