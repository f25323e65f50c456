// The lease journal's format: a text file that survives the server, so that
// a restart never hands out a port still leased to a live owner.
//
//   portserver-journal 1
//   L <port> <pid> <incarnation> <checksum>
//
// One line per lease granted, appended as it is granted; compaction rewrites
// the file as the header plus one line per current lease. The checksum
// (FNV-1a, 8 hex digits) covers the rest of the line, so a torn or damaged
// line is recognised and skipped alone: every intact line still counts.
// Leases are never "released" in the file: on replay, the owner of each is
// probed and only leases of owners alive as the same incarnation are kept.
//
// Example:
//   std::string text = JournalHeader() + JournalLease(15000, {1234, 99});
//   JournalReplay r = ParseJournal(text);   // r.leases == {{15000, {1234,
//   99}}}
//
// Thread-safe (pure functions).
#ifndef PORTSERVER_DOMAIN_LEASE_JOURNAL_H_
#define PORTSERVER_DOMAIN_LEASE_JOURNAL_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/ledger.h"

namespace portserver {

std::string JournalHeader();
std::string JournalLease(uint16_t port, const Owner& owner);
// The whole file for a snapshot of the ledger.
std::string JournalSnapshot(
    const std::vector<std::pair<uint16_t, Owner>>& leases);

struct JournalReplay {
  std::vector<std::pair<uint16_t, Owner>> leases;  // Intact lines, in order.
  std::vector<std::string> problems;  // One line each: "line 7: bad checksum".
  size_t lines = 0;                   // Lines seen, damaged ones included.
};

// Never fails: damaged parts are reported in `problems` and skipped. At most
// the first 20 problems are described; the rest are counted in the last one.
JournalReplay ParseJournal(std::string_view text);

}  // namespace portserver

#endif  // PORTSERVER_DOMAIN_LEASE_JOURNAL_H_
