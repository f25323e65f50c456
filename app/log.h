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

#include <sstream>
#include <string>

namespace portserver {

enum class LogSeverity : char { kInfo = 'I', kWarning = 'W', kError = 'E' };

// Per-request lines are logged only when verbose (--verbose or --debug).
void SetVerbose(bool verbose);
bool Verbose();

// The formatted line, without a trailing newline. Exposed for tests.
std::string FormatLogLine(LogSeverity severity, const char* file, int line,
                          const std::string& message);

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
#define PS_LOG(severity) \
  ::portserver::LogMessage(PS_LOG_SEVERITY_##severity, __FILE__, __LINE__).stream()

#endif  // PORTSERVER_APP_LOG_H_
