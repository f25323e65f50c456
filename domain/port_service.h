// PortService: the port server's use cases behind one thread-safe object.
// It checks who asks, asks the AllocationPolicy for a port, keeps the
// statistics the reference server reports, and speaks the wire format as a
// RequestHandler for any Transport.
//
// Example (embedding, no sockets):
//   PortService service(pool, my_process_probe, my_port_probe);
//   Decision d = service.Allocate(job_id);     // d.granted(), d.port
//   service.OwnerExited(job_id);               // ports come back
//
// Thread-safe. Both probes must outlive the service.
#ifndef PORTSERVER_DOMAIN_PORT_SERVICE_H_
#define PORTSERVER_DOMAIN_PORT_SERVICE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/allocation_policy.h"
#include "domain/lease_journal.h"
#include "domain/lease_store.h"
#include "domain/ledger.h"
#include "domain/owner_records.h"
#include "domain/port_probe.h"
#include "domain/process_info.h"
#include "domain/process_probe.h"
#include "domain/transport.h"

namespace portserver {

enum class Outcome {
  kGranted,
  kMalformed,         // Not a request: counted in client_request_errors.
  kInvalidPid,        // pid <= 0.
  kInit,              // pid 1 of our own pid namespace: the client was
                      // probably reparented to init.
  kNoSuchProcess,     // The process probe says the pid does not exist.
  kThread,            // The pid is a thread id, not a process (as the
                      // reference, through psutil.pid_exists, decides).
  kProbeFailed,       // The process probe could not tell.
  kPoolExhausted,     // Every port is leased to a live owner or busy.
  kQuotaExceeded,     // The owner holds --portserver_max_ports_per_pid ports.
  kOverCapacity,      // The transport was at its connection cap: not read.
  kPermissionDenied,  // A caller other than root named another user's pid.
};

// A stable lower-case name, e.g. "pool-exhausted", for logs.
const char* OutcomeName(Outcome outcome);

// What happened to the journal while a request was decided, for the log.
enum class JournalEvent {
  kNone,
  kFellBehind,  // A write failed: grants are not journaled from now on
                // until a snapshot can be written (store_error says why).
  kCaughtUp,    // A snapshot of every live lease was written after an
                // outage: the journal is complete again.
  kRewritten,   // The store was found deleted or replaced (Intact() false)
                // and a fresh snapshot of every live lease was written.
};

struct Decision {
  Outcome outcome = Outcome::kMalformed;
  int64_t pid = 0;           // As requested (0 if malformed).
  uint64_t incarnation = 0;  // The owner's, when granted.
  uint16_t port = 0;         // When granted.
  Allocation allocation;     // Probe counts, when a policy decision was made.
  std::string detail;        // Why a request was malformed or was mapped.
  int64_t named_pid = 0;     // As the caller named it, before mapping.
  JournalEvent journal_event = JournalEvent::kNone;
  std::string store_error;      // Why, for kFellBehind.
  uint64_t journal_missed = 0;  // For kCaughtUp: grants written late.
  std::string reply;  // Bytes for the client; empty: close without reply.
  std::vector<uint16_t> ports;  // Every port granted (count > 1 requests).
  // A kPoolExhausted denial because no port at all could be had: not a
  // request for more ports than were left, nor a port probe that could not
  // tell (out of descriptors).
  bool pool_ran_out = false;
  // The named pid could not be translated from the caller's pid namespace:
  // d.pid is the caller's (logged at default verbosity when granted).
  bool pid_replaced = false;
  // Set on the first denial of an episode of pool_ran_out (until the next
  // grant): the biggest holders, for the log.
  std::vector<HolderSummary> biggest_holders;
  bool granted() const { return outcome == Outcome::kGranted; }
};

// The reference server's statistics, plus a view of the ledger.
struct Stats {
  uint64_t client_request_errors = 0;
  uint64_t denied_allocations = 0;
  uint64_t num_ports_managed = 0;
  uint64_t num_ports_checked_for_last_request = 0;
  uint64_t total_allocations = 0;
  // Connections turned away unread at the connection cap, or for want of a
  // descriptor (not counted as requests).
  uint64_t refused_connections = 0;
  // Denials by reason (they add up to denied_allocations).
  uint64_t denied_invalid_pid = 0;      // pid <= 0 or 1 (init).
  uint64_t denied_no_such_process = 0;  // Includes probe failures and
                                        // thread ids.
  uint64_t denied_pool_exhausted = 0;
  uint64_t denied_quota = 0;
  uint64_t denied_permission = 0;  // Another user's pid, caller not root.
  // Requests whose pid was named in another pid namespace: translated, or
  // (when that could not be done) leased to the caller itself.
  uint64_t pids_translated = 0;
  uint64_t pids_replaced_by_caller = 0;
  // A view of the ledger and the policy, now.
  uint64_t leased_ports = 0;
  uint64_t owners = 0;
  uint64_t busy_ports_cooling = 0;
  // Ports last found in TIME_WAIT (only a bind with SO_REUSEADDR takes them),
  // set aside until nothing else is free.
  uint64_t time_wait_ports_cooling = 0;
  // Grants of a port in TIME_WAIT, because nothing a plain bind() would take
  // was free.
  uint64_t time_wait_grants = 0;
  // Denials because the port probe could not tell (e.g. out of descriptors;
  // counted in denied_pool_exhausted too).
  uint64_t port_probe_failures = 0;
  // The journal.
  uint64_t journal_errors = 0;  // Failed writes (each attempt).
  uint64_t journal_compactions = 0;
  uint64_t journal_outages = 0;        // Episodes of failed writes.
  uint64_t journal_missed_grants = 0;  // Grants not appended in one.
  uint64_t journal_rewrites = 0;       // Store found deleted and rewritten.
  // Ports given back early (extended protocol "release").
  uint64_t ports_released = 0;
};

class PortService : public RequestHandler {
 public:
  // `pool` as for AllocationPolicy: distinct ports, non-empty.
  PortService(const std::vector<uint16_t>& pool, ProcessProbe& process_probe,
              PortProbe& port_probe, AllocationPolicyOptions options = {});

