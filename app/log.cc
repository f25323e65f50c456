#include "app/log.h"

#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace portserver {
namespace {

std::atomic<bool> verbose{false};

long ThreadId() {
#if defined(__linux__)
  return static_cast<long>(syscall(SYS_gettid));
#else
  return static_cast<long>(
      std::hash<std::thread::id>{}(std::this_thread::get_id()) % 1000000);
#endif
}

const char* Basename(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash ? slash + 1 : path;
}

}  // namespace

void SetVerbose(bool on) { verbose.store(on, std::memory_order_relaxed); }
bool Verbose() { return verbose.load(std::memory_order_relaxed); }

std::string FormatLogLine(LogSeverity severity, const char* file, int line,
                          const std::string& message) {
  std::string when =
      absl::FormatTime("%m%d %H:%M:%E3S", absl::Now(), absl::LocalTimeZone());
  return absl::StrFormat("%c%s %d %s:%d] %s", static_cast<char>(severity), when,
                         ThreadId(), Basename(file), line, message);
}

bool LogRateLimiter::Allow(absl::Time now, uint64_t* held_back) {
  std::lock_guard<std::mutex> lock(mu_);
  if (now - window_start_ >= window_) {
    window_start_ = now;
    in_window_ = 0;
  }
  if (in_window_ >= lines_) {
    ++held_back_;
    ++suppressed_;
    return false;
  }
  ++in_window_;
  *held_back = held_back_;
  held_back_ = 0;
  return true;
}

uint64_t LogRateLimiter::suppressed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return suppressed_;
}

LogMessage::~LogMessage() {
  std::string text = FormatLogLine(severity_, file_, line_, stream_.str());
  text.push_back('\n');
  // A closed or full stderr (EPIPE with SIGPIPE ignored, ENOSPC) loses the
  // line, never the server: clear the error so later lines are tried again.
  if (std::fwrite(text.data(), 1, text.size(), stderr) != text.size() ||
      std::fflush(stderr) != 0) {
    std::clearerr(stderr);
  }
}

}  // namespace portserver
