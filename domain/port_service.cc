#include "domain/port_service.h"

#include <algorithm>
#include <map>
#include <set>

#include "domain/control_protocol.h"
#include "domain/lease_journal.h"
#include "domain/request_codec.h"

namespace portserver {

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kGranted:
      return "granted";
    case Outcome::kMalformed:
      return "malformed-request";
    case Outcome::kInvalidPid:
      return "invalid-pid";
    case Outcome::kInit:
      return "pid-is-init";
    case Outcome::kNoSuchProcess:
      return "no-such-process";
    case Outcome::kProbeFailed:
      return "process-probe-failed";
    case Outcome::kThread:
      return "thread-not-process";
    case Outcome::kPoolExhausted:
      return "pool-exhausted";
    case Outcome::kQuotaExceeded:
      return "quota-exceeded";
    case Outcome::kOverCapacity:
      return "over-capacity";
    case Outcome::kPermissionDenied:
      return "permission-denied";
  }
  return "unknown";
}

PortService::PortService(const std::vector<uint16_t>& pool,
                         ProcessProbe& process_probe, PortProbe& port_probe,
                         AllocationPolicyOptions options)
    : process_probe_(process_probe),
      policy_(pool, ledger_, process_probe, port_probe, options),
      port_probe_(port_probe),
      in_pool_(65536, false) {
  stats_.num_ports_managed = pool.size();
  for (uint16_t port : pool) {
    in_pool_[port] = true;
    pool_first_ = std::min<size_t>(pool_first_, port);
    pool_last_ = std::max<size_t>(pool_last_, port);
  }
}

Decision PortService::Allocate(int64_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  return AllocateLocked(pid);
}

