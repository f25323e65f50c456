// Linux wiring: /proc process probe, bind-based port probe behind per-port
// host-wide locks (always: see LinuxPortLockProbe), epoll AF_UNIX transport,
// the ephemeral range check (and, opt-in, the pool in the kernel's reserved
// ports), and signals through sigwait on a dedicated thread.
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "adapters/linux/linux_ephemeral_ports.h"
#include "adapters/linux/linux_lease_store.h"
#include "adapters/linux/linux_pidfd_watcher.h"
#include "adapters/linux/linux_port_lock_probe.h"
#include "adapters/linux/linux_port_probe.h"
#include "adapters/linux/linux_process_info.h"
#include "adapters/linux/linux_process_probe.h"
#include "adapters/linux/linux_socket_activation.h"
#include "adapters/linux/linux_unix_transport.h"
#include "app/log.h"
#include "app/platform.h"
#include "app/started_thread.h"
#include "domain/lease_journal.h"

namespace portserver {
namespace {

// Threads that probe the ports of a request for several at once: one per
// CPU the server may run on (sched_getaffinity(2): `taskset`, systemd's
// CPUAffinity=, a container's cpuset), up to 4 (a port costs a few socket
// calls that do not wait on one another; BENCHMARKS.md "Several ports in one
// request"). With one CPU the caller checks them alone.
size_t ProbeThreads() {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  const size_t count =
      sched_getaffinity(0, sizeof(cpus), &cpus) == 0
          ? static_cast<size_t>(CPU_COUNT(&cpus))
          : static_cast<size_t>(std::thread::hardware_concurrency());
  return std::clamp<size_t>(count, 1, 4);
}

class LinuxAdapters final : public PlatformAdapters {
 public:
  LinuxAdapters(std::unique_ptr<LinuxUnixTransport> transport,
                std::unique_ptr<LinuxReservedPorts> reserved, int reserve_below)
      : locking_probe_(port_probe_, LinuxPortLockProbe::kDefaultPrefix,
                       ProbeThreads()),
        reserved_(std::move(reserved)),
        transport_(std::move(transport)) {
    locking_probe_.set_reserve_below(reserve_below);
    std::string why;
    if (locking_probe_.UseKernelBatches(&why)) {
      PS_LOG(INFO) << "Port checks: the locks and bind tests of a request "
                      "in one io_uring submission";
    } else {
      PS_LOG(INFO) << "Port checks: system calls, a dozen a port (io_uring "
                      "batches unavailable: "
                   << why << ")";
    }
  }
  ~LinuxAdapters() override {
    if (reserved_ == nullptr || CountPorts(reserved_->added()) == 0) return;
    absl::Status restored = reserved_->Restore();
    if (restored.ok()) {
      PS_LOG(INFO) << "Took " << FormatPorts(reserved_->added()) << " out of "
                   << kReservedPortsPath << " again";
    } else {
      PS_LOG(ERROR) << "Could not restore " << kReservedPortsPath << ": "
                    << restored.message();
    }
  }
  Adapters adapters() override {
    Adapters adapters{&process_probe_, &locking_probe_, transport_.get()};
    adapters.process_info = &process_info_;
    return adapters;
  }
  std::vector<std::string> listening_on() const override {
    std::vector<std::string> names;
    for (const auto& listener : transport_->listeners()) {
      names.push_back(listener.name);
    }
    return names;
  }

