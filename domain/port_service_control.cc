// PortService: the use cases of the extended protocol (several ports at
// once, early release, listings), beside the plain ones in port_service.cc.
#include <algorithm>
#include <map>
#include <set>

#include "domain/control_protocol.h"
#include "domain/lease_journal.h"
#include "domain/port_service.h"

namespace portserver {
namespace {

// Ports looked at per ListLeases call: bounds the time the lock is held
// whatever the filters (a 64k-port pool takes 16 calls to scan).
constexpr size_t kScanPerPage = 4096;
// Holders named in the log when the pool runs out.
constexpr size_t kHoldersLogged = 5;

std::string Cut(std::string_view text, size_t max_bytes) {
  return std::string(text.substr(0, max_bytes));
}

}  // namespace

void PortService::SetProcessInfo(ProcessInfo* info) {
  std::lock_guard<std::mutex> lock(mu_);
  info_ = info;
}

Decision PortService::AllocateMany(int64_t pid, size_t count,
                                   std::string_view label,
                                   const PeerCredentials& peer) {
  std::lock_guard<std::mutex> lock(mu_);
  return AllocateLocked(pid, peer, count, label);
}

void PortService::AllocateManyLocked(Decision& d,
                                     const ProcessProbe::Result& who,
                                     size_t count, bool again) {
  const Owner owner{d.pid, who.incarnation};
  std::vector<uint16_t> granted;
  Allocation total = again ? policy_.AllocateManyAgain(owner, count, &granted)
                           : policy_.AllocateMany(owner, count, &granted);
  stats_.num_ports_checked_for_last_request = total.ports_checked;
  d.allocation = total;
  if (granted.size() < count) {
    // All or none: the ports taken go back first in line, never used.
    ledger_.ReleasePorts(d.pid, granted);
    policy_.ReturnPorts(granted, /*to_front=*/true);
    // An owner that ended during the request is denied as one that had
    // ended before it (not as a pool exhausted: it was not).
    d.outcome = total.owner_ended  ? Outcome::kNoSuchProcess
                : total.over_quota ? Outcome::kQuotaExceeded
                                   : Outcome::kPoolExhausted;
    // (Asking for more than the pool holds is refused unprobed: not a pool
    // that ran out.)
    d.pool_ran_out = d.outcome == Outcome::kPoolExhausted && granted.empty() &&
                     !total.probe_failed && count <= policy_.pool_size();
    d.detail = std::to_string(granted.size()) + " of " + std::to_string(count) +
               " ports could be had";
    if (d.outcome == Outcome::kQuotaExceeded) {
      d.detail = "pid " + std::to_string(d.pid) + " holds " +
                 std::to_string(ledger_.PortCount(d.pid)) +
                 " ports and asked for " + std::to_string(count) +
                 " more; at most " +
                 std::to_string(policy_.max_ports_per_owner()) +
                 " may be held at once (--portserver_max_ports_per_pid)";
    }
    if (total.probe_failed) {
      d.detail +=
          "; the port probe could not tell whether ports are free (out of "
          "descriptors?)";
    }
    return;
  }
  stats_.time_wait_grants += total.reuse_addr_only_grants;
  d.allocation.ok = true;
  d.outcome = Outcome::kGranted;
  d.incarnation = who.incarnation;
  d.ports = granted;
  d.port = granted.front();
  // Journaled by the caller, once the notes are recorded.
}

void PortService::RecordOwnerLocked(Decision& d,
                                    const ProcessProbe::Result& who,
                                    std::string_view label) {
  if (d.ports.empty()) d.ports.push_back(d.port);
  bool created = false;
  OwnerInfo& info = records_.Upsert(Owner{d.pid, d.incarnation}, &created);
  int64_t now = info_ != nullptr ? info_->NowUnixMs() : -1;
  if (created) {
    info.uid_known = who.uid_known;
    info.uid = who.uid;
    info.since_unix_ms = now;
    if (info_ != nullptr) {
      if (pending_records_.size() < kMaxPendingRecords) {
        // Read once the reply is sent (CompleteOwnerRecords).
        info.command_line_pending = true;
        pending_records_.push_back(Owner{d.pid, d.incarnation});
      } else {
        info.command_line = info_->CommandLine(d.pid, kMaxCommandLineBytes);
      }
    }
    records_.Prune(ledger_);
  }
  info.last_unix_ms = now;
  std::string cut = Cut(label, kMaxLabelBytes);
  // Each lease keeps its own label and time: the owner may be a long-lived
  // runner asking for several tests.
  for (uint16_t port : d.ports) notes_.Set(port, now, cut);
  notes_.Prune(ledger_);
}

void PortService::CompleteOwnerRecords() {
  std::lock_guard<std::mutex> lock(mu_);
  CompleteOwnerRecordsLocked();
}

void PortService::CompleteOwnerRecordsLocked() {
  for (const Owner& owner : pending_records_) {
    OwnerInfo* info = records_.Find(owner);
    if (info == nullptr || !info->command_line_pending) continue;
    info->command_line_pending = false;
    ReadCommandLineLocked(owner, *info);
  }
  pending_records_.clear();
}

void PortService::ReadCommandLineLocked(const Owner& owner, OwnerInfo& info) {
  if (info_ == nullptr) return;
  // Still that process (a pid may be reused by now; the probe's cached
  // pidfd answers for a live one without reading /proc).
  ProcessProbe::Result who = process_probe_.Probe(owner.pid);
  if (who.state == ProcessProbe::State::kAlive &&
      who.incarnation == owner.incarnation) {
    info.command_line = info_->CommandLine(owner.pid, kMaxCommandLineBytes);
  }
}

void PortService::NoteOutcomeLocked(Decision& d) {
  if (d.granted()) {
    exhausted_ = false;
    return;
  }
  if (!d.pool_ran_out || exhausted_) return;
  exhausted_ = true;
  CompleteOwnerRecordsLocked();  // The holders' command lines.
  // Once per episode: O(leases), like a journal compaction.
  std::map<int64_t, size_t> held;
  for (const auto& [port, owner] : ledger_.Leases()) ++held[owner.pid];
  std::vector<std::pair<size_t, int64_t>> order;
  order.reserve(held.size());
  for (const auto& [pid, ports] : held) order.emplace_back(ports, pid);
  size_t n = std::min(kHoldersLogged, order.size());
  std::partial_sort(order.begin(), order.begin() + n, order.end(),
                    [](const auto& a, const auto& b) {
                      return a.first != b.first ? a.first > b.first
                                                : a.second < b.second;
                    });
  for (size_t i = 0; i < n; ++i) {
    HolderSummary h;
    h.pid = order[i].second;
    h.ports = order[i].first;
    std::map<std::string, size_t> labels;
    for (uint16_t port : ledger_.PortsOf(h.pid)) {
      ++labels[std::string(notes_.Get(port).label)];
    }
    h.labels.assign(labels.begin(), labels.end());
    std::stable_sort(
        h.labels.begin(), h.labels.end(),
        [](const auto& a, const auto& b) { return a.second > b.second; });
    if (std::optional<Owner> owner = ledger_.FindOwner(h.pid)) {
      if (const OwnerInfo* info = records_.Find(*owner)) {
        h.command_line = info->command_line;
      }
      // None recorded, or none yet at lease time (just after its exec()).
      if (h.command_line.empty() && info_ != nullptr) {
        h.command_line = info_->CommandLine(h.pid, kMaxCommandLineBytes);
      }
    }
    d.biggest_holders.push_back(std::move(h));
  }
}

ReleaseOutcome PortService::Release(const std::vector<uint16_t>& ports,
                                    const PeerCredentials& peer) {
  std::lock_guard<std::mutex> lock(mu_);
  ReleaseOutcome out;
  if (!peer.known) {
    out.code = "permission-denied";
    out.message =
        "the server cannot tell who is asking, so it releases "
        "nothing";
    return out;
  }
  // Check every port first: all or none.
  std::map<int64_t, std::vector<uint16_t>> by_owner;
  std::set<uint16_t> carried;  // Leases journaled outside the pool.
  std::map<int64_t, ProcessProbe::Result> probed;
  for (uint16_t port : ports) {
    std::optional<Owner> owner = ledger_.HolderOf(port);
    const JournalNote* note = owner ? nullptr : CarriedLocked(port);
    if (note != nullptr) owner = note->owner;
    if (!owner) {
      out.code = "not-leased";
      out.message = "port " + std::to_string(port) +
                    (in_pool_[port] ? " is not leased" : " is not in the pool");
      return out;
    }
    if (peer.uid != 0) {
      bool uid_known = false;
      uint32_t uid = 0;
      if (const OwnerInfo* info = records_.Find(*owner);
          info != nullptr && info->uid_known) {
        uid_known = true;
        uid = info->uid;
      } else {
        auto it = probed.find(owner->pid);
        if (it == probed.end()) {
          it = probed.emplace(owner->pid, process_probe_.Probe(owner->pid))
                   .first;
        }
        uid_known = it->second.state == ProcessProbe::State::kAlive &&
                    it->second.uid_known;
        uid = it->second.uid;
      }
      if (!uid_known || uid != peer.uid) {
        out.code = "permission-denied";
        out.message = "port " + std::to_string(port) + " is leased to pid " +
                      std::to_string(owner->pid) +
                      (uid_known ? " running as uid " + std::to_string(uid)
                                 : std::string(" whose user cannot be told")) +
                      "; you run as uid " + std::to_string(peer.uid) +
                      " (only the owner's user or root may release it)";
        return out;
      }
    }
    if (note != nullptr) {
      carried.insert(port);
    } else {
      by_owner[owner->pid].push_back(port);
    }
  }
  for (const auto& [pid, owned] : by_owner) {
    std::vector<uint16_t> back = ledger_.ReleasePorts(pid, owned);
    policy_.ReturnPorts(back, /*to_front=*/false);
    out.released.insert(out.released.end(), back.begin(), back.end());
  }
  // A carried lease is let go of as its owner's end lets go of it: its
  // reservation too, and the journal's rewrite below leaves it out. Its
  // port is not in the pool, so it goes to no queue.
  DropCarriedLocked(
      [&](const JournalNote& n) { return carried.count(n.port) != 0; });
  out.released.insert(out.released.end(), carried.begin(), carried.end());
  stats_.ports_released += out.released.size();
  if (store_ != nullptr && !journal_behind_ && !out.released.empty()) {
    // The journal only appends grants: rewrite it without these leases. If
    // that fails, the journal is behind: the next request's snapshot (see
    // MaintainStoreLocked) drops them, as it catches up on grants.
    StoreResult r = CompactLocked();
    if (!r.ok) {
      ++stats_.journal_errors;
      ++stats_.journal_outages;
      journal_behind_ = true;
      missed_ = 0;
      out.journal_fell_behind = true;
      out.store_error = std::move(r.error);
    }
  }
  out.ok = true;
  return out;
}

LeaseView PortService::ViewLocked(uint16_t port, const Owner& owner,
                                  ProcessInfo::Access access,
                                  const PeerCredentials& peer) {
  LeaseView v;
  v.port = port;
  v.pid = owner.pid;
  v.incarnation = owner.incarnation;
  if (info_ != nullptr)
    v.start_unix_ms = info_->StartTimeUnixMs(owner.incarnation);
  if (OwnerInfo* info = records_.Find(owner)) {
    // (Completing the pending records changes no record's place.)
    if (info->command_line_pending) CompleteOwnerRecordsLocked();
    // None at lease time: a process asked for just after its exec() (its
    // argument area is set a moment after the exec() looks done to its
    // parent). Read once more, while it is the same process.
    if (info->command_line.empty() && !info->command_line_reread) {
      info->command_line_reread = true;
      ReadCommandLineLocked(owner, *info);
    }
    v.uid_known = info->uid_known;
    v.uid = info->uid;
    v.command_line = info->command_line;
  }
  LeaseNotes::Note note = notes_.Get(port);
  v.since_unix_ms = note.unix_ms;
  v.label = std::string(note.label);
  // As /proc would show it to the caller (hidepid).
  bool visible = access == ProcessInfo::Access::kAll ||
                 (access == ProcessInfo::Access::kOwnOnly && peer.known &&
                  v.uid_known && v.uid == peer.uid);
  if (!visible) {
    v.command_line.clear();
    v.command_line_hidden = true;
  }
  return v;
}

LeasePage PortService::ListLeases(const LeaseQuery& asked,
                                  const PeerCredentials& peer) {
  std::lock_guard<std::mutex> lock(mu_);
  ProcessInfo::Access access =
      info_ != nullptr ? info_->AccessFor(peer) : ProcessInfo::Access::kAll;
  LeasePage page;
  LeaseQuery query = asked;
  if (query.owner && peer.known && peer.pid > 0) {
    // The owner is named as allocate names it: a caller in a container
    // (`portserverctl leases --owner $$`) names a pid of its own namespace.
    ProcessProbe::Mapping m =
        process_probe_.MapNamedPid(peer.pid, *query.owner);
    // Not found there, or not translatable (kCaller): never a process of
    // ours that happens to have the number.
    if (m.kind == ProcessProbe::Mapping::Kind::kNotFound ||
        m.kind == ProcessProbe::Mapping::Kind::kCaller) {
      return page;
    }
    if (m.kind == ProcessProbe::Mapping::Kind::kTranslated) {
      query.owner = m.pid;
    }
  }
  size_t limit = std::clamp<size_t>(query.limit, 1, kMaxLeasesPerPage);
  // Only the pool's span can hold leases.
  size_t port = std::max<size_t>(size_t{query.after} + 1, pool_first_);
  size_t scanned = 0;
  auto consider = [&](uint16_t p) {
    std::optional<Owner> owner = ledger_.HolderOf(p);
    if (!owner) return;
    if (query.owner && owner->pid != *query.owner) return;
    if (query.label) {
      if (notes_.Get(p).label != *query.label) return;
    }
    page.leases.push_back(ViewLocked(p, *owner, access, peer));
  };
  if (query.owner) {
    // Only the owner's ports, sorted; those after `after`.
    std::vector<uint16_t> mine = ledger_.PortsOf(*query.owner);
    std::sort(mine.begin(), mine.end());
    for (uint16_t p : mine) {
      if (p <= query.after) continue;
      if (page.leases.size() == limit) {
        page.next_after = page.leases.back().port;
        return page;
      }
      consider(p);
    }
    return page;
  }
  for (; port <= pool_last_; ++port) {
    if (page.leases.size() == limit || scanned == kScanPerPage) {
      page.next_after = static_cast<uint16_t>(port - 1);
      return page;
    }
    ++scanned;
    consider(static_cast<uint16_t>(port));
  }
  return page;
}

PortReport PortService::Describe(uint16_t port, const PeerCredentials& peer) {
  std::lock_guard<std::mutex> lock(mu_);
  PortReport r;
  r.port = port;
  if (std::optional<Owner> owner = ledger_.HolderOf(port)) {
    ProcessInfo::Access access =
        info_ != nullptr ? info_->AccessFor(peer) : ProcessInfo::Access::kAll;
    r.state = PortReport::State::kLeased;
    r.lease = ViewLocked(port, *owner, access, peer);
    r.lease.unreserved = policy_.IsUnreserved(port);
    return r;
  }
  if (port == 0 || !in_pool_[port]) {
    r.state = PortReport::State::kNotInPool;
    const JournalNote* note = CarriedLocked(port);
    if (note == nullptr) return r;
    r.state = PortReport::State::kCarried;
    r.lease.port = port;
    r.lease.pid = note->owner.pid;
    r.lease.incarnation = note->owner.incarnation;
    if (info_ != nullptr) {
      r.lease.start_unix_ms = info_->StartTimeUnixMs(note->owner.incarnation);
    }
    r.lease.since_unix_ms =
        note->unix_seconds > 0 ? note->unix_seconds * 1000 : -1;
    r.lease.label = note->label;
    r.lease.unreserved =
        std::find(carried_unreserved_.begin(), carried_unreserved_.end(),
                  port) != carried_unreserved_.end();
    return r;
  }
  const PortState now = port_probe_.Check(port);
  if (IsLeasable(now)) port_probe_.Release(port);  // Not leased: let go.
  switch (now) {
    case PortState::kFree:
      r.state = PortReport::State::kFree;
      break;
    case PortState::kReuseAddrOnly:
      r.state = PortReport::State::kTimeWait;
      break;
    case PortState::kBusy:
      r.state = port_probe_.HeldByAnotherServer(port)
                    ? PortReport::State::kLocked
                    : PortReport::State::kBusy;
      break;
    case PortState::kUnknown:
      r.state = PortReport::State::kUnknown;
      break;
  }
  return r;
}

PoolView PortService::pool_view() const {
  std::lock_guard<std::mutex> lock(mu_);
  PoolView v;
  v.pool = policy_.pool_size();
  v.free = policy_.free_ports();
  v.leased = ledger_.leased_ports();
  v.cooling = policy_.cooling_ports();
  v.owners = ledger_.owners();
  return v;
}

}  // namespace portserver
