#include "adapters/fake/fake_port_probe.h"

namespace portserver {

void FakePortProbe::Occupy(uint16_t port) {
  std::lock_guard<std::mutex> lock(mu_);
  occupied_.insert(port);
}

void FakePortProbe::LingerInTimeWait(uint16_t port) {
  std::lock_guard<std::mutex> lock(mu_);
  time_wait_.insert(port);
}

void FakePortProbe::LockElsewhere(uint16_t port) {
  std::lock_guard<std::mutex> lock(mu_);
  locked_elsewhere_.insert(port);
}

void FakePortProbe::Vacate(uint16_t port) {
  std::lock_guard<std::mutex> lock(mu_);
  occupied_.erase(port);
  time_wait_.erase(port);
  locked_elsewhere_.erase(port);
}

void FakePortProbe::RunOutOfDescriptors(bool out) {
  std::lock_guard<std::mutex> lock(mu_);
  out_of_descriptors_ = out;
}

void FakePortProbe::LimitReservations(size_t most) {
  std::lock_guard<std::mutex> lock(mu_);
  most_reserved_ = most;
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

PortState FakePortProbe::Check(uint16_t port) {
  std::lock_guard<std::mutex> lock(mu_);
  ++probe_count_;
  PortState state = out_of_descriptors_ ? PortState::kUnknown
                    : fail_all_ || occupied_.count(port) != 0 ||
                            locked_elsewhere_.count(port) != 0
                        ? PortState::kBusy
                    : time_wait_.count(port) != 0 ? PortState::kReuseAddrOnly
                                                  : PortState::kFree;
  if (IsLeasable(state) && NoRoomFor(port)) {
    return PortState::kUnknown;  // No descriptor for its lock.
  }
  if (IsLeasable(state)) reserved_.insert(port);
  return state;
}

bool FakePortProbe::IsFree(uint16_t port) { return IsLeasable(Check(port)); }

bool FakePortProbe::NoRoomFor(uint16_t port) const {
  return reserved_.count(port) == 0 && reserved_.size() >= most_reserved_;
}

bool FakePortProbe::Reserve(uint16_t port) {
  std::lock_guard<std::mutex> lock(mu_);
  if (occupied_.count(port) != 0 || locked_elsewhere_.count(port) != 0) {
    return false;  // Someone else holds it.
  }
  if (NoRoomFor(port)) return false;  // No descriptor for its lock.
  reserved_.insert(port);
  return true;
}

void FakePortProbe::Release(uint16_t port) {
  std::lock_guard<std::mutex> lock(mu_);
  reserved_.erase(port);
}

bool FakePortProbe::HeldByAnotherServer(uint16_t port) {
  std::lock_guard<std::mutex> lock(mu_);
  return locked_elsewhere_.count(port) != 0;
}

}  // namespace portserver