 private:
  LinuxProcessProbe process_probe_;
  LinuxProcessInfo process_info_;
  LinuxPortProbe port_probe_;
  // Every server takes the per-port locks, whatever its flags, so that two
  // servers never lease the same port in either direction.
  LinuxPortLockProbe locking_probe_;              // Wraps port_probe_.
  std::unique_ptr<LinuxReservedPorts> reserved_;  // May be null.
  std::unique_ptr<LinuxUnixTransport> transport_;
};

// Descriptors a server may need at once: a lock per leased port, a pidfd per
// owner (at worst one per port), 64 cached pidfds, the connections, and a
// few of its own.
uint64_t DescriptorsWanted(const Options& options) {
  return 2 * static_cast<uint64_t>(options.pool.size()) + 128 +
         options.max_connections;
}

// Descriptors the server holds of its own whatever the pool: standard
// streams, listening sockets, epoll sets, the journal and its lock, the
// asking owner's pidfds, a request's connection and its bind-test sockets
// (one owner leases 65 ports under a limit of 79 without a journal, 238
// under 256 with one).
constexpr uint64_t kOwnDescriptors = 16;

// Descriptors the locks of restored leases leave free under the limit
// besides the connections' (counted apart, below), to serve with: a request
// at a time on each probe thread (a lock and a bind test), a new owner's
// pidfd, and the journal's rewrite.
constexpr uint64_t kServingDescriptors = 8;

// Connections the locks of restored leases leave descriptors for, at most.
constexpr uint64_t kConnectionShare = 64;

// The descriptor number restored leases' locks stay below
// (LinuxPortLockProbe::set_reserve_below): the limit less
// kServingDescriptors and the `connections` that may be open at once (as
// RaiseDescriptorLimit() capped them), up to kConnectionShare: else idle
// connections below the cap took the descriptors kept to serve with, and
// clients that asked promptly were turned away (a new user's trial,
// restarted under `ulimit -n 64`, cap 24). Not the whole default cap of
// 1,024: a journal of 3,500 leases restarted under a limit of 4,096 would
// keep 450 of them without their lock. At least 1 (no lock) under a limit;
// 0 (no bound) without one.
int ReserveBelow(size_t connections) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 ||
      limit.rlim_cur == RLIM_INFINITY) {
    return 0;
  }
  const uint64_t kept =
      kServingDescriptors + std::min<uint64_t>(connections, kConnectionShare);
  if (limit.rlim_cur <= kept) return 1;
  return static_cast<int>(std::min<uint64_t>(limit.rlim_cur - kept, INT_MAX));
}

// Grows the process's descriptor table to `descriptors` entries now, while
// the process has one thread. The kernel grows it by doubling as
// descriptors are taken, and in a process with several threads each growth
// waits for an RCU grace period (expand_fdtable() calls synchronize_rcu()
// when the table is shared: fs/file.c): a request that took the 256th,
// 512th or 1,024th descriptor (a lock per leased port) waited 7 to 33 ms
// for it here, against 0.13 ms for the others. A table of the pool's size
// costs 8 bytes a descriptor of kernel memory (128 KB for the default
// pool). Best effort: nothing happens if no descriptor can be had.
void SizeDescriptorTable(uint64_t descriptors) {
  if (descriptors <= 64 || descriptors > INT_MAX) return;
  int any = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (any < 0) return;
  int last = fcntl(any, F_DUPFD_CLOEXEC, static_cast<int>(descriptors - 1));
  if (last >= 0) close(last);
  close(any);
}