  // Leases a port to `pid` if it is a live process (other than init, and not
  // a thread id).
  Decision Allocate(int64_t pid);

  // Parses a wire request and decides it. Decision::reply is the answer.
  // When the transport knows the caller (request.peer), the named pid is
  // mapped into our pid namespace (ProcessProbe::MapNamedPid), and a caller
  // other than root (uid 0) may only name processes of its own user. The
  // init rule applies after mapping: pid 1 is denied only as our own init.
  // Also looks after the journal first (see AttachStore).
  Decision Decide(const Request& request);

  // RequestHandler: Decide(request).reply.
  std::string HandleRequest(const Request& request) override;

  // What Decide() does for the journal first, for the other requests (the
  // extended protocol's: ControlService calls it before each): a store that
  // is no longer intact is rewritten, one left behind by a failed write is
  // caught up. The Decision carries only the news (journal_event,
  // store_error, journal_missed) for the log.
  Decision MaintainStore();

  // Notification that `pid` may have exited; see AllocationPolicy. Returns
  // the number of ports that came back; `*unknown` (if given) says whether
  // the process probe could not tell. Carried leases of `pid` (Restore)
  // whose owner has ended are dropped too and their reservations released
  // (they come back to no pool; the journal drops them at its next
  // compaction); `*unknown` also if the probe could not tell for them.
  size_t OwnerExited(int64_t pid, bool* unknown = nullptr);
  // True while `pid` holds a lease or a carried lease: whether its exit
  // still matters. Thread-safe.
  bool Holds(int64_t pid) const;

  // See AllocationPolicy::set_sweep_per_request.
  void SetSweepPerRequest(size_t n);

  // Ports held by `pid` now.
  std::vector<uint16_t> PortsOf(int64_t pid) const;

  // Every lease now, for a snapshot of the journal.
  std::vector<std::pair<uint16_t, Owner>> Leases() const;

