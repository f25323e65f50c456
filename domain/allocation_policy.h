// AllocationPolicy: which port a live owner gets next.
//
// Round-robin over the pool, as the reference server does: free ports wait in
// a queue in pool order, a port handed out leaves it, and a port that comes
// back (its owner died) or is found busy joins the end, so it is not handed
// out again at once. A candidate is leased only if PortProbe::Check says it
// is free now (the probe may reserve it, e.g. with a host-wide lock, until the
// policy calls PortProbe::Release when the lease ends).
//
// Ports a plain bind() would take (PortState::kFree) come first. A port only
// a bind with SO_REUSEADDR would take (kReuseAddrOnly: a socket of its last
// user lingers in TIME_WAIT) is set aside like a busy one, in a list of its
// own, and handed out only when no kFree port is left: then the list is
// tried in the order the ports were set aside, and such a grant is marked
// (Allocation::reuse_addr_only) so that it can be counted. When the probe
// cannot tell (kUnknown, e.g. out of descriptors) the request is denied at
// once and the port keeps its place.
//
// Dead owners are found by a bounded round-robin sweep of the ledger, a
// little on every request and more when the queue runs dry, and by
// notifications (Release). Costs per request, whatever the pool size:
// O(1 + busy or TIME_WAIT ports met) port probes and O(sweep budget) process
// probes; a denial with every port leased to live owners costs no port probe at
// all. A port found busy is set aside and probed again only after a backoff
// counted in requests (1, 2, 4, ... up to 1024), so a pool full of ports that
// others hold does not cost a probe of each on every request. When nothing
// else is free, a few ports set aside by earlier requests (those due
// soonest, at most busy_retries_when_exhausted) are probed again before the
// request falls back to TIME_WAIT or is denied: their holders may have gone
// since, and a pool is not exhausted while such ports are free.
//
// Example:
//   Ledger ledger;
//   AllocationPolicy policy(pool, ledger, process_probe, port_probe);
//   Allocation a = policy.Allocate(Owner{pid, incarnation});
//
// Thread-compatible. `ledger` and both probes must outlive the policy.
#ifndef PORTSERVER_DOMAIN_ALLOCATION_POLICY_H_
#define PORTSERVER_DOMAIN_ALLOCATION_POLICY_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

#include "domain/ledger.h"
#include "domain/port_probe.h"
#include "domain/process_probe.h"

namespace portserver {

struct AllocationPolicyOptions {
  // Owners checked for death on every request (keeps the ledger current
  // where no exit notifications arrive; 0 when they do).
  size_t sweep_per_request = 1;
  // Owners checked when no free port is left, before denying.
  size_t sweep_when_exhausted = 16;
  // Most ports one live owner may hold; 0 means no limit.
  size_t max_ports_per_owner = 0;
  // A port found busy (bound by someone outside the server) waits this many
  // requests before it is probed again, doubling each time it is still busy,
  // up to max_busy_backoff requests.
  uint64_t min_busy_backoff = 1;
  uint64_t max_busy_backoff = 1024;
  // When nothing else is free: how many of the ports set aside as busy by
  // earlier requests (due soonest first) are probed again at once, for each
  // port a request still lacks (AllocateMany: up to count times this).
  size_t busy_retries_when_exhausted = 4;
  // Of the ports set aside in TIME_WAIT whose backoff has run out, at most
  // this many rejoin the queue per request (to be probed again).
  size_t time_wait_thaw_per_request = 2;
};

struct Allocation {
  bool ok = false;
  bool over_quota = false;     // Denied: the owner holds max_ports_per_owner.
  uint16_t port = 0;           // Valid when ok.
  size_t ports_checked = 0;    // Port probes made for this request.
  size_t ports_busy = 0;       // Of those, ports found in use by someone else.
  size_t ports_reclaimed = 0;  // Ports of dead owners returned to the queue.
  size_t ports_set_aside = 0;  // Busy ports put to cool down by this request.
  // Of ports_checked, ports only a bind with SO_REUSEADDR could take now.
  size_t ports_reuse_addr_only = 0;
  // Granted a kReuseAddrOnly port, for want of a kFree one (ok is true).
  bool reuse_addr_only = false;
  // Ports granted that were kReuseAddrOnly (AllocateMany: may be several).
  size_t reuse_addr_only_grants = 0;
  // Denied because the port probe could not tell (PortState::kUnknown).
  bool probe_failed = false;
  // AllocateMany: denied because the owner ended during the request (a
  // sweep reclaimed the ports it had been leased).
  bool owner_ended = false;
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

