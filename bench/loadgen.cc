// loadgen: drives a port server over the wire protocol and prints one line
// of key=value figures. Works with any server of the protocol (ours, the
// python reference, bench/ceiling_server).
//
//   loadgen --portserver_address=@a [--mode=waves] [--workers=8]
//           [--ports_per_worker=20] [--requests=20000] [--duration=10]
//       W worker processes (fork) each ask for K ports for their own pid and
//       exit, in waves, until `requests` or `duration` seconds are reached.
//       Prints requests/s and p50/p99/max client-side latency.
//   loadgen --portserver_address=@a --mode=lease --pid=P [--max=N]
//       Leases ports to pid P until the first denial (or N leases).
//   loadgen --portserver_address=@a --mode=time --pid=P [--repeat=R]
//       Times R requests for pid P (e.g. denials once everything is leased).
//   loadgen --portserver_address=@a --mode=startup [--repeat=R] -- SERVER...
//       Starts SERVER... (which must serve on @a) R times and times exec to
//       the first port served; stops it with SIGTERM each time.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "bench/load.h"
#include "bench/wire_client.h"

namespace {

using portserver_bench::Flags;

double Micros(int64_t nanos) { return static_cast<double>(nanos) / 1e3; }

int Waves(Flags& flags, const std::string& address) {
  portserver_bench::WaveOptions o;
  o.address = address;
  o.workers = static_cast<int>(flags.GetInt("workers", o.workers));
  o.ports_per_worker =
      static_cast<int>(flags.GetInt("ports_per_worker", o.ports_per_worker));
  o.max_requests = flags.GetInt("requests", o.max_requests);
  o.max_seconds = flags.GetDouble("duration", o.max_seconds);
  flags.CheckAllUsed("loadgen");
  if (o.workers < 1 || o.ports_per_worker < 1) {
    std::fprintf(stderr, "loadgen: --workers and --ports_per_worker >= 1\n");
    return 2;
  }
  portserver_bench::WaveResult r = portserver_bench::RunWaves(o);
  std::printf(
      "mode=waves workers=%d ports_per_worker=%d waves=%lld requests=%lld "
      "granted=%lld denied=%lld errors=%lld seconds=%.3f "
      "requests_per_second=%.0f p50_us=%.1f p99_us=%.1f max_us=%.1f\n",
      o.workers, o.ports_per_worker, static_cast<long long>(r.waves),
      static_cast<long long>(r.requests), static_cast<long long>(r.granted),
      static_cast<long long>(r.denied), static_cast<long long>(r.errors),
      r.seconds, r.requests_per_second, Micros(r.latency.p50),
      Micros(r.latency.p99), Micros(r.latency.max));
  return r.errors == 0 ? 0 : 1;
}

int Lease(Flags& flags, const std::string& address) {
  int64_t pid = flags.GetInt("pid", getpid());
  int64_t max = flags.GetInt("max", 1 << 20);
  flags.CheckAllUsed("loadgen");
  portserver_bench::LeaseResult r =
      portserver_bench::LeaseUntilDenied(address, pid, max);
  std::printf(
      "mode=lease pid=%lld leased=%lld stopped_on_denial=%d errors=%lld "
      "seconds=%.3f\n",
      static_cast<long long>(pid), static_cast<long long>(r.leased),
      r.denied ? 1 : 0, static_cast<long long>(r.errors), r.seconds);
  return r.errors == 0 ? 0 : 1;
}

int Time(Flags& flags, const std::string& address) {
  int64_t pid = flags.GetInt("pid", getpid());
  int repeat = static_cast<int>(flags.GetInt("repeat", 10));
  flags.CheckAllUsed("loadgen");
  portserver_bench::TimedRequests t =
      portserver_bench::TimeRequests(address, pid, repeat);
  portserver_bench::Percentiles p = portserver_bench::Summarize(t.nanos);
  std::printf(
      "mode=time pid=%lld repeat=%d granted=%lld denied=%lld errors=%lld "
      "min_us=%.1f p50_us=%.1f max_us=%.1f\n",
      static_cast<long long>(pid), repeat, static_cast<long long>(t.granted),
      static_cast<long long>(t.denied), static_cast<long long>(t.errors),
      Micros(p.min), Micros(p.p50), Micros(p.max));
  return t.errors == 0 ? 0 : 1;
}

int Startup(Flags& flags, const std::string& address) {
  int repeat = static_cast<int>(flags.GetInt("repeat", 5));
  flags.CheckAllUsed("loadgen");
  if (flags.rest().empty()) {
    std::fprintf(stderr,
                 "loadgen: --mode=startup needs the server command after --, "
                 "serving on --portserver_address\n");
    return 2;
  }
  std::vector<int64_t> nanos;
  for (int i = 0; i < repeat; ++i) {
    int64_t ns = portserver_bench::TimeToFirstPort(flags.rest(), address);
    if (ns < 0) {
      std::fprintf(stderr, "loadgen: the server served no port\n");
      return 1;
    }
    nanos.push_back(ns);
  }
  portserver_bench::Percentiles p = portserver_bench::Summarize(nanos);
  std::printf("mode=startup repeat=%d min_us=%.1f p50_us=%.1f max_us=%.1f\n",
              repeat, Micros(p.min), Micros(p.p50), Micros(p.max));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags(argc, argv);
  std::string address = flags.Get("portserver_address", "@unittest-portserver");
  std::string mode = flags.Get("mode", "waves");
  if (mode == "waves") return Waves(flags, address);
  if (mode == "lease") return Lease(flags, address);
  if (mode == "time") return Time(flags, address);
  if (mode == "startup") return Startup(flags, address);
  std::fprintf(stderr,
               "loadgen: unknown --mode=%s (waves, lease, time, startup)\n",
               mode.c_str());
  return 2;
}