Decision PortService::AllocateLocked(int64_t pid, const PeerCredentials& peer,
                                     size_t count, std::string_view label) {
  Decision d;
  d.pid = pid;
  d.named_pid = pid;
  if (pid <= 0) {
    d.outcome = Outcome::kInvalidPid;
  } else if (peer.known && peer.pid == 0) {
    // The kernel reports pid 0 for a caller this server's pid namespace
    // cannot see (the server runs in a container sharing the host's
    // network): the pid it names means nothing here, and no lease can
    // follow the caller.
    d.outcome = Outcome::kNoSuchProcess;
    d.detail =
        "the caller is outside the server's pid namespace (its pid "
        "is 0 here): pid " +
        std::to_string(pid) +
        " cannot be resolved; run the server in the callers' pid "
        "namespace";
  } else {
    // The ports a request for several would probe first are named to the
    // probe now, so that it may check them while the owner is checked
    // below (the new owner's checks cost about as much as a few ports').
    // CancelPrefetch() below releases what the request did not use.
    if (count > 1) policy_.Prefetch(count);
    // Map first: pid 1 of a caller's own pid namespace (a container's
    // entrypoint asking for itself) is a process like any other here.
    bool not_found = false;
    if (peer.known && peer.pid > 0) {
      ProcessProbe::Mapping m = process_probe_.MapNamedPid(peer.pid, pid);
      d.pid = m.pid;
      if (m.kind == ProcessProbe::Mapping::Kind::kTranslated) {
        ++stats_.pids_translated;
        d.detail = "pid " + std::to_string(pid) +
                   " in the caller's pid namespace is " +
                   std::to_string(m.pid) + " here";
      } else if (m.kind == ProcessProbe::Mapping::Kind::kNotFound) {
        not_found = true;
        d.detail = "no process of the caller's pid namespace has pid " +
                   std::to_string(pid);
      } else if (m.kind == ProcessProbe::Mapping::Kind::kCaller) {
        ++stats_.pids_replaced_by_caller;
        d.pid_replaced = true;
        d.detail = "pid " + std::to_string(pid) +
                   " named in another pid namespace cannot be translated: "
                   "leased to the caller, pid " +
                   std::to_string(m.pid);
      }
    }
    ProcessProbe::Result who;
    if (d.pid != 1 && !not_found) who = process_probe_.Probe(d.pid);
    if (not_found) {
      d.outcome = Outcome::kNoSuchProcess;
    } else if (d.pid == 1) {
      d.outcome = Outcome::kInit;
    } else if (who.state == ProcessProbe::State::kAlive && peer.known &&
               peer.uid != 0 && who.uid_known && who.uid != peer.uid) {
      d.outcome = Outcome::kPermissionDenied;
      d.detail = "pid " + std::to_string(d.pid) + " runs as uid " +
                 std::to_string(who.uid) + ", the caller as uid " +
                 std::to_string(peer.uid);
    } else if (who.state == ProcessProbe::State::kGone && who.thread_of != 0) {
      d.outcome = Outcome::kThread;
      d.detail = "pid " + std::to_string(d.pid) + " is a thread of process " +
                 std::to_string(who.thread_of) +
                 ", not a process: name the process (getpid())";
    } else if (who.state == ProcessProbe::State::kGone) {
      d.outcome = Outcome::kNoSuchProcess;
    } else if (who.state == ProcessProbe::State::kError) {
      d.outcome = Outcome::kProbeFailed;
    } else if (count != 1) {
      const std::string detail = d.detail;  // The pid's mapping, if any.
      AllocateManyLocked(d, who, count);
      // The port probe could not tell (mostly out of descriptors): what the
      // process probe keeps only to save work gives way, and the request is
      // tried once more (all or none: the first try gave its ports back),
      // unless the owner was found ended (a reviewer: the retry leased to
      // an owner the first try had found gone).
      if (!d.granted() && d.allocation.probe_failed &&
          !d.allocation.owner_ended && process_probe_.ReleaseCaches(d.pid)) {
        const Allocation first = d.allocation;
        d.detail = detail;
        d.pool_ran_out = false;
        AllocateManyLocked(d, who, count, /*again=*/true);
        AddCounts(first, d.allocation);
        stats_.num_ports_checked_for_last_request = d.allocation.ports_checked;
      }
      if (!d.granted() && d.allocation.probe_failed) {
        ++stats_.port_probe_failures;
      }
      if (d.granted()) {
        RecordOwnerLocked(d, who, label);
        Journal(d);  // One append for them all.
      }
    } else {
      d.allocation = policy_.Allocate(Owner{d.pid, who.incarnation});
      // As for several ports above: the process probe's caches give way to
      // the port probe, once.
      if (!d.allocation.ok && d.allocation.probe_failed &&
          process_probe_.ReleaseCaches(d.pid)) {
        const Allocation first = d.allocation;
        d.allocation = policy_.AllocateAgain(Owner{d.pid, who.incarnation});
        AddCounts(first, d.allocation);
      }
      stats_.num_ports_checked_for_last_request = d.allocation.ports_checked;
      if (d.allocation.ok) {
        d.outcome = Outcome::kGranted;
        d.port = d.allocation.port;
        d.incarnation = who.incarnation;
        d.reply = FormatReply(d.port);
        if (d.allocation.reuse_addr_only) {
          ++stats_.time_wait_grants;
          d.detail += std::string(d.detail.empty() ? "" : "; ") +
                      "in TIME_WAIT: only a bind with SO_REUSEADDR can take "
                      "it now, and nothing else was free";
        }
        RecordOwnerLocked(d, who, label);
        Journal(d);
      } else if (d.allocation.over_quota) {
        d.outcome = Outcome::kQuotaExceeded;
        d.detail += std::string(d.detail.empty() ? "" : "; ") + "pid " +
                    std::to_string(d.pid) + " holds its quota of " +
                    std::to_string(policy_.max_ports_per_owner()) +
                    " ports (--portserver_max_ports_per_pid)";
      } else {
        d.outcome = Outcome::kPoolExhausted;
        d.pool_ran_out = !d.allocation.probe_failed;
        if (d.allocation.probe_failed) {
          ++stats_.port_probe_failures;
          d.detail += std::string(d.detail.empty() ? "" : "; ") +
                      "the port probe could not tell whether ports are free "
                      "(out of descriptors?)";
        }
      }
    }
    if (count > 1) policy_.CancelPrefetch();
  }
  NoteOutcomeLocked(d);
  Count(d.outcome);
  return d;
}

void PortService::AddCounts(const Allocation& from, Allocation& to) {
  to.ports_checked += from.ports_checked;
  to.ports_busy += from.ports_busy;
  to.ports_reclaimed += from.ports_reclaimed;
  to.ports_set_aside += from.ports_set_aside;
  to.ports_reuse_addr_only += from.ports_reuse_addr_only;
}

