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
  return absl::StrFormat("%c%s %d %s:%d] %s", static_cast<char>(severity),
                         when, ThreadId(), Basename(file), line, message);
}

LogMessage::~LogMessage() {
  std::string text = FormatLogLine(severity_, file_, line_, stream_.str());
  text.push_back('\n');
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

}  // namespace portserver
