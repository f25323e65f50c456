// Load: the workloads of the port server benchmarks, over the wire protocol.
//
//   RunWaves          W forked workers, each asks for K ports for its own pid
//                     and exits (its ports must be reclaimed); waves repeat
//                     until a request count or a duration is reached.
//   LeaseUntilDenied  leases ports to one (live) pid until the first denial.
//   TimeRequests      times R requests for one pid (e.g. denials).
//   TimeToFirstPort   exec of a server to the first port it serves.
//
// Example:
//   WaveOptions o;
//   o.address = "@bench"; o.workers = 8; o.ports_per_worker = 20;
//   WaveResult r = RunWaves(o);   // r.requests_per_second, r.latency.p99
//
// Not thread-safe: RunWaves forks, so call it from a single-threaded process.
#ifndef PORTSERVER_BENCH_LOAD_H_
#define PORTSERVER_BENCH_LOAD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "bench/wire_client.h"

namespace portserver_bench {

struct WaveOptions {
  std::string address;
  int workers = 8;
  int ports_per_worker = 20;
  int64_t max_requests = 20000;  // Stop after the wave that reaches it...
  double max_seconds = 10;       // ...or after the wave that passes this.
};

struct WaveResult {
  int64_t requests = 0;
  int64_t granted = 0;
  int64_t denied = 0;
  int64_t errors = 0;  // No server or a bad reply.
  int64_t waves = 0;
  double seconds = 0;  // First fork to last worker reaped.
  double requests_per_second = 0;
  Percentiles latency;  // Of every request, client side.
};

WaveResult RunWaves(const WaveOptions& options);

struct LeaseResult {
  int64_t leased = 0;
  bool denied = false;  // Stopped on a denial (not on max_count or an error).
  int64_t errors = 0;
  double seconds = 0;
};

// Leases ports to `pid` one request at a time until a denial, an error or
// `max_count` leases.
LeaseResult LeaseUntilDenied(const std::string& address, int64_t pid,
                             int64_t max_count);

struct TimedRequests {
  std::vector<int64_t> nanos;  // One per request, in order.
  int64_t granted = 0;
  int64_t denied = 0;
  int64_t errors = 0;
};

// Sends `repeat` requests for `pid`, one after the other.
TimedRequests TimeRequests(const std::string& address, int64_t pid, int repeat);

// Exec to first port: starts `argv` (stdin, stdout and stderr on
// /dev/null), asks `address` for a port for our own pid every 100 µs until
// one is served, then stops the server with SIGTERM (SIGKILL after 5 s) and
// reaps it. Returns the nanoseconds from just before fork() to the reply,
// or -1 if the server exited or served nothing within 60 s.
int64_t TimeToFirstPort(const std::vector<std::string>& argv,
                        const std::string& address);

// "1.23 ms"-style rendering of nanoseconds with three significant digits.
std::string FormatNanos(int64_t nanos);

}  // namespace portserver_bench

#endif  // PORTSERVER_BENCH_LOAD_H_