bool PortService::ReleaseProbeCaches() {
  std::lock_guard<std::mutex> lock(mu_);
  return process_probe_.ReleaseCaches(/*keep=*/0);
}

void PortService::CountRefusedConnection() {
  std::lock_guard<std::mutex> lock(mu_);
  Count(Outcome::kOverCapacity);
}

void PortService::Count(Outcome outcome) {
  switch (outcome) {
    case Outcome::kGranted:
      ++stats_.total_allocations;
      return;
    case Outcome::kMalformed:
      ++stats_.client_request_errors;
      return;
    case Outcome::kOverCapacity:
      ++stats_.refused_connections;
      return;
    case Outcome::kInvalidPid:
    case Outcome::kInit:
      ++stats_.denied_invalid_pid;
      break;
    case Outcome::kNoSuchProcess:
    case Outcome::kProbeFailed:
    case Outcome::kThread:
      ++stats_.denied_no_such_process;
      break;
    case Outcome::kPoolExhausted:
      ++stats_.denied_pool_exhausted;
      break;
    case Outcome::kQuotaExceeded:
      ++stats_.denied_quota;
      break;
    case Outcome::kPermissionDenied:
      ++stats_.denied_permission;
      break;
  }
  ++stats_.denied_allocations;
}

void PortService::Journal(Decision& d) {
  if (store_ == nullptr) return;
  // d.ports when a request was granted several (one append for them all).
  const size_t n = d.ports.empty() ? 1 : d.ports.size();
  if (journal_behind_) {
    // The next request's snapshot will hold this lease.
    missed_ += n;
    stats_.journal_missed_grants += n;
    return;
  }
  // Each lease, then its note (label and lease time) on the next line.
  auto append = [&](std::string& out, uint16_t port) {
    JournalNote note = NoteLocked(port);
    AppendJournalLeaseWithNote(out, port, Owner{d.pid, d.incarnation},
                               note.unix_seconds, note.label);
  };
  std::string records;
  if (d.ports.empty()) {
    append(records, d.port);
  } else {
    for (uint16_t port : d.ports) append(records, port);
  }
  StoreResult r = store_->Append(records);
  if (!r.ok) {
    ++stats_.journal_errors;
    ++stats_.journal_outages;
    stats_.journal_missed_grants += n;
    journal_behind_ = true;
    missed_ = n;
    d.journal_event = JournalEvent::kFellBehind;
    d.store_error = std::move(r.error);
    return;
  }
  appended_ += n;
  if (appended_ > std::max(compact_after_, 2 * ledger_.leased_ports())) {
    // The appended record is in; a failed compaction loses nothing.
    if (!CompactLocked().ok) ++stats_.journal_errors;
  }
}

void PortService::MaintainStoreLocked(Decision& d) {
  if (store_ == nullptr) return;
  if (!journal_behind_) {
    if (store_->Intact()) return;
    StoreResult r = CompactLocked();
    if (r.ok) {
      ++stats_.journal_rewrites;
      d.journal_event = JournalEvent::kRewritten;
      return;
    }
    ++stats_.journal_errors;
    ++stats_.journal_outages;
    journal_behind_ = true;
    missed_ = 0;
    d.journal_event = JournalEvent::kFellBehind;
    d.store_error = std::move(r.error);
    return;
  }
  if (!CompactLocked().ok) {
    ++stats_.journal_errors;  // Still behind: logged once, at the start.
    return;
  }
  journal_behind_ = false;
  d.journal_event = JournalEvent::kCaughtUp;
  d.journal_missed = missed_;
  missed_ = 0;
}

Decision PortService::MaintainStore() {
  std::lock_guard<std::mutex> lock(mu_);
  Decision news;
  MaintainStoreLocked(news);
  return news;
}

