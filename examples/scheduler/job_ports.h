// An in-house scheduler that embeds the portserver core: it links //domain
// alone (no sockets, no OS), and its "owners" are jobs, not processes.
//
// Example:
//   JobPorts ports({30000, 30001, 30002});
//   int64_t job = ports.StartJob();
//   std::vector<uint16_t> mine = ports.Lease(job, 2);   // 2 distinct ports
//   ports.FinishJob(job);                               // they come back
//
// Thread-safe.
#ifndef PORTSERVER_EXAMPLES_SCHEDULER_JOB_PORTS_H_
#define PORTSERVER_EXAMPLES_SCHEDULER_JOB_PORTS_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "domain/port_probe.h"
#include "domain/port_service.h"
#include "domain/process_probe.h"

namespace scheduler {

// The scheduler's job table as a ProcessProbe: a job is "alive" from
// StartJob() to Finish(); a job id is never reused, so its incarnation is 1.
class JobTable final : public portserver::ProcessProbe {
 public:
  int64_t Start();
  void Finish(int64_t job);
  Result Probe(int64_t job) override;

 private:
  std::mutex mu_;
  int64_t next_job_ = 2;  // 1 is "init" to the port service: never used.
  std::map<int64_t, bool> running_;
};

// The scheduler owns its port range outright, so every port is free unless
// leased: no bind test needed.
class OwnedRange final : public portserver::PortProbe {
 public:
  bool IsFree(uint16_t) override { return true; }
};

class JobPorts {
 public:
  explicit JobPorts(const std::vector<uint16_t>& range);

  int64_t StartJob() { return jobs_.Start(); }
  // Leases up to `count` ports to a running job (fewer if the range is
  // exhausted).
  std::vector<uint16_t> Lease(int64_t job, int count);
  // Marks the job finished; its ports go back to the range. Returns how many.
  size_t FinishJob(int64_t job);
  std::vector<uint16_t> PortsOf(int64_t job) const {
    return service_.PortsOf(job);
  }

 private:
  JobTable jobs_;
  OwnedRange ports_;
  portserver::PortService service_;
};

}  // namespace scheduler

#endif  // PORTSERVER_EXAMPLES_SCHEDULER_JOB_PORTS_H_
