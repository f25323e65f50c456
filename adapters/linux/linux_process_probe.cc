#include "adapters/linux/linux_process_probe.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "adapters/linux/pidfd.h"

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

size_t KnownLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  return std::min<size_t>(64, static_cast<size_t>(limit.rlim_cur / 4));
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

struct StatLine {
  char state = '?';         // Field 3.
  uint64_t start_time = 0;  // Field 22, clock ticks after boot.
};

// Parses "<pid> (<comm>) <state> <ppid> ... <starttime> <vsize> ...".
// comm may hold anything, spaces and ')' included, so the fields after it
// start after the last ')'.
std::optional<StatLine> ParseStatLine(std::string_view stat, int64_t pid) {
  std::optional<StatLine> error;
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

  return StatLine{s, start_time};
}

bool IsDead(char state) { return state == 'Z' || state == 'X' || state == 'x'; }

// The value of the "<key>:" line of a /proc/<pid>/status text, without the
// blanks around it; nullopt if there is no such line.
std::optional<std::string_view> StatusValue(std::string_view status,
                                            std::string_view key) {
  std::string wanted = "\n" + std::string(key) + ":";
  size_t at = status.find(wanted);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view line = status.substr(at + wanted.size());
  line = line.substr(0, line.find('\n'));
  size_t begin = line.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return std::string_view();
  size_t end = line.find_last_not_of(" \t");
  return line.substr(begin, end - begin + 1);
}

}  // namespace

LinuxProcessProbe::LinuxProcessProbe(std::string proc_root)
    : max_known_(KnownLimit()),
      proc_root_(std::move(proc_root)),
      use_pidfds_(proc_root_ == "/proc"),
      known_epoll_(use_pidfds_ && max_known_ > 0 ? epoll_create1(EPOLL_CLOEXEC)
                                                 : -1) {
  char target[256];
  std::string link = proc_root_ + "/self/ns/pid";
  ssize_t n = readlink(link.c_str(), target, sizeof(target));
  if (n > 0) own_namespace_.assign(target, static_cast<size_t>(n));
}

LinuxProcessProbe::~LinuxProcessProbe() {
  for (const auto& [pid, known] : known_) close(known.pidfd);
  if (known_epoll_ >= 0) close(known_epoll_);
}

