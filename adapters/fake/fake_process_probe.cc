#include "adapters/fake/fake_process_probe.h"

namespace portserver {

void FakeProcessProbe::Spawn(int64_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  alive_[pid] = next_incarnation_++;
}

void FakeProcessProbe::Kill(int64_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  alive_.erase(pid);
}

void FakeProcessProbe::FailNextCalls(int n) {
  std::lock_guard<std::mutex> lock(mu_);
  failures_left_ = n;
}

uint64_t FakeProcessProbe::IncarnationOf(int64_t pid) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = alive_.find(pid);
  return it == alive_.end() ? 0 : it->second;
}

int FakeProcessProbe::probe_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return probe_count_;
}

ProcessProbe::Result FakeProcessProbe::Probe(int64_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  ++probe_count_;
  Result r;
  if (failures_left_ > 0) {
    --failures_left_;
    r.state = State::kError;
    return r;
  }
  auto it = alive_.find(pid);
  if (it == alive_.end()) {
    r.state = State::kGone;
  } else {
    r.state = State::kAlive;
    r.incarnation = it->second;
  }
  return r;
}

}  // namespace portserver
