// The lease journal's format: a text file that survives the server, so that
// a restart never hands out a port still leased to a live owner, and a
// restored lease keeps its label and lease time.
//
//   portserver-journal 1
//   B <boot id> <checksum>
//   L <port> <pid> <incarnation> <checksum>
//   N <port> <unix-seconds> <label> <checksum>
//
// The B record, right after the header of each snapshot, names the boot the
// journal was written in (JournalBootRecord); journals of older servers
// have none.
// One L record per lease granted, appended as it is granted; compaction
// rewrites the file as the header plus the records of each current lease.
// The checksum (FNV-1a, 8 hex digits) covers the rest of the line, so a torn
// or damaged line is recognised and skipped alone: every intact line still
// counts. Leases are never "released" in the file: on replay, the owner of
// each is probed and only leases of owners alive as the same incarnation are
// kept.
//
// An N record (the lease's note) follows the L record of the same lease on
// the very next line, in appends and snapshots alike: when the lease was
// taken (seconds since the Unix epoch, "-" if unknown) and the label the
// client gave with it (percent-encoded as in the extended protocol,
// domain/control_protocol.h, so never a space; at most kMaxLabelBytes
// decoded, no control character; "-" for none, and a label that is exactly
// "-" is written "%2D"). It is written only when there is something to say
// (a time or a label), and applies only to the L record right before it. A
// damaged note is skipped alone (reported), its lease still restored
// without label and time; the note of a damaged L line is skipped with it
// (only the damaged line is reported); any other note that does not follow
// an L record of its port is reported and skipped.
// An N line is at most about 420 bytes (a 128-byte label of bytes that all
// need escaping). A snapshot of a full pool (65,535 leases, 7-digit pids,
// 20-digit incarnations) is 3.0 MB without notes, 5.0 MB with lease times
// only, 7.1 MB with 33-byte labels and 30 MB at worst (lease_journal_test's
// SizeOfAFullPoolSnapshot prints the figures); appends between compactions
// add at most twice that (PortService::AttachStore).
//
// Older servers (before notes) still restore every L record of such a file:
// they report each N line as damaged ("line 3: not a lease record, skipped",
// the first 20, then "and N more damaged lines") and their start-up
// compaction rewrites the journal without notes. The header is unchanged.
//
// Example:
//   std::string text = JournalHeader() + JournalLease(15000, {1234, 99}) +
//                      JournalLeaseNote(15000, 1764470012, "//pkg:test");
//   JournalReplay r = ParseJournal(text);
//   // r.leases == {{15000, {1234, 99}}}
//   // r.notes == {{15000, {1234, 99}, 1764470012, "//pkg:test"}}
//
// Thread-safe (pure functions).
#ifndef PORTSERVER_DOMAIN_LEASE_JOURNAL_H_
#define PORTSERVER_DOMAIN_LEASE_JOURNAL_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/ledger.h"

