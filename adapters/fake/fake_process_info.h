// FakeProcessInfo: command lines, a clock and the /proc visibility rule set
// by hand, for tests.
//
// Example:
//   FakeProcessInfo info;
//   info.SetCommandLine(42, "sleep 600");
//   info.SetHidePid(true);        // others' command lines hidden from non-root
//   info.AdvanceMs(1000);
//
// Thread-safe.
#ifndef PORTSERVER_ADAPTERS_FAKE_FAKE_PROCESS_INFO_H_
#define PORTSERVER_ADAPTERS_FAKE_FAKE_PROCESS_INFO_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "domain/process_info.h"

namespace portserver {

class FakeProcessInfo final : public ProcessInfo {
 public:
  void SetCommandLine(int64_t pid, std::string command_line);
  // True: callers other than root see only their own user's command lines.
  void SetHidePid(bool hide);
  void AdvanceMs(int64_t ms);
  int command_line_reads() const;

  std::string CommandLine(int64_t pid, size_t max_bytes) override;
  int64_t StartTimeUnixMs(uint64_t incarnation) override;
  Access AccessFor(const PeerCredentials& caller) override;
  int64_t NowUnixMs() override;

 private:
  mutable std::mutex mu_;
  std::map<int64_t, std::string> command_lines_;
  bool hide_ = false;
  int64_t now_ms_ = 1700000000000;
  int reads_ = 0;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_FAKE_FAKE_PROCESS_INFO_H_
