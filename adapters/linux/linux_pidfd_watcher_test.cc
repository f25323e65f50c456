#include "adapters/linux/linux_pidfd_watcher.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "gtest/gtest.h"

namespace portserver {
namespace {

// Records exits and lets the test wait for one.
class Exits {
 public:
  void Record(int64_t pid) {
    std::lock_guard<std::mutex> lock(mu_);
    pids_.push_back(pid);
    cv_.notify_all();
  }
  bool WaitFor(int64_t pid) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] {
      return std::find(pids_.begin(), pids_.end(), pid) != pids_.end();
    });
  }
  std::vector<int64_t> pids() {
    std::lock_guard<std::mutex> lock(mu_);
    return pids_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int64_t> pids_;
};

pid_t SpawnSleeper() {
  pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  return child;
}

TEST(LinuxPidfdWatcher, ReportsAnExitAsItHappens) {
  Exits exits;
  LinuxPidfdWatcher watcher([&](int64_t pid) { exits.Record(pid); });
  pid_t child = SpawnSleeper();
  ASSERT_GT(child, 0);
  ASSERT_EQ(watcher.Watch(child), LinuxPidfdWatcher::WatchResult::kWatching);
  EXPECT_EQ(watcher.Watch(child),
            LinuxPidfdWatcher::WatchResult::kAlreadyWatching);
  EXPECT_TRUE(exits.pids().empty());
  kill(child, SIGKILL);
  // Not reaped yet: a zombie has exited, and the pidfd says so.
  EXPECT_TRUE(exits.WaitFor(child));
  waitpid(child, nullptr, 0);
  EXPECT_EQ(watcher.watching(), 0u);
  EXPECT_EQ(exits.pids().size(), 1u);
}

// Said by Watch(), and not through the callback: a callback from inside
// Watch() may call Watch() again, without end (a reviewer crashed the server
// so, its probe unable to read /proc).
TEST(LinuxPidfdWatcher, AProcessAlreadyGoneIsReportedByWatchAlone) {
  Exits exits;
  LinuxPidfdWatcher watcher([&](int64_t pid) { exits.Record(pid); });
  pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  EXPECT_EQ(watcher.Watch(child), LinuxPidfdWatcher::WatchResult::kGone);
  EXPECT_TRUE(exits.pids().empty());
  EXPECT_EQ(watcher.watching(), 0u);
}

TEST(LinuxPidfdWatcher, WatchesManyAndOnlyReportsTheDead) {
  Exits exits;
  LinuxPidfdWatcher watcher([&](int64_t pid) { exits.Record(pid); });
  std::vector<pid_t> children;
  for (int i = 0; i < 20; ++i) {
    children.push_back(SpawnSleeper());
    ASSERT_EQ(watcher.Watch(children.back()),
              LinuxPidfdWatcher::WatchResult::kWatching);
  }
  for (int i = 0; i < 20; i += 2) kill(children[i], SIGKILL);
  for (int i = 0; i < 20; i += 2) EXPECT_TRUE(exits.WaitFor(children[i]));
  EXPECT_EQ(exits.pids().size(), 10u);
  EXPECT_EQ(watcher.watching(), 10u);
  for (int i = 1; i < 20; i += 2) kill(children[i], SIGKILL);
  for (pid_t c : children) waitpid(c, nullptr, 0);
}

TEST(LinuxPidfdWatcher, InvalidPidsAreNotWatched) {
  LinuxPidfdWatcher watcher([](int64_t) {});
  EXPECT_EQ(watcher.Watch(0), LinuxPidfdWatcher::WatchResult::kUnavailable);
  EXPECT_EQ(watcher.Watch(-3), LinuxPidfdWatcher::WatchResult::kUnavailable);
  EXPECT_EQ(watcher.Watch(int64_t{1} << 40),
            LinuxPidfdWatcher::WatchResult::kUnavailable);
}

}  // namespace
}  // namespace portserver