ProcessProbe::Result LinuxProcessProbe::Probe(int64_t pid) {
  if (!use_pidfds_ || pid <= 0 || pid > std::numeric_limits<pid_t>::max()) {
    return ReadProc(pid);
  }
  auto it = known_.find(pid);
  if (it != known_.end()) {
    if (!PidfdSaysExited(it->second.pidfd)) {
      ++cache_hits_;
      return it->second.result;
    }
    Forget(it);
  }
  // The pidfd first, then /proc, then the pidfd again: if the process it
  // names is still running, the stat read was that process's, so a pid
  // reused in between is never remembered with the wrong incarnation.
  int pidfd = PidfdOpen(pid);
  // Out of descriptors: the remembered pidfds give way (they only save
  // reads of /proc), so that each owner costs the server one descriptor,
  // its watch, and not two (a new user's trial: under a limit of 48, 11
  // owners were served where 16 fit, the rest denied as "cannot tell").
  if (pidfd < 0 && (errno == EMFILE || errno == ENFILE) && ForgetAll()) {
    pidfd = PidfdOpen(pid);
  }
  // A pidfd is only given for a thread-group leader: then pid is a process.
  Result result = ReadProc(pid, /*check_thread=*/pidfd < 0);
  if (result.state == State::kError && ForgetAll()) {
    result = ReadProc(pid, /*check_thread=*/pidfd < 0);
  }
  if (pidfd < 0) return result;  // ESRCH (gone), or no pidfds here.
  if (result.state != State::kAlive || PidfdSaysExited(pidfd)) {
    close(pidfd);
    if (result.state == State::kAlive) result = ReadProc(pid);
    return result;
  }
  if (max_known_ == 0 || known_epoll_ < 0) {
    close(pidfd);
    return result;
  }
  ForgetExited();
  if (known_.size() >= max_known_) {
    Forget(known_.begin());
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = static_cast<uint64_t>(pid);
  if (epoll_ctl(known_epoll_, EPOLL_CTL_ADD, pidfd, &event) != 0) {
    close(pidfd);  // Not watched: not remembered.
    return result;
  }
  known_.emplace(pid, Known{pidfd, result});
  return result;
}

void LinuxProcessProbe::Forget(
    std::unordered_map<int64_t, Known>::iterator it) {
  // Out of the epoll set first: close() alone would leave it there while a
  // copy of the descriptor lives on (a forked child's), and epoll_wait()
  // would then keep reporting a process no longer remembered.
  epoll_ctl(known_epoll_, EPOLL_CTL_DEL, it->second.pidfd, nullptr);
  close(it->second.pidfd);
  known_.erase(it);
}

bool LinuxProcessProbe::ReleaseCaches(int64_t keep) {
  bool any = false;
  for (auto it = known_.begin(); it != known_.end();) {
    auto next = std::next(it);
    if (it->first != keep) {
      Forget(it);
      any = true;
    }
    it = next;
  }
  return any;
}

bool LinuxProcessProbe::ForgetAll() {
  return ReleaseCaches(/*keep=*/0);  // No process has pid 0.
}

void LinuxProcessProbe::ForgetExited() {
  if (known_.empty()) return;
  // Only the pidfds that became readable (their process exited) come back:
  // one syscall per miss, not one poll per remembered process (64 polls
  // cost a new owner's request ~90 us).
  std::vector<epoll_event> events(known_.size());
  int n;
  do {
    n = epoll_wait(known_epoll_, events.data(), static_cast<int>(events.size()),
                   0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    // What is remembered must not be trusted then (PidfdSaysExited() fails
    // safe the same way): forget it all.
    ForgetAll();
    return;
  }
  for (int i = 0; i < n; ++i) {
    auto it = known_.find(static_cast<int64_t>(events[i].data.u64));
    if (it != known_.end()) Forget(it);
  }
}

int64_t LinuxProcessProbe::ThreadGroupOf(int64_t pid) const {
  std::string status;
  if (ReadSmallFile(proc_root_ + "/" + std::to_string(pid) + "/status",
                    &status) != ReadOutcome::kOk) {
    return 0;
  }
  std::optional<std::string_view> value = StatusValue(status, "Tgid");
  uint64_t tgid = 0;
  if (!value || !ParseUnsigned(*value, &tgid)) return 0;
  return static_cast<int64_t>(tgid);
}

ProcessProbe::Result LinuxProcessProbe::ReadProc(int64_t pid,
                                                 bool check_thread) const {
  Result result;
  // No process can have an id outside pid_t.
  if (pid <= 0 || pid > std::numeric_limits<pid_t>::max()) {
    result.state = State::kGone;
    return result;
  }
  const std::string dir = proc_root_ + "/" + std::to_string(pid);
  std::string stat;
  switch (ReadSmallFile(dir + "/stat", &stat)) {
    case ReadOutcome::kGone:
      result.state = State::kGone;
      return result;
    case ReadOutcome::kError:
      return result;  // kError
    case ReadOutcome::kOk:
      break;
  }
  std::optional<StatLine> line = ParseStatLine(stat, pid);
  if (!line) return result;  // kError
  // A dead thread-group leader whose other threads run on (pthread_exit()
  // in main): the process lives until its last thread ends, as kill(pid, 0),
  // the reference's psutil.pid_exists() and its pidfd say.
  if (IsDead(line->state) && !LeaderExitedThreadsRun(pid)) {
    result.state = State::kGone;
  } else {
    result.state = State::kAlive;
    result.incarnation = line->start_time;
  }
  if (result.state == State::kAlive && check_thread) {
    int64_t tgid = ThreadGroupOf(pid);
    if (tgid > 0 && tgid != pid) {
      Result thread;
      thread.state = State::kGone;
      thread.thread_of = tgid;
      return thread;
    }
  }
  // The process's effective uid, as SO_PEERCRED reports a caller's, is the
  // owner of its /proc/<pid> directory. Not of the files in it: those of a
  // process that is not dumpable (prctl(PR_SET_DUMPABLE, 0), a uid change
  // without exec, and their children) belong to root (proc(5), "Ptrace
  // access mode"; the kernel's task_dump_owner() exempts the directory).
  struct stat owner {};
  if (result.state == State::kAlive && ::stat(dir.c_str(), &owner) == 0) {
    result.uid_known = true;
    result.uid = static_cast<uint32_t>(owner.st_uid);
  }
  return result;
}

bool LinuxProcessProbe::LeaderExitedThreadsRun(int64_t pid) const {
  // A zombie thread-group leader counts itself in Threads: more than one
  // means another thread still runs. A zombie process (all threads ended,
  // not yet reaped) has 1.
  std::string status;
  if (ReadSmallFile(proc_root_ + "/" + std::to_string(pid) + "/status",
                    &status) != ReadOutcome::kOk) {
    return false;
  }
  std::optional<std::string_view> state = StatusValue(status, "State");
  std::optional<std::string_view> threads = StatusValue(status, "Threads");
  uint64_t count = 0;
  return state && !state->empty() && state->front() == 'Z' && threads &&
         ParseUnsigned(*threads, &count) && count > 1;
}

std::vector<int64_t> LinuxProcessProbe::NamespacePids(int64_t pid) const {
  return NamespacePidsIn(proc_root_ + "/" + std::to_string(pid));
}

std::vector<int64_t> LinuxProcessProbe::NamespacePidsIn(
    const std::string& dir) const {
  std::string status;
  if (ReadSmallFile(dir + "/status", &status) != ReadOutcome::kOk) {
    return {};
  }
  std::optional<std::string_view> value = StatusValue(status, "NSpid");
  if (!value) return {};
  std::string_view line = *value;
  std::vector<int64_t> pids;
  while (true) {
    size_t begin = line.find_first_not_of(" \t");
    if (begin == std::string_view::npos) break;
    line.remove_prefix(begin);
    size_t end = line.find_first_of(" \t");
    uint64_t value = 0;
    if (!ParseUnsigned(line.substr(0, end), &value)) return {};
    pids.push_back(static_cast<int64_t>(value));
    if (end == std::string_view::npos) break;
    line.remove_prefix(end);
  }
  return pids;
}

std::string LinuxProcessProbe::PidNamespaceOf(int64_t pid) const {
  char target[256];
  std::string link = proc_root_ + "/" + std::to_string(pid) + "/ns/pid";
  ssize_t n = readlink(link.c_str(), target, sizeof(target));
  return n > 0 ? std::string(target, static_cast<size_t>(n)) : std::string();
}

ProcessProbe::Mapping LinuxProcessProbe::MapNamedPid(int64_t caller,
                                                     int64_t named) {
  // The common cases, without reading status: the caller names itself as we
  // see it (if it lives in a nested namespace, that number may also be
  // another of its pids there; the caller is the safe answer), or it shares
  // our pid namespace.
  if (named == caller) return Mapping{Mapping::Kind::kSame, named};
  if (!own_namespace_.empty() && PidNamespaceOf(caller) == own_namespace_) {
    return Mapping{Mapping::Kind::kSame, named};
  }
  std::vector<int64_t> caller_pids = NamespacePids(caller);
  if (caller_pids.size() == 1) return Mapping{Mapping::Kind::kSame, named};
  if (caller_pids.empty()) return Mapping{Mapping::Kind::kCaller, caller};
  // The caller lives in a nested pid namespace: `named` is one of its pids.
  if (named == caller_pids.back()) {
    return Mapping{Mapping::Kind::kTranslated, caller};
  }
  std::string caller_namespace = PidNamespaceOf(caller);
  if (caller_namespace.empty()) return Mapping{Mapping::Kind::kCaller, caller};
  DIR* dir = opendir(proc_root_.c_str());
  if (dir == nullptr) return Mapping{Mapping::Kind::kCaller, caller};
  // Where the pid cannot be told from a process of another namespace, the
  // caller is the safe answer: a process deeper down (in a namespace nested
  // in the caller's, maybe) with that pid at the caller's level, or one
  // whose namespace cannot be read (not dumpable, to a server that is not
  // root) or whose pids cannot.
  bool cannot_tell = false;
  const size_t level = caller_pids.size() - 1;
  std::vector<int64_t> neighbours;  // Processes of the caller's namespace.
  while (dirent* entry = readdir(dir)) {
    uint64_t pid = 0;
    if (!ParseUnsigned(entry->d_name, &pid)) continue;
    std::vector<int64_t> pids = NamespacePids(static_cast<int64_t>(pid));
    if (pids.empty()) {
      // Unreadable, unless it ended since readdir() (then it is no answer).
      struct stat st {};
      if (::stat((proc_root_ + "/" + entry->d_name).c_str(), &st) == 0) {
        cannot_tell = true;
      }
      continue;
    }
    if (pids.size() < caller_pids.size()) continue;
    if (pids.size() > caller_pids.size()) {
      if (pids[level] == named) cannot_tell = true;
      continue;
    }
    std::string ns = PidNamespaceOf(static_cast<int64_t>(pid));
    if (ns.empty()) {
      if (pids[level] == named) cannot_tell = true;
      continue;
    }
    if (ns != caller_namespace) continue;
    if (pids[level] == named) {
      closedir(dir);
      return Mapping{Mapping::Kind::kTranslated, static_cast<int64_t>(pid)};
    }
    neighbours.push_back(static_cast<int64_t>(pid));
  }
  closedir(dir);
  if (cannot_tell) return Mapping{Mapping::Kind::kCaller, caller};
  // A thread of a process of the caller's namespace (/proc lists only
  // processes): its id here, so that it is denied as a thread.
  for (int64_t pid : neighbours) {
    std::string tasks = proc_root_ + "/" + std::to_string(pid) + "/task";
    DIR* task_dir = opendir(tasks.c_str());
    if (task_dir == nullptr) continue;
    while (dirent* entry = readdir(task_dir)) {
      uint64_t tid = 0;
      if (!ParseUnsigned(entry->d_name, &tid) ||
          static_cast<int64_t>(tid) == pid) {
        continue;
      }
      std::vector<int64_t> tids = NamespacePidsIn(tasks + "/" + entry->d_name);
      if (!tids.empty() && tids.back() == named) {
        closedir(task_dir);
        return Mapping{Mapping::Kind::kTranslated, static_cast<int64_t>(tid)};
      }
    }
    closedir(task_dir);
  }
  // Every process was looked at: none has that pid in the caller's
  // namespace, as a caller in ours naming a pid that does not exist.
  return Mapping{Mapping::Kind::kNotFound, named};
}

}  // namespace portserver
