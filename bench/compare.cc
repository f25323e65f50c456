// compare: runs our server, the python reference and the ceiling server
// through the benchmark scenarios on this machine and prints a Markdown
// table with the ratios ours/reference and ours/ceiling.
//
//   ./bazelw run -c opt //bench:compare [-- flags]
//
// Scenarios (each on a fresh server, on a private abstract address):
//   throughput  W forked workers each lease K ports for their own pid and
//               exit (reclaim of dead owners), in waves; req/s and latency.
//   deny        pool leased to live `sleep` processes (1000 ports each,
//               --ports_per_owner; our server runs with its default flags,
//               so with no per-pid quota) until the first denial, then the
//               time of more (denied) requests.
//   startup     exec of the server to the first port served (connect-retry).
//   memory      Private_Dirty and Rss of the server (smaps_rollup) with the
//               pool 1024-65535 fully leased to live `sleep` processes.
//   multi       ours only: K ports (--ports_per_worker, 20) for one live
//               owner in one extended request ("allocate count=K",
//               docs/protocol.md) against K plain requests, interleaved,
//               --multi_rounds times; time and server CPU per port.
//
// Flags (defaults in brackets):
//   --servers=ours,reference,ceiling
//   --only=throughput,deny,startup,memory,multi  --multi_rounds=50
//   --workers=1,2,4,8,16,32  --ports_per_worker=20  --requests=10000
//   --duration=10 (seconds; each run stops at whichever comes first)
//   --rounds=3 (throughput runs per point; the median is kept)
//   --startup_runs=7  --deny_repeat=50  --reference_deny_repeat=3
//   --ports_per_owner=1000 (leases per sleep process)
//   --ours=app/portserver  --ceiling=bench/ceiling_server
//   --reference="/usr/bin/python3 /usr/lib/python3/dist-packages/portserver.py"
//   --chart=FILE.svg|.png (relative to the workspace under `bazel run`;
//                     needs gnuplot) --csv=FILE (raw figures, same base)
//
// Benchmarks print figures; nothing here fails on timing. Exit status 1 only
// if a server could not be started or served nothing; wrong answers (errors,
// unexpected denials) are counted and printed under the table.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "bench/load.h"
#include "bench/wire_client.h"

namespace portserver_bench {
namespace {

// ---------------------------------------------------------------- processes

std::vector<pid_t> g_children;  // Killed on exit.

void KillChildren() {
  for (pid_t pid : g_children) {
    if (pid > 0) kill(pid, SIGKILL);
  }
  for (pid_t pid : g_children) {
    if (pid > 0) waitpid(pid, nullptr, 0);
  }
  g_children.clear();
}

void OnSignal(int sig) {
  for (pid_t pid : g_children) {
    if (pid > 0) kill(pid, SIGKILL);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

void Forget(pid_t pid) {
  g_children.erase(std::remove(g_children.begin(), g_children.end(), pid),
                   g_children.end());
}

// Starts argv[0] with stdin from /dev/null and stdout+stderr to `log` (or
// /dev/null when empty). The child dies with us (PR_SET_PDEATHSIG).
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    std::perror("compare: fork");
    std::exit(1);
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int in = open("/dev/null", O_RDONLY);
    int out = log.empty()
                  ? open("/dev/null", O_WRONLY)
                  : open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0) _exit(126);
    dup2(in, 0);
    dup2(out, 1);
    dup2(out, 2);
    execvp(args[0], args.data());
    _exit(127);
  }
  g_children.push_back(pid);
  return pid;
}

// SIGTERM, then SIGKILL after 5 s. Returns the wait status.
int Stop(pid_t pid) {
  kill(pid, SIGTERM);
  int status = 0;
  int64_t deadline = NowNanos() + 5000000000LL;
  while (true) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) break;
    if (NowNanos() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    usleep(1000);
  }
  Forget(pid);
  return status;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Time on CPU of every thread of `pid`, in nanoseconds (schedstat).
int64_t CpuNanos(pid_t pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return 0;
  int64_t total = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::istringstream in(ReadFile(dir + "/" + e->d_name + "/schedstat"));
    int64_t ns = 0;
    if (in >> ns) total += ns;
  }
  closedir(d);
  return total;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The first line of a command's output ("" if it cannot run).
std::string CommandOutput(const std::string& command) {
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return "";
  char buffer[512];
  std::string out;
  while (std::fgets(buffer, sizeof(buffer), p) != nullptr) out += buffer;
  pclose(p);
  return Trim(out);
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, sep)) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// ------------------------------------------------------------------ servers

struct ServerKind {
  std::string name;                  // "ours", "reference", "ceiling"
  std::vector<std::string> command;  // Without the two flags.
};

struct Config {
  std::vector<ServerKind> servers;
  std::vector<std::string> only;
  std::vector<int> workers;
  int ports_per_worker = 20;
  int64_t requests = 10000;
  double duration = 10;
  int rounds = 3;
  int startup_runs = 7;
  int deny_repeat = 50;
  int reference_deny_repeat = 3;
  int64_t ports_per_owner = 1000;
  int multi_rounds = 50;
  std::string chart;
  std::string csv;
  std::string tmp_dir;
};

