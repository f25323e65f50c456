#include "domain/lease_journal.h"

#include <charconv>
#include <optional>
#include <type_traits>
#include <utility>

#include "domain/control_protocol.h"

namespace portserver {
namespace {

constexpr std::string_view kHeader = "portserver-journal 1";
constexpr size_t kMaxDescribedProblems = 20;

uint32_t Fnv1a(std::string_view s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

// The checksum's 8 lower-case hex digits (printf's "%08x").
void AppendHex8(std::string& out, uint32_t v) {
  constexpr char kDigits[] = "0123456789abcdef";
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = kDigits[v & 0xf];
    v >>= 4;
  }
  out.append(buf, sizeof(buf));
}

std::string Hex8(uint32_t v) {
  std::string hex;
  AppendHex8(hex, v);
  return hex;
}

// std::to_string(v), appended without a string of its own: a snapshot of a
// full pool formats 130,000 records while the service waits.
template <typename Integer>
void AppendDecimal(std::string& out, Integer v) {
  static_assert(std::is_integral_v<Integer>);
  char buf[24];
  std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

// Ends the record whose body starts at out[start]: " <checksum>\n".
void EndRecord(std::string& out, size_t start) {
  const uint32_t sum = Fnv1a(std::string_view(out).substr(start));
  out += ' ';
  AppendHex8(out, sum);
  out += '\n';
}

// Parses a plain unsigned decimal that fits in uint64; false otherwise.
bool ParseUnsigned(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  if (s.size() > 1 && s[0] == '0')
    return false;  // Not as JournalLease writes it.
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - digit) / 10) return false;
    v = v * 10 + digit;
  }
  out = v;
  return true;
}

// Splits on single spaces; empty fields are kept (and rejected later).
std::vector<std::string_view> SplitFields(std::string_view line) {
  std::vector<std::string_view> fields;
  while (true) {
    size_t space = line.find(' ');
    fields.push_back(line.substr(0, space));
    if (space == std::string_view::npos) break;
    line.remove_prefix(space + 1);
  }
  return fields;
}

bool ChecksumMatches(std::string_view line,
                     const std::vector<std::string_view>& f) {
  size_t body = line.size() - f.back().size() - 1;
  return f.back() == Hex8(Fnv1a(line.substr(0, body)));
}

// Why `line` is not an intact lease record, or "" if it is one.
std::string ParseLease(std::string_view line,
                       const std::vector<std::string_view>& f,
                       std::pair<uint16_t, Owner>& lease) {
  if (f.size() != 5 || f[0] != "L") return "not a lease record";
  if (!ChecksumMatches(line, f)) return "bad checksum";
  uint64_t port = 0, pid = 0, incarnation = 0;
  if (!ParseUnsigned(f[1], port) || port < 1 || port > 65535 ||
      !ParseUnsigned(f[2], pid) || pid > static_cast<uint64_t>(INT64_MAX) ||
      !ParseUnsigned(f[3], incarnation)) {
    return "bad number";
  }
  lease = {static_cast<uint16_t>(port),
           Owner{static_cast<int64_t>(pid), incarnation}};
  return "";
}

// Why `line` (its first field is "N") is not an intact note record, or "" if
// it is one; note.owner is left alone.
std::string ParseNote(std::string_view line,
                      const std::vector<std::string_view>& f,
                      JournalNote& note) {
  if (f.size() != 5) return "not a note record";
  if (!ChecksumMatches(line, f)) return "bad checksum";
  uint64_t port = 0, seconds = 0;
  if (!ParseUnsigned(f[1], port) || port < 1 || port > 65535) {
    return "bad number";
  }
  note.port = static_cast<uint16_t>(port);
  note.unix_seconds = -1;
  if (f[2] != "-") {
    // Kept as milliseconds in memory: must not overflow int64 there.
    if (!ParseUnsigned(f[2], seconds) ||
        seconds > static_cast<uint64_t>(INT64_MAX / 1000)) {
      return "bad number";
    }
    note.unix_seconds = static_cast<int64_t>(seconds);
  }
  note.label.clear();
  if (f[3] != "-") {
    std::optional<std::string> label = PercentDecode(f[3]);
    if (!label || label->empty() || label->size() > kMaxLabelBytes) {
      return "bad label";
    }
    for (char ch : *label) {
      if (IsLabelControlByte(ch)) return "bad label";  // As the protocol.
    }
    note.label = std::move(*label);
  }
  return "";
}

}  // namespace

