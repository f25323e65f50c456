#include <errno.h>
#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/portpicker_main_platform.h"

namespace portpicker {

namespace {

// What /proc says of `pid`; "" if it cannot be read.
std::string ReadProc(pid_t pid, const char* what) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/" + what);
  return std::string(std::istreambuf_iterator<char>(file),
                     std::istreambuf_iterator<char>());
}

std::string ExeOf(pid_t pid) {
  char target[4096];
  const std::string link = "/proc/" + std::to_string(pid) + "/exe";
  ssize_t n = readlink(link.c_str(), target, sizeof(target));
  return n > 0 ? std::string(target, static_cast<size_t>(n)) : std::string();
}

// The parent of `pid` (proc(5): the field after the state, after the last
// ')' of the command name); 0 if unknown.
pid_t ParentOf(pid_t pid) {
  const std::string stat = ReadProc(pid, "stat");
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(stat.substr(paren + 1));
  std::string state;
  long parent = 0;
  if (!(fields >> state >> parent)) return 0;
  return static_cast<pid_t>(parent);
}

// A subshell: a fork of its parent that runs the same program with the same
// arguments, and has not exec'd anything else.
bool IsSubshellOf(pid_t pid, pid_t parent) {
  const std::string exe = ExeOf(pid);
  const std::string cmdline = ReadProc(pid, "cmdline");
  return !exe.empty() && !cmdline.empty() && exe == ExeOf(parent) &&
         cmdline == ReadProc(parent, "cmdline");
}

}  // namespace

int64_t ParentPid() {
  pid_t pid = getppid();
  // bash runs `$(portpicker 2>/dev/null)`, `$(portpicker | head -1)` or
  // `$(timeout 5 portpicker)` in a subshell that exits as soon as portpicker
  // does, and its lease with it (a tester's --runs_per_test=20 collided 15
  // times): the lease goes to the shell that the subshells belong to, which
  // lives at least as long.
  for (int hops = 0; hops < 16 && pid > 1; ++hops) {
    const pid_t parent = ParentOf(pid);
    if (parent <= 1 || !IsSubshellOf(pid, parent)) break;
    pid = parent;
  }
  return pid;
}

void KeepBoundInBackground(const std::vector<int>& held, double seconds) {
  const pid_t child = fork();
  if (child < 0) {
    std::fprintf(stderr,
                 "portpicker: cannot fork to keep the ports bound: %s\n",
                 std::strerror(errno));
    for (int fd : held) close(fd);
    return;
  }
  if (child > 0) {
    for (int fd : held) close(fd);
    return;
  }
  const int null = open("/dev/null", O_RDWR);
  for (int stdio = 0; stdio <= 2; ++stdio) {
    if (null >= 0) dup2(null, stdio);
  }
  absl::SleepFor(absl::Seconds(seconds));
  for (int fd : held) close(fd);
  _exit(0);
}

}  // namespace portpicker
