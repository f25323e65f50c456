#include "examples/scheduler/job_ports.h"

namespace scheduler {

int64_t JobTable::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t job = next_job_++;
  running_[job] = true;
  return job;
}

void JobTable::Finish(int64_t job) {
  std::lock_guard<std::mutex> lock(mu_);
  running_.erase(job);
}

portserver::ProcessProbe::Result JobTable::Probe(int64_t job) {
  std::lock_guard<std::mutex> lock(mu_);
  Result r;
  r.state = running_.count(job) ? State::kAlive : State::kGone;
  r.incarnation = 1;
  return r;
}

JobPorts::JobPorts(const std::vector<uint16_t>& range)
    : service_(range, jobs_, ports_) {}

std::vector<uint16_t> JobPorts::Lease(int64_t job, int count) {
  std::vector<uint16_t> got;
  for (int i = 0; i < count; ++i) {
    portserver::Decision d = service_.Allocate(job);
    if (!d.granted()) break;
    got.push_back(d.port);
  }
  return got;
}

size_t JobPorts::FinishJob(int64_t job) {
  jobs_.Finish(job);
  return service_.OwnerExited(job);
}

}  // namespace scheduler
