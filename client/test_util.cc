#include "client/test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <random>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "client/portpicker.h"
#include "client/socket_address.h"
#include "gtest/gtest.h"

extern char** environ;

namespace portpicker::testing {
namespace {

constexpr size_t kMaxRequestSize = 64;

// Waits for `fd` to be readable until `deadline`; true if it is.
bool PollReadable(int fd, absl::Time deadline) {
  while (true) {
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left_ms <= 0) return false;
    pollfd p = {fd, POLLIN, 0};
    const int ready =
        poll(&p, 1, static_cast<int>(std::min<int64_t>(left_ms, 60 * 1000)));
    if (ready > 0) return true;
    if (ready < 0 && errno != EINTR) return false;
  }
}

// read() that retries on EINTR.
ssize_t ReadSome(int fd, std::string& into) {
  char buffer[4096];
  ssize_t n;
  do {
    n = read(fd, buffer, sizeof(buffer));
  } while (n < 0 && errno == EINTR);
  if (n > 0) into.append(buffer, static_cast<size_t>(n));
  return n;
}

// Our environment, with `name` set to `value`.
std::vector<std::string> EnvironmentWith(const std::string& name,
                                         const std::string& value) {
  std::vector<std::string> env;
  const std::string prefix = name + "=";
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, prefix)) env.push_back(*e);
  }
  env.push_back(prefix + value);
  return env;
}

// Starts argv[0] with stdin from /dev/null and stdout, stderr to the given
// descriptors, in `env` (nullptr: ours). Returns the pid, or -1.
pid_t Spawn(const std::vector<std::string>& argv, int out_fd, int err_fd,
            const std::vector<std::string>* env = nullptr) {
  std::vector<char*> envp;
  if (env != nullptr) {
    for (const std::string& e : *env)
      envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }
  std::vector<char*> args;
  for (const std::string& arg : argv)
    args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  pid_t pid = -1;
  const int error = posix_spawn(&pid, args[0], &actions, nullptr, args.data(),
                                env != nullptr ? envp.data() : environ);
  posix_spawn_file_actions_destroy(&actions);
  return error == 0 ? pid : -1;
}

int ExitCode(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

// Waits for `pid`, killing it with SIGKILL if it has not exited by
// `deadline`. Returns its exit code.
int WaitOrKill(pid_t pid, absl::Time deadline) {
  int status = 0;
  while (true) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) return ExitCode(status);
    if (done < 0 && errno != EINTR) return -1;
    if (absl::Now() > deadline) {
      kill(pid, SIGKILL);
      deadline = absl::InfiniteFuture();
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

}  // namespace

std::string UniqueAbstractAddress() {
  // A sandboxed test has a small pid that other runs share: add a random
  // part, so that runs of one test on one host never meet.
  static const uint32_t run = std::random_device{}();
  static std::atomic<int> counter{0};
  return absl::StrCat("@portpicker-test-", getpid(), "-", absl::Hex(run), "-",
                      counter++);
}

std::string RunfilePath(const std::string& path) {
  const char* root = std::getenv("TEST_SRCDIR");
  return absl::StrCat(root != nullptr ? root : ".", "/", path);
}

ScopedEnv::ScopedEnv(std::string name, std::optional<std::string> value)
    : name_(std::move(name)),
      old_(std::getenv(name_.c_str()) != nullptr
               ? std::optional<std::string>(std::getenv(name_.c_str()))
               : std::nullopt) {
  Set(name_, value);
}

ScopedEnv::~ScopedEnv() { Set(name_, old_); }

void ScopedEnv::Set(const std::string& name,
                    const std::optional<std::string>& value) {
  if (value.has_value()) {
    setenv(name.c_str(), value->c_str(), 1);
  } else {
    unsetenv(name.c_str());
  }
}

FakePortServer::FakePortServer(Handler handler, std::string address)
    : address_(std::move(address)), handler_(std::move(handler)) {
  absl::StatusOr<SocketAddress> un = ParseUnixAddress(address_);
  EXPECT_TRUE(un.ok()) << un.status();
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_EQ(bind(listen_fd_, un->get(), un->size), 0)
      << address_ << ": " << std::strerror(errno);
  EXPECT_EQ(listen(listen_fd_, 16), 0) << std::strerror(errno);
  EXPECT_EQ(pipe2(stop_pipe_, O_CLOEXEC), 0);
  thread_ = std::thread([this] { Serve(); });
}

FakePortServer::~FakePortServer() {
  close(stop_pipe_[1]);
  thread_.join();
  close(stop_pipe_[0]);
  close(listen_fd_);
}

std::vector<std::string> FakePortServer::requests() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

void FakePortServer::Serve() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;  // The write end was closed: stop.
    const int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    std::string request;
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (request.find('\n') == std::string::npos &&
           request.size() < kMaxRequestSize && PollReadable(client, deadline) &&
           ReadSome(client, request) > 0) {
    }
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back(request);
    }
    const std::string reply = handler_(request);
    if (!reply.empty()) send(client, reply.data(), reply.size(), MSG_NOSIGNAL);
    close(client);
  }
}

FakePortServer::Handler Reply(std::string reply) {
  return [reply = std::move(reply)](const std::string& request) {
    // As python's server: an extended request is not a pid, so it closes.
    if (IsExtended(request)) return std::string();
    return reply;
  };
}

bool IsExtended(const std::string& request) {
  return absl::StartsWith(request, "portserver/");
}