bool Wants(const Config& c, const std::string& scenario) {
  return std::find(c.only.begin(), c.only.end(), scenario) != c.only.end();
}

const ServerKind* FindServer(const Config& c, const std::string& name) {
  for (const ServerKind& s : c.servers) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

int g_address_counter = 0;

std::string NewAddress() {
  return "@portserver-bench-" + std::to_string(getpid()) + "-" +
         std::to_string(++g_address_counter);
}

std::vector<std::string> ServerArgv(const ServerKind& kind,
                                    const std::string& address,
                                    const std::string& pool) {
  std::vector<std::string> argv = kind.command;
  argv.push_back("--portserver_address=" + address);
  argv.push_back("--portserver_static_pool=" + pool);
  return argv;
}

struct RunningServer {
  pid_t pid = -1;
  std::string address;
  std::string log;
};

// Starts a server and waits for "Serving on" in its log (up to 60 s).
RunningServer StartServer(const Config& c, const ServerKind& kind,
                          const std::string& pool) {
  RunningServer s;
  s.address = NewAddress();
  s.log = c.tmp_dir + "/" + kind.name + "-" +
          std::to_string(g_address_counter) + ".log";
  s.pid = Spawn(ServerArgv(kind, s.address, pool), s.log);
  int64_t deadline = NowNanos() + 60000000000LL;
  while (true) {
    if (ReadFile(s.log).find("Serving on") != std::string::npos) return s;
    int status = 0;
    if (waitpid(s.pid, &status, WNOHANG) == s.pid || NowNanos() > deadline) {
      std::fprintf(stderr, "compare: %s did not start; its log:\n%s\n",
                   kind.name.c_str(), ReadFile(s.log).c_str());
      std::exit(1);
    }
    usleep(1000);
  }
}

void StopServer(RunningServer& s) {
  Stop(s.pid);
  unlink(s.log.c_str());
  s.pid = -1;
}

// ---------------------------------------------------------------- scenarios

struct ThroughputPoint {
  double rps = 0;  // Median over rounds.
  std::vector<double> all;
  double cpu_ns_per_request = 0;  // Server CPU; median over rounds.
  Percentiles latency;            // Of the median round.
  int64_t denied = 0;
  int64_t errors = 0;
};

using ThroughputTable = std::map<std::string, std::map<int, ThroughputPoint>>;

const char* kThroughputPool = "15000-24999";

ThroughputTable RunThroughput(const Config& c) {
  ThroughputTable table;
  std::map<std::string, std::map<int, std::vector<WaveResult>>> runs;
  std::map<std::string, std::map<int, std::vector<double>>> cpu_runs;
  for (int round = 1; round <= c.rounds; ++round) {
    for (int w : c.workers) {
      for (const ServerKind& kind : c.servers) {
        RunningServer s = StartServer(c, kind, kThroughputPool);
        WaveOptions o;
        o.address = s.address;
        o.workers = w;
        o.ports_per_worker = c.ports_per_worker;
        o.max_requests = c.requests;
        o.max_seconds = c.duration;
        int64_t cpu_before = CpuNanos(s.pid);
        WaveResult r = RunWaves(o);
        double cpu = static_cast<double>(CpuNanos(s.pid) - cpu_before) /
                     static_cast<double>(std::max<int64_t>(r.requests, 1));
        StopServer(s);
        cpu_runs[kind.name][w].push_back(cpu);
        std::fprintf(
            stderr,
            "throughput round %d/%d %-9s W=%-2d %7.0f req/s  server "
            "CPU %s/req  p50 %s  p99 %s  max %s  (%lld requests, "
            "%lld denied, %lld errors)\n",
            round, c.rounds, kind.name.c_str(), w, r.requests_per_second,
            FormatNanos(static_cast<int64_t>(cpu)).c_str(),
            FormatNanos(r.latency.p50).c_str(),
            FormatNanos(r.latency.p99).c_str(),
            FormatNanos(r.latency.max).c_str(),
            static_cast<long long>(r.requests),
            static_cast<long long>(r.denied), static_cast<long long>(r.errors));
        runs[kind.name][w].push_back(r);
      }
    }
  }
  for (auto& [name, by_w] : runs) {
    for (auto& [w, results] : by_w) {
      ThroughputPoint& p = table[name][w];
      std::vector<std::pair<double, size_t>> order;
      for (size_t i = 0; i < results.size(); ++i) {
        p.all.push_back(results[i].requests_per_second);
        order.push_back({results[i].requests_per_second, i});
        p.denied += results[i].denied;
        p.errors += results[i].errors;
      }
      std::sort(order.begin(), order.end());
      p.rps = Median(p.all);
      p.cpu_ns_per_request = Median(cpu_runs[name][w]);
      p.latency = results[order[order.size() / 2].second].latency;
    }
  }
  return table;
}

// Long-lived owners to lease ports to: `sleep` processes, spawned as needed
// and shared by every scenario.
std::vector<pid_t> g_sleepers;

// True once `pid` runs `sleep` and sleeps (state S in /proc/<pid>/stat):
// its exec and start-up are over.
bool Settled(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  size_t close = line.rfind(')');
  return line.find("(sleep)") != std::string::npos &&
         close != std::string::npos && close + 2 < line.size() &&
         line[close + 2] == 'S';
}

// The i-th live `sleep` process (spawned on first use), once it has
// settled: a process still starting up would compete for the cores with
// whatever is timed next (the `multi` scenario's plain requests were 30%
// slower when their owner had just been spawned).
pid_t Sleeper(size_t i) {
  while (g_sleepers.size() <= i) {
    pid_t pid = Spawn({"sleep", "1000000"}, "");
    while (!Settled(pid)) {
      if (waitpid(pid, nullptr, WNOHANG) == pid) {
        std::fprintf(stderr, "compare: `sleep` exited at start-up\n");
        std::exit(1);
      }
      sched_yield();
    }
    g_sleepers.push_back(pid);
  }
  return g_sleepers[i];
}

void StopSleepers() {
  for (pid_t pid : g_sleepers) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    Forget(pid);
  }
  g_sleepers.clear();
}

