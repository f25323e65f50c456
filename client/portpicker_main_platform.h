// Internal to //client:portpicker_cli: the process handling that differs
// between POSIX (portpicker_main_posix.cc) and Windows
// (portpicker_main_windows.cc), picked by select() in client/BUILD.bazel.
//
// Example:
//   int64_t pid = portpicker::ParentPid();          // the calling shell
//   portpicker::KeepBoundInBackground({fd}, 1.5);   // after printing
#ifndef PORTSERVER_CLIENT_PORTPICKER_MAIN_PLATFORM_H_
#define PORTSERVER_CLIENT_PORTPICKER_MAIN_PLATFORM_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace portpicker {

// The parent process's id (the shell that runs portpicker); 0 if unknown.
int64_t ParentPid();

// Writes `text` to standard output, unbuffered, retrying short writes.
// Returns how many bytes were written; short of text.size() on an error,
// with `*error` set (errno on POSIX, the C runtime's errno on Windows).
size_t WriteStdout(const std::string& text, int* error);

// Keeps the sockets in `held` (from HoldPort) bound for `seconds` after this
// process has exited, then lets them go; closes this process's copies. On POSIX
// a forked child detached from stdio holds it. On Windows, where a socket
// cannot outlive its process without a helper process, it is closed at once and
// a warning says so.
void KeepBoundInBackground(const std::vector<int>& held, double seconds);

}  // namespace portpicker

#endif  // PORTSERVER_CLIENT_PORTPICKER_MAIN_PLATFORM_H_
