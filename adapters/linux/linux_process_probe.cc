#include "adapters/linux/linux_process_probe.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace portserver {
namespace {

using State = ProcessProbe::State;
using Result = ProcessProbe::Result;

// A stat line is a few hundred bytes; anything much longer is not one.
constexpr size_t kMaxStatBytes = 64 * 1024;

// Field 22 (starttime) is the 20th field after the one holding comm.
constexpr int kStartTimeIndexAfterComm = 19;

enum class ReadOutcome { kOk, kGone, kError };

// Reads the whole file at `path` into `out`.
ReadOutcome ReadSmallFile(const std::string& path, std::string* out) {
  int fd;
  do {
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    return (errno == ENOENT || errno == ESRCH) ? ReadOutcome::kGone
                                               : ReadOutcome::kError;
  }
  ReadOutcome outcome = ReadOutcome::kOk;
  char buffer[4096];
  out->clear();
  while (true) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n > 0) {
      out->append(buffer, static_cast<size_t>(n));
      if (out->size() > kMaxStatBytes) {
        outcome = ReadOutcome::kError;
        break;
      }
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR) continue;
    // ESRCH: the process was reaped between open() and read().
    outcome = errno == ESRCH ? ReadOutcome::kGone : ReadOutcome::kError;
    break;
  }
  close(fd);
  return outcome;
}

bool ParseUnsigned(std::string_view text, uint64_t* value) {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *value);
  return ec == std::errc() && ptr == end;
}

// Returns the next space-separated token of `rest` and advances past it.
// Returns an empty view when no token is left.
std::string_view NextToken(std::string_view* rest) {
  size_t begin = rest->find_first_not_of(' ');
  if (begin == std::string_view::npos) {
    *rest = std::string_view();
    return std::string_view();
  }
  rest->remove_prefix(begin);
  size_t end = rest->find(' ');
  std::string_view token = rest->substr(0, end);
  rest->remove_prefix(end == std::string_view::npos ? rest->size() : end);
  return token;
}

// Parses "<pid> (<comm>) <state> <ppid> ... <starttime> <vsize> ...".
// comm may hold anything, spaces and ')' included, so the fields after it
// start after the last ')'.
Result ParseStat(std::string_view stat, int64_t pid) {
  Result error;  // state == kError
  // The kernel writes text; a NUL means the file is not a stat file.
  if (stat.find('\0') != std::string_view::npos) return error;
  size_t open_paren = stat.find(" (");
  if (open_paren == std::string_view::npos) return error;
  uint64_t stat_pid = 0;
  if (!ParseUnsigned(stat.substr(0, open_paren), &stat_pid) ||
      stat_pid != static_cast<uint64_t>(pid)) {
    return error;
  }
  size_t close_paren = stat.rfind(')');
  if (close_paren == std::string_view::npos || close_paren < open_paren + 2) {
    return error;
  }
  std::string_view rest = stat.substr(close_paren + 1);
  if (rest.empty() || rest.front() != ' ') return error;

  std::string_view state = NextToken(&rest);
  if (state.size() != 1) return error;
  char s = state.front();
  if (!((s >= 'A' && s <= 'Z') || (s >= 'a' && s <= 'z'))) return error;

  std::string_view token;
  for (int i = 1; i <= kStartTimeIndexAfterComm; ++i) {
    token = NextToken(&rest);
    if (token.empty()) return error;
  }
  uint64_t start_time = 0;
  if (!ParseUnsigned(token, &start_time)) return error;
  // Field 23 (vsize) always follows; without it the file was truncated,
  // possibly inside the start time itself.
  if (rest.empty() || rest.front() != ' ' || NextToken(&rest).empty()) {
    return error;
  }

  Result result;
  if (s == 'Z' || s == 'X' || s == 'x') {
    result.state = State::kGone;
  } else {
    result.state = State::kAlive;
    result.incarnation = start_time;
  }
  return result;
}

}  // namespace

LinuxProcessProbe::LinuxProcessProbe(std::string proc_root)
    : proc_root_(std::move(proc_root)) {}

ProcessProbe::Result LinuxProcessProbe::Probe(int64_t pid) {
  Result result;
  // No process can have an id outside pid_t.
  if (pid <= 0 || pid > std::numeric_limits<pid_t>::max()) {
    result.state = State::kGone;
    return result;
  }
  std::string path = proc_root_ + "/" + std::to_string(pid) + "/stat";
  std::string stat;
  switch (ReadSmallFile(path, &stat)) {
    case ReadOutcome::kGone:
      result.state = State::kGone;
      return result;
    case ReadOutcome::kError:
      return result;  // kError
    case ReadOutcome::kOk:
      break;
  }
  return ParseStat(stat, pid);
}

}  // namespace portserver