bool PortService::DetachStore() {
  std::lock_guard<std::mutex> lock(mu_);
  if (store_ == nullptr) return false;
  bool removed = false;
  PruneCarriedLocked();
  if (ledger_.leased_ports() == 0 && carried_.empty()) {
    removed = store_->Remove();  // Unless the store keeps its files.
  }
  if (!removed && carried_dropped_ && !journal_behind_) {
    // Carried leases whose owners ended are not left in the file (a
    // restart would drop them, but the stop's figures would not match it).
    if (!CompactLocked().ok) ++stats_.journal_errors;
  }
  if (!removed) {
    // A last attempt, as every request makes: a journal behind, or deleted
    // or replaced since the last request, is written with every live lease
    // (a deletion just before a clean stop lost them all, found by a
    // reviewer); also a kept journal without leases (a release it could
    // not take would come back at a restart).
    Decision ignored;
    MaintainStoreLocked(ignored);
  }
  store_ = nullptr;
  return removed;
}

std::string PortService::store_location() const {
  std::lock_guard<std::mutex> lock(mu_);
  return store_ == nullptr ? "" : store_->Location();
}

bool PortService::journal_behind() const {
  std::lock_guard<std::mutex> lock(mu_);
  return journal_behind_;
}

JournalNote PortService::NoteLocked(uint16_t port) const {
  LeaseNotes::Note n = notes_.Get(port);
  JournalNote note;
  note.port = port;
  note.unix_seconds = n.unix_ms >= 0 ? n.unix_ms / 1000 : -1;
  note.label = std::string(n.label);
  return note;
}

void PortService::PruneCarriedLocked() {
  std::map<int64_t, ProcessProbe::Result> seen;
  auto ended = [&](const JournalNote& note) {
    auto it = seen.find(note.owner.pid);
    if (it == seen.end()) {
      it = seen.emplace(note.owner.pid, process_probe_.Probe(note.owner.pid))
               .first;
    }
    return OwnerHasEnded(note.owner, it->second);
  };
  DropCarriedLocked(ended);
}

size_t PortService::DropCarriedLocked(
    const std::function<bool(const JournalNote&)>& ended) {
  // Not remove_if(), whose tail holds moved-from kept elements rather than
  // the ones removed: their ports are released below. `ended` is applied
  // once each, in order.
  auto first_ended = std::stable_partition(
      carried_.begin(), carried_.end(),
      [&](const JournalNote& note) { return !ended(note); });
  const size_t dropped = static_cast<size_t>(carried_.end() - first_ended);
  if (dropped > 0) carried_dropped_ = true;
  for (auto it = first_ended; it != carried_.end(); ++it) {
    port_probe_.Release(it->port);  // The reservation Restore() took for it.
    carried_unreserved_.erase(std::remove(carried_unreserved_.begin(),
                                          carried_unreserved_.end(), it->port),
                              carried_unreserved_.end());
  }
  carried_.erase(first_ended, carried_.end());
  // As a lease's end: what was let go of goes first to restored leases
  // still without their reservation (AllocationPolicy::Requeue).
  if (dropped > 0) policy_.RetakeReservations(SIZE_MAX, dropped);
  return dropped;
}

const JournalNote* PortService::CarriedLocked(uint16_t port) const {
  for (const JournalNote& note : carried_) {
    if (note.port == port) return &note;
  }
  return nullptr;
}

std::vector<int64_t> PortService::CarriedOwners() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<int64_t> pids;
  for (const JournalNote& note : carried_) pids.insert(note.owner.pid);
  return std::vector<int64_t>(pids.begin(), pids.end());
}

std::vector<uint16_t> PortService::CarriedPorts() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint16_t> ports;
  for (const JournalNote& note : carried_) ports.push_back(note.port);
  return ports;
}

void PortService::SetBootId(std::string boot_id) {
  std::lock_guard<std::mutex> lock(mu_);
  boot_id_ = std::move(boot_id);
}

bool PortService::FromAnotherBoot(const JournalReplay& replay) const {
  std::lock_guard<std::mutex> lock(mu_);
  return !boot_id_.empty() && !replay.boot_id.empty() &&
         replay.boot_id != boot_id_;
}

StoreResult PortService::CompactLocked() {
  PruneCarriedLocked();
  std::vector<std::pair<uint16_t, Owner>> leases = ledger_.Leases();
  std::map<uint16_t, const JournalNote*> carried;
  for (const JournalNote& note : carried_) {
    leases.emplace_back(note.port, note.owner);
    carried[note.port] = &note;
  }
  StoreResult r = store_->Replace(JournalSnapshot(
      leases,
      [&](uint16_t port) {
        auto it = carried.find(port);
        return it == carried.end() ? NoteLocked(port) : *it->second;
      },
      boot_id_));
  if (r.ok) {
    appended_ = 0;
    carried_dropped_ = false;
    ++stats_.journal_compactions;
  }
  return r;
}

