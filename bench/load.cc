#include "bench/load.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace portserver_bench {
namespace {

// What a worker sends back through its pipe, one per request.
struct Record {
  int64_t nanos;
  int32_t kind;  // Reply::Kind
  int32_t padding;
};

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "loadgen: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

// The worker: asks for `count` ports for its own pid, writes the records,
// exits without running any of the parent's exit handlers.
[[noreturn]] void Worker(const std::string& address, int count, int out_fd) {
  std::vector<Record> records(static_cast<size_t>(count));
  int64_t pid = getpid();
  for (Record& r : records) {
    Reply reply = AskForPort(address, pid);
    r.nanos = reply.nanos;
    r.kind = static_cast<int32_t>(reply.kind);
    r.padding = 0;
  }
  const char* p = reinterpret_cast<const char*>(records.data());
  size_t left = records.size() * sizeof(Record);
  while (left > 0) {
    ssize_t n = write(out_fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(1);
    p += n;
    left -= static_cast<size_t>(n);
  }
  _exit(0);
}

// Reads records from `fd` to end of file.
void ReadRecords(int fd, std::vector<Record>* out) {
  std::vector<char> bytes;
  char buffer[1 << 16];
  while (true) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    bytes.insert(bytes.end(), buffer, buffer + n);
  }
  size_t count = bytes.size() / sizeof(Record);
  size_t old = out->size();
  out->resize(old + count);
  if (count > 0) {
    std::memcpy(&(*out)[old], bytes.data(), count * sizeof(Record));
  }
}

}  // namespace

WaveResult RunWaves(const WaveOptions& options) {
  WaveResult result;
  std::vector<int64_t> latencies;
  std::vector<Record> records;
  std::vector<int> fds(static_cast<size_t>(options.workers));
  std::vector<pid_t> pids(static_cast<size_t>(options.workers));
  std::fflush(nullptr);  // Nothing buffered is duplicated into the workers.
  int64_t start = NowNanos();
  while (result.requests < options.max_requests &&
         static_cast<double>(NowNanos() - start) * 1e-9 < options.max_seconds) {
    for (int w = 0; w < options.workers; ++w) {
      int pipe_fds[2];
      if (pipe2(pipe_fds, O_CLOEXEC) != 0) Die("pipe2");
      pid_t pid = fork();
      if (pid < 0) Die("fork");
      if (pid == 0) {
        close(pipe_fds[0]);
        Worker(options.address, options.ports_per_worker, pipe_fds[1]);
      }
      close(pipe_fds[1]);
      fds[static_cast<size_t>(w)] = pipe_fds[0];
      pids[static_cast<size_t>(w)] = pid;
    }
    records.clear();
    for (int w = 0; w < options.workers; ++w) {
      ReadRecords(fds[static_cast<size_t>(w)], &records);
      close(fds[static_cast<size_t>(w)]);
      int status = 0;
      while (waitpid(pids[static_cast<size_t>(w)], &status, 0) < 0 &&
             errno == EINTR) {
      }
    }
    ++result.waves;
    for (const Record& r : records) {
      ++result.requests;
      latencies.push_back(r.nanos);
      switch (static_cast<Reply::Kind>(r.kind)) {
        case Reply::Kind::kPort:
          ++result.granted;
          break;
        case Reply::Kind::kDenied:
          ++result.denied;
          break;
        default:
          ++result.errors;
          break;
      }
    }
    // A worker that died early returns fewer records; count them missing.
    int64_t expected =
        int64_t{options.workers} * int64_t{options.ports_per_worker};
    if (static_cast<int64_t>(records.size()) < expected) {
      result.errors += expected - static_cast<int64_t>(records.size());
      result.requests += expected - static_cast<int64_t>(records.size());
    }
  }
  result.seconds = static_cast<double>(NowNanos() - start) * 1e-9;
  result.requests_per_second =
      result.seconds > 0 ? static_cast<double>(result.requests) / result.seconds
                         : 0;
  result.latency = Summarize(latencies);
  return result;
}

LeaseResult LeaseUntilDenied(const std::string& address, int64_t pid,
                             int64_t max_count) {
  LeaseResult result;
  int64_t start = NowNanos();
  while (result.leased < max_count) {
    Reply reply = AskForPort(address, pid);
    if (reply.kind == Reply::Kind::kPort) {
      ++result.leased;
    } else if (reply.kind == Reply::Kind::kDenied) {
      result.denied = true;
      break;
    } else {
      ++result.errors;
      break;
    }
  }
  result.seconds = static_cast<double>(NowNanos() - start) * 1e-9;
  return result;
}

TimedRequests TimeRequests(const std::string& address, int64_t pid,
                           int repeat) {
  TimedRequests result;
  for (int i = 0; i < repeat; ++i) {
    Reply reply = AskForPort(address, pid);
    result.nanos.push_back(reply.nanos);
    if (reply.kind == Reply::Kind::kPort) {
      ++result.granted;
    } else if (reply.kind == Reply::Kind::kDenied) {
      ++result.denied;
    } else {
      ++result.errors;
    }
  }
  return result;
}

int64_t TimeToFirstPort(const std::vector<std::string>& argv,
                        const std::string& address) {
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::fflush(nullptr);
  int64_t start = NowNanos();
  pid_t pid = fork();
  if (pid < 0) Die("fork");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int null_fd = open("/dev/null", O_RDWR);
    if (null_fd < 0) _exit(126);
    dup2(null_fd, 0);
    dup2(null_fd, 1);
    dup2(null_fd, 2);
    execvp(args[0], args.data());
    _exit(127);
  }
  int64_t result = -1;
  int status = 0;
  bool reaped = false;
  while (NowNanos() - start < 60000000000LL) {
    Reply r = AskForPort(address, getpid());
    if (r.kind == Reply::Kind::kPort) {
      result = NowNanos() - start;
      break;
    }
    if (waitpid(pid, &status, WNOHANG) == pid) {
      reaped = true;
      break;
    }
    timespec pause{0, 100000};
    nanosleep(&pause, nullptr);
  }
  if (!reaped) {
    kill(pid, SIGTERM);
    int64_t deadline = NowNanos() + 5000000000LL;
    while (waitpid(pid, &status, WNOHANG) != pid) {
      if (NowNanos() > deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        break;
      }
      usleep(1000);
    }
  }
  return result;
}

std::string FormatNanos(int64_t nanos) {
  char buffer[32];
  double v = static_cast<double>(nanos);
  const char* unit = "ns";
  if (v >= 1e9) {
    v /= 1e9;
    unit = "s";
  } else if (v >= 1e6) {
    v /= 1e6;
    unit = "ms";
  } else if (v >= 1e3) {
    v /= 1e3;
    unit = "µs";
  }
  int decimals = v >= 100 ? 0 : v >= 10 ? 1 : 2;
  std::snprintf(buffer, sizeof(buffer), "%.*f %s", decimals, v, unit);
  return buffer;
}

}  // namespace portserver_bench