  // Leases `count` ports to `owner` as one request: one tick of the backoff
  // clock and one sweep, then the candidates at the front of the queue are
  // probed together (PortProbe::CheckMany: a probe may check them at once),
  // batch after batch while the queue lasts; what it cannot give is asked
  // of Allocate(), one port at a time (harder sweep, TIME_WAIT ports), as
  // `count` plain requests would, going on past one that finds nothing
  // while ports set aside as busy are left to probe again, up to
  // busy_retries_when_exhausted probes for each port asked for. Appends the
  // ports leased to `ports`, in the order leased; they stay leased even when
  // fewer than `count` could be had (all or none is the caller's rule:
  // ReturnPorts()). The result sums the counts of the whole request; ok when
  // `count` ports were leased, and then `port` is the first of them. If the
  // owner ends during the request (a sweep reclaims its ports), !ok and
  // owner_ended: `ports` keeps only those still leased to it, each once. If the
  // owner would then hold more than max_ports_per_owner: !ok and over_quota at
  // once, nothing probed or leased; more than the pool holds: !ok at once,
  // likewise. O(count + busy ports met) probes.
  Allocation AllocateMany(const Owner& owner, size_t count,
                          std::vector<uint16_t>* ports);

  // Allocate() and AllocateMany() once more within the same request (the
  // port probe could not tell, and descriptors were freed since): no new
  // tick of the backoff clock (it would thaw the ports the first try found
  // busy) and no second per-request sweep. The first try must have left
  // nothing leased for the request (AllocateMany's caller gave its ports
  // back: all or none).
  Allocation AllocateAgain(const Owner& owner);
  Allocation AllocateManyAgain(const Owner& owner, size_t count,
                               std::vector<uint16_t>* ports);

  // Before a request for `count` ports is decided (its owner's checks
  // first): hints the port probe (PortProbe::Prefetch) with the ports
  // AllocateMany() would probe first, the front of the queue, so that the
  // probe may check them while the owner is checked. Nothing for fewer
  // than 2 or more than the pool holds. CancelPrefetch() after the request
  // releases what AllocateMany() did not use (a denial). The hint changes
  // no answer: a port that AllocateMany() then probes is as if probed then.
  void Prefetch(size_t count);
  void CancelPrefetch() { port_probe_.CancelPrefetch(); }

  // The platform says `pid` may have exited: reclaims its ports if the
  // process probe agrees. Returns the number of ports returned to the queue;
  // `*unknown` (if given) says whether the probe could not tell (the ports
  // are kept).
  size_t OwnerExited(int64_t pid, bool* unknown = nullptr);

  // Ports whose leases the caller has just ended in the ledger (an early
  // release, or a multi-port request undone) go back to the queue, as a
  // reclaimed port does: the port probe's reservation is let go and the port
  // is probed again before it is leased again. `to_front` puts them first
  // (an undone request: they were never used).
  void ReturnPorts(const std::vector<uint16_t>& ports, bool to_front);

  // Restores leases found in the journal, before serving. A lease whose port
  // is not free in the pool (not in it, or leased already) is skipped. Each
  // restored port is reserved with the port probe (PortProbe::Reserve); the
  // ports it could not reserve (another server holds them) stay leased and
  // are added to `unreserved` if given. Returns how many were restored.
  // O(pool + leases).
  size_t Restore(const std::vector<std::pair<uint16_t, Owner>>& leases,
                 std::vector<uint16_t>* unreserved = nullptr);

  // Tries again to reserve the restored leases Restore() could not (a
  // neighbouring server held their locks, or descriptors ran out), at most
  // `max_tries` of them, in turn, stopping once `max_taken` are reserved:
  // each one still leased whose reservation succeeds now is done with, as
  // is one no longer leased. Every request tries a few first
  // (kRetakesPerRequest); the server also calls it between requests; and
  // when leases end, their reservations let go of (descriptors, under a low
  // limit) go to these at once, one each, before the next grant. Returns
  // how many remain. O(max_tries) port probes.
  size_t RetakeReservations(size_t max_tries = SIZE_MAX,
                            size_t max_taken = SIZE_MAX);
  static constexpr size_t kRetakesPerRequest = 4;
  // Leased ports still without their reservation.
  size_t unreserved_leases() const { return unreserved_.size(); }
  // Whether `port` is one of them. O(unreserved_leases()).
  bool IsUnreserved(uint16_t port) const {
    return std::find(unreserved_.begin(), unreserved_.end(), port) !=
           unreserved_.end();
  }