// Leases ports to live sleepers, `per_owner` each (our server runs with no
// per-pid quota, its default), until the first denial that is not a full
// owner, or `max_count` leases. Returns the total; `owners` the number
// of sleepers that got ports.
LeaseResult LeaseToSleepers(const std::string& address, int64_t per_owner,
                            int64_t max_count, size_t* owners) {
  LeaseResult total;
  *owners = 0;
  int64_t start = NowNanos();
  for (size_t i = 0; total.leased < max_count; ++i) {
    LeaseResult r = LeaseUntilDenied(
        address, Sleeper(i), std::min(per_owner, max_count - total.leased));
    total.leased += r.leased;
    total.errors += r.errors;
    if (r.leased > 0) ++*owners;
    if (r.denied || r.errors > 0) {
      total.denied = r.denied;
      break;
    }
  }
  total.seconds = static_cast<double>(NowNanos() - start) * 1e-9;
  return total;
}

struct DenyPoint {
  int64_t leased = 0;
  size_t owners = 0;
  double lease_seconds = 0;
  int repeat = 0;
  double median_ns = 0;
  double min_ns = 0;
  double max_ns = 0;
  int64_t not_denied = 0;
};

// Leases `pool` to live sleepers until the first denial, then times
// denials for our own (live) pid.
DenyPoint RunDeny(const Config& c, const ServerKind& kind,
                  const std::string& pool) {
  DenyPoint d;
  RunningServer s = StartServer(c, kind, pool);
  LeaseResult lease =
      LeaseToSleepers(s.address, c.ports_per_owner, 1 << 20, &d.owners);
  d.leased = lease.leased;
  d.lease_seconds = lease.seconds;
  d.repeat = kind.name == "reference" ? c.reference_deny_repeat : c.deny_repeat;
  TimedRequests t = TimeRequests(s.address, getpid(), d.repeat);
  StopServer(s);
  std::vector<double> v(t.nanos.begin(), t.nanos.end());
  d.median_ns = Median(v);
  d.min_ns = *std::min_element(v.begin(), v.end());
  d.max_ns = *std::max_element(v.begin(), v.end());
  d.not_denied = t.granted + t.errors;
  std::fprintf(stderr,
               "deny %-9s pool %s: leased %lld to %zu owners in %.1f s, then "
               "%d requests: median %s (min %s, max %s)%s\n",
               kind.name.c_str(), pool.c_str(),
               static_cast<long long>(d.leased), d.owners, d.lease_seconds,
               d.repeat, FormatNanos(static_cast<int64_t>(d.median_ns)).c_str(),
               FormatNanos(static_cast<int64_t>(d.min_ns)).c_str(),
               FormatNanos(static_cast<int64_t>(d.max_ns)).c_str(),
               d.not_denied ? " SOME NOT DENIED" : "");
  return d;
}

// Exec to the first port served (see TimeToFirstPort).
double RunStartup(const ServerKind& kind, std::vector<double>* all) {
  std::string address = NewAddress();
  int64_t ns =
      TimeToFirstPort(ServerArgv(kind, address, kThroughputPool), address);
  if (ns < 0) {
    std::fprintf(stderr, "compare: %s served no port within 60 s\n",
                 kind.name.c_str());
    std::exit(1);
  }
  all->push_back(static_cast<double>(ns));
  return static_cast<double>(ns);
}

struct Memory {
  int64_t rss_kb = 0;
  int64_t private_dirty_kb = 0;
  int64_t leased = 0;
  int64_t idle_rss_kb = 0;
  int64_t idle_private_dirty_kb = 0;
};

void ReadSmaps(pid_t pid, int64_t* rss_kb, int64_t* private_dirty_kb) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string key;
  int64_t value;
  std::string unit;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    if (!(ls >> key >> value)) continue;
    if (key == "Rss:") *rss_kb = value;
    if (key == "Private_Dirty:") *private_dirty_kb = value;
  }
}

const char* kMemoryPool = "1024-65535";