// Raises the soft RLIMIT_NOFILE to the hard one, then says what the limit
// allows. A fully leased pool needs a lock per port and, at worst, a pidfd
// per port (one owner each) and every connection open at once:
// DescriptorsWanted(). Below that:
// - if not even a lock per port fits beside the server's own descriptors,
//   a WARNING: some ports of the pool can never be leased at once (requests
//   are denied past that, counted as port-probe-failures, never served
//   without a lock); it names about how many can, with few owners and
//   connections, and with every connection open;
// - otherwise an INFO line: every port can be leased, and only many
//   distinct live owners or connections at once could run out. That is the
//   default pool (10,000 ports, wanting 21,152) under a common hard limit
//   of 20,000, which is no real risk, so it is not a warning.
// Returns how many connections may be open at once: options.max_connections,
// lowered (and logged) to half of what the limit leaves beyond the server's
// own descriptors. The other half is for the locks of leased ports, owners'
// pidfds and a request's probe: otherwise a flood of idle connections under
// a low limit leaves a client that asks promptly nothing to be served with
// (a chaos test: 50 idle connections under a limit of 64 had every request
// refused), where the cap is meant to close the oldest idle one instead.
size_t RaiseDescriptorLimit(const Options& options) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return options.max_connections;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) getrlimit(RLIMIT_NOFILE, &limit);
  }
  if (limit.rlim_cur == RLIM_INFINITY) return options.max_connections;
  SizeDescriptorTable(std::min<uint64_t>(
      limit.rlim_cur,
      options.pool.size() + kOwnDescriptors + options.max_connections));
  const uint64_t half = limit.rlim_cur > kOwnDescriptors + 2
                            ? (limit.rlim_cur - kOwnDescriptors) / 2
                            : 1;
  const uint64_t connections =
      std::min<uint64_t>(options.max_connections, half);
  if (connections < options.max_connections) {
    PS_LOG(INFO) << "At most " << connections
                 << " connections at once, not --portserver_max_connections="
                 << options.max_connections
                 << ": under a descriptor limit (RLIMIT_NOFILE) of "
                 << limit.rlim_cur
                 << ", connections may take half of what the server's own "
                    "descriptors leave, so that idle ones cannot starve "
                    "clients that ask promptly (the oldest idle one is "
                    "closed at the cap)";
  }
  uint64_t wanted = DescriptorsWanted(options);
  if (limit.rlim_cur >= wanted) return connections;
  uint64_t pool = options.pool.size();
  // Ports one owner can lease with few connections open, and with all.
  uint64_t locks =
      limit.rlim_cur > kOwnDescriptors ? limit.rlim_cur - kOwnDescriptors : 0;
  uint64_t locks_busy = locks > connections ? locks - connections : 0;
  // Owners of a port each (a lock and a pidfd), all connections open: the
  // process probe's remembered pidfds (LinuxProcessProbe, up to 64) give
  // way when descriptors run out.
  uint64_t owners = std::min<uint64_t>(pool, locks_busy / 2);
  if (locks < pool) {  // Not a lock per port, even with few connections.
    PS_LOG(WARNING)
        << "Descriptor limit (RLIMIT_NOFILE) is " << limit.rlim_cur
        << ": at most about " << locks << " of the " << pool
        << " pool ports can be leased at once (each leased port holds a "
           "lock descriptor; the server needs about "
        << kOwnDescriptors
        << " of its own, and each open connection and each owner one more: "
           "about "
        << locks_busy << " with all " << connections
        << " connections open). Past that, requests are denied "
           "(port-probe-failures), never served without a lock. Raise the "
           "hard limit to "
        << wanted
        << " (ulimit -Hn as root, systemd LimitNOFILE=) or shrink the pool";
  } else {
    PS_LOG(INFO)
        << "Descriptor limit (RLIMIT_NOFILE) is " << limit.rlim_cur
        << ": enough to lease all " << pool
        << " pool ports while few connections are open, and for up to about "
        << owners << " distinct live owners of a port each at once with all "
        << connections
        << " connections open (each leased port holds a lock descriptor, "
           "each owner a pidfd, each connection one). More owners or "
           "connections at once than that could run out; a hard limit of "
        << wanted << " covers every case (ulimit -Hn, systemd LimitNOFILE=)";
  }
  return connections;
}

// Warns when pool ports lie below net.ipv4.ip_unprivileged_port_start
// (ip(7); 1024 by default) and this server may not bind them (it lacks
// CAP_NET_BIND_SERVICE: a user's server, or a service without it): each
// bind test of such a port fails with EACCES, so the port looks busy and is
// never leased, and clients fall back to unreserved ports (a new user's
// trial). Asks the kernel with a real bind of one such port, whatever the
// capabilities say; a port in use (EADDRINUSE) tells nothing, so up to 8
// are tried.
void WarnOfPortsItMayNotBind(const Options& options) {
  int first_unprivileged = 1024;  // Before Linux 4.11: fixed at 1024.
  std::ifstream in("/proc/sys/net/ipv4/ip_unprivileged_port_start");
  if (!(in >> first_unprivileged)) first_unprivileged = 1024;
  std::vector<uint16_t> low;
  for (uint16_t port : options.pool) {
    if (port < first_unprivileged) low.push_back(port);
  }
  int tried = 0;
  for (uint16_t port : low) {
    if (tried++ == 8) return;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons(port);
    const int bound =
        bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
    const int error = errno;
    close(fd);
    if (bound == 0) return;  // Allowed.
    if (error != EACCES) continue;
    PS_LOG(WARNING) << low.size() << " pool port(s) lie below "
                    << first_unprivileged
                    << " (net.ipv4.ip_unprivileged_port_start), and this "
                       "server may not bind them (no CAP_NET_BIND_SERVICE; "
                       "port "
                    << port
                    << " refused): they will look busy and never be leased. "
                       "Use a pool from "
                    << first_unprivileged
                    << " up, or give the server CAP_NET_BIND_SERVICE "
                       "(systemd AmbientCapabilities=)";
    return;
  }
}

