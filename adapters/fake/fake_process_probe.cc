#include "adapters/fake/fake_process_probe.h"

namespace portserver {

void FakeProcessProbe::Spawn(int64_t pid, uint32_t uid) {
  std::lock_guard<std::mutex> lock(mu_);
  alive_[pid] = Process{next_incarnation_++, uid};
}

void FakeProcessProbe::SpawnThread(int64_t tid, int64_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  threads_[tid] = pid;
}

void FakeProcessProbe::SetMapping(int64_t caller, int64_t named,
                                  Mapping mapping) {
  std::lock_guard<std::mutex> lock(mu_);
  mappings_[{caller, named}] = mapping;
}

ProcessProbe::Mapping FakeProcessProbe::MapNamedPid(int64_t caller,
                                                    int64_t named) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = mappings_.find({caller, named});
  if (it != mappings_.end()) return it->second;
  return Mapping{Mapping::Kind::kSame, named};
}

void FakeProcessProbe::Kill(int64_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  alive_.erase(pid);
  threads_.erase(pid);
}

void FakeProcessProbe::FailNextCalls(int n) {
  std::lock_guard<std::mutex> lock(mu_);
  failures_left_ = n;
}

uint64_t FakeProcessProbe::IncarnationOf(int64_t pid) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = alive_.find(pid);
  return it == alive_.end() ? 0 : it->second.incarnation;
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
    auto thread = threads_.find(pid);
    if (thread != threads_.end() && alive_.count(thread->second) != 0) {
      r.thread_of = thread->second;
    }
  } else {
    r.state = State::kAlive;
    r.incarnation = it->second.incarnation;
    r.uid_known = true;
    r.uid = it->second.uid;
  }
  return r;
}

}  // namespace portserver