std::string JournalHeader() { return std::string(kHeader) + "\n"; }

std::string JournalBootRecord(std::string_view boot_id) {
  std::string body = "B " + std::string(boot_id);
  return body + " " + Hex8(Fnv1a(body)) + "\n";
}

void AppendJournalLease(std::string& out, uint16_t port, const Owner& owner) {
  const size_t start = out.size();
  out += "L ";
  AppendDecimal(out, port);
  out += ' ';
  AppendDecimal(out, owner.pid);
  out += ' ';
  AppendDecimal(out, owner.incarnation);
  EndRecord(out, start);
}

std::string JournalLease(uint16_t port, const Owner& owner) {
  std::string record;
  AppendJournalLease(record, port, owner);
  return record;
}

void AppendJournalLeaseNote(std::string& out, uint16_t port,
                            int64_t unix_seconds, std::string_view label) {
  label = label.substr(0, kMaxLabelBytes);
  if (unix_seconds <= 0 && label.empty()) return;
  const size_t start = out.size();
  out += "N ";
  AppendDecimal(out, port);
  out += ' ';
  if (unix_seconds > 0) {
    AppendDecimal(out, unix_seconds);
  } else {
    out += '-';
  }
  out += ' ';
  if (label.empty()) {
    out += '-';
  } else if (label == "-") {
    out += "%2D";  // "-" alone means no label.
  } else {
    out += PercentEncode(label);
  }
  EndRecord(out, start);
}

std::string JournalLeaseNote(uint16_t port, int64_t unix_seconds,
                             std::string_view label) {
  std::string record;
  AppendJournalLeaseNote(record, port, unix_seconds, label);
  return record;
}

void AppendJournalLeaseWithNote(std::string& out, uint16_t port,
                                const Owner& owner, int64_t unix_seconds,
                                std::string_view label) {
  AppendJournalLease(out, port, owner);
  AppendJournalLeaseNote(out, port, unix_seconds, label);
}

std::string JournalLeaseWithNote(uint16_t port, const Owner& owner,
                                 int64_t unix_seconds, std::string_view label) {
  std::string records;
  AppendJournalLeaseWithNote(records, port, owner, unix_seconds, label);
  return records;
}

std::string JournalSnapshot(
    const std::vector<std::pair<uint16_t, Owner>>& leases) {
  return JournalSnapshot(leases, nullptr);
}

std::string JournalSnapshot(
    const std::vector<std::pair<uint16_t, Owner>>& leases,
    const std::function<JournalNote(uint16_t port)>& note_of,
    std::string_view boot_id) {
  std::string text = JournalHeader();
  if (!boot_id.empty()) text += JournalBootRecord(boot_id);
  for (const auto& [port, owner] : leases) {
    if (note_of) {
      JournalNote note = note_of(port);
      AppendJournalLeaseWithNote(text, port, owner, note.unix_seconds,
                                 note.label);
    } else {
      AppendJournalLease(text, port, owner);
    }
  }
  return text;
}

std::string NotAJournalMessage(std::string_view what) {
  return std::string(what) +
         " is not a portserver journal (not empty, and its first line is not "
         "the journal header), and the server would overwrite it";
}

bool StartsAsJournal(std::string_view text) {
  std::string_view first = text.substr(0, text.find('\n'));
  if (!first.empty() && first.back() == '\r') first.remove_suffix(1);
  if (text.empty() || first == kHeader) return true;
  // A journal whose header is damaged, or which was truncated while the
  // server ran and then appended to: an intact lease record (its checksum
  // right) is found in no one else's file.
  size_t last = text.rfind('\n');
  if (last == std::string_view::npos) return false;
  return !ParseJournal(text.substr(0, last + 1)).leases.empty();
}