// Warns when the kernel may give pool ports to outgoing connections; with
// options.reserve_pool_in_kernel, reserves the pool instead (null: nothing
// reserved).
absl::StatusOr<std::unique_ptr<LinuxReservedPorts>> GuardEphemeralRange(
    const Options& options) {
  if (options.reserve_pool_in_kernel) {
    absl::StatusOr<std::unique_ptr<LinuxReservedPorts>> reserved =
        LinuxReservedPorts::Reserve(options.pool);
    if (!reserved.ok()) {
      return absl::Status(reserved.status().code(),
                          absl::StrCat("--portserver_reserve_pool_in_kernel: ",
                                       reserved.status().message()));
    }
    std::string added = FormatPorts((*reserved)->added());
    PS_LOG(INFO) << "Added "
                 << (added.empty() ? "nothing (the pool was reserved already)"
                                   : added)
                 << " to " << kReservedPortsPath
                 << ": the kernel does not pick pool ports for connect() or "
                    "bind(0) while the server runs";
    return reserved;
  }
  absl::StatusOr<PortRange> range = ReadEphemeralRange();
  absl::StatusOr<PortSet> reserved = ReadReservedPorts();
  if (!range.ok() || !reserved.ok()) {
    PS_LOG(WARNING)
        << "Cannot tell whether the pool overlaps the ephemeral "
           "port range: "
        << (range.ok() ? reserved.status() : range.status()).message();
    return std::unique_ptr<LinuxReservedPorts>();
  }
  PortSet overlap = UnreservedEphemeral(options.pool, *range, *reserved);
  size_t count = CountPorts(overlap);
  if (count > 0) {
    PS_LOG(WARNING) << "Pool " << options.pool_spec
                    << " overlaps the ephemeral port range " << range->first
                    << "-" << range->last
                    << " (net.ipv4.ip_local_port_range) in " << count
                    << " port(s) not in net.ipv4.ip_local_reserved_ports: "
                    << FormatPorts(overlap)
                    << ". Outgoing connections may take such a port while it "
                       "is leased. Use a pool outside the range, or "
                       "--portserver_reserve_pool_in_kernel";
  }
  return std::unique_ptr<LinuxReservedPorts>();
}

class LinuxOwnerWatcher final : public OwnerWatcher {
 public:
  explicit LinuxOwnerWatcher(std::function<void(int64_t)> on_exit)
      : watcher_(std::move(on_exit)) {}
  Result Watch(int64_t pid) override {
    switch (watcher_.Watch(pid)) {
      case LinuxPidfdWatcher::WatchResult::kWatching:
        return Result::kWatching;
      case LinuxPidfdWatcher::WatchResult::kAlreadyWatching:
        return Result::kAlreadyWatching;
      case LinuxPidfdWatcher::WatchResult::kGone:
        return Result::kGone;
      case LinuxPidfdWatcher::WatchResult::kUnavailable:
        break;
    }
    return Result::kUnavailable;
  }

 private:
  LinuxPidfdWatcher watcher_;
};

