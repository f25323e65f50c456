// OwnerRecords: what the extended protocol tells about each owner (its user,
// command line and label at lease time, when it took its ports), kept once
// per owner, not per port, so that a pool leased by plain requests costs a
// record per process only. Plus the views the listing verbs return.
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
#include <unordered_map>
#include <vector>

#include "domain/ledger.h"

namespace portserver {

struct OwnerInfo {
  uint64_t incarnation = 0;
  bool uid_known = false;
  uint32_t uid = 0;
  int64_t since_unix_ms = -1;  // Its first lease (ms since the Unix epoch).
  int64_t last_unix_ms = -1;   // Its latest lease.
  std::string label;           // The first non-empty label it was given.
  std::string command_line;    // At its first lease; "" if unknown.
};

class OwnerRecords {
 public:
  // The record of `owner` (pid and incarnation), or null.
  const OwnerInfo* Find(const Owner& owner) const;
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

// One lease as the listing verbs show it.
struct LeaseView {
  uint16_t port = 0;
  int64_t pid = 0;
  uint64_t incarnation = 0;
  int64_t start_unix_ms = -1;  // The owner's start; -1 if unknown.
  bool uid_known = false;
  uint32_t uid = 0;
  int64_t since_unix_ms = -1;  // When the owner took its first port.
  std::string label;
  std::string command_line;
  bool command_line_hidden = false;  // The caller may not see it.
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
    kUnknown,    // In the pool, not leased; the probe could not tell.
    kNotInPool,  // Not the server's to lease.
  };
  uint16_t port = 0;
  State state = State::kNotInPool;
  LeaseView lease;  // When kLeased.
};

// "leased", "free", "time-wait", "busy", "unknown", "not-in-pool".
const char* PortReportStateName(PortReport::State state);

struct ReleaseOutcome {
  bool ok = false;
  std::string code;     // When !ok: "not-leased", "permission-denied".
  std::string message;  // When !ok, for people.
  std::vector<uint16_t> released;  // When ok.
};

// The pool now.
struct PoolView {
  size_t pool = 0;
  size_t free = 0;     // Waiting in the queue.
  size_t leased = 0;
  size_t cooling = 0;  // Found busy, waiting for their next probe.
  size_t owners = 0;
};

// One of the biggest holders, for the log when the pool runs out.
struct HolderSummary {
  int64_t pid = 0;
  size_t ports = 0;
  std::string label;
  std::string command_line;
};

}  // namespace portserver

#endif  // PORTSERVER_DOMAIN_OWNER_RECORDS_H_
