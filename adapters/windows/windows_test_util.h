// Test helpers for the Windows adapters and end-to-end tests: unique pipe
// names, scratch directories, and child processes whose output is
// captured. Test-only.
//
// Example:
//   std::string address = UniquePipeAddress("transport");
//   std::unique_ptr<ChildProcess> child = ChildProcess::Start(
//       Quote(ExePath("app/portserver.exe")) + " --portserver_address=" +
//       address, /*capture=*/true);
//   ASSERT_TRUE(child->WaitForOutput("Serving on", 30000));
//
// Thread-compatible unless noted.
#ifndef PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_TEST_UTIL_H_
#define PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_TEST_UTIL_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "adapters/windows/windows_error.h"

namespace portserver {

// "@portserver-test-<tag>-<pid>-<n>-<ticks>": unique per call, per process
// and per run, so parallel test runs never share a pipe.
std::string UniquePipeAddress(const std::string& tag);

// A new empty directory under TEST_TMPDIR (or %TEMP%), unique per call.
std::string NewTempDirectory();

// The path of this test executable.
std::string ThisExecutable();

// `relative` (e.g. "app/portserver.exe") in the Bazel runfiles tree (the
// current directory) if it is there, else the file of the same name beside
// this executable (a hand-made build).
std::string ExePath(const std::string& relative);

// `arg` in double quotes for a command line.
std::string Quote(const std::string& arg);

class ChildProcess {
 public:
  // Runs `command_line` (CreateProcessW). With `capture`, stdout and stderr
  // go to a pipe that a thread reads into Output(). `flags` are added to
  // the creation flags (e.g. CREATE_SUSPENDED, CREATE_NEW_PROCESS_GROUP).
  // Null if CreateProcessW fails (its error in *error).
  static std::unique_ptr<ChildProcess> Start(const std::string& command_line,
                                             bool capture, DWORD flags = 0,
                                             DWORD* error = nullptr);
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // Kills the process if it still runs, and waits for the reader.
  ~ChildProcess();

  DWORD pid() const { return pid_; }
  HANDLE handle() const { return process_.get(); }
  void Resume();
  // The exit code once it has exited within `timeout_ms`, else nullopt.
  // With capture, Output() then holds everything the child wrote.
  std::optional<DWORD> Wait(DWORD timeout_ms);
  void Kill(UINT code = 9);

  // Thread-safe.
  std::string Output() const;
  // True once Output() contains `text`; false if `timeout_ms` passed or the
  // output ended first.
  bool WaitForOutput(const std::string& text, DWORD timeout_ms) const;

 private:
  ChildProcess() = default;
  void ReadLoop();

  ScopedHandle process_;
  ScopedHandle thread_handle_;
  DWORD pid_ = 0;
  ScopedHandle output_;  // Read end of the capture pipe.
  std::thread reader_;
  ScopedHandle reader_thread_;  // The reader's own handle; guarded by mu_.
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  std::string text_;    // Guarded by mu_.
  bool ended_ = false;  // Guarded by mu_.
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_TEST_UTIL_H_
