// AllocationPolicy: which port a live owner gets next.
//
// Round-robin over the pool, as the reference server does: free ports wait in
// a queue in pool order, a port handed out leaves it, and a port that comes
// back (its owner died) or is found busy joins the end, so it is not handed
// out again at once. A candidate is leased only if PortProbe says it is free
// now (the probe may reserve it, e.g. with a host-wide lock, until the
// policy calls PortProbe::Release when the lease ends). Dead owners are found by a bounded round-robin sweep of the ledger, a
// little on every request and more when the queue runs dry, and by
// notifications (Release). Costs per request, whatever the pool size:
// O(1 + busy ports met) port probes and O(sweep budget) process probes; a
// denial with every port leased to live owners costs no port probe at all.
//
// Example:
//   Ledger ledger;
//   AllocationPolicy policy(pool, ledger, process_probe, port_probe);
//   Allocation a = policy.Allocate(Owner{pid, incarnation});
//
// Thread-compatible. `ledger` and both probes must outlive the policy.
#ifndef PORTSERVER_DOMAIN_ALLOCATION_POLICY_H_
#define PORTSERVER_DOMAIN_ALLOCATION_POLICY_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "domain/ledger.h"
#include "domain/port_probe.h"
#include "domain/process_probe.h"

namespace portserver {

struct AllocationPolicyOptions {
  // Owners checked for death on every request (keeps the ledger current).
  size_t sweep_per_request = 1;
  // Owners checked when no free port is left, before denying.
  size_t sweep_when_exhausted = 16;
};

struct Allocation {
  bool ok = false;
  uint16_t port = 0;         // Valid when ok.
  size_t ports_checked = 0;  // Port probes made for this request.
  size_t ports_busy = 0;     // Of those, ports found in use by someone else.
  size_t ports_reclaimed = 0;  // Ports of dead owners returned to the queue.
};

class AllocationPolicy {
 public:
  // `pool`: distinct ports 1-65535, non-empty, in round-robin order. None is
  // leased in `ledger` yet.
  AllocationPolicy(const std::vector<uint16_t>& pool, Ledger& ledger,
                   ProcessProbe& process_probe, PortProbe& port_probe,
                   AllocationPolicyOptions options = {});
  AllocationPolicy(const AllocationPolicy&) = delete;
  AllocationPolicy& operator=(const AllocationPolicy&) = delete;

  // Leases a free port to `owner`, which the caller has just seen alive with
  // this incarnation. If the ledger knows `owner.pid` as another incarnation,
  // that owner's ports are reclaimed first. !ok when no port can be had.
  Allocation Allocate(const Owner& owner);

  // The platform says `pid` may have exited: reclaims its ports if the
  // process probe agrees. Returns the number of ports returned to the queue.
  size_t OwnerExited(int64_t pid);

  size_t pool_size() const { return pool_size_; }
  size_t free_ports() const { return free_.size(); }

 private:
  // Tries up to `count` ports from the front of the queue.
  bool TryQueue(size_t count, const Owner& owner, Allocation& result);
  // Returns leased ports to the queue (and their reservations to the port
  // probe), at the back, or at the front when they are needed at once.
  void Requeue(const std::vector<uint16_t>& ports, bool to_front,
               Allocation& result);

  Ledger& ledger_;
  ProcessProbe& process_probe_;
  PortProbe& port_probe_;
  const AllocationPolicyOptions options_;
  const size_t pool_size_;
  std::deque<uint16_t> free_;  // Not leased; front is next.
};

}  // namespace portserver

#endif  // PORTSERVER_DOMAIN_ALLOCATION_POLICY_H_