  // Changes options.sweep_per_request, e.g. once exit notifications work.
  void set_sweep_per_request(size_t n) { sweep_per_request_ = n; }
  // Most ports one owner may hold (options.max_ports_per_owner; 0: no limit).
  size_t max_ports_per_owner() const { return options_.max_ports_per_owner; }

  size_t pool_size() const { return pool_size_; }
  size_t free_ports() const { return free_.size(); }
  // Busy ports waiting for their next probe.
  size_t cooling_ports() const { return cooling_.size(); }
  // Ports last found kReuseAddrOnly (TIME_WAIT), waiting for their next
  // probe or to be handed out when nothing kFree is left.
  size_t reuse_addr_only_ports() const { return reuse_only_.size(); }

 private:
  // What every request does first: a tick of the backoff clock, the ports
  // due back to the queue, the ports of an earlier process with the same
  // pid and of the owners the sweep finds dead reclaimed.
  void BeginRequest(const Owner& owner, Allocation& result);
  // Allocate() after its BeginRequest(), into `result`; AllocateMany's
  // fallback, within its one request.
  void AllocateBegun(const Owner& owner, Allocation& result);
  // AllocateMany() after its BeginRequest(), into `result`.
  void AllocateManyBegun(const Owner& owner, size_t count,
                         std::vector<uint16_t>* ports, Allocation& result);
  // Probes up to `want` ports from the front of the queue together and
  // leases the free ones to `owner` (appended to `ports`); busy and
  // TIME_WAIT ones are set aside. False if the probe could not tell
  // (kUnknown): the ports from that one on keep their places.
  bool TryBatch(size_t want, const Owner& owner, Allocation& result,
                std::vector<uint16_t>* ports);
  // The port, which the probe found in `state` (not kUnknown), is leased to
  // `owner` (true), or set aside: busy, or (kReuseAddrOnly) kept for when
  // nothing a plain bind() takes is left.
  bool TakeOrSetAside(uint16_t port, PortState state, const Owner& owner,
                      Allocation& result);
  // Tries up to `count` ports from the front of the queue.
  bool TryQueue(size_t count, const Owner& owner, Allocation& result);
  // Probes again up to busy_retries_when_exhausted ports that earlier
  // requests set aside as busy, due soonest first; leases the first one
  // found leasable. Ports this request set aside are not probed again.
  bool TryCooling(const Owner& owner, Allocation& result);
  // Tries the ports last found kReuseAddrOnly, oldest first, until one can
  // be leased; each probe either leases or moves a busy port to cooling_.
  bool TryReuseAddrOnly(const Owner& owner, Allocation& result);
  // Leases `port`, which the probe found in `state` (leasable), to `owner`;
  // false (and the reservation released) if the ledger refuses.
  bool Take(uint16_t port, PortState state, const Owner& owner,
            Allocation& result);
  // Sets a busy (or, with `reuse_only`, a kReuseAddrOnly) port aside, to be
  // probed again after its backoff.
  void SetAside(uint16_t port, bool reuse_only, Allocation& result);
  // Returns the ports whose backoff has run out to the queue.
  void Thaw();
  // Returns leased ports to the queue (and their reservations to the port
  // probe), at the back, or at the front when they are needed at once.
  void Requeue(const std::vector<uint16_t>& ports, bool to_front,
               Allocation& result);

  Ledger& ledger_;
  ProcessProbe& process_probe_;
  PortProbe& port_probe_;
  const AllocationPolicyOptions options_;
  size_t sweep_per_request_;
  const size_t pool_size_;
  std::deque<uint16_t> free_;  // Not leased; front is next.
  uint64_t clock_ = 0;         // Requests seen: the backoff's clock.
  // Restored leases whose port the probe could not reserve (yet), in the
  // order they are tried again.
  std::deque<uint16_t> unreserved_;
  // Busy ports by the request after which they are probed again.
  std::multimap<uint64_t, uint16_t> cooling_;
  // Ports last found kReuseAddrOnly, by the request after which they rejoin
  // the queue (to be probed again; TIME_WAIT ends after about a minute).
  std::multimap<uint64_t, uint16_t> reuse_only_;
  std::unordered_map<uint16_t, uint64_t> backoff_;  // Current backoff, by port.
};

}  // namespace portserver

#endif  // PORTSERVER_DOMAIN_ALLOCATION_POLICY_H_
