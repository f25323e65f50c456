// Logging to stderr in the reference server's glog-like format:
//   I1125 02:17:10.900 12345 main.cc:80] Serving on @unittest-portserver
// (severity letter, local month-day time with milliseconds, thread id,
// file:line, message).
//
// Example:
//   PS_LOG(INFO) << "Serving on " << address;
//   if (Verbose()) PS_LOG(INFO) << "Request on behalf of pid " << pid;
//
// Thread-safe: each line is written with one call.
#ifndef PORTSERVER_APP_LOG_H_
#define PORTSERVER_APP_LOG_H_

#include <cstdint>
#include <mutex>
#include <sstream>
#include <string>

#include "absl/time/time.h"

namespace portserver {

enum class LogSeverity : char { kInfo = 'I', kWarning = 'W', kError = 'E' };

// Per-request lines are logged only when verbose (--verbose or --debug).
void SetVerbose(bool verbose);
bool Verbose();

// The formatted line, without a trailing newline. Exposed for tests.
std::string FormatLogLine(LogSeverity severity, const char* file, int line,
                          const std::string& message);

// Lets at most `lines` lines through per `window` (a fixed window that
// starts with the first line after the previous one ran out), and counts the
// rest, so that a flood of log-worthy events cannot fill a disk.
//
// Example:
//   LogRateLimiter limiter(10, absl::Seconds(1));
//   uint64_t held_back = 0;
//   if (limiter.Allow(absl::Now(), &held_back)) PS_LOG(INFO) << ...;
//
// Thread-safe.
class LogRateLimiter {
 public:
  LogRateLimiter(uint64_t lines, absl::Duration window)
      : lines_(lines), window_(window) {}
  // True if a line may be written at `now`. Then `*held_back` receives the
  // number of lines suppressed since the last one let through, for that
  // line to mention.
  bool Allow(absl::Time now, uint64_t* held_back);
  // Lines suppressed so far.
  uint64_t suppressed() const;

 private:
  const uint64_t lines_;
  const absl::Duration window_;
  mutable std::mutex mu_;
  absl::Time window_start_ = absl::InfinitePast();  // Guarded by mu_.
  uint64_t in_window_ = 0;                          // Guarded by mu_.
  uint64_t held_back_ = 0;   // Guarded by mu_: since the last line let through.
  uint64_t suppressed_ = 0;  // Guarded by mu_.
};

class LogMessage {
 public:
  LogMessage(LogSeverity severity, const char* file, int line)
      : severity_(severity), file_(file), line_(line) {}
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  ~LogMessage();
  std::ostream& stream() { return stream_; }

 private:
  LogSeverity severity_;
  const char* file_;
  int line_;
  std::ostringstream stream_;
};

}  // namespace portserver

#define PS_LOG_SEVERITY_INFO ::portserver::LogSeverity::kInfo
#define PS_LOG_SEVERITY_WARNING ::portserver::LogSeverity::kWarning
#define PS_LOG_SEVERITY_ERROR ::portserver::LogSeverity::kError
#define PS_LOG(severity)                                                   \
  ::portserver::LogMessage(PS_LOG_SEVERITY_##severity, __FILE__, __LINE__) \
      .stream()

#endif  // PORTSERVER_APP_LOG_H_
