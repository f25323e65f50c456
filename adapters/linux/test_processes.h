// Test helpers for the Linux adapters: processes in states that the process
// probe and the process info must handle.
//
// Example:
//   MainThreadExitedChild child;        // forks; its main thread exits
//   ASSERT_TRUE(child.ok());            // the kernel shows the leader 'Z'
//   EXPECT_EQ(probe.Probe(child.pid()).state, State::kAlive);
//   child.Release();                    // its last thread ends (unreaped)
//
// Not thread-safe; for tests only.
#ifndef PORTSERVER_ADAPTERS_LINUX_TEST_PROCESSES_H_
#define PORTSERVER_ADAPTERS_LINUX_TEST_PROCESSES_H_

#include <sys/types.h>

namespace portserver {

// The state letter of /proc/<pid>/stat (proc(5)), parsed independently of
// the adapters; '?' if it cannot be read.
char StateOf(pid_t pid);

// A forked copy of this process (the same command line) whose main thread
// has exited, as pthread_exit() in main() leaves a process, while another
// thread runs on until Release(): the kernel shows the leader as a zombie,
// but the process lives. The constructor waits (polling /proc, up to 5 s)
// until the kernel shows the main thread's exit. The destructor releases
// and reaps it.
class MainThreadExitedChild {
 public:
  MainThreadExitedChild();
  MainThreadExitedChild(const MainThreadExitedChild&) = delete;
  MainThreadExitedChild& operator=(const MainThreadExitedChild&) = delete;
  ~MainThreadExitedChild();

  // Forked, and its main thread shown exited.
  bool ok() const { return ok_; }
  pid_t pid() const { return pid_; }
  // Its last thread ends: a zombie process, not reaped.
  void Release();

 private:
  pid_t pid_ = -1;
  int release_fd_ = -1;  // The write end its thread waits on.
  bool ok_ = false;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_LINUX_TEST_PROCESSES_H_
