// What python portpicker 1.5.2 does on Windows
// (_get_windows_port_from_port_server), step for step, for tests: map a
// leading '@' to "\\.\pipe\", CreateFileW(GENERIC_READ | GENERIC_WRITE,
// OPEN_EXISTING), one WriteFile of "<pid>\n", one ReadFile of at most 6
// bytes. No retry, no wait for a busy pipe: the python client has none.
//
// Example:
//   PythonStyleReply r = AskLikePython("@unittest-portserver", pid);
//   if (r.error == 0) port = std::stoi(r.data);
//
// Thread-safe.
#ifndef PORTSERVER_ADAPTERS_WINDOWS_PYTHON_STYLE_PIPE_CLIENT_H_
#define PORTSERVER_ADAPTERS_WINDOWS_PYTHON_STYLE_PIPE_CLIENT_H_

#include <cstdint>
#include <string>

namespace portserver {

struct PythonStyleReply {
  // 0 if the read returned bytes; else the Win32 error of the step that
  // failed, as python would raise it: ERROR_FILE_NOT_FOUND (no server, the
  // only one python catches), ERROR_PIPE_BUSY (no free instance),
  // ERROR_BROKEN_PIPE (closed without a reply, which python raises).
  unsigned long error = 0;
  const char* step = "";  // "CreateFile", "WriteFile" or "ReadFile".
  std::string data;       // What the one ReadFile returned.

  // A denial python takes as one (ValueError, caught: "Portserver failed
  // to find a port.", then its fallback): the read returned an empty line
  // (WindowsPipeTransport::kDenialReply).
  bool denied() const { return error == 0 && data == "\n"; }
};

// Sends `request` as is (python sends "<pid>\n").
PythonStyleReply SendLikePython(const std::string& address,
                                const std::string& request);
PythonStyleReply AskLikePython(const std::string& address, int64_t pid);

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_WINDOWS_PYTHON_STYLE_PIPE_CLIENT_H_
