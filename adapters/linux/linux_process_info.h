// LinuxProcessInfo: ProcessInfo from /proc. The command line comes from
// /proc/<pid>/cmdline (proc(5)), start times from the boot time in /proc/stat
// ("btime") plus the start time in clock ticks that LinuxProcessProbe uses as
// the incarnation, and the visibility rule from the hidepid= and gid= mount
// options of /proc (proc(5), "Mount options").
//
// Example:
//   LinuxProcessInfo info;
//   std::string cmd = info.CommandLine(getpid(), 256);   // "sleep 600"
//
// Thread-compatible.
#ifndef PORTSERVER_ADAPTERS_LINUX_LINUX_PROCESS_INFO_H_
#define PORTSERVER_ADAPTERS_LINUX_LINUX_PROCESS_INFO_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "domain/process_info.h"

namespace portserver {

// The hidepid= and gid= options of a proc mount, from one line of
// /proc/self/mountinfo (proc(5)). hidepid: 0 (or "off") shows every
// process; 1 ("noaccess"), 2 ("invisible") and 4 ("ptraceable") hide other
// users' command lines, except from members of `gid`.
struct ProcMountOptions {
  int hidepid = 0;
  std::optional<uint32_t> gid;
};
// Parses the super options of the mount at "/proc" in `mountinfo` (the text
// of /proc/self/mountinfo). A missing /proc line means hidepid=0.
ProcMountOptions ParseProcMountOptions(absl::string_view mountinfo);

class LinuxProcessInfo final : public ProcessInfo {
 public:
  // `proc_root` is "/proc" but for tests.
  explicit LinuxProcessInfo(std::string proc_root = "/proc");

  std::string CommandLine(int64_t pid, size_t max_bytes) override;
  int64_t StartTimeUnixMs(uint64_t incarnation) override;
  Access AccessFor(const PeerCredentials& caller) override;
  int64_t NowUnixMs() override;

 private:
  // True if the process `pid` has `gid` as its real, effective, saved or
  // supplementary group (/proc/<pid>/status).
  bool InGroup(int64_t pid, uint32_t gid);

  const std::string proc_root_;
  int64_t boot_unix_ms_ = -1;  // -1 until read.
  int64_t ticks_per_second_ = 0;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_LINUX_LINUX_PROCESS_INFO_H_