int BindTcp(int family, int port, bool reuse_addr, bool listen) {
  const int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  if (reuse_addr) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const SocketAddress address = WildcardAddress(family, port);
  if (bind(fd, address.get(), address.size) != 0 ||
      (listen && ::listen(fd, 1) != 0)) {
    const int error = errno;
    close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

bool CanBindTcp(int port) {
  for (int family : {AF_INET, AF_INET6}) {
    const int fd =
        BindTcp(family, port, /*reuse_addr=*/false, /*listen=*/false);
    if (fd < 0 && errno != EAFNOSUPPORT) return false;
    if (fd >= 0) close(fd);
  }
  return true;
}

bool WaitUntilBindable(int port, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!CanBindTcp(port)) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

std::vector<int> FreePorts(int n) {
  // Held together while collected, so the kernel gives distinct ports.
  std::vector<int> fds;
  std::vector<int> ports;
  for (int tries = 0; static_cast<int>(ports.size()) < n && tries < 100 * n;
       ++tries) {
    const int fd = BindTcp(AF_INET, 0, /*reuse_addr=*/false, /*listen=*/false);
    if (fd < 0) continue;
    fds.push_back(fd);
    ports.push_back(BoundPort(fd));
  }
  for (int fd : fds) close(fd);
  std::vector<int> free;
  for (int port : ports) {
    if (IsPortFree(port)) free.push_back(port);
  }
  return free;
}

std::string PoolFlag(const std::vector<int>& ports) {
  return absl::StrJoin(ports, ",", [](std::string* out, int port) {
    absl::StrAppend(out, port, "-", port);
  });
}

ProcessResult RunProcess(const std::vector<std::string>& argv,
                         absl::Duration timeout) {
  ProcessResult result;
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return result;
  const pid_t pid = Spawn(argv, out[1], err[1]);
  close(out[1]);
  close(err[1]);
  const absl::Time deadline = absl::Now() + timeout;
  if (pid > 0) {
    std::pair<int, std::string*> open[] = {{out[0], &result.out},
                                           {err[0], &result.err}};
    int still_open = 2;
    while (still_open > 0 && absl::Now() < deadline) {
      pollfd fds[2] = {{open[0].first, POLLIN, 0}, {open[1].first, POLLIN, 0}};
      if (poll(fds, 2, 100) < 0 && errno != EINTR) break;
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd >= 0 && fds[i].revents != 0 &&
            ReadSome(fds[i].fd, *open[i].second) <= 0) {
          open[i].first = -1;  // poll() ignores negative descriptors.
          --still_open;
        }
      }
    }
    result.exit_code = WaitOrKill(pid, deadline);
  }
  close(out[0]);
  close(err[0]);
  return result;
}

ProcessResult RunCli(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {
      RunfilePath("portserver/client/portpicker_cli")};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv);
}

int PrintedPort(const ProcessResult& result) {
  int port = 0;
  absl::string_view out = result.out;
  if (!absl::ConsumeSuffix(&out, "\n") || !absl::SimpleAtoi(out, &port)) {
    return 0;
  }
  return port;
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::vector<std::string>& command, const std::string& address,
    const std::string& pool) {
  std::vector<std::string> argv = command;
  argv.push_back("--portserver_address=" + address);
  argv.push_back("--portserver_static_pool=" + pool);
  int output[2];
  if (pipe2(output, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  // Hermetic state: a server's default journal goes under the test's own
  // tmpdir (XDG_RUNTIME_DIR), never into the shared /tmp/portserver-<uid>.
  const char* tmpdir = std::getenv("TEST_TMPDIR");
  std::vector<std::string> env =
      EnvironmentWith("XDG_RUNTIME_DIR", tmpdir != nullptr ? tmpdir : "/tmp");
  const pid_t pid =
      Spawn(argv, output[1], output[1], tmpdir != nullptr ? &env : nullptr);
  close(output[1]);
  if (pid < 0) {
    close(output[0]);
    return absl::InternalError("cannot start " + absl::StrJoin(argv, " "));
  }
  std::unique_ptr<ServerProcess> server(new ServerProcess(pid, output[0]));
  if (!server->WaitUntilServing(absl::Now() + absl::Seconds(30))) {
    server->Stop();
    return absl::UnavailableError(absl::StrCat(
        absl::StrJoin(argv, " "), " did not say \"Serving on\"; output:\n",
        server->output()));
  }
  server->drainer_ = std::thread([s = server.get()] { s->Drain(); });
  return server;
}

ServerProcess::ServerProcess(pid_t pid, int output_fd)
    : pid_(pid), output_fd_(output_fd) {}

ServerProcess::~ServerProcess() {
  if (!stopped_) Stop();
}

bool ServerProcess::WaitUntilServing(absl::Time deadline) {
  std::string seen;
  while (seen.find("Serving on") == std::string::npos) {
    if (!PollReadable(output_fd_, deadline) ||
        ReadSome(output_fd_, seen) <= 0) {
      absl::MutexLock lock(&mu_);
      output_ += seen;
      return false;
    }
  }
  absl::MutexLock lock(&mu_);
  output_ += seen;
  return true;
}

void ServerProcess::Drain() {
  std::string chunk;
  while (ReadSome(output_fd_, chunk) > 0) {
    absl::MutexLock lock(&mu_);
    output_ += chunk;
    chunk.clear();
  }
}

int ServerProcess::Stop() {
  stopped_ = true;
  kill(pid_, SIGTERM);
  const int code = WaitOrKill(pid_, absl::Now() + absl::Seconds(30));
  if (drainer_.joinable()) drainer_.join();
  close(output_fd_);
  return code;
}

std::string ServerProcess::output() const {
  absl::MutexLock lock(&mu_);
  return output_;
}

}  // namespace portpicker::testing
