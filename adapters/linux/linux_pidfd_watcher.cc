#include "adapters/linux/linux_pidfd_watcher.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <future>
#include <utility>

#include "adapters/linux/pidfd.h"

namespace portserver {
namespace {

constexpr uint64_t kWakeKey = UINT64_MAX;

}  // namespace

LinuxPidfdWatcher::LinuxPidfdWatcher(std::function<void(int64_t)> on_exit)
    : on_exit_(std::move(on_exit)) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_fd_ >= 0 && wake_fd_ >= 0) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kWakeKey;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
    // Returns once the thread runs: until then glibc keeps every signal,
    // faults too, blocked in it (pthread_create(3) blocks all around
    // clone(2)), and a server's threads never block a fault once it serves
    // (app/started_thread.h says why).
    std::promise<void> running;
    std::future<void> ran = running.get_future();
    thread_ = std::thread([this, running = std::move(running)]() mutable {
      running.set_value();
      Loop();
    });
    ran.wait();
  }
}

LinuxPidfdWatcher::~LinuxPidfdWatcher() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
  for (const auto& [pid, fd] : pidfds_) close(fd);
  if (wake_fd_ >= 0) close(wake_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

LinuxPidfdWatcher::WatchResult LinuxPidfdWatcher::Watch(int64_t pid) {
  if (!thread_.joinable() || pid <= 0 || pid > INT32_MAX) {
    return WatchResult::kUnavailable;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pidfds_.count(pid) != 0) return WatchResult::kAlreadyWatching;
    int fd = PidfdOpen(pid);
    if (fd >= 0) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = static_cast<uint64_t>(pid);
      if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        return WatchResult::kUnavailable;
      }
      pidfds_.emplace(pid, fd);
      return WatchResult::kWatching;
    }
    return errno == ESRCH ? WatchResult::kGone : WatchResult::kUnavailable;
  }
}

size_t LinuxPidfdWatcher::watching() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pidfds_.size();
}

void LinuxPidfdWatcher::Loop() {
  epoll_event events[64];
  while (true) {
    int n = epoll_wait(epoll_fd_, events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == kWakeKey) return;
      int64_t pid = static_cast<int64_t>(events[i].data.u64);
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = pidfds_.find(pid);
        if (it == pidfds_.end()) continue;
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second, nullptr);
        close(it->second);
        pidfds_.erase(it);
      }
      on_exit_(pid);
    }
  }
}

}  // namespace portserver