  // Restores leases read from the journal, before serving: keeps those whose
  // owner has not ended (OwnerHasEnded: a probe error keeps the lease) and
  // whose port is in the pool and not restored already. Returns how many
  // were restored; restored ports the port probe could not reserve
  // (AllocationPolicy::Restore) are added to `unreserved` if given. Each
  // restored owner's uid (from the probe) and command line (ProcessInfo) are
  // read again, as for a new lease; labels and lease times are unknown.
  size_t Restore(const std::vector<std::pair<uint16_t, Owner>>& leases,
                 std::vector<uint16_t>* unreserved = nullptr);
  // The same for a replayed journal, and each restored lease gets back the
  // label and lease time of its note (JournalReplay::notes: the last note
  // of the same port and owner wins). Notes of leases not restored are
  // ignored.
  //
  // A lease on a port outside the pool (the journal was written under
  // another pool: a mistyped or narrowed --portserver_static_pool) whose
  // owner has not ended is carried: not leased nor served by this server,
  // but written into every snapshot of the journal, with its note, until
  // its owner is found ended (at a compaction or DetachStore()), so that a
  // server started again with that pool restores it. Dropping them let one
  // start with a narrower pool hand those ports out again later while
  // their owners lived (a new user's trial). A carried lease holds its
  // port's reservation (PortProbe::Reserve, released when its owner is
  // found ended), so that a neighbouring server whose pool holds the port
  // does not lease it meanwhile; a carried port that cannot be reserved is
  // added to `unreserved` too. A port is carried once, for the first lease
  // of it read (in this call or an earlier one).
  size_t Restore(const JournalReplay& replay,
                 std::vector<uint16_t>* unreserved = nullptr);
  // The carried leases' ports (see Restore), in journal order.
  std::vector<uint16_t> CarriedPorts() const;
  // Their owners' pids, each once: to be watched for their exits as the
  // owners of leases are (OwnerExited).
  std::vector<int64_t> CarriedOwners() const;
  // The id of this boot (Linux: /proc/sys/kernel/random/boot_id), written
  // into every snapshot of the journal (JournalBootRecord). Restore() keeps
  // no lease of a journal of another boot: its owners ended with it, and a
  // pid and start time may name a process of this boot. "" (the default, or
  // where the platform has none): not written, not checked. Call before
  // Restore() and AttachStore().
  void SetBootId(std::string boot_id);
  // True if `replay` was written in another boot than this one.
  bool FromAnotherBoot(const JournalReplay& replay) const;

  // Tries again to reserve at most `max_tries` of the restored ports
  // Restore() could not, so that a neighbouring server that lets go of one
  // cannot lease it again (AllocationPolicy::RetakeReservations; every
  // request tries a few too), and at most `max_tries` of the carried ones
  // (one no longer carried is done with). Returns how many remain
  // unreserved. Thread-safe.
  size_t RetakeReservations(size_t max_tries = SIZE_MAX);

  // From now on, journals each grant to `store` and compacts it (rewrites
  // it as a snapshot of the ledger) once the appended records outnumber
  // max(compact_after, 2 x current leases). Compacts at once. `store` must
  // outlive the service. Returns the error of that first compaction.
  //
  // When a write fails the journal is behind: grants are no longer appended
  // (a record after a gap would not help), and every later request tries to
  // write a snapshot of every live lease until one succeeds. Every request
  // (Decide(), MaintainStore()) also checks that the store is still there
  // (LeaseStore::Intact) and rewrites it if not.
  StoreResult AttachStore(LeaseStore* store, size_t compact_after = 4096);

  // At a clean stop: if no lease is live, removes the store
  // (LeaseStore::Remove) and returns true (false if the store keeps its
  // files); otherwise looks after the journal
  // as a request does (a journal behind, deleted or replaced is written
  // with every live lease; journal_behind() says if that failed) and
  // returns false. Detaches the store either way.
  bool DetachStore();

