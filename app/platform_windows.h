// What Windows users need to know beyond app/platform.h: the name of the
// event that makes a running server log its statistics (Windows has no
// SIGUSR1).
//
// Example (PowerShell, for a server on @unittest-portserver):
//   [Threading.EventWaitHandle]::OpenExisting(
//       'Global\portserver-stats-unittest-portserver').Set()
#ifndef PORTSERVER_APP_PLATFORM_WINDOWS_H_
#define PORTSERVER_APP_PLATFORM_WINDOWS_H_

#include <string>

namespace portserver {

// "Global\portserver-stats-" and WindowsPipeTransport::KernelObjectName of
// the pipe name without "\\.\pipe\", for the server on `address`. The
// server waits on this auto-reset event; each time it is set, the
// statistics are logged.
std::string StatsEventName(const std::string& address);

}  // namespace portserver

#endif  // PORTSERVER_APP_PLATFORM_WINDOWS_H_
