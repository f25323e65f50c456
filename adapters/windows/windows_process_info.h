// WindowsProcessInfo: ProcessInfo from Win32 (the counterpart of
// LinuxProcessInfo). The command line is the one the process was started
// with, read from its process parameters block (the PEB's
// RTL_USER_PROCESS_PARAMETERS::CommandLine, winternl.h) with
// ReadProcessMemory: what Task Manager's "Command line" column shows. Start
// times come from the creation time (GetProcessTimes, a FILETIME) that
// WindowsProcessProbe uses as the incarnation.
//
// Who may see what follows Windows' process security: reading another
// process's memory (PROCESS_VM_READ) is granted to its own user and to
// administrators, so an administrator (uid 0, windows_user.h) sees every
// command line and any other caller only its own user's.
//
// Example:
//   WindowsProcessInfo info;
//   std::string cmd = info.CommandLine(GetCurrentProcessId(), 256);
//   // "\"C:\\tools\\portserver.exe\" --portserver_address=@x"
//
// Thread-compatible (it keeps no state).
#ifndef PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_PROCESS_INFO_H_
#define PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_PROCESS_INFO_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "domain/process_info.h"

namespace portserver {

class WindowsProcessInfo final : public ProcessInfo {
 public:
  WindowsProcessInfo() = default;

  // The command line of `pid` as UTF-8, control characters as '?', cut to
  // at most `max_bytes` bytes between characters (the cut marked "...").
  // "" if the process cannot be opened or read (gone, another user's
  // without administrator rights, a protected process).
  std::string CommandLine(int64_t pid, size_t max_bytes) override;
  // `incarnation` is a FILETIME (100 ns units since 1601-01-01 UTC):
  // converted to ms since 1970-01-01 UTC; -1 if before 1970.
  int64_t StartTimeUnixMs(uint64_t incarnation) override;
  // kNone for an unknown caller, kAll for an administrator (uid 0), else
  // kOwnOnly.
  Access AccessFor(const PeerCredentials& caller) override;
  int64_t NowUnixMs() override;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_PROCESS_INFO_H_
