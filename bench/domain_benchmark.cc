// Micro-benchmarks of the domain's hot paths (PortService over the in-memory
// fakes) at pool sizes 100, 10,000 and 64,000, to show whether a request
// costs more when the pool is larger. Besides time, each reports the probes
// made per request (exact counts from the fakes): a flat count across pool
// sizes is the domain's promise; time may still creep up with cache misses
// and with the fakes' own std::map/std::set lookups (O(log n)).
//
//   ./bazelw run -c opt //bench:domain_benchmark
//   ./bazelw run -c opt //bench:domain_benchmark -- --benchmark_filter=Deny
//
// Benchmarks:
//   Allocate                 lease a free port to one of 64 live owners.
//   AllocateAfterOwnerDied   pool full; the previous requester (1 port) has
//                            died; a new live pid asks: its port must be
//                            reclaimed first (the loadgen's steady state).
//   Churn                    pool with room; each request comes from a new
//                            pid that dies right after (reclaim by sweep).
//   DenyFullyLeased          every port leased to live owners (10 ports
//                            each); a new live pid asks and is denied.
//   ReclaimInFullPool        every port leased to owners of 10 ports; one
//                            owner dies; requests from a new pid until one
//                            is granted. Time per *reclaimed port found*;
//                            `requests` counts the denials on the way.
//   JournalSnapshot          the journal's text for N leases with notes
//                            (lease time, a 15-byte label): what a grant of
//                            N ports appends (N = 20) and what a compaction
//                            writes while the service waits (10,000,
//                            64,000).
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "adapters/fake/fake_port_probe.h"
#include "adapters/fake/fake_process_probe.h"
#include "benchmark/benchmark.h"
#include "domain/lease_journal.h"
#include "domain/port_service.h"

namespace portserver {
namespace {

constexpr int64_t kFirstPid = 1000;

std::vector<uint16_t> MakePool(int64_t size) {
  std::vector<uint16_t> pool;
  pool.reserve(static_cast<size_t>(size));
  for (int64_t i = 0; i < size; ++i) {
    pool.push_back(static_cast<uint16_t>(1024 + i));
  }
  return pool;
}

// A service over fakes; owners are spawned by the benchmarks.
struct World {
  explicit World(int64_t pool_size)
      : pool(MakePool(pool_size)),
        service(std::make_unique<PortService>(pool, processes, ports)) {}

  void Rebuild() {
    service = std::make_unique<PortService>(pool, processes, ports);
  }

  // Leases the whole pool to live owners holding `per_owner` ports each,
  // pids from `first_pid` up. Returns the next unused pid.
  int64_t FillPool(int64_t per_owner, int64_t first_pid) {
    int64_t pid = first_pid;
    int64_t held = 0;
    processes.Spawn(pid);
    while (service->Allocate(pid).granted()) {
      if (++held == per_owner) {
        held = 0;
        processes.Spawn(++pid);
      }
    }
    return pid + 1;
  }

