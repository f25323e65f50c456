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
#include <io.h>
#include <tlhelp32.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string>
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

size_t WriteStdout(const std::string& text, int* error) {
  size_t done = 0;
  while (done < text.size()) {
    const size_t chunk = std::min<size_t>(text.size() - done, 1 << 20);
    int n = _write(1, text.data() + done, static_cast<unsigned>(chunk));
    if (n <= 0) {
      *error = n < 0 ? errno : EIO;
      return done;
    }
    done += static_cast<size_t>(n);
  }
  return done;
}

void KeepBoundInBackground(const std::vector<int>& held, double seconds) {
  (void)seconds;
  std::fprintf(stderr,
               "portpicker: warning: on Windows the ports are not kept bound "
               "after portpicker exits (bind_timeout ignored)\n");
  for (int fd : held) closesocket(static_cast<SOCKET>(fd));
}

}  // namespace portpicker
