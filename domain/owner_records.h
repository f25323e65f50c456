// OwnerRecords: what the extended protocol tells about each owner (its user
// and command line at its first lease), kept once per owner, not per port,
// so that a pool leased by plain requests costs a record per process only.
// LeaseNotes: what it tells about each lease (its label and when it was
// taken), 6 bytes for each port number from 0 up to the highest noted (a
// pool of 63000-63499: about 381 KB; the vectors' spare capacity can double
// it), plus each distinct label once.
// Plus the views the listing verbs return.
//
// Example:
//   OwnerRecords records;
//   bool created = false;
//   OwnerInfo& info = records.Upsert(Owner{pid, incarnation}, &created);
//   if (created) info.command_line = process_info.CommandLine(pid, 256);
//   records.Prune(ledger);   // forgets owners whose leases ended
//
// Thread-compatible.
#ifndef PORTSERVER_DOMAIN_OWNER_RECORDS_H_
#define PORTSERVER_DOMAIN_OWNER_RECORDS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "domain/ledger.h"

namespace portserver {

struct OwnerInfo {
  uint64_t incarnation = 0;
  bool uid_known = false;
  uint32_t uid = 0;
  int64_t since_unix_ms = -1;  // Its first lease (ms since the Unix epoch).
  int64_t last_unix_ms = -1;   // Its latest lease.
  std::string command_line;    // At its first lease; "" if unknown.
  // Not read yet: PortService reads it once the reply is sent
  // (CompleteOwnerRecords), or at the first listing before that.
  bool command_line_pending = false;
  // Read again once by a listing, having been empty at lease time.
  bool command_line_reread = false;
};

class OwnerRecords {
 public:
  // The record of `owner` (pid and incarnation), or null.
  const OwnerInfo* Find(const Owner& owner) const;
  OwnerInfo* Find(const Owner& owner);
  // The record of `owner`, created empty (and *created set) if missing or
  // if the pid's record is of another incarnation.
  OwnerInfo& Upsert(const Owner& owner, bool* created);
  // Forgets records whose owner `ledger` no longer holds. Cheap to call
  // often: it does the O(records) pass only once there are more than twice
  // as many records as owners (plus 64).
  void Prune(const Ledger& ledger);
  size_t size() const { return by_pid_.size(); }

 private:
  std::unordered_map<int64_t, OwnerInfo> by_pid_;
};

// The label and lease time of each leased port. A long-lived process may
// lease ports for several tests (labels) one after another: each lease
// keeps its own. Memory: a 32-bit lease time (seconds since the Unix epoch)
// and a 16-bit index into a table of distinct labels, refcounted, per port
// up to the highest noted; labels are stored once however many ports carry
// them. A note outlives its lease until the port is noted again or Prune
// runs; the listing only asks about leased ports.
//
// Thread-compatible.
class LeaseNotes {
 public:
  struct Note {
    int64_t unix_ms = -1;    // When the lease was taken, to the second; -1 if
                             // unknown.
    std::string_view label;  // "" if none. Valid until the next Set/Prune.
  };
  // Notes that `port` was leased at `unix_ms` (ms since the Unix epoch, -1
  // if unknown) with `label` ("" for none), replacing its previous note.
  void Set(uint16_t port, int64_t unix_ms, std::string_view label);
  // Forgets the note of `port`.
  void Clear(uint16_t port);
  // The note of `port`: unknown time and no label if none.
  Note Get(uint16_t port) const;
  // Forgets the notes of ports `ledger` no longer holds, once labels are
  // more than twice the leased ports (plus 64): amortised O(1) per Set.
  void Prune(const Ledger& ledger);
  size_t labels() const { return labels_.size() - free_ids_.size() - 1; }

 private:
  struct Label {
    std::string text;
    uint32_t refs = 0;
  };
  void Unref(uint16_t id);

  std::vector<uint32_t> seconds_;                      // By port; 0 if unknown.
  std::vector<uint16_t> label_id_;                     // By port; 0 for none.
  std::vector<Label> labels_ = std::vector<Label>(1);  // [0] is "no label".
  std::vector<uint16_t> free_ids_;
  std::unordered_map<std::string, uint16_t> ids_;
};

// One lease as the listing verbs show it.
struct LeaseView {
  uint16_t port = 0;
  int64_t pid = 0;
  uint64_t incarnation = 0;
  int64_t start_unix_ms = -1;  // The owner's start; -1 if unknown.
  bool uid_known = false;
  uint32_t uid = 0;
  int64_t since_unix_ms = -1;  // When this lease was taken (to the second).
  std::string label;           // The label given with this lease.
  std::string command_line;
  bool command_line_hidden = false;  // The caller may not see it.
  // Kept without its reservation (PortProbe::Reserve failed at restore: a
  // neighbouring server held the port's lock, or descriptors ran out), so
  // that another server may lease the port too until it is retaken. Set by
  // PortService::Describe only.
  bool unreserved = false;
};

// Which leases to list: ports after `after`, matching the filters.
struct LeaseQuery {
  std::optional<int64_t> owner;
  std::optional<std::string> label;
  uint16_t after = 0;
  size_t limit = 100;  // 1 to kMaxLeasesPerPage.
};

struct LeasePage {
  std::vector<LeaseView> leases;  // In port order.
  // Ask again with after = next_after for more; 0 when the listing is done.
  uint16_t next_after = 0;
};

// What `who` tells about one port.
struct PortReport {
  enum class State {
    kLeased,     // `lease` says to whom.
    kFree,       // In the pool, not leased, and a plain bind() takes it now.
    kTimeWait,   // In the pool, not leased, but only a bind with
                 // SO_REUSEADDR takes it now (a TIME_WAIT socket lingers).
    kBusy,       // In the pool, not leased, but in use outside the server.
    kLocked,     // In the pool, not leased here, but another port server
                 // holds its lock (PortProbe::HeldByAnotherServer).
    kUnknown,    // In the pool, not leased; the probe could not tell.
    kNotInPool,  // Not the server's to lease.
    kCarried,    // Not in the pool, but its lease, journaled under another
                 // pool, is carried for its live owner (PortService::
                 // Restore): `lease` says to whom (pid, label and lease
                 // time; no uid nor command line).
  };
  uint16_t port = 0;
  State state = State::kNotInPool;
  LeaseView lease;  // When kLeased or kCarried.
};

// "leased", "free", "time-wait", "busy", "locked", "unknown", "not-in-pool",
// "carried".
const char* PortReportStateName(PortReport::State state);

struct ReleaseOutcome {
  bool ok = false;
  std::string code;     // When !ok: "not-leased", "permission-denied".
  std::string message;  // When !ok, for people.
  std::vector<uint16_t> released;  // When ok.
  // When ok: the journal could not be rewritten without these leases (it
  // fell behind: a crash before it catches up would restore them), and
  // why. Logged once, as a grant that cannot be journaled is.
  bool journal_fell_behind = false;
  std::string store_error;
};

// The pool now.
struct PoolView {
  size_t pool = 0;
  size_t free = 0;  // Waiting in the queue.
  size_t leased = 0;
  size_t cooling = 0;  // Found busy, waiting for their next probe.
  size_t owners = 0;
};

// One of the biggest holders, for the log when the pool runs out.
struct HolderSummary {
  int64_t pid = 0;
  size_t ports = 0;
  // The labels its leases were asked with ("" for none) and how many ports
  // each: most first, then by label. A long-lived runner asks for several.
  std::vector<std::pair<std::string, size_t>> labels;
  std::string command_line;
};

}  // namespace portserver

#endif  // PORTSERVER_DOMAIN_OWNER_RECORDS_H_
