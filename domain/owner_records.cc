#include "domain/owner_records.h"

namespace portserver {

const char* PortReportStateName(PortReport::State state) {
  switch (state) {
    case PortReport::State::kLeased:
      return "leased";
    case PortReport::State::kFree:
      return "free";
    case PortReport::State::kTimeWait:
      return "time-wait";
    case PortReport::State::kBusy:
      return "busy";
    case PortReport::State::kUnknown:
      return "unknown";
    case PortReport::State::kNotInPool:
      return "not-in-pool";
  }
  return "unknown";
}

const OwnerInfo* OwnerRecords::Find(const Owner& owner) const {
  auto it = by_pid_.find(owner.pid);
  if (it == by_pid_.end() || it->second.incarnation != owner.incarnation) {
    return nullptr;
  }
  return &it->second;
}

OwnerInfo& OwnerRecords::Upsert(const Owner& owner, bool* created) {
  auto [it, inserted] = by_pid_.try_emplace(owner.pid);
  if (inserted || it->second.incarnation != owner.incarnation) {
    it->second = OwnerInfo();
    it->second.incarnation = owner.incarnation;
    inserted = true;
  }
  if (created != nullptr) *created = inserted;
  return it->second;
}

void OwnerRecords::Prune(const Ledger& ledger) {
  if (by_pid_.size() <= 2 * ledger.owners() + 64) return;
  for (auto it = by_pid_.begin(); it != by_pid_.end();) {
    std::optional<Owner> held = ledger.FindOwner(it->first);
    if (!held || held->incarnation != it->second.incarnation) {
      it = by_pid_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace portserver
