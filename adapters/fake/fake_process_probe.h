// FakeProcessProbe: an in-memory process table for tests. Processes are
// spawned and killed by hand; a pid can be reused with a new incarnation.
//
// Example:
//   FakeProcessProbe processes;
//   processes.Spawn(100);
//   processes.Kill(100);
//   processes.FailNextCalls(1);   // next Probe() returns kError
//
// Thread-safe.
#ifndef PORTSERVER_ADAPTERS_FAKE_FAKE_PROCESS_PROBE_H_
#define PORTSERVER_ADAPTERS_FAKE_FAKE_PROCESS_PROBE_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

#include "domain/process_probe.h"

namespace portserver {

class FakeProcessProbe final : public ProcessProbe {
 public:
  // Makes `pid` alive with a fresh incarnation (reusing it if it was alive),
  // running as `uid`.
  void Spawn(int64_t pid, uint32_t uid = 0);
  // Makes `tid` a live thread of the live process `pid` (not a process:
  // Probe(tid) is kGone with thread_of = pid). Kill(tid) ends it.
  void SpawnThread(int64_t tid, int64_t pid);
  // MapNamedPid(caller, named) answers `mapping` (default: kSame, named).
  void SetMapping(int64_t caller, int64_t named, Mapping mapping);
  void Kill(int64_t pid);
  // The next `n` calls of Probe() report kError.
  void FailNextCalls(int n);
  uint64_t IncarnationOf(int64_t pid) const;  // 0 if not alive.
  int probe_count() const;

  Result Probe(int64_t pid) override;
  Mapping MapNamedPid(int64_t caller, int64_t named) override;

 private:
  mutable std::mutex mu_;
  struct Process {
    uint64_t incarnation;
    uint32_t uid;
  };
  std::map<int64_t, Process> alive_;
  std::map<int64_t, int64_t> threads_;  // tid -> its process.
  std::map<std::pair<int64_t, int64_t>, Mapping> mappings_;
  uint64_t next_incarnation_ = 1;
  int failures_left_ = 0;
  int probe_count_ = 0;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_FAKE_FAKE_PROCESS_PROBE_H_