  std::vector<uint16_t> pool;
  FakeProcessProbe processes;
  FakePortProbe ports;
  std::unique_ptr<PortService> service;
};

void ReportProbes(benchmark::State& state, const World& w, int process_before,
                  int port_before, int64_t requests) {
  double n = static_cast<double>(requests);
  state.counters["process_probes"] =
      static_cast<double>(w.processes.probe_count() - process_before) / n;
  state.counters["port_probes"] =
      static_cast<double>(w.ports.probe_count() - port_before) / n;
}

void BM_Allocate(benchmark::State& state) {
  World w(state.range(0));
  constexpr int64_t kOwners = 64;
  for (int64_t i = 0; i < kOwners; ++i) w.processes.Spawn(kFirstPid + i);
  int64_t left = state.range(0);
  int64_t i = 0;
  int process_before = w.processes.probe_count();
  int port_before = w.ports.probe_count();
  for (auto _ : state) {
    if (left == 0) {  // Full: start over, untimed.
      state.PauseTiming();
      w.Rebuild();
      left = state.range(0);
      state.ResumeTiming();
    }
    Decision d = w.service->Allocate(kFirstPid + i % kOwners);
    benchmark::DoNotOptimize(d);
    if (!d.granted()) state.SkipWithError("denied");
    --left;
    ++i;
  }
  ReportProbes(state, w, process_before, port_before, i);
}
BENCHMARK(BM_Allocate)->Arg(100)->Arg(10000)->Arg(64000);

void BM_AllocateAfterOwnerDied(benchmark::State& state) {
  World w(state.range(0));
  // One live owner holds all but one port.
  w.processes.Spawn(kFirstPid);
  for (int64_t i = 0; i + 1 < state.range(0); ++i) {
    w.service->Allocate(kFirstPid);
  }
  int64_t pid = kFirstPid + 1;
  int64_t requests = 0;
  int process_before = w.processes.probe_count();
  int port_before = w.ports.probe_count();
  for (auto _ : state) {
    w.processes.Spawn(pid);
    Decision d = w.service->Allocate(pid);
    if (!d.granted()) state.SkipWithError("denied");
    w.processes.Kill(pid);
    ++pid;
    ++requests;
  }
  ReportProbes(state, w, process_before, port_before, requests);
}
BENCHMARK(BM_AllocateAfterOwnerDied)->Arg(100)->Arg(10000)->Arg(64000);

void BM_JournalSnapshot(benchmark::State& state) {
  std::vector<std::pair<uint16_t, Owner>> leases;
  for (int64_t i = 0; i < state.range(0); ++i) {
    leases.push_back(
        {static_cast<uint16_t>(1024 + i),
         Owner{kFirstPid + i / 10, 1234567 + static_cast<uint64_t>(i)}});
  }
  auto note_of = [](uint16_t port) {
    JournalNote note;
    note.port = port;
    note.unix_seconds = 1764552000;
    note.label = "//pkg:some_test";
    return note;
  };
  size_t bytes = 0;
  for (auto _ : state) {
    std::string text = JournalSnapshot(leases, note_of);
    bytes = text.size();
    benchmark::DoNotOptimize(text.data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_JournalSnapshot)
    ->Arg(20)
    ->Arg(10000)
    ->Arg(64000)
    ->Unit(benchmark::kMicrosecond);

void BM_Churn(benchmark::State& state) {
  World w(state.range(0));
  int64_t pid = kFirstPid;
  int64_t requests = 0;
  int process_before = w.processes.probe_count();
  int port_before = w.ports.probe_count();
  for (auto _ : state) {
    w.processes.Spawn(pid);
    Decision d = w.service->Allocate(pid);
    if (!d.granted()) state.SkipWithError("denied");
    w.processes.Kill(pid);
    ++pid;
    ++requests;
  }
  ReportProbes(state, w, process_before, port_before, requests);
  state.counters["leased_at_end"] =
      static_cast<double>(w.service->stats().leased_ports);
}
BENCHMARK(BM_Churn)->Arg(100)->Arg(10000)->Arg(64000);

void BM_DenyFullyLeased(benchmark::State& state) {
  World w(state.range(0));
  int64_t asker = w.FillPool(10, kFirstPid);
  w.processes.Spawn(asker);
  int64_t requests = 0;
  int process_before = w.processes.probe_count();
  int port_before = w.ports.probe_count();
  for (auto _ : state) {
    Decision d = w.service->Allocate(asker);
    benchmark::DoNotOptimize(d);
    if (d.granted()) state.SkipWithError("granted");
    ++requests;
  }
  ReportProbes(state, w, process_before, port_before, requests);
  state.counters["owners"] = static_cast<double>(w.service->stats().owners);
}
BENCHMARK(BM_DenyFullyLeased)->Arg(100)->Arg(10000)->Arg(64000);

void BM_ReclaimInFullPool(benchmark::State& state) {
  World w(state.range(0));
  int64_t next_pid = w.FillPool(10, kFirstPid);
  std::deque<int64_t> owners;  // Live owners, oldest first.
  for (int64_t pid = kFirstPid; pid < next_pid; ++pid) {
    if (!w.service->PortsOf(pid).empty()) owners.push_back(pid);
  }
  int64_t requests = 0;
  int64_t reclaims = 0;
  int process_before = w.processes.probe_count();
  int port_before = w.ports.probe_count();
  for (auto _ : state) {
    // The oldest owner dies; a new pid asks until it gets a port back.
    w.processes.Kill(owners.front());
    owners.pop_front();
    int64_t asker = next_pid++;
    w.processes.Spawn(asker);
    // A sweep visits every owner within owners/17 requests; give it ample
    // room, then report rather than spin.
    int64_t cap = 4 * static_cast<int64_t>(owners.size()) + 100;
    bool granted = false;
    for (int64_t n = 0; n < cap && !granted; ++n) {
      ++requests;
      granted = w.service->Allocate(asker).granted();
    }
    if (!granted) {
      state.SkipWithError("a dead owner's ports never came back");
      break;
    }
    ++reclaims;
    // Untimed: the new owner takes the rest of what came back.
    state.PauseTiming();
    int process_untimed = w.processes.probe_count();
    int port_untimed = w.ports.probe_count();
    while (w.service->Allocate(asker).granted()) {
    }
    owners.push_back(asker);
    process_before += w.processes.probe_count() - process_untimed;
    port_before += w.ports.probe_count() - port_untimed;
    state.ResumeTiming();
  }
  ReportProbes(state, w, process_before, port_before, requests);
  state.counters["requests_per_reclaim"] =
      static_cast<double>(requests) / static_cast<double>(reclaims);
  state.counters["owners"] = static_cast<double>(w.service->stats().owners);
}
BENCHMARK(BM_ReclaimInFullPool)->Arg(100)->Arg(10000)->Arg(64000);

}  // namespace
}  // namespace portserver
