// Fuzz target for ParseJournal, the lease journal read back at start-up.
//
// Properties:
//   - ParseJournal never crashes (and ASan/UBSan see nothing wrong).
//   - Every lease it returns re-encodes with JournalLease to a line present
//     in the input: nothing is made up, and what is kept is what was written.
//   - Problems are one line each, at most 20 described plus one summary.
//   - Round trip: ParseJournal(JournalSnapshot(r.leases)) gives r.leases
//     back, with no problems.
//   - Every note belongs to a lease it returns (same port and owner), and a
//     snapshot written with each port's last note reads back the same
//     leases, no problems, and only notes that say what that note said.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "domain/lease_journal.h"
#include "fuzz/fuzz_check.h"

namespace portserver {
namespace {

using fuzz::IsOneLine;
using fuzz::Printable;

constexpr size_t kMaxProblems = 20 + 1;  // Described, plus "and N more".

// ParseJournal of `snapshot` (a `kind` snapshot of `leases`): no problems,
// and `leases` back.
JournalReplay ReadBack(const std::string& snapshot, const std::string& kind,
                       const std::vector<std::pair<uint16_t, Owner>>& leases) {
  JournalReplay back = ParseJournal(snapshot);
  FUZZ_CHECK(back.problems.empty(),
             kind + " '" + Printable(snapshot) + "' has problems, first: " +
                 (back.problems.empty() ? "" : back.problems.front()));
  FUZZ_CHECK(back.leases == leases,
             kind + " '" + Printable(snapshot) + "' does not round-trip");
  return back;
}

void Check(std::string_view text) {
  JournalReplay r = ParseJournal(text);

  // Complete lines of the input, newline included (as JournalLease ends);
  // a CRLF line as the LF line it is read as.
  std::unordered_set<std::string> lines;
  for (std::string_view rest = text;;) {
    size_t newline = rest.find('\n');
    if (newline == std::string_view::npos) break;
    std::string line(rest.substr(0, newline + 1));
    if (line.size() >= 2 && line[line.size() - 2] == '\r') {
      line.erase(line.size() - 2, 1);
    }
    lines.insert(std::move(line));
    rest.remove_prefix(newline + 1);
  }

  for (const auto& [port, owner] : r.leases) {
    std::string line = JournalLease(port, owner);
    FUZZ_CHECK(lines.count(line) == 1, "lease '" + Printable(line) +
                                           "' is not a line of the input '" +
                                           Printable(text) + "'");
  }
  FUZZ_CHECK(r.leases.size() <= r.lines, "more leases than lines");
  FUZZ_CHECK(r.problems.size() <= kMaxProblems,
             std::to_string(r.problems.size()) + " problems described");
  for (const std::string& problem : r.problems) {
    FUZZ_CHECK(IsOneLine(problem),
               "problem is not one line: '" + Printable(problem) + "'");
  }

  std::map<uint16_t, JournalNote> last_note;
  for (const JournalNote& note : r.notes) {
    FUZZ_CHECK(
        std::find(r.leases.begin(), r.leases.end(),
                  std::make_pair(note.port, note.owner)) != r.leases.end(),
        "note of port " + std::to_string(note.port) +
            " has no lease of its owner in '" + Printable(text) + "'");
    last_note[note.port] = note;
  }
  std::string noted = JournalSnapshot(r.leases, [&](uint16_t port) {
    auto it = last_note.find(port);
    return it == last_note.end() ? JournalNote{} : it->second;
  });
  JournalReplay back = ReadBack(noted, "noted snapshot", r.leases);
  for (const JournalNote& note : back.notes) {
    auto it = last_note.find(note.port);
    FUZZ_CHECK(it != last_note.end(),
               "noted snapshot '" + Printable(noted) + "' makes up a note");
    if (it == last_note.end()) continue;
    // 0 and -1 both mean "unknown" (JournalLeaseNote).
    int64_t seconds =
        it->second.unix_seconds > 0 ? it->second.unix_seconds : -1;
    FUZZ_CHECK(note.unix_seconds == seconds && note.label == it->second.label,
               "noted snapshot '" + Printable(noted) +
                   "' changes the note of "
                   "port " +
                   std::to_string(note.port));
  }

  std::string snapshot = JournalSnapshot(r.leases);
  JournalReplay again = ReadBack(snapshot, "snapshot", r.leases);
  FUZZ_CHECK(again.lines == r.leases.size() + 1,
             "snapshot '" + Printable(snapshot) + "' has " +
                 std::to_string(again.lines) + " lines");
}

}  // namespace
}  // namespace portserver

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  portserver::Check(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