std::string LegacyJournalFileName(std::string_view address_text) {
  std::string name;
  for (char c : address_text) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    name.push_back(plain ? c : '_');
  }
  return name;
}

std::string Fnv1aHex(std::string_view text) { return Hex8(Fnv1a(text)); }

std::string JournalFileNameWithDigits(std::string_view address_text,
                                      std::string_view hashed_text) {
  std::string name = LegacyJournalFileName(address_text);
  if (name.size() > kMaxJournalStem) name.resize(kMaxJournalStem);
  return name + "-" + Fnv1aHex(hashed_text);
}

std::string JournalFileName(std::string_view address_text,
                            std::string_view hashed_text) {
  std::string name = LegacyJournalFileName(address_text);
  if (name == address_text && name.size() <= kMaxJournalStem) return name;
  return JournalFileNameWithDigits(address_text, hashed_text);
}

std::string JournalFileName(std::string_view address_text) {
  return JournalFileName(address_text, address_text);
}

bool LegacyJournalFitsPool(std::string_view text,
                           const std::vector<uint16_t>& pool) {
  std::vector<bool> in_pool(65536, false);
  for (uint16_t port : pool) in_pool[port] = true;
  for (const auto& [port, owner] : ParseJournal(text).leases) {
    if (!in_pool[port]) return false;
  }
  return true;
}

JournalReplay ParseJournal(std::string_view text) {
  JournalReplay r;
  size_t undescribed = 0;
  auto problem = [&](size_t line, const std::string& what) {
    if (r.problems.size() < kMaxDescribedProblems) {
      r.problems.push_back("line " + std::to_string(line) + ": " + what);
    } else {
      ++undescribed;
    }
  };
  size_t number = 0;
  size_t lease_line = 0;  // The line of the last intact L record.
  // The line of the last damaged record that was not a note: the note right
  // after it is its lease's (reported there, with the damage).
  size_t damaged_lease_line = 0;
  while (!text.empty()) {
    ++number;
    size_t newline = text.find('\n');
    if (newline == std::string_view::npos) {
      problem(number, "truncated (no newline), skipped");
      break;
    }
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline + 1);
    // CRLF line ends (an editor, git's autocrlf, a copy through a Windows
    // tool): the records are the same, and refusing the file would lose
    // its leases (a Windows trial).
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (number == 1) {
      if (line != kHeader) problem(number, "not a portserver-journal 1 header");
      if (line == kHeader || line.empty()) continue;
    }
    std::vector<std::string_view> f = SplitFields(line);
    std::string why;
    if (f[0] == "B") {
      if (f.size() != 3 || f[1].empty() || f[1].size() > 64) {
        why = "not a boot record";
      } else if (!ChecksumMatches(line, f)) {
        why = "bad checksum";
      } else {
        r.boot_id = std::string(f[1]);
      }
    } else if (f[0] == "N") {
      JournalNote note;
      why = ParseNote(line, f, note);
      if (why.empty()) {
        if (lease_line != 0 && lease_line == number - 1 &&
            r.leases.back().first == note.port) {
          note.owner = r.leases.back().second;
          r.notes.push_back(std::move(note));
        } else if (damaged_lease_line == 0 ||
                   damaged_lease_line != number - 1) {
          why = "note of port " + std::to_string(note.port) +
                " not right after its lease record";
        }
        // Else the line before, its lease's, was damaged: reported there.
        // A note after a damaged or misplaced note is reported: it follows
        // no lease.
      }
    } else {
      std::pair<uint16_t, Owner> lease;
      why = ParseLease(line, f, lease);
      if (why.empty()) {
        r.leases.push_back(lease);
        lease_line = number;
      }
    }
    if (!why.empty()) {
      problem(number, why + ", skipped");
      if (f[0] != "N") damaged_lease_line = number;
    }
  }
  r.lines = number;
  if (undescribed > 0) {
    r.problems.push_back("and " + std::to_string(undescribed) +
                         " more damaged lines");
  }
  return r;
}

}  // namespace portserver