Memory RunMemory(const Config& c, const ServerKind& kind) {
  Memory m;
  // Page-cache pages of a binary that was just written count as dirty in
  // smaps until written back: flush them so only the server's own show.
  sync();
  RunningServer s = StartServer(c, kind, kMemoryPool);
  ReadSmaps(s.pid, &m.idle_rss_kb, &m.idle_private_dirty_kb);
  // The ceiling never denies: stop it after one pass over the pool.
  size_t owners = 0;
  LeaseResult lease =
      LeaseToSleepers(s.address, c.ports_per_owner, 64512, &owners);
  m.leased = lease.leased;
  ReadSmaps(s.pid, &m.rss_kb, &m.private_dirty_kb);
  StopServer(s);
  std::fprintf(stderr,
               "memory %-9s idle: Rss %lld kB, Private_Dirty %lld kB; after "
               "%lld leases (%.1f s): Rss %lld kB, Private_Dirty %lld kB\n",
               kind.name.c_str(), static_cast<long long>(m.idle_rss_kb),
               static_cast<long long>(m.idle_private_dirty_kb),
               static_cast<long long>(m.leased), lease.seconds,
               static_cast<long long>(m.rss_kb),
               static_cast<long long>(m.private_dirty_kb));
  return m;
}

// ------------------------------------------------------ several ports at once

// Asks for `count` ports for `pid` in one extended request; returns the
// client-side nanoseconds (socket() to end of stream) and sets *granted to
// the number of ports in the reply (0 if refused or malformed).
int64_t AskForManyPorts(const std::string& address, int64_t pid, int count,
                        int* granted) {
  *granted = 0;
  Exchanged x = Exchange(address,
                         "portserver/1 allocate pid=" + std::to_string(pid) +
                             " count=" + std::to_string(count) + "\n",
                         SIZE_MAX);
  const std::string& reply = x.reply;
  size_t at = reply.find(" ports=");
  if (reply.rfind("portserver/1 ok", 0) == 0 && at != std::string::npos) {
    size_t end = reply.find_first_of(" \n", at + 1);
    std::string list = reply.substr(at + 7, end - at - 7);
    *granted = static_cast<int>(std::count(list.begin(), list.end(), ',')) + 1;
  }
  return x.connected ? x.nanos : 0;
}

struct Multi {
  double single_ns_per_port = 0;  // Median over rounds, client side.
  double multi_ns_per_port = 0;
  double single_cpu_per_port = 0;  // Server CPU, whole run.
  double multi_cpu_per_port = 0;
  int64_t missing = 0;  // Ports not granted (should be 0).
};

Multi RunMulti(const Config& c, const ServerKind& kind) {
  RunningServer s = StartServer(c, kind, kThroughputPool);
  const int k = c.ports_per_worker;
  std::vector<double> single, multi;
  int64_t single_cpu = 0, multi_cpu = 0;
  Multi m;
  // Every owner exists and has settled before anything is timed.
  Sleeper(2 * static_cast<size_t>(c.multi_rounds) - 1);
  for (int r = 0; r < c.multi_rounds; ++r) {
    pid_t a = Sleeper(2 * static_cast<size_t>(r));
    pid_t b = Sleeper(2 * static_cast<size_t>(r) + 1);
    int64_t cpu0 = CpuNanos(s.pid);
    int64_t start = NowNanos();
    for (int i = 0; i < k; ++i) {
      if (AskForPort(s.address, a).kind != Reply::Kind::kPort) ++m.missing;
    }
    single.push_back(static_cast<double>(NowNanos() - start) / k);
    int64_t cpu1 = CpuNanos(s.pid);
    int granted = 0;
    multi.push_back(
        static_cast<double>(AskForManyPorts(s.address, b, k, &granted)) / k);
    int64_t cpu2 = CpuNanos(s.pid);
    m.missing += k - granted;
    single_cpu += cpu1 - cpu0;
    multi_cpu += cpu2 - cpu1;
  }
  StopServer(s);
  const double ports = static_cast<double>(c.multi_rounds) * k;
  m.single_ns_per_port = Median(single);
  m.multi_ns_per_port = Median(multi);
  m.single_cpu_per_port = static_cast<double>(single_cpu) / ports;
  m.multi_cpu_per_port = static_cast<double>(multi_cpu) / ports;
  return m;
}

// ------------------------------------------------------------------- output

std::string Num(double v, int decimals = 0) {
  char b[64];
  std::snprintf(b, sizeof(b), "%.*f", decimals, v);
  // Thousands separators for the integer part.
  std::string s = b;
  size_t dot = s.find('.');
  size_t end = dot == std::string::npos ? s.size() : dot;
  size_t begin = s[0] == '-' ? 1 : 0;
  for (size_t i = end; i > begin + 3; i -= 3) s.insert(i - 3, ",");
  return s;
}

std::string Ratio(double ours, double other) {
  if (ours <= 0 || other <= 0) return "—";
  double r = ours / other;
  char b[32];
  if (r >= 0.1) {
    std::snprintf(b, sizeof(b), "%.2f×", r);
  } else {
    std::snprintf(b, sizeof(b), "1/%.0f", other / ours);
  }
  return b;
}

std::string Ms(double ns) { return FormatNanos(static_cast<int64_t>(ns)); }

