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

bool AllocationPolicy::TryQueue(size_t count, const Owner& owner,
                                Allocation& result) {
  for (size_t i = 0; i < count && !free_.empty(); ++i) {
    uint16_t port = free_.front();
    free_.pop_front();
    ++result.ports_checked;
    if (port_probe_.IsFree(port)) {
      if (ledger_.Lease(port, owner)) {
        backoff_.erase(port);
        result.ok = true;
        result.port = port;
        return true;
      }
      port_probe_.Release(port);  // Not taken after all.
    }
    ++result.ports_busy;
    SetAside(port, result);
  }
  return false;
}

void AllocationPolicy::SetAside(uint16_t port, Allocation& result) {
  uint64_t& backoff = backoff_[port];
  backoff = backoff == 0 ? options_.min_busy_backoff
                         : std::min(backoff * 2, options_.max_busy_backoff);
  cooling_.emplace(clock_ + backoff, port);
  ++result.ports_set_aside;
}

void AllocationPolicy::Thaw() {
  while (!cooling_.empty() && cooling_.begin()->first <= clock_) {
    free_.push_back(cooling_.begin()->second);
    cooling_.erase(cooling_.begin());
  }
}

size_t AllocationPolicy::Restore(
    const std::vector<std::pair<uint16_t, Owner>>& leases) {
  std::vector<bool> queued(65536, false);
  for (uint16_t port : free_) queued[port] = true;
  size_t restored = 0;
  for (const auto& [port, owner] : leases) {
    if (queued[port] && ledger_.Lease(port, owner)) {
      queued[port] = false;
      ++restored;
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
}

Allocation AllocationPolicy::Allocate(const Owner& owner) {
  Allocation result;
  ++clock_;
  Thaw();
  if (std::optional<Owner> known = ledger_.FindOwner(owner.pid);
      known && known->incarnation != owner.incarnation) {
    // The pid was reused: its previous life is over.
    Requeue(ledger_.Release(owner.pid), /*to_front=*/false, result);
  }
  Requeue(ledger_.Sweep(process_probe_, sweep_per_request_),
          /*to_front=*/false, result);
  if (options_.max_ports_per_owner != 0 &&
      ledger_.PortCount(owner.pid) >= options_.max_ports_per_owner) {
    result.over_quota = true;
    return result;
  }
  if (TryQueue(free_.size(), owner, result)) return result;

  // Nothing free: look harder for dead owners, then try only what came back
  // (everything else in the queue was just found busy).
  std::vector<uint16_t> back =
      ledger_.Sweep(process_probe_, options_.sweep_when_exhausted);
  Requeue(back, /*to_front=*/true, result);
  TryQueue(back.size(), owner, result);
  return result;
}

size_t AllocationPolicy::OwnerExited(int64_t pid) {
  Allocation result;
  Requeue(ledger_.ReclaimIfGone(pid, process_probe_), /*to_front=*/false,
          result);
  return result.ports_reclaimed;
}

}  // namespace portserver
