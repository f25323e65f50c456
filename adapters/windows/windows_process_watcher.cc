#include "adapters/windows/windows_process_watcher.h"

#include <utility>
#include <vector>

#include "adapters/windows/windows_error.h"

namespace portserver {

struct WindowsProcessWatcher::Entry {
  WindowsProcessWatcher* watcher;
  int64_t pid;
  ScopedHandle process;   // SYNCHRONIZE.
  HANDLE wait = nullptr;  // From RegisterWaitForSingleObject.
};

WindowsProcessWatcher::WindowsProcessWatcher(
    std::function<void(int64_t)> on_exit)
    : on_exit_(std::move(on_exit)) {}

WindowsProcessWatcher::~WindowsProcessWatcher() {
  std::unordered_map<int64_t, std::unique_ptr<Entry>> entries;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
    entries.swap(entries_);
  }
  // Blocks until a callback that is running has returned; one that runs
  // finds its entry gone and does nothing.
  for (auto& [pid, entry] : entries) {
    UnregisterWaitEx(entry->wait, INVALID_HANDLE_VALUE);
  }
  // Callbacks that took their entry before closing_ was set finish first.
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [this] { return running_ == 0; });
}

WindowsProcessWatcher::WatchResult WindowsProcessWatcher::Watch(int64_t pid) {
  if (pid <= 0 || pid > 0xFFFFFFFFll) return WatchResult::kUnavailable;
  std::lock_guard<std::mutex> lock(mu_);
  if (closing_) return WatchResult::kUnavailable;
  if (entries_.count(pid) > 0) return WatchResult::kAlreadyWatching;
  auto entry = std::make_unique<Entry>();
  entry->watcher = this;
  entry->pid = pid;
  entry->process.Reset(
      OpenProcess(SYNCHRONIZE, FALSE, static_cast<DWORD>(pid)));
  if (!entry->process.valid()) {
    DWORD error = GetLastError();
    return error == ERROR_INVALID_PARAMETER ? WatchResult::kGone
                                            : WatchResult::kUnavailable;
  }
  // Registered under mu_: the callback takes mu_ first, so it always finds
  // the entry with its wait handle set.
  if (!RegisterWaitForSingleObject(&entry->wait, entry->process.get(),
                                   &WindowsProcessWatcher::OnSignaled,
                                   entry.get(), INFINITE,
                                   WT_EXECUTEONLYONCE | WT_EXECUTEDEFAULT)) {
    return WatchResult::kUnavailable;
  }
  entries_.emplace(pid, std::move(entry));
  return WatchResult::kWatching;
}

size_t WindowsProcessWatcher::watching() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

void __stdcall WindowsProcessWatcher::OnSignaled(void* context,
                                                 unsigned char timed_out) {
  (void)timed_out;  // INFINITE: never.
  Entry* entry = static_cast<Entry*>(context);
  entry->watcher->Exited(entry);
}

void WindowsProcessWatcher::Exited(Entry* entry) {
  std::unique_ptr<Entry> owned;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closing_) return;  // The destructor owns the entry.
    auto it = entries_.find(entry->pid);
    if (it == entries_.end() || it->second.get() != entry) return;
    owned = std::move(it->second);
    entries_.erase(it);
    ++running_;
  }
  // Non-blocking: allowed from the callback itself (ERROR_IO_PENDING says
  // that this very callback is running).
  UnregisterWait(owned->wait);
  const int64_t pid = owned->pid;
  owned.reset();
  on_exit_(pid);
  std::lock_guard<std::mutex> lock(mu_);
  if (--running_ == 0) idle_.notify_all();
}

}  // namespace portserver