struct Row {
  std::string scenario, ours, ref, ceiling, vs_ref, vs_ceiling, target, verdict;
};

void PrintTable(const std::vector<Row>& rows) {
  std::printf(
      "| scenario | ours | reference | ceiling | ours/ref | ours/ceiling | "
      "target | |\n|---|--:|--:|--:|--:|--:|---|---|\n");
  for (const Row& r : rows) {
    std::printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n",
                r.scenario.c_str(), r.ours.c_str(), r.ref.c_str(),
                r.ceiling.c_str(), r.vs_ref.c_str(), r.vs_ceiling.c_str(),
                r.target.c_str(), r.verdict.c_str());
  }
}

std::string Verdict(bool met) { return met ? "met" : "**missed**"; }

// Makes `path` absolute against the workspace when run by `bazel run`.
std::string InWorkspace(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  return ws == nullptr ? path : std::string(ws) + "/" + path;
}

void WriteChart(const Config& c, const ThroughputTable& t) {
  std::string svg = InWorkspace(c.chart);
  std::string data = c.tmp_dir + "/throughput.dat";
  std::string script = c.tmp_dir + "/throughput.gp";
  {
    std::ofstream out(data);
    out << "# workers";
    for (const ServerKind& k : c.servers) out << " " << k.name;
    out << "\n";
    for (int w : c.workers) {
      out << w;
      for (const ServerKind& k : c.servers) {
        auto it = t.find(k.name);
        double v = 0;
        if (it != t.end() && it->second.count(w)) v = it->second.at(w).rps;
        out << " " << v;
      }
      out << "\n";
    }
  }
  std::string max_workers = std::to_string(c.workers.back());
  std::ofstream gp(script);
  bool png = svg.size() > 4 && svg.compare(svg.size() - 4, 4, ".png") == 0;
  gp << (png ? "set terminal pngcairo size 720,420 font 'sans,10'\n"
             : "set terminal svg size 720,420 dynamic font 'sans,12' "
               "background rgb 'white'\n")
     << "set output '" << svg << "'\n"
     << "set title 'Port requests per second against concurrent workers ("
     << CommandOutput("nproc") << " cores)'\n"
     << "set xlabel 'concurrent worker processes'\n"
     << "set ylabel 'requests / s'\n"
     << "set logscale x 2\nset xrange [0.8:" << max_workers << "*1.25]\n"
     << "set yrange [0:*]\nset grid\nset key below horizontal\n"
     << "set xtics (";
  for (size_t i = 0; i < c.workers.size(); ++i) {
    gp << (i ? ", " : "") << c.workers[i];
  }
  gp << ")\nplot ";
  const std::map<std::string, std::string> titles = {
      {"ours", "ours (C++)"},
      {"reference", "reference (python)"},
      {"ceiling", "ceiling (bind probes only)"}};
  for (size_t i = 0; i < c.servers.size(); ++i) {
    const std::string& n = c.servers[i].name;
    gp << (i ? ", " : "") << "'" << data << "' using 1:" << (i + 2)
       << " with linespoints lw 2 pt 7 title '"
       << (titles.count(n) ? titles.at(n) : n) << "'";
  }
  gp << "\n";
  gp.close();
  int rc = std::system(("gnuplot '" + script + "'").c_str());
  if (rc != 0) {
    std::fprintf(stderr,
                 "compare: gnuplot failed or is missing (apt-get install "
                 "gnuplot-nox); data in %s\n",
                 data.c_str());
  } else {
    std::fprintf(stderr, "compare: wrote %s\n", svg.c_str());
  }
}

std::string MachineLine() {
  utsname u;
  uname(&u);
  std::string cpu;
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  return CommandOutput("nproc") + " cores (nproc), " + cpu + ", Linux " +
         u.release;
}

std::string LoadAverage() {
  std::string s = Trim(ReadFile("/proc/loadavg"));
  std::vector<std::string> f = Split(s, ' ');
  if (f.size() < 3) return s;
  return f[0] + " " + f[1] + " " + f[2];
}

}  // namespace
}  // namespace portserver_bench