class LinuxSignalWatcher final : public SignalWatcher {
 public:
  LinuxSignalWatcher(std::function<void()> on_stats,
                     std::function<void()> on_stop)
      : on_stats_(std::move(on_stats)), on_stop_(std::move(on_stop)) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGUSR1);
    // SIGHUP (the terminal or session went away, or an init system's
    // "reload") stops the server like SIGTERM: it has no configuration to
    // reload, and dying of the signal would leave a path socket behind.
    // A stop signal that the server was started with ignored stays ignored:
    // `nohup` ignores SIGHUP, and a shell ignores SIGINT for a job it runs
    // in the background, so that they outlive the terminal or a Ctrl+C. A
    // blocked signal is queued for sigwait() even when ignored, so those are
    // left out of the set (the reference, in python, keeps them ignored).
    const std::pair<int, const char*> stops[] = {
        {SIGTERM, "SIGTERM"}, {SIGINT, "SIGINT"}, {SIGHUP, "SIGHUP"}};
    for (const auto& [sig, name] : stops) {
      struct sigaction current {};
      if (sigaction(sig, nullptr, &current) == 0 &&
          current.sa_handler == SIG_IGN) {
        PS_LOG(INFO) << name
                     << " was ignored when the server started (nohup, or a "
                        "background job): it stays ignored";
        continue;
      }
      sigaddset(&set_, sig);
    }
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = StartThread([this] { Loop(); });
  }
  ~LinuxSignalWatcher() override {
    closing_.store(true);
    pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
  }

 private:
  void Loop() {
    while (true) {
      int sig = 0;
      if (sigwait(&set_, &sig) != 0) continue;
      if (closing_.load()) return;
      if (sig == SIGUSR1) {
        on_stats_();
      } else {
        on_stop_();
      }
    }
  }

  std::function<void()> on_stats_;
  std::function<void()> on_stop_;
  sigset_t set_;
  std::atomic<bool> closing_{false};
  std::thread thread_;
};

// Servers before 0.3.0 named their port locks "@portserver-port-lock-<port>"
// (LinuxPortLockProbe): such a server and this one do not see each other's
// locks, and may lease one port twice.
void WarnOfLegacyLocks() {
  std::ifstream file("/proc/net/unix");
  if (!file) return;
  std::stringstream text;
  text << file.rdbuf();
  std::vector<uint16_t> locked = LegacyLockedPorts(text.str());
  if (locked.empty()) return;
  PortSet ports(65536, false);
  for (uint16_t port : locked) ports[port] = true;
  PS_LOG(WARNING) << "A portserver older than 0.3.0 runs in this network "
                     "namespace: it holds "
                  << locked.size() << " port lock(s) under the old names "
                  << "(@portserver-port-lock-<port>; ports "
                  << FormatPorts(ports)
                  << "). It does not see this server's locks nor this server "
                     "its: if your pools overlap, one port may be leased "
                     "twice. Upgrade it, or give the two servers pools "
                     "that do not overlap";
}

}  // namespace

std::vector<std::string> Utf8Arguments(int argc, char** argv) {
  return std::vector<std::string>(argv, argv + argc);
}

std::string BootId() {
  std::ifstream file("/proc/sys/kernel/random/boot_id");
  std::string id;
  if (!std::getline(file, id)) return "";
  // A UUID: anything else (a test's fake /proc) is not used.
  if (id.empty() || id.size() > 64 ||
      id.find_first_not_of("0123456789abcdefABCDEF-") != std::string::npos) {
    return "";
  }
  return id;
}

