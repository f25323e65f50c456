// WindowsProcessWatcher: tells when watched processes exit, at once, through
// process handles waited on by the system thread pool
// (RegisterWaitForSingleObject; the counterpart of LinuxPidfdWatcher). The
// port server uses it to take the ports of a dead owner back without
// waiting for a request.
//
// Example:
//   WindowsProcessWatcher watcher([&](int64_t pid) { service.OwnerExited(pid);
//   }); watcher.Watch(pid);   // after the first lease to pid
//
// A handle names one process, not a pid number, so a reused pid is never
// mistaken for the watched one. Callbacks run on thread-pool threads, maybe
// several at once; they only say "may have exited": the caller confirms with
// its ProcessProbe. Where a handle cannot be had (a process of another user,
// out of resources) Watch() says so and the caller must check that process
// some other way: the port server checks such owners on later requests, one
// per request in turn, until each has exited or can be watched.
//
// Thread-safe.
#ifndef PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_PROCESS_WATCHER_H_
#define PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_PROCESS_WATCHER_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace portserver {

class WindowsProcessWatcher final {
 public:
  explicit WindowsProcessWatcher(std::function<void(int64_t pid)> on_exit);
  WindowsProcessWatcher(const WindowsProcessWatcher&) = delete;
  WindowsProcessWatcher& operator=(const WindowsProcessWatcher&) = delete;
  // Cancels every wait; no callback runs after it returns.
  ~WindowsProcessWatcher();

  enum class WatchResult {
    kWatching,  // on_exit(pid) will run when it exits.
    kAlreadyWatching,
    // No such process now. on_exit(pid) is not called: the caller's
    // callback may call Watch() again (and would deadlock on its lock).
    kGone,
    kUnavailable,  // No handle or no wait: check it some other way.
  };
  WatchResult Watch(int64_t pid);

  size_t watching() const;

 private:
  struct Entry;
  static void __stdcall OnSignaled(void* context, unsigned char timed_out);
  void Exited(Entry* entry);

  const std::function<void(int64_t)> on_exit_;
  mutable std::mutex mu_;
  std::condition_variable idle_;  // Signaled when running_ drops to 0.
  bool closing_ = false;          // Guarded by mu_.
  int running_ = 0;               // Callbacks calling on_exit_; mu_.
  std::unordered_map<int64_t, std::unique_ptr<Entry>> entries_;  // mu_.
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_PROCESS_WATCHER_H_
