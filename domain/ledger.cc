#include "domain/ledger.h"

#include <algorithm>
#include <utility>

namespace portserver {

bool Ledger::Lease(uint16_t port, const Owner& owner) {
  // Pids are > 0 (the service denies the rest), so 0 can mean "free".
  if (port == 0 || owner.pid <= 0) return false;
  if (port < holder_.size() && holder_[port] != 0) return false;
  auto it = owners_.find(owner.pid);
  if (it == owners_.end()) {
    it = owners_.emplace(owner.pid, Entry{owner.incarnation, {}}).first;
  } else if (it->second.incarnation != owner.incarnation) {
    return false;
  }
  it->second.ports.push_back(port);
  if (port >= holder_.size()) holder_.resize(size_t{port} + 1, 0);
  holder_[port] = owner.pid;
  ++leased_ports_;
  return true;
}

std::vector<uint16_t> Ledger::Release(int64_t pid) {
  auto it = owners_.find(pid);
  if (it == owners_.end()) return {};
  std::vector<uint16_t> ports = std::move(it->second.ports);
  owners_.erase(it);
  for (uint16_t port : ports) holder_[port] = 0;
  leased_ports_ -= ports.size();
  return ports;
}

std::vector<uint16_t> Ledger::ReleasePorts(int64_t pid,
                                           const std::vector<uint16_t>& ports) {
  auto it = owners_.find(pid);
  if (it == owners_.end()) return {};
  std::vector<uint16_t>& held = it->second.ports;
  std::vector<uint16_t> released;
  for (uint16_t port : ports) {
    auto found = std::find(held.begin(), held.end(), port);
    if (found == held.end()) continue;
    held.erase(found);
    holder_[port] = 0;
    --leased_ports_;
    released.push_back(port);
  }
  if (held.empty()) owners_.erase(it);
  return released;
}

bool OwnerHasEnded(const Owner& owner, const ProcessProbe::Result& now) {
  return now.state == ProcessProbe::State::kGone ||
         (now.state == ProcessProbe::State::kAlive &&
          now.incarnation != owner.incarnation);
}

std::vector<uint16_t> Ledger::ReclaimIfGone(int64_t pid, ProcessProbe& probe,
                                            bool* unknown) {
  if (unknown != nullptr) *unknown = false;
  auto it = owners_.find(pid);
  if (it == owners_.end()) return {};
  const ProcessProbe::Result now = probe.Probe(pid);
  if (unknown != nullptr) *unknown = now.state == ProcessProbe::State::kError;
  if (!OwnerHasEnded(Owner{pid, it->second.incarnation}, now)) return {};
  return Release(pid);
}

std::vector<uint16_t> Ledger::Sweep(ProcessProbe& probe, size_t budget) {
  std::vector<uint16_t> released;
  budget = std::min(budget, owners_.size());
  for (size_t i = 0; i < budget && !owners_.empty(); ++i) {
    auto it = owners_.upper_bound(sweep_after_);
    if (it == owners_.end()) it = owners_.begin();
    sweep_after_ = it->first;
    std::vector<uint16_t> ports = ReclaimIfGone(it->first, probe);
    released.insert(released.end(), ports.begin(), ports.end());
  }
  return released;
}

std::optional<Owner> Ledger::HolderOf(uint16_t port) const {
  if (port >= holder_.size() || holder_[port] == 0) return std::nullopt;
  return FindOwner(holder_[port]);
}

std::optional<Owner> Ledger::FindOwner(int64_t pid) const {
  auto it = owners_.find(pid);
  if (it == owners_.end()) return std::nullopt;
  return Owner{pid, it->second.incarnation};
}

std::vector<uint16_t> Ledger::PortsOf(int64_t pid) const {
  auto it = owners_.find(pid);
  if (it == owners_.end()) return {};
  return it->second.ports;
}

}  // namespace portserver

namespace portserver {

size_t Ledger::PortCount(int64_t pid) const {
  auto it = owners_.find(pid);
  return it == owners_.end() ? 0 : it->second.ports.size();
}

std::vector<std::pair<uint16_t, Owner>> Ledger::Leases() const {
  std::vector<std::pair<uint16_t, Owner>> leases;
  leases.reserve(leased_ports_);
  for (const auto& [pid, entry] : owners_) {
    for (uint16_t port : entry.ports) {
      leases.emplace_back(port, Owner{pid, entry.incarnation});
    }
  }
  return leases;
}

}  // namespace portserver
