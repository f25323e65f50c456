#include "adapters/linux/linux_process_info.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "domain/control_protocol.h"

namespace portserver {
namespace {

// Reads up to `max_bytes` of `path`; nullopt if it cannot be opened.
std::optional<std::string> ReadSome(const std::string& path, size_t max_bytes) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string data(max_bytes, '\0');
  size_t size = 0;
  while (size < max_bytes) {
    ssize_t n = read(fd, &data[size], max_bytes - size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    size += static_cast<size_t>(n);
  }
  close(fd);
  data.resize(size);
  return data;
}

int HidePidValue(absl::string_view value) {
  if (value == "off") return 0;
  if (value == "noaccess") return 1;
  if (value == "invisible") return 2;
  if (value == "ptraceable") return 4;
  int n = 0;
  return absl::SimpleAtoi(value, &n) ? n : 2;  // Unknown: assume hidden.
}

}  // namespace

ProcMountOptions ParseProcMountOptions(absl::string_view mountinfo) {
  ProcMountOptions options;
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n')) {
    // "id parent major:minor root mount-point options [tags] - type source
    // super-options"
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
    if (fields.size() < 5 || fields[4] != "/proc") continue;
    size_t dash = 6;
    while (dash < fields.size() && fields[dash] != "-") ++dash;
    if (dash + 3 >= fields.size() || fields[dash + 1] != "proc") continue;
    options = ProcMountOptions();  // The last mount at /proc wins.
    for (absl::string_view option : absl::StrSplit(fields[dash + 3], ',')) {
      if (absl::ConsumePrefix(&option, "hidepid=")) {
        options.hidepid = HidePidValue(option);
      } else if (absl::ConsumePrefix(&option, "gid=")) {
        uint32_t gid = 0;
        if (absl::SimpleAtoi(option, &gid)) options.gid = gid;
      }
    }
  }
  return options;
}

LinuxProcessInfo::LinuxProcessInfo(std::string proc_root)
    : proc_root_(std::move(proc_root)) {}

std::string LinuxProcessInfo::CommandLine(int64_t pid, size_t max_bytes) {
  const std::string dir = proc_root_ + "/" + std::to_string(pid);
  // Two bytes more: the final NUL, and one that tells whether it was cut.
  std::optional<std::string> raw = ReadSome(dir + "/cmdline", max_bytes + 2);
  if (raw && raw->empty()) {
    // A process whose main thread has exited (pthread_exit() in main) lives
    // on in its other threads, but its /proc/<pid>/cmdline reads empty (the
    // kernel reads it through the main thread's memory): another thread's
    // shows the same command line.
    if (DIR* tasks = opendir((dir + "/task").c_str())) {
      while (dirent* entry = readdir(tasks)) {
        int64_t tid = 0;
        if (!absl::SimpleAtoi(entry->d_name, &tid) || tid == pid) continue;
        raw = ReadSome(dir + "/task/" + entry->d_name + "/cmdline",
                       max_bytes + 2);
        if (raw && !raw->empty()) break;
      }
      closedir(tasks);
    }
  }
  if (!raw) return "";
  std::string& text = *raw;
  while (!text.empty() && text.back() == '\0') text.pop_back();
  std::replace(text.begin(), text.end(), '\0', ' ');  // Arguments joined.
  return DisplayCommandLine(std::move(text), max_bytes);
}

int64_t LinuxProcessInfo::StartTimeUnixMs(uint64_t incarnation) {
  if (boot_unix_ms_ < 0) {
    std::optional<std::string> stat = ReadSome(proc_root_ + "/stat", 1 << 16);
    if (!stat) return -1;
    for (absl::string_view line : absl::StrSplit(*stat, '\n')) {
      int64_t btime = 0;
      if (absl::ConsumePrefix(&line, "btime ") &&
          absl::SimpleAtoi(line, &btime)) {
        boot_unix_ms_ = btime * 1000;
      }
    }
    ticks_per_second_ = sysconf(_SC_CLK_TCK);
    if (boot_unix_ms_ < 0 || ticks_per_second_ <= 0) return -1;
  }
  return boot_unix_ms_ +
         static_cast<int64_t>(incarnation) * 1000 / ticks_per_second_;
}

bool LinuxProcessInfo::InGroup(int64_t pid, uint32_t gid) {
  std::optional<std::string> status =
      ReadSome(proc_root_ + "/" + std::to_string(pid) + "/status", 1 << 14);
  if (!status) return false;
  for (absl::string_view line : absl::StrSplit(*status, '\n')) {
    if (!absl::ConsumePrefix(&line, "Gid:") &&
        !absl::ConsumePrefix(&line, "Groups:")) {
      continue;
    }
    for (absl::string_view item :
         absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
      uint32_t g = 0;
      if (absl::SimpleAtoi(item, &g) && g == gid) return true;
    }
  }
  return false;
}

ProcessInfo::Access LinuxProcessInfo::AccessFor(const PeerCredentials& caller) {
  if (!caller.known) return Access::kNone;
  if (caller.uid == 0) return Access::kAll;
  // Read at each listing: /proc may be remounted with other options.
  std::optional<std::string> mountinfo =
      ReadSome(proc_root_ + "/self/mountinfo", 1 << 20);
  if (!mountinfo) return Access::kOwnOnly;
  ProcMountOptions options = ParseProcMountOptions(*mountinfo);
  if (options.hidepid == 0) return Access::kAll;
  if (options.gid && caller.pid > 0 && InGroup(caller.pid, *options.gid)) {
    return Access::kAll;
  }
  return Access::kOwnOnly;
}

int64_t LinuxProcessInfo::NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace portserver
