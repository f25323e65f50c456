#include "adapters/windows/windows_process_watcher.h"

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "adapters/windows/windows_test_util.h"
#include "gtest/gtest.h"

namespace portserver {
namespace {

class Exits {
 public:
  void Add(int64_t pid) {
    std::lock_guard<std::mutex> lock(mu_);
    pids_.push_back(pid);
    changed_.notify_all();
  }
  // Bounded only as a guard against a hang: the callback should come at
  // once.
  bool WaitFor(int64_t pid) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, std::chrono::seconds(30), [&] {
      for (int64_t p : pids_) {
        if (p == pid) return true;
      }
      return false;
    });
  }
  std::vector<int64_t> pids() {
    std::lock_guard<std::mutex> lock(mu_);
    return pids_;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<int64_t> pids_;
};

std::unique_ptr<ChildProcess> StartSuspendedChild() {
  return ChildProcess::Start(
      Quote(ExePath("adapters/windows/python_style_client.exe")) + " @none",
      /*capture=*/false, CREATE_SUSPENDED);
}

TEST(WindowsProcessWatcher, ReportsAnExitAtOnce) {
  Exits exits;
  WindowsProcessWatcher watcher([&](int64_t pid) { exits.Add(pid); });
  std::unique_ptr<ChildProcess> child = StartSuspendedChild();
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(watcher.Watch(child->pid()),
            WindowsProcessWatcher::WatchResult::kWatching);
  EXPECT_EQ(watcher.Watch(child->pid()),
            WindowsProcessWatcher::WatchResult::kAlreadyWatching);
  EXPECT_TRUE(exits.pids().empty());
  child->Kill();
  ASSERT_TRUE(exits.WaitFor(child->pid()));
  EXPECT_EQ(exits.pids().size(), 1u);
  EXPECT_EQ(watcher.watching(), 0u);
  // The pid can be watched again (a new process may get it).
}

TEST(WindowsProcessWatcher, WatchesManyProcesses) {
  Exits exits;
  WindowsProcessWatcher watcher([&](int64_t pid) { exits.Add(pid); });
  std::vector<std::unique_ptr<ChildProcess>> children;
  for (int i = 0; i < 70; ++i) {  // More than one wait thread's 64 handles.
    children.push_back(StartSuspendedChild());
    ASSERT_NE(children.back(), nullptr);
    ASSERT_EQ(watcher.Watch(children.back()->pid()),
              WindowsProcessWatcher::WatchResult::kWatching);
  }
  EXPECT_EQ(watcher.watching(), 70u);
  for (auto& child : children) child->Kill();
  for (auto& child : children) EXPECT_TRUE(exits.WaitFor(child->pid()));
}

// Said by Watch(), and not through the callback, which ran under the
// watcher's lock and may call Watch() again.
TEST(WindowsProcessWatcher, NoSuchProcessIsReportedGoneByWatchAlone) {
  Exits exits;
  WindowsProcessWatcher watcher([&](int64_t pid) { exits.Add(pid); });
  EXPECT_EQ(watcher.Watch(0x7FFFFFF0),
            WindowsProcessWatcher::WatchResult::kGone);
  EXPECT_TRUE(exits.pids().empty());
}

TEST(WindowsProcessWatcher, NoCallbackAfterDestruction) {
  Exits exits;
  std::unique_ptr<ChildProcess> child = StartSuspendedChild();
  ASSERT_NE(child, nullptr);
  {
    WindowsProcessWatcher watcher([&](int64_t pid) { exits.Add(pid); });
    ASSERT_EQ(watcher.Watch(child->pid()),
              WindowsProcessWatcher::WatchResult::kWatching);
  }
  child->Kill();
  EXPECT_TRUE(exits.pids().empty());
}

}  // namespace
}  // namespace portserver