int main(int argc, char** argv) {
  using namespace portserver_bench;
  Flags flags(argc, argv);
  Config c;
  // Runfiles: `bazel run` starts us in <runfiles>/portserver; otherwise look
  // next to argv[0].
  std::string runfiles;
  if (access("app/portserver", X_OK) != 0) {
    runfiles = std::string(argv[0]) + ".runfiles/portserver/";
  }
  std::string ours = flags.Get("ours", runfiles + "app/portserver");
  std::string ceiling = flags.Get("ceiling", runfiles + "bench/ceiling_server");
  std::string reference = flags.Get(
      "reference",
      "/usr/bin/python3 /usr/lib/python3/dist-packages/portserver.py");
  std::vector<std::string> wanted =
      Split(flags.Get("servers", "ours,reference,ceiling"), ',');
  c.only =
      Split(flags.Get("only", "throughput,deny,startup,memory,multi"), ',');
  for (const std::string& w :
       Split(flags.Get("workers", "1,2,4,8,16,32"), ',')) {
    c.workers.push_back(std::atoi(w.c_str()));
  }
  c.ports_per_worker =
      static_cast<int>(flags.GetInt("ports_per_worker", c.ports_per_worker));
  c.requests = flags.GetInt("requests", c.requests);
  c.duration = flags.GetDouble("duration", c.duration);
  c.rounds = static_cast<int>(flags.GetInt("rounds", c.rounds));
  c.startup_runs =
      static_cast<int>(flags.GetInt("startup_runs", c.startup_runs));
  c.deny_repeat = static_cast<int>(flags.GetInt("deny_repeat", c.deny_repeat));
  c.reference_deny_repeat = static_cast<int>(
      flags.GetInt("reference_deny_repeat", c.reference_deny_repeat));
  c.ports_per_owner = flags.GetInt("ports_per_owner", c.ports_per_owner);
  c.multi_rounds =
      static_cast<int>(flags.GetInt("multi_rounds", c.multi_rounds));
  c.chart = flags.Get("chart", "");
  c.csv = flags.Get("csv", "");
  flags.CheckAllUsed("compare");
  std::sort(c.workers.begin(), c.workers.end());
  for (const std::string& name : wanted) {
    ServerKind k;
    k.name = name;
    if (name == "ours") {
      k.command = {ours};
    } else if (name == "ceiling") {
      k.command = {ceiling};
    } else if (name == "reference") {
      k.command = Split(reference, ' ');
    } else {
      std::fprintf(stderr, "compare: unknown server '%s'\n", name.c_str());
      return 2;
    }
    c.servers.push_back(k);
  }
  if (c.workers.empty() || c.rounds < 1 || c.startup_runs < 1 ||
      c.deny_repeat < 1 || c.reference_deny_repeat < 1) {
    std::fprintf(stderr, "compare: bad counts\n");
    return 2;
  }

  char tmpl[] = "/tmp/portserver-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::perror("compare: mkdtemp");
    return 1;
  }
  c.tmp_dir = tmpl;
  // Our servers journal by default under $XDG_RUNTIME_DIR/portserver (the
  // default journal, as users run it): here, in the bench's own directory,
  // removed with it at the end.
  setenv("XDG_RUNTIME_DIR", c.tmp_dir.c_str(), 1);
  std::atexit(KillChildren);
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  signal(SIGPIPE, SIG_IGN);

  // Which compilation mode built our server (bazel-out/k8-<mode>/bin/...).
  std::string build_mode = "unknown";
  if (char* real = realpath(ours.c_str(), nullptr)) {
    std::string path = real;
    std::free(real);
    for (const char* mode : {"opt", "fastbuild", "dbg"}) {
      if (path.find(std::string("-") + mode + "/bin/") != std::string::npos) {
        build_mode = mode;
      }
    }
  }
  if (build_mode != "opt") {
    std::fprintf(stderr,
                 "compare: warning: our server was built in %s mode; the "
                 "figures in BENCHMARKS.md use -c opt\n",
                 build_mode.c_str());
  }
  std::string load_before = LoadAverage();
  std::fprintf(stderr, "compare: %s; load average %s\n", MachineLine().c_str(),
               load_before.c_str());

  std::vector<Row> rows;
  std::ostringstream csv;
  csv << "scenario,server,value,unit\n";
  const ServerKind* has_ours = FindServer(c, "ours");
  const ServerKind* has_ref = FindServer(c, "reference");
  const ServerKind* has_ceiling = FindServer(c, "ceiling");

  ThroughputTable throughput;
  if (Wants(c, "throughput")) {
    throughput = RunThroughput(c);
    for (int w : c.workers) {
      auto get = [&](const char* n) {
        auto it = throughput.find(n);
        if (it == throughput.end() || !it->second.count(w)) return 0.0;
        return it->second.at(w).rps;
      };
      double o = get("ours"), r = get("reference"), x = get("ceiling");
      for (const ServerKind& k : c.servers) {
        const ThroughputPoint& p = throughput[k.name][w];
        csv << "throughput_w" << w << "," << k.name << "," << p.rps
            << ",req/s\n";
        csv << "p50_w" << w << "," << k.name << "," << p.latency.p50 << ",ns\n";
        csv << "p99_w" << w << "," << k.name << "," << p.latency.p99 << ",ns\n";
        csv << "max_w" << w << "," << k.name << "," << p.latency.max << ",ns\n";
      }
      Row row{"throughput, " + std::to_string(w) + " worker" +
                  (w == 1 ? "" : "s") + " (req/s)",
              Num(o),
              Num(r),
              Num(x),
              Ratio(o, r),
              Ratio(o, x),
              "",
              ""};
      if (w == 8) {
        row.target = "≥ 0.8× ceiling";
        if (o > 0 && x > 0) row.verdict = Verdict(o >= 0.8 * x);
      }
      rows.push_back(row);
    }
    // Server CPU per request: what the throughput ratio comes from, and
    // much less sensitive to a busy machine than requests/s.
    int w = c.workers.back();
    for (int candidate : c.workers) {
      if (candidate == 8) w = 8;
    }
    auto cpu = [&](const char* n) {
      auto it = throughput.find(n);
      if (it == throughput.end() || !it->second.count(w)) return 0.0;
      return it->second.at(w).cpu_ns_per_request;
    };
    double o = cpu("ours"), r = cpu("reference"), x = cpu("ceiling");
    rows.push_back(Row{"server CPU per request, " + std::to_string(w) +
                           " workers (user+sys, all threads)",
                       o > 0 ? Ms(o) : "—", r > 0 ? Ms(r) : "—",
                       x > 0 ? Ms(x) : "—", Ratio(o, r), Ratio(o, x), "", ""});
  }

  if (Wants(c, "deny")) {
    const std::pair<const char*, const char*> sizes[] = {
        {"10,000", "15000-24999"}, {"64,000", "1536-65535"}};
    for (auto [label, pool] : sizes) {
      DenyPoint o, r;
      if (has_ours) o = RunDeny(c, *has_ours, pool);
      if (has_ref) r = RunDeny(c, *has_ref, pool);
      for (auto [n, d] : {std::pair<const char*, DenyPoint*>{"ours", &o},
                          {"reference", &r}}) {
        csv << "deny_" << pool << "," << n << "," << d->median_ns << ",ns\n";
        csv << "deny_leased_" << pool << "," << n << "," << d->leased
            << ",ports\n";
      }
      std::string leased = o.leased == r.leased || r.leased == 0
                               ? Num(static_cast<double>(o.leased))
                               : Num(static_cast<double>(o.leased)) + " / " +
                                     Num(static_cast<double>(r.leased));
      Row row{std::string("deny with ") + label + " leased (pool " + pool +
                  "; " + leased + " leased; median of " +
                  std::to_string(o.repeat) + " / " + std::to_string(r.repeat) +
                  ")",
              o.repeat ? Ms(o.median_ns) : "—",
              r.repeat ? Ms(r.median_ns) : "—",
              "n/a",
              Ratio(o.median_ns, r.median_ns),
              "",
              "≤ 1/50 of ref",
              ""};
      if (o.repeat && r.repeat) {
        row.verdict = Verdict(o.median_ns * 50 <= r.median_ns);
      }
      if (o.not_denied || r.not_denied) row.verdict += " (some not denied!)";
      rows.push_back(row);
    }
  }

  if (Wants(c, "startup")) {
    std::map<std::string, std::vector<double>> all;
    for (int i = 0; i < c.startup_runs; ++i) {
      for (const ServerKind& k : c.servers) RunStartup(k, &all[k.name]);
    }
    for (const ServerKind& k : c.servers) {
      std::vector<double>& v = all[k.name];
      std::sort(v.begin(), v.end());
      std::fprintf(stderr, "startup %-9s median %s (min %s, max %s)\n",
                   k.name.c_str(), Ms(Median(v)).c_str(), Ms(v.front()).c_str(),
                   Ms(v.back()).c_str());
      csv << "startup," << k.name << "," << Median(v) << ",ns\n";
    }
    double o = Median(all["ours"]), r = Median(all["reference"]),
           x = Median(all["ceiling"]);
    Row row{
        "exec to first port (median of " + std::to_string(c.startup_runs) + ")",
        has_ours ? Ms(o) : "—",
        has_ref ? Ms(r) : "—",
        has_ceiling ? Ms(x) : "—",
        Ratio(o, r),
        Ratio(o, x),
        "≤ 1/5 of ref",
        ""};
    if (has_ours && has_ref) row.verdict = Verdict(o * 5 <= r);
    rows.push_back(row);
  }

  if (Wants(c, "memory")) {
    std::map<std::string, Memory> mem;
    for (const ServerKind& k : c.servers) mem[k.name] = RunMemory(c, k);
    for (const ServerKind& k : c.servers) {
      const Memory& m = mem[k.name];
      csv << "private_dirty_leased," << k.name << "," << m.private_dirty_kb
          << ",kB\n";
      csv << "rss_leased," << k.name << "," << m.rss_kb << ",kB\n";
      csv << "private_dirty_idle," << k.name << "," << m.idle_private_dirty_kb
          << ",kB\n";
      csv << "rss_idle," << k.name << "," << m.idle_rss_kb << ",kB\n";
    }
    auto kb = [&](const char* n, int64_t Memory::*f) {
      return mem.count(n) ? Num(static_cast<double>(mem[n].*f)) + " kB"
                          : std::string("—");
    };
    auto val = [&](const char* n, int64_t Memory::*f) {
      return mem.count(n) ? static_cast<double>(mem[n].*f) : 0.0;
    };
    std::string leased =
        mem.count("ours") ? Num(static_cast<double>(mem["ours"].leased)) : "?";
    Row pd{"Private_Dirty, pool 1024-65535 fully leased (" + leased + " ports)",
           kb("ours", &Memory::private_dirty_kb),
           kb("reference", &Memory::private_dirty_kb),
           kb("ceiling", &Memory::private_dirty_kb),
           Ratio(val("ours", &Memory::private_dirty_kb),
                 val("reference", &Memory::private_dirty_kb)),
           Ratio(val("ours", &Memory::private_dirty_kb),
                 val("ceiling", &Memory::private_dirty_kb)),
           "≤ 2 MB",
           ""};
    Row rss{
        "Rss, pool 1024-65535 fully leased",
        kb("ours", &Memory::rss_kb),
        kb("reference", &Memory::rss_kb),
        kb("ceiling", &Memory::rss_kb),
        Ratio(val("ours", &Memory::rss_kb), val("reference", &Memory::rss_kb)),
        Ratio(val("ours", &Memory::rss_kb), val("ceiling", &Memory::rss_kb)),
        "≤ 6 MB",
        ""};
    Row idle{"Private_Dirty / Rss idle, same pool",
             mem.count("ours") ? kb("ours", &Memory::idle_private_dirty_kb) +
                                     " / " + kb("ours", &Memory::idle_rss_kb)
                               : "—",
             mem.count("reference")
                 ? kb("reference", &Memory::idle_private_dirty_kb) + " / " +
                       kb("reference", &Memory::idle_rss_kb)
                 : "—",
             mem.count("ceiling")
                 ? kb("ceiling", &Memory::idle_private_dirty_kb) + " / " +
                       kb("ceiling", &Memory::idle_rss_kb)
                 : "—",
             "",
             "",
             "",
             ""};
    if (mem.count("ours")) {
      pd.verdict = Verdict(mem["ours"].private_dirty_kb <= 2048);
      rss.verdict = Verdict(mem["ours"].rss_kb <= 6144);
    }
    rows.push_back(pd);
    rows.push_back(rss);
    rows.push_back(idle);
  }

  if (Wants(c, "multi") && has_ours) {
    Multi m = RunMulti(c, *has_ours);
    csv << "multi_single_per_port,ours," << m.single_ns_per_port << ",ns\n";
    csv << "multi_one_request_per_port,ours," << m.multi_ns_per_port << ",ns\n";
    std::string k = std::to_string(c.ports_per_worker);
    rows.push_back(Row{k + " ports: " + k +
                           " single requests, time per port "
                           "(median of " +
                           std::to_string(c.multi_rounds) + ")",
                       Ms(m.single_ns_per_port), "", "", "", "", "", ""});
    Row one{k + " ports in one request, time per port",
            Ms(m.multi_ns_per_port),
            "",
            "",
            "",
            "",
            "≥ 5× less than single",
            Verdict(m.multi_ns_per_port * 5 <= m.single_ns_per_port)};
    one.vs_ref = "1/" + Num(m.single_ns_per_port / m.multi_ns_per_port, 1) +
                 " of single";
    rows.push_back(one);
    rows.push_back(
        Row{"server CPU per port: single / one request",
            Ms(m.single_cpu_per_port) + " / " + Ms(m.multi_cpu_per_port), "",
            "", "", "", "", ""});
    if (m.missing > 0) {
      std::fprintf(stderr, "compare: multi: %lld ports not granted\n",
                   static_cast<long long>(m.missing));
    }
  }

  StopSleepers();

  std::printf("Machine: %s\n", MachineLine().c_str());
  std::printf("Our server built with -c %s; reference: %s\n",
              build_mode.c_str(), reference.c_str());
  std::printf("Load average (1/5/15 min): %s at start, %s at end\n\n",
              load_before.c_str(), LoadAverage().c_str());
  PrintTable(rows);
  for (const auto& [name, by_w] : throughput) {
    for (const auto& [w, p] : by_w) {
      if (p.denied > 0 || p.errors > 0) {
        std::printf(
            "\nNote: %s at %d workers: %lld denied and %lld failed requests "
            "over %d rounds (throughput runs expect every request granted).\n",
            name.c_str(), w, static_cast<long long>(p.denied),
            static_cast<long long>(p.errors), c.rounds);
      }
    }
  }
  if (!throughput.empty()) {
    std::printf(
        "\nClient-side latency per request (the median round of %d; "
        "%d ports per worker, pool %s):\n\n"
        "| workers | server | req/s | server CPU/req | p50 | p99 | max |\n"
        "|--:|---|--:|--:|--:|--:|--:|\n",
        c.rounds, c.ports_per_worker, kThroughputPool);
    for (int w : c.workers) {
      for (const ServerKind& k : c.servers) {
        const ThroughputPoint& p = throughput[k.name][w];
        std::printf(
            "| %d | %s | %s | %s | %s | %s | %s |\n", w, k.name.c_str(),
            Num(p.rps).c_str(),
            FormatNanos(static_cast<int64_t>(p.cpu_ns_per_request)).c_str(),
            FormatNanos(p.latency.p50).c_str(),
            FormatNanos(p.latency.p99).c_str(),
            FormatNanos(p.latency.max).c_str());
      }
    }
    if (!c.chart.empty()) WriteChart(c, throughput);
  }
  if (!c.csv.empty()) {
    std::ofstream out(InWorkspace(c.csv));
    out << csv.str();
  }
  std::string cleanup = "rm -rf '" + c.tmp_dir + "'";
  if (std::system(cleanup.c_str()) != 0) {
    std::fprintf(stderr, "compare: could not remove %s\n", c.tmp_dir.c_str());
  }
  return 0;
}
