#include "domain/allocation_policy.h"

#include <algorithm>

namespace portserver {

AllocationPolicy::AllocationPolicy(const std::vector<uint16_t>& pool,
                                   Ledger& ledger, ProcessProbe& process_probe,
                                   PortProbe& port_probe,
                                   AllocationPolicyOptions options)
    : ledger_(ledger),
      process_probe_(process_probe),
      port_probe_(port_probe),
      options_(options),
      sweep_per_request_(options.sweep_per_request),
      pool_size_(pool.size()),
      free_(pool.begin(), pool.end()) {}

bool AllocationPolicy::Take(uint16_t port, PortState state, const Owner& owner,
                            Allocation& result) {
  if (!ledger_.Lease(port, owner)) {
    port_probe_.Release(port);  // Not taken after all.
    return false;
  }
  backoff_.erase(port);
  result.ok = true;
  result.port = port;
  result.reuse_addr_only = state == PortState::kReuseAddrOnly;
  if (result.reuse_addr_only) ++result.reuse_addr_only_grants;
  return true;
}

bool AllocationPolicy::TakeOrSetAside(uint16_t port, PortState state,
                                      const Owner& owner, Allocation& result) {
  if (state == PortState::kFree && Take(port, state, owner, result)) {
    return true;
  }
  if (state == PortState::kReuseAddrOnly) {
    // Wait for a port any program can bind; keep this one for later.
    port_probe_.Release(port);
    ++result.ports_reuse_addr_only;
    SetAside(port, /*reuse_only=*/true, result);
    return false;
  }
  ++result.ports_busy;
  SetAside(port, /*reuse_only=*/false, result);
  return false;
}

bool AllocationPolicy::TryQueue(size_t count, const Owner& owner,
                                Allocation& result) {
  for (size_t i = 0; i < count && !free_.empty(); ++i) {
    uint16_t port = free_.front();
    free_.pop_front();
    ++result.ports_checked;
    PortState state = port_probe_.Check(port);
    if (state == PortState::kUnknown) {
      free_.push_front(port);  // Keeps its place: nothing is known of it.
      result.probe_failed = true;
      return false;
    }
    if (TakeOrSetAside(port, state, owner, result)) return true;
  }
  return false;
}

bool AllocationPolicy::TryCooling(const Owner& owner, Allocation& result) {
  size_t tried = 0;
  for (auto it = cooling_.begin();
       it != cooling_.end() && tried < options_.busy_retries_when_exhausted;) {
    const uint16_t port = it->second;
    auto backoff = backoff_.find(port);
    if (backoff != backoff_.end() && it->first - backoff->second == clock_) {
      ++it;  // Found busy by this very request.
      continue;
    }
    ++tried;
    ++result.ports_checked;
    PortState state = port_probe_.Check(port);
    if (state == PortState::kUnknown) {
      result.probe_failed = true;  // It keeps its place.
      return false;
    }
    it = cooling_.erase(it);
    if (TakeOrSetAside(port, state, owner, result)) return true;
  }
  return false;
}

bool AllocationPolicy::TryReuseAddrOnly(const Owner& owner,
                                        Allocation& result) {
  while (!reuse_only_.empty()) {
    auto it = reuse_only_.begin();
    uint16_t port = it->second;
    ++result.ports_checked;
    PortState state = port_probe_.Check(port);
    if (state == PortState::kUnknown) {
      result.probe_failed = true;
      return false;
    }
    reuse_only_.erase(it);
    if (IsLeasable(state)) {
      if (state == PortState::kReuseAddrOnly) ++result.ports_reuse_addr_only;
      if (Take(port, state, owner, result)) return true;
    }
    ++result.ports_busy;
    SetAside(port, /*reuse_only=*/false, result);
  }
  return false;
}

void AllocationPolicy::SetAside(uint16_t port, bool reuse_only,
                                Allocation& result) {
  uint64_t& backoff = backoff_[port];
  backoff = backoff == 0 ? options_.min_busy_backoff
                         : std::min(backoff * 2, options_.max_busy_backoff);
  (reuse_only ? reuse_only_ : cooling_).emplace(clock_ + backoff, port);
  if (!reuse_only) ++result.ports_set_aside;
}

void AllocationPolicy::Thaw() {
  while (!cooling_.empty() && cooling_.begin()->first <= clock_) {
    free_.push_back(cooling_.begin()->second);
    cooling_.erase(cooling_.begin());
  }
  // Ports set aside together (a whole pool in TIME_WAIT) would all come due
  // together: let a few at a time rejoin the queue, so that each request
  // probes O(1) of them. The others are still handed out when nothing else
  // is free (TryReuseAddrOnly probes them again then).
  for (size_t n = 0;
       n < options_.time_wait_thaw_per_request && !reuse_only_.empty() &&
       reuse_only_.begin()->first <= clock_;
       ++n) {
    free_.push_back(reuse_only_.begin()->second);
    reuse_only_.erase(reuse_only_.begin());
  }
}

size_t AllocationPolicy::Restore(
    const std::vector<std::pair<uint16_t, Owner>>& leases,
    std::vector<uint16_t>* unreserved) {
  std::vector<bool> queued(65536, false);
  for (uint16_t port : free_) queued[port] = true;
  size_t restored = 0;
  for (const auto& [port, owner] : leases) {
    if (queued[port] && ledger_.Lease(port, owner)) {
      queued[port] = false;
      ++restored;
      // Its owner may be using it: reserve it without a bind test, so that
      // neighbouring servers keep off it as they do off a fresh grant.
      if (!port_probe_.Reserve(port)) {
        unreserved_.push_back(port);
        if (unreserved != nullptr) unreserved->push_back(port);
      }
    }
  }
  free_.erase(std::remove_if(free_.begin(), free_.end(),
                             [&](uint16_t port) { return !queued[port]; }),
              free_.end());
  return restored;
}

void AllocationPolicy::Requeue(const std::vector<uint16_t>& ports,
                               bool to_front, Allocation& result) {
  for (uint16_t port : ports) port_probe_.Release(port);
  free_.insert(to_front ? free_.begin() : free_.end(), ports.begin(),
               ports.end());
  result.ports_reclaimed += ports.size();
  // What was let go of goes first to restored leases still without their
  // reservation (for want of descriptors, or a neighbour's lock): before
  // the grant this request may be about to make, and before a neighbour
  // could lease their ports while their owners live. Each of them in turn
  // until as many are taken (one a neighbour holds must not use up a try).
  if (!unreserved_.empty() && !ports.empty()) {
    RetakeReservations(unreserved_.size(), ports.size());
  }
}

size_t AllocationPolicy::RetakeReservations(size_t max_tries,
                                            size_t max_taken) {
  size_t taken = 0;
  for (size_t n = std::min(max_tries, unreserved_.size());
       n > 0 && taken < max_taken; --n) {
    uint16_t port = unreserved_.front();
    unreserved_.pop_front();
    if (!ledger_.HolderOf(port)) continue;  // Its lease has ended.
    if (port_probe_.Reserve(port)) {
      ++taken;
    } else {
      unreserved_.push_back(port);  // Still held by the neighbour.
    }
  }
  return unreserved_.size();
}

void AllocationPolicy::BeginRequest(const Owner& owner, Allocation& result) {
  ++clock_;
  // First: a neighbour that let go of such a port may lease it again on
  // its next request.
  if (!unreserved_.empty()) RetakeReservations(kRetakesPerRequest);
  Thaw();
  if (std::optional<Owner> known = ledger_.FindOwner(owner.pid);
      known && known->incarnation != owner.incarnation) {
    // The pid was reused: its previous life is over.
    Requeue(ledger_.Release(owner.pid), /*to_front=*/false, result);
  }
  Requeue(ledger_.Sweep(process_probe_, sweep_per_request_),
          /*to_front=*/false, result);
}

bool AllocationPolicy::TryBatch(size_t want, const Owner& owner,
                                Allocation& result,
                                std::vector<uint16_t>* ports) {
  std::vector<uint16_t> batch;
  while (batch.size() < want && !free_.empty()) {
    batch.push_back(free_.front());
    free_.pop_front();
  }
  std::vector<PortState> states = port_probe_.CheckMany(batch);
  for (size_t i = 0; i < batch.size(); ++i) {
    ++result.ports_checked;
    if (states[i] == PortState::kUnknown) {
      // Nothing is known of this port: it and the ones after it keep their
      // places, without the reservations some of them got.
      for (size_t j = batch.size(); j-- > i;) {
        if (IsLeasable(states[j])) port_probe_.Release(batch[j]);
        free_.push_front(batch[j]);
      }
      result.probe_failed = true;
      return false;
    }
    if (TakeOrSetAside(batch[i], states[i], owner, result)) {
      ports->push_back(batch[i]);
    }
  }
  return true;
}

Allocation AllocationPolicy::AllocateMany(const Owner& owner, size_t count,
                                          std::vector<uint16_t>* ports) {
  Allocation result;
  BeginRequest(owner, result);
  AllocateManyBegun(owner, count, ports, result);
  return result;
}

Allocation AllocationPolicy::AllocateManyAgain(const Owner& owner, size_t count,
                                               std::vector<uint16_t>* ports) {
  Allocation result;
  AllocateManyBegun(owner, count, ports, result);
  return result;
}

Allocation AllocationPolicy::AllocateAgain(const Owner& owner) {
  Allocation result;
  AllocateBegun(owner, result);
  return result;
}

void AllocationPolicy::AllocateManyBegun(const Owner& owner, size_t count,
                                         std::vector<uint16_t>* ports,
                                         Allocation& result) {
  const size_t first = ports->size();
  if (count > pool_size_) {
    return;  // Never all at once: nothing probed, nothing reserved.
  }
  if (options_.max_ports_per_owner != 0 &&
      ledger_.PortCount(owner.pid) + count > options_.max_ports_per_owner) {
    // All or none: more than the quota leaves room for is denied before
    // any port is probed.
    result.over_quota = true;
    return;
  }
  while (ports->size() - first < count && !free_.empty()) {
    if (!TryBatch(count - (ports->size() - first), owner, result, ports)) {
      result.ok = false;  // Take() said ok for each port leased.
      result.port = 0;
      return;
    }
  }
  // The queue could not give them all: the rest as plain requests would get
  // them (a harder sweep, then ports in TIME_WAIT), or the reason why not.
  const size_t held_before =
      ledger_.PortCount(owner.pid) - (ports->size() - first);
  // Their probes of ports set aside as busy: at most
  // busy_retries_when_exhausted for each port asked for.
  const size_t retry_budget = count * options_.busy_retries_when_exhausted;
  const size_t checked_before = result.ports_checked;
  while (ports->size() - first < count) {
    // Within this request: no new tick of the clock (it would thaw the
    // ports this request has just found busy), no second per-request sweep.
    Allocation a;
    AllocateBegun(owner, a);
    result.ports_checked += a.ports_checked;
    result.ports_busy += a.ports_busy;
    result.ports_reclaimed += a.ports_reclaimed;
    result.ports_set_aside += a.ports_set_aside;
    result.ports_reuse_addr_only += a.ports_reuse_addr_only;
    result.reuse_addr_only_grants += a.reuse_addr_only_grants;
    result.over_quota = a.over_quota;
    result.probe_failed = a.probe_failed;
    if (a.ok) ports->push_back(a.port);
    if (ledger_.PortCount(owner.pid) != held_before + (ports->size() - first)) {
      // The owner ended during the request: a sweep of Allocate() reclaimed
      // its ports, those of this request too, and put them back in the queue
      // (one may even be leased to it again). Keep only what it still holds,
      // each once: the caller gives those back (all or none).
      std::vector<bool> seen(65536, false);
      size_t kept = first;
      for (size_t i = first; i < ports->size(); ++i) {
        uint16_t port = (*ports)[i];
        if (seen[port] || ledger_.HolderOf(port) != owner) continue;
        seen[port] = true;
        (*ports)[kept++] = port;
      }
      ports->resize(kept);
      result.owner_ended = true;
      result.ok = false;
      result.port = 0;
      return;
    }
    // One that found nothing may leave others to find: each probes the next
    // ports earlier requests set aside as busy (TryCooling: not those this
    // request set aside), as the next plain request would. Stopping at the
    // first denied a request of 40 after 4 such probes, still locked by a
    // neighbour, while 40 others set aside had come free (a new user's
    // trial). Over when one probed nothing or could not tell, or the
    // request has spent its retries.
    if (!a.ok && (a.ports_checked == 0 || a.probe_failed || a.over_quota ||
                  result.ports_checked - checked_before >= retry_budget)) {
      break;
    }
  }
  result.ok = ports->size() - first == count;
  result.port = result.ok && count > 0 ? (*ports)[first] : 0;
  result.reuse_addr_only = result.reuse_addr_only_grants != 0;
}

void AllocationPolicy::Prefetch(size_t count) {
  if (count < 2 || count > pool_size_) return;
  std::vector<uint16_t> front;
  front.reserve(std::min(count, free_.size()));
  for (auto it = free_.begin(); it != free_.end() && front.size() < count;
       ++it) {
    front.push_back(*it);
  }
  port_probe_.Prefetch(front);
}

Allocation AllocationPolicy::Allocate(const Owner& owner) {
  Allocation result;
  BeginRequest(owner, result);
  AllocateBegun(owner, result);
  return result;
}

void AllocationPolicy::AllocateBegun(const Owner& owner, Allocation& result) {
  if (options_.max_ports_per_owner != 0 &&
      ledger_.PortCount(owner.pid) >= options_.max_ports_per_owner) {
    result.over_quota = true;
    return;
  }
  if (TryQueue(free_.size(), owner, result)) return;

  // Nothing free: look harder for dead owners, then try only what came back
  // (everything else in the queue was just found busy).
  if (result.probe_failed) return;
  std::vector<uint16_t> back =
      ledger_.Sweep(process_probe_, options_.sweep_when_exhausted);
  Requeue(back, /*to_front=*/true, result);
  if (TryQueue(back.size(), owner, result) || result.probe_failed) {
    return;
  }
  // Ports found busy earlier may be free by now (not after their backoff,
  // which may be hundreds of requests away).
  if (TryCooling(owner, result) || result.probe_failed) return;
  // Still nothing a plain bind() would take: a port in TIME_WAIT is better
  // than none (programs that set SO_REUSEADDR can use it).
  TryReuseAddrOnly(owner, result);
}

void AllocationPolicy::ReturnPorts(const std::vector<uint16_t>& ports,
                                   bool to_front) {
  Allocation ignored;
  Requeue(ports, to_front, ignored);
}

size_t AllocationPolicy::OwnerExited(int64_t pid, bool* unknown) {
  Allocation result;
  Requeue(ledger_.ReclaimIfGone(pid, process_probe_, unknown),
          /*to_front=*/false, result);
  return result.ports_reclaimed;
}

}  // namespace portserver
