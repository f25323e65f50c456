#include "adapters/fake/fake_port_probe.h"

namespace portserver {

void FakePortProbe::Occupy(uint16_t port) {
  std::lock_guard<std::mutex> lock(mu_);
  occupied_.insert(port);
}

void FakePortProbe::Vacate(uint16_t port) {
  std::lock_guard<std::mutex> lock(mu_);
  occupied_.erase(port);
}

void FakePortProbe::FailAll(bool fail) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_all_ = fail;
}

int FakePortProbe::probe_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return probe_count_;
}

std::set<uint16_t> FakePortProbe::reserved() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reserved_;
}

bool FakePortProbe::IsFree(uint16_t port) {
  std::lock_guard<std::mutex> lock(mu_);
  ++probe_count_;
  bool free = !fail_all_ && occupied_.count(port) == 0;
  if (free) reserved_.insert(port);
  return free;
}

void FakePortProbe::Release(uint16_t port) {
  std::lock_guard<std::mutex> lock(mu_);
  reserved_.erase(port);
}

}  // namespace portserver
