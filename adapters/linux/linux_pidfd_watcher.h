// LinuxPidfdWatcher: tells when watched processes exit, at once, through
// pidfds (Linux 5.3+) polled by a thread of its own. The port server uses it
// to take the ports of a dead owner back without waiting for a request.
//
// Example:
//   LinuxPidfdWatcher watcher([&](int64_t pid) { service.OwnerExited(pid); });
//   watcher.Watch(pid);   // after the first lease to pid
//
// A pidfd names one process, not a pid number, so a reused pid is never
// mistaken for the watched one. Callbacks run on the watcher's thread; they
// only say "may have exited": the caller confirms with its ProcessProbe.
// Where a pidfd cannot be had (old kernel, out of descriptors) Watch() says
// so and the caller must check that process some other way: the port server
// checks such owners on later requests, one per request in turn, until each
// has exited or can be watched (README "Owners, callers and limits").
//
// Thread-safe.
#ifndef PORTSERVER_ADAPTERS_LINUX_LINUX_PIDFD_WATCHER_H_
#define PORTSERVER_ADAPTERS_LINUX_LINUX_PIDFD_WATCHER_H_

#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace portserver {

class LinuxPidfdWatcher final {
 public:
  explicit LinuxPidfdWatcher(std::function<void(int64_t pid)> on_exit);
  LinuxPidfdWatcher(const LinuxPidfdWatcher&) = delete;
  LinuxPidfdWatcher& operator=(const LinuxPidfdWatcher&) = delete;
  ~LinuxPidfdWatcher();  // Stops the thread; no callback runs after it.

  enum class WatchResult {
    kWatching,  // on_exit(pid) will run when it exits.
    kAlreadyWatching,
    // No such process now. on_exit(pid) is not called: the caller's
    // callback may call Watch() again, which would go on without end.
    kGone,
    kUnavailable,  // No pidfd (errno in the log): check it some other way.
  };
  WatchResult Watch(int64_t pid);

  size_t watching() const;

 private:
  void Loop();

  const std::function<void(int64_t)> on_exit_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  mutable std::mutex mu_;
  std::unordered_map<int64_t, int> pidfds_;  // Guarded by mu_.
  std::thread thread_;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_LINUX_LINUX_PIDFD_WATCHER_H_