absl::StatusOr<std::unique_ptr<PlatformAdapters>> MakePlatformAdapters(
    const Options& options) {
  const size_t max_connections = RaiseDescriptorLimit(options);
  // A closed stderr (`portserver 2>&1 | head -1`, a log collector that
  // restarts) or a client gone before its reply must never kill the server:
  // writes fail with EPIPE instead, and the log and the transport go on.
  signal(SIGPIPE, SIG_IGN);
  LinuxUnixTransport::Options transport_options;
  // Socket activation: serve exactly what the service manager passed.
  absl::StatusOr<std::vector<ActivatedSocket>> passed = TakeActivatedSockets();
  if (!passed.ok()) return passed.status();
  if (passed->empty()) {
    transport_options.address = options.address;
    transport_options.extra_addresses = options.extra_addresses;
  } else {
    for (const ActivatedSocket& socket : *passed) {
      // "@name (passed as descriptor 3, "fdname")", or for a socket that is
      // not AF_UNIX (refused by the transport) "passed as descriptor 3".
      std::string passed_as = absl::StrCat("passed as descriptor ", socket.fd);
      if (!socket.name.empty()) {
        absl::StrAppend(&passed_as, ", \"", socket.name, "\"");
      }
      std::string local = LocalSocketName(socket.fd);
      transport_options.inherited.push_back(
          {socket.fd, local.rfind('(', 0) == 0
                          ? passed_as
                          : absl::StrCat(local, " (", passed_as, ")")});
    }
  }
  transport_options.max_connections = max_connections;
  transport_options.notice = [](const std::string& line) {
    PS_LOG(WARNING) << "Path socket: " << line;
  };
  transport_options.read_timeout = absl::Milliseconds(options.read_timeout_ms);
  absl::StatusOr<std::unique_ptr<LinuxUnixTransport>> transport =
      LinuxUnixTransport::Create(transport_options);
  if (!transport.ok()) return transport.status();
  if (!passed->empty()) {
    PS_LOG(INFO) << "Socket activation: serving the " << passed->size()
                 << " socket(s) passed by the service manager; "
                    "--portserver_address and --portserver_extra_addresses "
                    "are not bound";
  }
  // After the address: a second server on the same address exits 2 before it
  // touches the kernel's reserved ports.
  absl::StatusOr<std::unique_ptr<LinuxReservedPorts>> reserved =
      GuardEphemeralRange(options);
  if (!reserved.ok()) return reserved.status();
  WarnOfPortsItMayNotBind(options);
  WarnOfLegacyLocks();
  return std::unique_ptr<PlatformAdapters>(
      new LinuxAdapters(std::move(*transport), std::move(*reserved),
                        ReserveBelow(max_connections)));
}

// `path` made absolute (from the working directory) with its directory
// resolved (std::filesystem::weakly_canonical: symbolic links, `.`, `..`
// and repeated slashes; a part that does not exist yet is only tidied).
// The file itself is not followed. `path` as given if the working
// directory cannot be read.
std::string FileIdentity(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::path absolute = fs::absolute(path, error);
  if (error) return path;
  const fs::path directory =
      fs::weakly_canonical(absolute.parent_path(), error);
  if (error) return absolute.lexically_normal().string();
  return (directory / absolute.filename()).string();
}