  // True while the journal is behind (see AttachStore): it lacks the grants
  // made since a write failed. Stays as the last attempt left it after
  // DetachStore().
  // The attached store's LeaseStore::Location() ("" without one).
  std::string store_location() const;
  bool journal_behind() const;

  Stats stats() const;

  // ProcessProbe::ReleaseCaches(0), for a transport or a watch out of
  // descriptors (RequestHandler::ReleaseDescriptors). Thread-safe.
  bool ReleaseProbeCaches();
  // Counts a connection closed unanswered, as at the connection cap
  // (refused_connections). Thread-safe.
  void CountRefusedConnection();

  // --- The extended protocol (domain/port_service_control.cc). ---

  // From now on records each new owner's command line and times through
  // `info` (null: none recorded). `info` must outlive the service.
  void SetProcessInfo(ProcessInfo* info);

  // Reads the command lines of the owners granted since the last call
  // (ProcessInfo::CommandLine, about 40 us each on Linux): work the client
  // need not wait for, so grants leave it to this call, which the server
  // makes once a reply has been sent (RequestHandler::AfterReply). A
  // listing before it reads them itself; more than kMaxPendingRecords
  // waiting are read at grant time. An owner that is no longer the process
  // it was (gone, pid reused) is not read. Thread-safe.
  void CompleteOwnerRecords();
  static constexpr size_t kMaxPendingRecords = 256;

  // Leases `count` (1 to kMaxPortsPerRequest) ports to `pid`, all or none,
  // with the checks of Decide (mapping, uid rule) for `peer`. `label` (cut
  // to kMaxLabelBytes) is recorded for each of these ports, not for the
  // owner: an owner that asks again with another label has each lease
  // listed under its own. Decision::ports lists them; reply is left empty
  // (the caller formats it).
  Decision AllocateMany(int64_t pid, size_t count, std::string_view label,
                        const PeerCredentials& peer);

  // Ends the leases of `ports` early, all or none: each must be leased or
  // carried, and the caller must be root or run as the user of the port's
  // owner, as the kernel reports it (`peer`; unknown callers may not
  // release). Released ports go back to the queue as reclaimed ones do; a
  // carried one's reservation is let go of (its port is in no queue). The
  // journal is rewritten so that they do not come back at a restart.
  ReleaseOutcome Release(const std::vector<uint16_t>& ports,
                         const PeerCredentials& peer);

  // One page of leases matching `query`, in port order. Looks at no more
  // than a bounded number of ports per call (the rest via next_after).
  // Command lines `peer` may not see are left out (command_line_hidden).
  // query.owner is a pid as `peer` names it (translated from its pid
  // namespace, as Allocate does); the leases show pids of ours.
  LeasePage ListLeases(const LeaseQuery& query, const PeerCredentials& peer);

  // Who holds `port`, or whether it is free, busy or outside the pool (or
  // carried there for its owner: Restore). A port of the pool not leased
  // is probed (and any reservation let go at once).
  PortReport Describe(uint16_t port, const PeerCredentials& peer);

  PoolView pool_view() const;

