#include "adapters/fake/fake_process_info.h"

namespace portserver {

void FakeProcessInfo::SetCommandLine(int64_t pid, std::string command_line) {
  std::lock_guard<std::mutex> lock(mu_);
  command_lines_[pid] = std::move(command_line);
}

void FakeProcessInfo::SetHidePid(bool hide) {
  std::lock_guard<std::mutex> lock(mu_);
  hide_ = hide;
}

void FakeProcessInfo::AdvanceMs(int64_t ms) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ms_ += ms;
}

int FakeProcessInfo::command_line_reads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reads_;
}

std::string FakeProcessInfo::CommandLine(int64_t pid, size_t max_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  ++reads_;
  auto it = command_lines_.find(pid);
  if (it == command_lines_.end()) return "";
  return it->second.substr(0, max_bytes);
}

int64_t FakeProcessInfo::StartTimeUnixMs(uint64_t incarnation) {
  // Incarnations of the fake process probe are small counters: one second
  // apart, from a fixed epoch.
  return 1600000000000 + static_cast<int64_t>(incarnation) * 1000;
}

ProcessInfo::Access FakeProcessInfo::AccessFor(const PeerCredentials& caller) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!caller.known) return hide_ ? Access::kNone : Access::kAll;
  if (caller.uid == 0 || !hide_) return Access::kAll;
  return Access::kOwnOnly;
}

int64_t FakeProcessInfo::NowUnixMs() {
  std::lock_guard<std::mutex> lock(mu_);
  return now_ms_;
}

}  // namespace portserver
