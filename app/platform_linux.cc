// Linux wiring: /proc process probe, bind-based port probe, epoll AF_UNIX
// transport, and signals through sigwait on a dedicated thread.
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <optional>
#include <thread>

#include "adapters/linux/linux_lease_store.h"
#include "adapters/linux/linux_pidfd_watcher.h"
#include "adapters/linux/linux_port_lock_probe.h"
#include "adapters/linux/linux_port_probe.h"
#include "adapters/linux/linux_process_probe.h"
#include "adapters/linux/linux_unix_transport.h"
#include "app/platform.h"

namespace portserver {
namespace {

class LinuxAdapters final : public PlatformAdapters {
 public:
  LinuxAdapters(std::unique_ptr<LinuxUnixTransport> transport, bool lock_ports)
      : transport_(std::move(transport)) {
    if (lock_ports) locking_probe_.emplace(port_probe_);
  }
  Adapters adapters() override {
    PortProbe* ports = locking_probe_ ? static_cast<PortProbe*>(&*locking_probe_)
                                      : &port_probe_;
    return Adapters{&process_probe_, ports, transport_.get()};
  }

 private:
  LinuxProcessProbe process_probe_;
  LinuxPortProbe port_probe_;
  std::optional<LinuxPortLockProbe> locking_probe_;  // Wraps port_probe_.
  std::unique_ptr<LinuxUnixTransport> transport_;
};

// Port locks and connections each take a descriptor: allow as many as the
// hard limit does.
void RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

class LinuxOwnerWatcher final : public OwnerWatcher {
 public:
  explicit LinuxOwnerWatcher(std::function<void(int64_t)> on_exit)
      : watcher_(std::move(on_exit)) {}
  bool Watch(int64_t pid) override {
    return watcher_.Watch(pid) != LinuxPidfdWatcher::WatchResult::kUnavailable;
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
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGINT);
    // SIGHUP (the terminal or session went away, or an init system's
    // "reload") stops the server like SIGTERM: it has no configuration to
    // reload, and dying of the signal would leave a path socket behind.
    sigaddset(&set_, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this] { Loop(); });
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

}  // namespace

absl::StatusOr<std::unique_ptr<PlatformAdapters>> MakePlatformAdapters(
    const Options& options) {
  RaiseDescriptorLimit();
  // A closed stderr (`portserver 2>&1 | head -1`, a log collector that
  // restarts) or a client gone before its reply must never kill the server:
  // writes fail with EPIPE instead, and the log and the transport go on.
  signal(SIGPIPE, SIG_IGN);
  LinuxUnixTransport::Options transport_options;
  transport_options.address = options.address;
  transport_options.max_connections = options.max_connections;
  transport_options.read_timeout = absl::Milliseconds(options.read_timeout_ms);
  absl::StatusOr<std::unique_ptr<LinuxUnixTransport>> transport =
      LinuxUnixTransport::Create(transport_options);
  if (!transport.ok()) return transport.status();
  return std::unique_ptr<PlatformAdapters>(
      new LinuxAdapters(std::move(*transport), options.lock_ports));
}

absl::StatusOr<std::unique_ptr<LeaseStore>> OpenLeaseStore(
    const Options& options, std::string* path, std::string* contents) {
  if (options.state_file == "none") return std::unique_ptr<LeaseStore>();
  *path = options.state_file;
  bool default_directory = path->empty();
  if (default_directory) {
    const char* runtime = std::getenv("XDG_RUNTIME_DIR");
    std::string dir = runtime != nullptr && runtime[0] != '\0'
                          ? std::string(runtime) + "/portserver"
                          : "/tmp/portserver-" + std::to_string(geteuid());
    absl::Status made = LinuxLeaseStore::MakePrivateDirectory(dir);
    if (!made.ok()) return made;
    // One journal per address: servers on different addresses are
    // different servers.
    std::string name;
    for (char c : options.address.substr(options.address[0] == '@' ? 1 : 0)) {
      bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
      name.push_back(plain ? c : '_');
    }
    *path = dir + "/" + name + ".journal";
  }
  absl::StatusOr<std::unique_ptr<LinuxLeaseStore>> store =
      LinuxLeaseStore::Open(*path, contents,
                            /*remove_directory=*/default_directory);
  if (!store.ok()) return store.status();
  return std::unique_ptr<LeaseStore>(std::move(*store));
}

std::unique_ptr<OwnerWatcher> WatchOwners(
    std::function<void(int64_t)> on_exit) {
  return std::make_unique<LinuxOwnerWatcher>(std::move(on_exit));
}

std::unique_ptr<SignalWatcher> WatchSignals(std::function<void()> on_stats,
                                            std::function<void()> on_stop) {
  return std::make_unique<LinuxSignalWatcher>(std::move(on_stats),
                                              std::move(on_stop));
}

}  // namespace portserver
