#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
// Winsock 2 must come before <windows.h>, which would otherwise pull in
// the old winsock.h: keep clang-format from sorting them.
// clang-format off
#include <winsock2.h>
#include <windows.h>
// clang-format on
#include <tlhelp32.h>

#include <cstdio>
#include <vector>

#include "client/portpicker_main_platform.h"

namespace portpicker {

int64_t ParentPid() {
  HANDLE snapshot = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
  if (snapshot == INVALID_HANDLE_VALUE) return 0;
  const DWORD self = GetCurrentProcessId();
  int64_t parent = 0;
  PROCESSENTRY32W entry{};
  entry.dwSize = sizeof(entry);
  for (BOOL more = Process32FirstW(snapshot, &entry); more;
       more = Process32NextW(snapshot, &entry)) {
    if (entry.th32ProcessID == self) {
      parent = entry.th32ParentProcessID;
      break;
    }
  }
  CloseHandle(snapshot);
  return parent;
}

void KeepBoundInBackground(const std::vector<int>& held, double seconds) {
  (void)seconds;
  std::fprintf(stderr,
               "portpicker: warning: on Windows the ports are not kept bound "
               "after portpicker exits (bind_timeout ignored)\n");
  for (int fd : held) closesocket(static_cast<SOCKET>(fd));
}

}  // namespace portpicker