namespace portserver {

std::string JournalHeader();
std::string JournalLease(uint16_t port, const Owner& owner);

// What an N record says about the lease in the L record before it.
struct JournalNote {
  uint16_t port = 0;
  Owner owner;                // From the L record it follows.
  int64_t unix_seconds = -1;  // When the lease was taken; -1 if unknown.
  std::string label;          // "" if none.
  bool operator==(const JournalNote& o) const {
    return port == o.port && owner == o.owner &&
           unix_seconds == o.unix_seconds && label == o.label;
  }
};

// The N record of the lease of `port` taken at `unix_seconds` (-1 or 0:
// unknown) with `label` ("" for none; cut to kMaxLabelBytes): to be written
// right after that lease's JournalLease line. "" when there is nothing to
// note (time unknown and no label).
std::string JournalLeaseNote(uint16_t port, int64_t unix_seconds,
                             std::string_view label);

// The L record of the lease, then its N record (JournalLeaseNote: none when
// there is nothing to note): what a grant appends and a snapshot holds for
// each lease.
std::string JournalLeaseWithNote(uint16_t port, const Owner& owner,
                                 int64_t unix_seconds, std::string_view label);
// The same records appended to `out` (no string of their own: a grant of
// many ports, and a snapshot, build one text).
void AppendJournalLeaseWithNote(std::string& out, uint16_t port,
                                const Owner& owner, int64_t unix_seconds,
                                std::string_view label);

// The B record: the id of the boot (Linux: /proc/sys/kernel/random/boot_id)
// the journal was written in, right after the header of a snapshot. A
// journal of another boot holds no live lease: its owners ended with it,
// and a pid and start time (clock ticks after boot) may name a process of
// this boot. `boot_id`: 1 to 64 bytes, no space, no control character.
std::string JournalBootRecord(std::string_view boot_id);

// The whole file for a snapshot of the ledger, without notes.
std::string JournalSnapshot(
    const std::vector<std::pair<uint16_t, Owner>>& leases);
// The same, each lease followed by its note: `note_of(port)` gives its time
// and label (JournalNote::owner is not used).
std::string JournalSnapshot(
    const std::vector<std::pair<uint16_t, Owner>>& leases,
    const std::function<JournalNote(uint16_t port)>& note_of,
    std::string_view boot_id = "");

// True if `text` may be the server's journal: empty (a new journal), its
// first line the header (a
// journal; later damaged lines are ParseJournal's business), or holding an
// intact lease record (a journal whose header was damaged, or which was
// truncated while the server ran). Anything else is someone else's file,
// which the server must refuse to take as its journal: compaction would
// overwrite it and a clean stop delete it. `text` may be just the start of
// a file (a record cut at its end is not looked at).
bool StartsAsJournal(std::string_view text);

// Why a file `what` names ("state file X", "X.tmp") that fails
// StartsAsJournal is refused: the message both platforms' stores give.
std::string NotAJournalMessage(std::string_view what);

struct JournalReplay {
  std::vector<std::pair<uint16_t, Owner>> leases;  // Intact lines, in order.
  // Intact N records that follow an intact L record of their port, in
  // order; a later note of the same lease wins.
  std::vector<JournalNote> notes;
  std::vector<std::string> problems;  // One line each: "line 7: bad checksum".
  std::string boot_id;  // Of its last intact B record; "" if none.
  size_t lines = 0;     // Lines seen, damaged ones included.
};

// Never fails: damaged parts are reported in `problems` and skipped. At most
// the first 20 problems are described; the rest are counted in the last one.
JournalReplay ParseJournal(std::string_view text);

// The name (before its suffixes) of a server's default journal, from the
// text that names its address ("unittest-portserver" for
// "@unittest-portserver", "/run/x.sock", a pipe name): each byte other than
// ASCII letters, digits, '-', '_' and '.' written '_'; then, if any byte was
// rewritten, '-' and the FNV-1a of the whole text in 8 hex digits, so that
// addresses that differ only in such bytes get journals of their own
// ("x a" and "x_a"; "/run/a/b" and "/run/a_b"; two non-ASCII pipe names of
// one length). A name longer than kMaxJournalStem is cut there and gets
// the digits too, so that with its suffixes (".netns-<inode>.journal.lock")
// it stays within the 255 bytes of a file name (NAME_MAX; NTFS likewise):
// a Windows pipe name of 243 characters, or a relative socket path made
// absolute in a deep directory, could not open its journal.
// E.g. "/run/x.sock" -> "_run_x.sock-0f3c55b8", "unittest-portserver" ->
// itself.
inline constexpr size_t kMaxJournalStem = 190;
std::string JournalFileName(std::string_view address_text);
// The name before portserver 0.4.2, without the FNV-1a part: a server looks
// for its journal under this name too, so that an upgrade keeps its leases.
std::string LegacyJournalFileName(std::string_view address_text);
// Whether a journal found under a name of servers before 0.4.2
// (LegacyJournalFileName) may be taken as this server's: every lease in
// `text` is on a port of `pool`. That name is also the current name of
// another address's journal ("x_a" for "@x_a" as for "@x:a" before), whose
// leases a server with another pool would drop as outside it; a journal
// with such leases is left to its server. Pure.
bool LegacyJournalFitsPool(std::string_view text,
                           const std::vector<uint16_t>& pool);
// The same as JournalFileName(address_text) but for the digits, which are
// the FNV-1a of `hashed_text`: Windows passes the pipe name in lower case
// (pipe names ignore case; "@A:b" and "@a:b" are one server).
std::string JournalFileName(std::string_view address_text,
                            std::string_view hashed_text);
// JournalFileName's form with the digits whatever the text: its bytes
// written as LegacyJournalFileName writes them, cut to kMaxJournalStem,
// then '-' and the FNV-1a of `hashed_text`. For a name that may not be a
// file name as it is (Windows: a DOS device such as "con.x").
std::string JournalFileNameWithDigits(std::string_view address_text,
                                      std::string_view hashed_text);
// The FNV-1a (32-bit) of `text` in 8 lowercase hex digits, as the journal's
// checksums and JournalFileName use it; also what keeps the Windows names
// derived from a pipe name distinct.
std::string Fnv1aHex(std::string_view text);

}  // namespace portserver

#endif  // PORTSERVER_DOMAIN_LEASE_JOURNAL_H_