namespace {

// The default journal's directory without XDG_RUNTIME_DIR, and its
// fallback.
std::string TmpDirectory() {
  return "/tmp/portserver-" + std::to_string(geteuid());
}

// Where a default journal in `dir` moves if `dir` goes with the directory
// above it while the server runs (logind removes $XDG_RUNTIME_DIR at the
// last logout): TmpDirectory(), where a restart looks; "" in it.
std::string FallbackDirectoryFor(const std::string& dir) {
  const std::string tmp = TmpDirectory();
  return dir == tmp ? "" : tmp;
}

// One journal per server. Servers on different addresses are different
// servers. An abstract address (`@name`) exists once per network namespace:
// `@x` in a container, an `unshare -n` or a Bazel `block-network` test is
// another server than `@x` on the host, with other ports, so its journal is
// named after the namespace too (the inode of /proc/self/ns/net, unique
// while the namespace lives). A path address names one filesystem object,
// which only one server can listen on, whichever namespace it runs in (a
// bind mount reaches that same server): its journal is keyed by that file,
// its path made absolute and canonical (so `rel.sock`, `./rel.sock` and
// `/tmp//d/rel.sock` are one server, and `rel.sock` in two directories
// two), and the journal's lock keeps a second server off it.
// The default journal's file names for `address`: its name since 0.4.2,
// then the names servers before gave it (JournalFileName of a path address
// as spelled, LegacyJournalFileName), if different.
std::vector<std::string> DefaultJournalNames(const std::string& address) {
  bool abstract = !address.empty() && address[0] == '@';
  const std::string text = address.substr(abstract ? 1 : 0);
  std::string suffix = ".journal";
  struct stat netns;
  if (abstract && stat("/proc/self/ns/net", &netns) == 0) {
    suffix = absl::StrCat(".netns-", static_cast<uint64_t>(netns.st_ino),
                          ".journal");
  }
  const std::string key = abstract ? text : FileIdentity(text);
  std::vector<std::string> names = {JournalFileName(key) + suffix};
  for (const std::string& legacy :
       {JournalFileName(text) + suffix, LegacyJournalFileName(text) + suffix}) {
    if (std::find(names.begin(), names.end(), legacy) == names.end()) {
      names.push_back(legacy);
    }
  }
  return names;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LeaseStore>> OpenLeaseStore(
    const Options& options, std::string* path, std::string* contents,
    const std::function<absl::Status(const std::string&)>& before_writing) {
  if (options.state_file == "none") return std::unique_ptr<LeaseStore>();
  *path = options.state_file;
  bool default_directory = path->empty();
  if (default_directory) {
    const uid_t euid = geteuid();
    const std::string tmp_dir = TmpDirectory();
    const char* runtime = std::getenv("XDG_RUNTIME_DIR");
    struct stat runtime_dir;
    if (runtime != nullptr && runtime[0] != '\0' &&
        (stat(runtime, &runtime_dir) != 0 || !S_ISDIR(runtime_dir.st_mode))) {
      // Set, but gone: systemd-logind removes /run/user/<uid> when the
      // user's last session ends, and a shell or tmux started before keeps
      // the variable. Unset is what the XDG spec has a fallback for.
      PS_LOG(WARNING) << "XDG_RUNTIME_DIR=" << runtime
                      << " is not a directory (the user's sessions ended?): "
                         "the state file goes to "
                      << tmp_dir << " instead";
      runtime = nullptr;
    } else if (runtime != nullptr && runtime[0] != '\0' &&
               runtime_dir.st_uid != euid) {
      // Another user's (su without -, sudo -E keep the caller's): the XDG
      // Base Directory spec has the directory owned by its user, and a
      // directory of this server's made there would lock that user's own
      // server out of it.
      PS_LOG(WARNING) << "XDG_RUNTIME_DIR=" << runtime << " belongs to uid "
                      << runtime_dir.st_uid << ", not to this server's uid "
                      << euid << " (su or sudo -E keeps the caller's): the "
                      << "state file goes to " << tmp_dir << " instead";
      runtime = nullptr;
    }
    const bool use_runtime = runtime != nullptr && runtime[0] != '\0';
    std::string dir =
        use_runtime ? std::string(runtime) + "/portserver" : tmp_dir;
    // Where the journal may already be: here, under its name or one
    // servers before 0.4.2 gave it (an upgrade keeps its leases), or in the
    // other default place: the server was started before with
    // XDG_RUNTIME_DIR set and now without, or the other way round (a login
    // shell, then cron, a CI step or sudo). Its leases are taken over
    // rather than lost, which would hand out ports still leased to live
    // processes. A clean stop with no live lease leaves no journal, so one
    // found has leases to keep. The other place counts only if it is this
    // user's private directory (another user may have made
    // /tmp/portserver-<uid>), and a file there only if it is this user's
    // regular file, not a symbolic link.
    const std::vector<std::string> names = DefaultJournalNames(options.address);
    const std::string other =
        use_runtime ? tmp_dir
                    : "/run/user/" + std::to_string(euid) + "/portserver";
    struct stat other_dir;
    const bool other_usable =
        lstat(other.c_str(), &other_dir) == 0 && S_ISDIR(other_dir.st_mode) &&
        other_dir.st_uid == euid && (other_dir.st_mode & 077) == 0;
    const std::string place_chosen = dir;
    // The first place and name, in that order, that hold a journal this
    // server may take; false if none does.
    auto find_journal = [&](std::string* place_found, std::string* name_found) {
      for (const std::string& place : {place_chosen, other}) {
        if (place != place_chosen && !other_usable) continue;
        for (const std::string& candidate : names) {
          const std::string candidate_path = place + "/" + candidate;
          struct stat journal;
          if (lstat(candidate_path.c_str(), &journal) != 0 ||
              !S_ISREG(journal.st_mode) || journal.st_uid != euid) {
            continue;
          }
          if (candidate != names.front()) {
            std::ifstream in(candidate_path, std::ios::binary);
            std::stringstream text;
            text << in.rdbuf();
            if (!LegacyJournalFitsPool(text.str(), options.pool)) {
              PS_LOG(WARNING)
                  << "State file " << candidate_path
                  << " has a name servers before 0.4.2 gave the journal of "
                     "this address, but holds leases outside this server's "
                     "pool: it is left to the server whose journal it is now "
                     "(an address that differs from this one only in "
                     "characters written '_', or a relative path of another "
                     "directory)";
              continue;
            }
          }
          *place_found = place;
          *name_found = candidate;
          return true;
        }
      }
      return false;
    };
    std::string name = names.front();
    if (find_journal(&dir, &name)) {
      const std::string found = dir + "/" + name;
      if (dir != place_chosen) {
        PS_LOG(WARNING) << "State file " << found
                        << " found in the other default place (the server ran "
                        << (use_runtime ? "without" : "with")
                        << " XDG_RUNTIME_DIR before"
                        << (use_runtime ? ", or moved it there when its "
                                          "runtime directory was removed"
                                        : "")
                        << "): using it, not " << place_chosen << "/"
                        << names.front();
      }
      if (name != names.front()) {
        PS_LOG(INFO) << "State file " << found
                     << " has a name servers before 0.4.2 gave it: using it "
                        "(once it holds no live lease, a clean stop removes "
                        "it and the next start uses "
                     << names.front() << ")";
      }
    }
    *path = dir + "/" + name;
    if (absl::Status ok = before_writing(*path); !ok.ok()) return ok;
    absl::Status made = LinuxLeaseStore::MakePrivateDirectory(dir);
    if (!made.ok()) return made;
    if (name != names.front()) {
      // In use: the server whose journal that name is now runs (same
      // pool). This server's own journal is the new name.
      absl::StatusOr<std::unique_ptr<LinuxLeaseStore>> legacy =
          LinuxLeaseStore::Open(*path, contents, /*remove_directory=*/true,
                                StartsAsJournal, FallbackDirectoryFor(dir));
      if (legacy.ok()) return std::unique_ptr<LeaseStore>(std::move(*legacy));
      if (!absl::IsAlreadyExists(legacy.status())) return legacy.status();
      PS_LOG(INFO) << "State file " << *path
                   << " is in use by another server: using " << place_chosen
                   << "/" << names.front();
      dir = place_chosen;
      *path = dir + "/" + names.front();
      if (absl::Status ok = before_writing(*path); !ok.ok()) return ok;
      made = LinuxLeaseStore::MakePrivateDirectory(dir);
      if (!made.ok()) return made;
    }
  } else if (absl::Status ok = before_writing(*path); !ok.ok()) {
    return ok;
  }
  const std::string fallback =
      default_directory
          ? FallbackDirectoryFor(path->substr(0, path->rfind('/')))
          : "";
  absl::StatusOr<std::unique_ptr<LinuxLeaseStore>> store =
      LinuxLeaseStore::Open(*path, contents,
                            /*remove_directory=*/default_directory,
                            // Someone else's file named by mistake is
                            // refused, not overwritten.
                            StartsAsJournal, fallback);
  if (!store.ok()) return store.status();
  return std::unique_ptr<LeaseStore>(std::move(*store));
}

std::unique_ptr<OwnerWatcher> WatchOwners(
    std::function<void(int64_t)> on_exit) {
  return std::make_unique<LinuxOwnerWatcher>(std::move(on_exit));
}

std::unique_ptr<SignalWatcher> WatchSignals(const Options& /*options*/,
                                            std::function<void()> on_stats,
                                            std::function<void()> on_stop) {
  return std::make_unique<LinuxSignalWatcher>(std::move(on_stats),
                                              std::move(on_stop));
}

}  // namespace portserver
