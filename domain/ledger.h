// Ledger: who holds which port. An owner is a pid plus the incarnation the
// ProcessProbe reported when it was first seen; its ports become reusable
// once that pid is gone or alive with another incarnation (the pid was
// reused), never before.
//
// Example:
//   Ledger ledger;
//   ledger.Lease(15000, Owner{1234, start_time});
//   std::vector<uint16_t> back = ledger.ReclaimIfGone(1234, probe);
//
// Thread-compatible. Memory: 8 bytes per port up to the highest leased, plus
// 2 per lease and O(owners).
#ifndef PORTSERVER_DOMAIN_LEDGER_H_
#define PORTSERVER_DOMAIN_LEDGER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "domain/process_probe.h"

namespace portserver {

struct Owner {
  int64_t pid = 0;
  uint64_t incarnation = 0;
  bool operator==(const Owner& o) const {
    return pid == o.pid && incarnation == o.incarnation;
  }
  bool operator!=(const Owner& o) const { return !(*this == o); }
};

// The one rule for when a lease ends: its owner is gone, or alive as
// another incarnation (the pid was reused). A probe error ends nothing.
bool OwnerHasEnded(const Owner& owner, const ProcessProbe::Result& now);

class Ledger {
 public:
  Ledger() = default;
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Records `port` as held by `owner`. Returns false, changing nothing, if
  // the port is already held, if `owner.pid` is on record with another
  // incarnation (release that one first), or for port 0 or a pid <= 0.
  bool Lease(uint16_t port, const Owner& owner);

  // Forgets `pid` and returns the ports it held (empty if none).
  std::vector<uint16_t> Release(int64_t pid);

  // Forgets the leases of `ports` held by `pid` (others are left alone), and
  // `pid` itself once it holds none. Returns the ports released, in the
  // order given. O(ports of pid x ports given).
  std::vector<uint16_t> ReleasePorts(int64_t pid,
                                     const std::vector<uint16_t>& ports);

  // Probes `pid` if it is on record and releases its ports if it is gone or
  // alive as another incarnation. A probe error keeps the lease, and sets
  // `*unknown` (if given; false otherwise). Returns the ports released.
  std::vector<uint16_t> ReclaimIfGone(int64_t pid, ProcessProbe& probe,
                                      bool* unknown = nullptr);

  // Checks up to `budget` owners, continuing round-robin after the owner the
  // previous sweep stopped at, and releases those that are gone. Returns the
  // ports released. Cost: O(budget) probes, whatever the ledger's size.
  std::vector<uint16_t> Sweep(ProcessProbe& probe, size_t budget);

  std::optional<Owner> HolderOf(uint16_t port) const;
  std::optional<Owner> FindOwner(int64_t pid) const;
  // Ports held by `pid`, in lease order; empty if none.
  std::vector<uint16_t> PortsOf(int64_t pid) const;
  // How many ports `pid` holds, without copying them.
  size_t PortCount(int64_t pid) const;
  // Every lease, by owner: for snapshots (the journal's compaction).
  std::vector<std::pair<uint16_t, Owner>> Leases() const;

  size_t leased_ports() const { return leased_ports_; }
  size_t owners() const { return owners_.size(); }

 private:
  struct Entry {
    uint64_t incarnation = 0;
    std::vector<uint16_t> ports;
  };

  std::map<int64_t, Entry> owners_;  // Ordered: sweeps resume by pid.
  // port -> pid, 0 if free. Dense (8 bytes a port, grown to the highest
  // port leased): a node-based map costs about 40 bytes a lease.
  std::vector<int64_t> holder_;
  size_t leased_ports_ = 0;
  int64_t sweep_after_ = 0;  // The last pid a sweep looked at.
};

}  // namespace portserver

#endif  // PORTSERVER_DOMAIN_LEDGER_H_
