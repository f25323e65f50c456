#include "domain/owner_records.h"

#include <utility>

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
    case PortReport::State::kLocked:
      return "locked";
    case PortReport::State::kUnknown:
      return "unknown";
    case PortReport::State::kNotInPool:
      return "not-in-pool";
    case PortReport::State::kCarried:
      return "carried";
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

OwnerInfo* OwnerRecords::Find(const Owner& owner) {
  return const_cast<OwnerInfo*>(std::as_const(*this).Find(owner));
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

namespace portserver {

void LeaseNotes::Unref(uint16_t id) {
  if (id == 0) return;
  Label& l = labels_[id];
  if (--l.refs == 0) {
    ids_.erase(l.text);
    l.text = std::string();
    free_ids_.push_back(id);
  }
}

void LeaseNotes::Set(uint16_t port, int64_t unix_ms, std::string_view label) {
  if (port >= seconds_.size()) {
    seconds_.resize(size_t{port} + 1, 0);
    label_id_.resize(size_t{port} + 1, 0);
  }
  uint16_t id = 0;
  if (!label.empty()) {
    auto it = ids_.find(std::string(label));
    if (it != ids_.end()) {
      id = it->second;
    } else {
      if (!free_ids_.empty()) {
        id = free_ids_.back();
        free_ids_.pop_back();
      } else if (labels_.size() <= 0xffff) {
        id = static_cast<uint16_t>(labels_.size());
        labels_.emplace_back();
      }
      // Else more distinct labels than a pool has ports: none is kept.
      if (id != 0) {
        labels_[id].text = std::string(label);
        ids_.emplace(labels_[id].text, id);
      }
    }
    if (id != 0) ++labels_[id].refs;
  }
  Unref(label_id_[port]);  // After the ref above: the same label stays.
  label_id_[port] = id;
  seconds_[port] = unix_ms >= 1000 && unix_ms / 1000 <= 0xffffffffLL
                       ? static_cast<uint32_t>(unix_ms / 1000)
                       : 0;
}

void LeaseNotes::Clear(uint16_t port) {
  if (port >= seconds_.size()) return;
  Unref(label_id_[port]);
  label_id_[port] = 0;
  seconds_[port] = 0;
}

LeaseNotes::Note LeaseNotes::Get(uint16_t port) const {
  Note n;
  if (port >= seconds_.size()) return n;
  if (seconds_[port] != 0) n.unix_ms = int64_t{seconds_[port]} * 1000;
  n.label = labels_[label_id_[port]].text;
  return n;
}

void LeaseNotes::Prune(const Ledger& ledger) {
  if (labels() <= 2 * ledger.leased_ports() + 64) return;
  for (size_t port = 1; port < seconds_.size(); ++port) {
    if (label_id_[port] != 0 && !ledger.HolderOf(static_cast<uint16_t>(port))) {
      Clear(static_cast<uint16_t>(port));
    }
  }
}

}  // namespace portserver