StoreResult PortService::AttachStore(LeaseStore* store, size_t compact_after) {
  std::lock_guard<std::mutex> lock(mu_);
  store_ = store;
  compact_after_ = compact_after;
  StoreResult r = CompactLocked();
  if (!r.ok) {
    ++stats_.journal_errors;
    ++stats_.journal_outages;
    journal_behind_ = true;
    missed_ = 0;
  }
  return r;
}

Decision PortService::Decide(const Request& request) {
  std::lock_guard<std::mutex> lock(mu_);
  Decision kept;  // The journal's news, whatever the request turns out to be.
  MaintainStoreLocked(kept);
  Decision d = DecideLocked(request);
  if (kept.journal_event != JournalEvent::kNone &&
      d.journal_event == JournalEvent::kNone) {
    d.journal_event = kept.journal_event;
    d.store_error = std::move(kept.store_error);
    d.journal_missed = kept.journal_missed;
  }
  return d;
}

Decision PortService::DecideLocked(const Request& request) {
  ParsedRequest parsed;
  switch (request.end) {
    case Request::End::kNewline:
    case Request::End::kEof:
      parsed = ParseRequest(request.data);
      break;
    case Request::End::kTooLong:
      parsed.error =
          "request longer than " + std::to_string(kMaxRequestBytes) + " bytes";
      break;
    case Request::End::kTimedOut:
      parsed.error = "no complete request before the read timeout";
      break;
    case Request::End::kOverCapacity: {
      Count(Outcome::kOverCapacity);
      Decision d;
      d.outcome = Outcome::kOverCapacity;
      d.detail = "connection cap reached";
      return d;
    }
  }
  if (!parsed.ok) {
    Count(Outcome::kMalformed);
    Decision d;
    d.outcome = Outcome::kMalformed;
    d.detail = std::move(parsed.error);
    return d;
  }
  return AllocateLocked(parsed.pid, request.peer);
}

std::string PortService::HandleRequest(const Request& request) {
  return Decide(request).reply;
}

size_t PortService::OwnerExited(int64_t pid, bool* unknown) {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t back = policy_.OwnerExited(pid, unknown);
  if (ForgetCarriedOfLocked(pid) && unknown != nullptr) *unknown = true;
  return back;
}

bool PortService::Holds(int64_t pid) const {
  std::lock_guard<std::mutex> lock(mu_);
  return ledger_.PortCount(pid) > 0 ||
         std::any_of(carried_.begin(), carried_.end(),
                     [&](const JournalNote& n) { return n.owner.pid == pid; });
}

bool PortService::ForgetCarriedOfLocked(int64_t pid) {
  auto of_pid = [&](const JournalNote& note) { return note.owner.pid == pid; };
  if (std::none_of(carried_.begin(), carried_.end(), of_pid)) return false;
  const ProcessProbe::Result now = process_probe_.Probe(pid);
  if (now.state == ProcessProbe::State::kError) return true;
  // The journal keeps their lines until its next compaction (or the stop):
  // harmless, as a restart drops the leases of owners that ended, and no
  // rewrite of the whole file on the watcher's thread.
  DropCarriedLocked([&](const JournalNote& note) {
    return of_pid(note) && OwnerHasEnded(note.owner, now);
  });
  return false;
}

void PortService::SetSweepPerRequest(size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  policy_.set_sweep_per_request(n);
}

std::vector<uint16_t> PortService::PortsOf(int64_t pid) const {
  std::lock_guard<std::mutex> lock(mu_);
  return ledger_.PortsOf(pid);
}

std::vector<std::pair<uint16_t, Owner>> PortService::Leases() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ledger_.Leases();
}

size_t PortService::RetakeReservations(size_t max_tries) {
  std::lock_guard<std::mutex> lock(mu_);
  // The carried ports' turn after the restored ones', as many tries each.
  for (size_t n = std::min(max_tries, carried_unreserved_.size()); n > 0; --n) {
    const uint16_t port = carried_unreserved_.front();
    carried_unreserved_.pop_front();
    if (CarriedLocked(port) != nullptr && !port_probe_.Reserve(port)) {
      carried_unreserved_.push_back(port);  // Still held by the neighbour.
    }
  }
  return policy_.RetakeReservations(max_tries) + carried_unreserved_.size();
}

