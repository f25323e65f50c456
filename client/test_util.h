// Test helpers for //client: a fake port server, real servers and the CLI as
// child processes, port binding probes and a status matcher.
//
// Example:
//   FakePortServer fake([](const std::string&) { return "20000\n"; });
//   ScopedEnv env(kPortServerAddressEnv, fake.address());
//   EXPECT_THAT(PickUnusedPort(), IsOkAndHolds(20000));
//
// Thread-safety: FakePortServer and ServerProcess are thread-safe; the rest
// are free functions without state, except ScopedEnv (setenv: create it
// before starting threads that read the environment).
#ifndef PORTSERVER_CLIENT_TEST_UTIL_H_
#define PORTSERVER_CLIENT_TEST_UTIL_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"

namespace portpicker::testing {

// Matches an absl::Status or absl::StatusOr<T> with the given code.
inline const absl::Status& StatusOf(const absl::Status& status) {
  return status;
}
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}
MATCHER_P(StatusIs, code, "has status code " + absl::StatusCodeToString(code)) {
  *result_listener << "status is " << StatusOf(arg);
  return StatusOf(arg).code() == code;
}
MATCHER_P(IsOkAndHolds, value,
          "is OK and holds " + ::testing::PrintToString(value)) {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(::testing::Eq(value), *arg,
                                       result_listener);
}

// "@portpicker-test-<pid>-<n>", new at each call.
std::string UniqueAbstractAddress();

// The runfile `path` (e.g. "portserver/app/portserver") under TEST_SRCDIR.
std::string RunfilePath(const std::string& path);

// Sets environment variable `name` to `value` (unsets it for nullopt) and
// restores the old value when destroyed.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, std::optional<std::string> value);
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv();

 private:
  static void Set(const std::string& name,
                  const std::optional<std::string>& value);
  const std::string name_;
  const std::optional<std::string> old_;
};

// A port server in a thread: listens on an AF_UNIX address, reads each
// request (up to a newline, EOF or 64 bytes) and answers handler(request),
// then closes; an empty answer is a denial. Requests are kept.
class FakePortServer {
 public:
  using Handler = std::function<std::string(const std::string& request)>;

  // Serves at `address` (default: a fresh abstract name). Dies (test
  // assertion failure) if it cannot listen.
  explicit FakePortServer(Handler handler,
                          std::string address = UniqueAbstractAddress());
  FakePortServer(const FakePortServer&) = delete;
  FakePortServer& operator=(const FakePortServer&) = delete;
  ~FakePortServer();

  const std::string& address() const { return address_; }
  std::vector<std::string> requests() const;

 private:
  void Serve();

  const std::string address_;
  const Handler handler_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  mutable absl::Mutex mu_;
  std::vector<std::string> requests_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// A handler that answers `reply` to every plain request and, as python's
// server does, closes without a reply on an extended one.
FakePortServer::Handler Reply(std::string reply);

// True if `request` is of the extended protocol (starts "portserver/").
bool IsExtended(const std::string& request);

// A TCP socket bound to `port` on the IPv4 (or IPv6 dual-stack) wildcard
// address, without SO_REUSEADDR unless `reuse_addr`, listening if `listen`.
// Returns its descriptor, or -1 if it cannot bind.
int BindTcp(int family, int port, bool reuse_addr, bool listen);
// Whether a plain TCP bind (no SO_REUSEADDR) of `port` on both the IPv4 and
// IPv6 wildcard addresses succeeds now.
bool CanBindTcp(int port);
// Polls CanBindTcp(port) until true or `timeout` passes.
bool WaitUntilBindable(int port, absl::Duration timeout);

// `n` distinct ports that are free now (IsPortFree), as a pool flag value
// "p-p,q-q,...", which both servers accept.
std::vector<int> FreePorts(int n);
std::string PoolFlag(const std::vector<int>& ports);

struct ProcessResult {
  int exit_code = -1;  // 128 + signal if killed by a signal
  std::string out;
  std::string err;
};
// Runs `argv` (argv[0] a path) with stdin from /dev/null until its stdout and
// stderr are closed and it has exited, or kills it after `timeout`.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         absl::Duration timeout = absl::Seconds(60));

// Runs //client:portpicker_cli (a data dependency) with `args`.
ProcessResult RunCli(const std::vector<std::string>& args);
// The port that a run printed ("<port>\n" and nothing else), or 0.
int PrintedPort(const ProcessResult& result);

// A port server child process: `command` plus --portserver_address and
// --portserver_static_pool, started and waited for until its stderr says
// "Serving on". Its output is drained in a thread (the python server logs
// every request).
class ServerProcess {
 public:
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::vector<std::string>& command, const std::string& address,
      const std::string& pool);
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  // Stops it if Stop() was not called.
  ~ServerProcess();

  // SIGTERM, then waits (SIGKILL after 30 s). Returns the exit code as in
  // ProcessResult. REQUIRES: called at most once.
  int Stop();
  std::string output() const;

 private:
  ServerProcess(pid_t pid, int output_fd);
  // Reads until "Serving on" (true) or EOF or the deadline (false).
  bool WaitUntilServing(absl::Time deadline);
  void Drain();

  const pid_t pid_;
  const int output_fd_;
  bool stopped_ = false;
  mutable absl::Mutex mu_;
  std::string output_ ABSL_GUARDED_BY(mu_);
  std::thread drainer_;
};

}  // namespace portpicker::testing

#endif  // PORTSERVER_CLIENT_TEST_UTIL_H_
