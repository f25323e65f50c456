#include "domain/lease_journal.h"

#include <cstdio>

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

std::string Hex8(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", v);
  return buf;
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
std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> fields;
  while (true) {
    size_t space = line.find(' ');
    fields.push_back(line.substr(0, space));
    if (space == std::string_view::npos) break;
    line.remove_prefix(space + 1);
  }
  return fields;
}

// Why `line` is not an intact lease record, or "" if it is one.
std::string ParseLease(std::string_view line,
                       std::pair<uint16_t, Owner>& lease) {
  std::vector<std::string_view> f = Fields(line);
  if (f.size() != 5 || f[0] != "L") return "not a lease record";
  size_t body = line.size() - f[4].size() - 1;
  if (f[4] != Hex8(Fnv1a(line.substr(0, body)))) return "bad checksum";
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

}  // namespace

std::string JournalHeader() { return std::string(kHeader) + "\n"; }

std::string JournalLease(uint16_t port, const Owner& owner) {
  std::string body = "L " + std::to_string(port) + " " +
                     std::to_string(owner.pid) + " " +
                     std::to_string(owner.incarnation);
  return body + " " + Hex8(Fnv1a(body)) + "\n";
}

std::string JournalSnapshot(
    const std::vector<std::pair<uint16_t, Owner>>& leases) {
  std::string text = JournalHeader();
  for (const auto& [port, owner] : leases) text += JournalLease(port, owner);
  return text;
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
  while (!text.empty()) {
    ++number;
    size_t newline = text.find('\n');
    if (newline == std::string_view::npos) {
      problem(number, "truncated (no newline), skipped");
      break;
    }
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline + 1);
    if (number == 1) {
      if (line != kHeader) problem(number, "not a portserver-journal 1 header");
      if (line == kHeader || line.empty()) continue;
    }
    std::pair<uint16_t, Owner> lease;
    std::string why = ParseLease(line, lease);
    if (why.empty()) {
      r.leases.push_back(lease);
    } else {
      problem(number, why + ", skipped");
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