 private:
  // REQUIRES: mu_ held. `peer` is checked if known. count > 1: all or none.
  Decision AllocateLocked(int64_t pid, const PeerCredentials& peer = {},
                          size_t count = 1, std::string_view label = {});
  // REQUIRES: mu_ held. The count > 1 grant, undone if one port fails.
  // `again`: the same request's second try (AllocationPolicy::
  // AllocateManyAgain: no second tick of the clock, no second sweep).
  void AllocateManyLocked(Decision& d, const ProcessProbe::Result& who,
                          size_t count, bool again = false);
  // REQUIRES: mu_ held; d granted. Records the owner, fills d.ports.
  void RecordOwnerLocked(Decision& d, const ProcessProbe::Result& who,
                         std::string_view label);
  // REQUIRES: mu_ held. Tracks pool-exhaustion episodes.
  void NoteOutcomeLocked(Decision& d);
  // REQUIRES: mu_ held. CompleteOwnerRecords.
  void CompleteOwnerRecordsLocked();
  // REQUIRES: mu_ held. Reads `owner`'s command line into `info` if the
  // process with its pid is still that owner (same start time).
  void ReadCommandLineLocked(const Owner& owner, OwnerInfo& info);
  // REQUIRES: mu_ held. The lease as `peer` may see it.
  LeaseView ViewLocked(uint16_t port, const Owner& owner,
                       ProcessInfo::Access access, const PeerCredentials& peer);
  void Count(Outcome outcome);            // REQUIRES: mu_ held.
  StoreResult CompactLocked();            // REQUIRES: mu_ held.
  void Journal(Decision& d);              // REQUIRES: mu_ held; d granted.
  void MaintainStoreLocked(Decision& d);  // REQUIRES: mu_ held.
  Decision DecideLocked(const Request& request);  // REQUIRES: mu_ held.
  // REQUIRES: mu_ held. The note (label, lease time) of `port` that Journal
  // and CompactLocked write after its lease: Journal is called after
  // RecordOwnerLocked has set it.
  JournalNote NoteLocked(uint16_t port) const;
  // Adds the probe counts of a request's first try to its second's.
  static void AddCounts(const Allocation& from, Allocation& to);
  // REQUIRES: mu_ held. Drops the carried leases whose owners have ended.
  void PruneCarriedLocked();
  // REQUIRES: mu_ held. PruneCarriedLocked() for `pid`'s carried leases
  // alone. True if it has some and the process probe could not tell.
  bool ForgetCarriedOfLocked(int64_t pid);
  // REQUIRES: mu_ held. The carried lease of `port` (each port is carried
  // once), or null.
  const JournalNote* CarriedLocked(uint16_t port) const;
  // REQUIRES: mu_ held. Drops the carried leases `ended` says so of (called
  // once each), releasing their reservations, which go first to restored
  // leases still without theirs (AllocationPolicy::RetakeReservations).
  // Returns how many.
  size_t DropCarriedLocked(
      const std::function<bool(const JournalNote&)>& ended);

  mutable std::mutex mu_;
  ProcessProbe& process_probe_;  // Guarded by mu_ (thread-compatible).
  Ledger ledger_;                // Guarded by mu_.
  AllocationPolicy policy_;      // Guarded by mu_.
  Stats stats_;                  // Guarded by mu_.
  LeaseStore* store_ = nullptr;  // Guarded by mu_; may be null.
  size_t compact_after_ = 0;     // Guarded by mu_.
  size_t appended_ = 0;          // Guarded by mu_: records since compaction.
  bool journal_behind_ = false;  // Guarded by mu_: a grant is not in it.
  std::string boot_id_;          // Guarded by mu_ (SetBootId).
  uint64_t missed_ = 0;          // Guarded by mu_: grants in this outage.
  PortProbe& port_probe_;        // Guarded by mu_.
  ProcessInfo* info_ = nullptr;  // Guarded by mu_; may be null.
  OwnerRecords records_;         // Guarded by mu_.
  // Guarded by mu_: owners whose command line is still to be read.
  std::vector<Owner> pending_records_;
  LeaseNotes notes_;  // Guarded by mu_: label and time by port.
  // Guarded by mu_: leases outside the pool carried in the journal, each
  // with its note (see Restore).
  std::vector<JournalNote> carried_;
  // Carried ports Restore() could not reserve, in turn for
  // RetakeReservations().
  std::deque<uint16_t> carried_unreserved_;
  // Carried leases were dropped since the last snapshot: the journal still
  // names them (a stop rewrites it).
  bool carried_dropped_ = false;
  std::vector<bool> in_pool_;  // By port. Constant after construction.
  size_t pool_first_ = 65536;  // The pool's lowest and highest ports.
  size_t pool_last_ = 0;
  bool exhausted_ = false;  // Guarded by mu_: in an exhaustion episode.
};

}  // namespace portserver

#endif  // PORTSERVER_DOMAIN_PORT_SERVICE_H_