size_t PortService::Restore(
    const std::vector<std::pair<uint16_t, Owner>>& leases,
    std::vector<uint16_t>* unreserved) {
  JournalReplay replay;
  replay.leases = leases;
  return Restore(replay, unreserved);
}

size_t PortService::Restore(const JournalReplay& replay,
                            std::vector<uint16_t>* unreserved) {
  if (FromAnotherBoot(replay)) return 0;  // Its owners ended with it.
  std::lock_guard<std::mutex> lock(mu_);
  const std::vector<std::pair<uint16_t, Owner>>& leases = replay.leases;
  // Probe each owner once.
  std::map<int64_t, ProcessProbe::Result> seen;
  std::vector<std::pair<uint16_t, Owner>> alive;  // Or not known to be gone.
  std::map<uint16_t, size_t> carried_at;          // Port -> index in carried_.
  // Each port is carried once (the first lease of it read wins), also
  // across calls: one reservation per port, let go with its one lease.
  for (size_t i = 0; i < carried_.size(); ++i) {
    carried_at[carried_[i].port] = i;
  }
  const size_t carried_before = carried_.size();
  for (const auto& lease : leases) {
    const Owner& owner = lease.second;
    if (owner.pid <= 1) continue;
    auto it = seen.find(owner.pid);
    if (it == seen.end()) {
      it = seen.emplace(owner.pid, process_probe_.Probe(owner.pid)).first;
    }
    if (OwnerHasEnded(owner, it->second)) continue;
    if (in_pool_[lease.first]) {
      alive.push_back(lease);
    } else if (carried_at.count(lease.first) == 0) {
      carried_at[lease.first] = carried_.size();
      JournalNote note;
      note.port = lease.first;
      note.owner = owner;
      carried_.push_back(note);
    }
  }
  size_t restored = policy_.Restore(alive, unreserved);
  // A carried lease keeps its port's lock, as a lease does: a neighbouring
  // server whose pool holds the port must not lease it while its owner
  // lives (a start with a narrower pool no longer frees it to them).
  for (size_t i = carried_before; i < carried_.size(); ++i) {
    const uint16_t port = carried_[i].port;
    if (port_probe_.Reserve(port)) continue;
    carried_unreserved_.push_back(port);  // RetakeReservations().
    if (unreserved != nullptr) unreserved->push_back(port);
  }
  // The journal keeps no uid nor command line: read them again, as at lease
  // time, so that the owner may still release its ports and listings still
  // name it. Label and lease time come back from the notes below.
  for (const auto& [port, owner] : alive) {
    if (ledger_.HolderOf(port) != std::optional<Owner>(owner)) continue;
    notes_.Clear(port);
    bool created = false;
    OwnerInfo& info = records_.Upsert(owner, &created);
    if (!created) continue;
    const ProcessProbe::Result& who = seen[owner.pid];
    info.uid_known = who.uid_known;
    info.uid = who.uid;
    if (info_ != nullptr) {
      info.command_line = info_->CommandLine(owner.pid, kMaxCommandLineBytes);
    }
  }
  // Only notes of the very lease restored (same port and owner); in journal
  // order, so the last one wins.
  for (const JournalNote& note : replay.notes) {
    if (auto it = carried_at.find(note.port);
        it != carried_at.end() && carried_[it->second].owner == note.owner) {
      carried_[it->second] = note;
      continue;
    }
    if (ledger_.HolderOf(note.port) != std::optional<Owner>(note.owner)) {
      continue;
    }
    notes_.Set(note.port, note.unix_seconds > 0 ? note.unix_seconds * 1000 : -1,
               note.label);
  }
  return restored;
}

Stats PortService::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.leased_ports = ledger_.leased_ports();
  s.owners = ledger_.owners();
  s.busy_ports_cooling = policy_.cooling_ports();
  s.time_wait_ports_cooling = policy_.reuse_addr_only_ports();
  return s;
}

}  // namespace portserver
