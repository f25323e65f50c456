// Windows wiring: OpenProcess process probe, Winsock port probe, named-pipe
// transport, process-handle owner watcher, and console control events.
// Windows has no SIGUSR1: the statistics are logged whenever the named
// event StatsEventName(address) is set (see README.md, "Windows").
#include "app/platform_windows.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "adapters/windows/windows_error.h"
#include "adapters/windows/windows_lease_store.h"
#include "adapters/windows/windows_pipe_transport.h"
#include "adapters/windows/windows_port_lock_probe.h"
#include "adapters/windows/windows_port_probe.h"
#include "adapters/windows/windows_process_info.h"
#include "adapters/windows/windows_process_probe.h"
#include "adapters/windows/windows_process_watcher.h"
#include "adapters/windows/windows_text.h"
#include "app/log.h"
#include "app/platform.h"
#include "domain/lease_journal.h"

namespace portserver {
namespace {

class WindowsAdapters final : public PlatformAdapters {
 public:
  // Every server takes the port locks, whatever its flags
  // (--portserver_lock_ports is accepted and has no effect), as on Linux:
  // two servers on one host never lease the same port.
  explicit WindowsAdapters(std::unique_ptr<WindowsPipeTransport> transport)
      : locking_probe_(port_probe_), transport_(std::move(transport)) {}
  Adapters adapters() override {
    Adapters adapters{&process_probe_, &locking_probe_, transport_.get()};
    adapters.process_info = &process_info_;
    return adapters;
  }
  // The full pipe name, e.g. "\\.\pipe\unittest-portserver".
  std::vector<std::string> listening_on() const override {
    absl::StatusOr<std::string> pipe =
        WindowsPipeTransport::PipeName(transport_->address());
    return {pipe.ok() ? *pipe : transport_->address()};
  }

 private:
  WindowsProcessProbe process_probe_;
  WindowsProcessInfo process_info_;
  WindowsPortProbe port_probe_;
  WindowsPortLockProbe locking_probe_;  // Wraps port_probe_.
  std::unique_ptr<WindowsPipeTransport> transport_;
};

class WindowsOwnerWatcher final : public OwnerWatcher {
 public:
  explicit WindowsOwnerWatcher(std::function<void(int64_t)> on_exit)
      : watcher_(std::move(on_exit)) {}
  Result Watch(int64_t pid) override {
    switch (watcher_.Watch(pid)) {
      case WindowsProcessWatcher::WatchResult::kWatching:
        return Result::kWatching;
      case WindowsProcessWatcher::WatchResult::kAlreadyWatching:
        return Result::kAlreadyWatching;
      case WindowsProcessWatcher::WatchResult::kGone:
        return Result::kGone;
      case WindowsProcessWatcher::WatchResult::kUnavailable:
        break;
    }
    return Result::kUnavailable;
  }

 private:
  WindowsProcessWatcher watcher_;
};

// The one console control handler may only call a plain function: it finds
// the watcher here. Set while a WindowsSignalWatcher exists.
std::atomic<std::function<void()>*> g_on_stop{nullptr};

BOOL WINAPI OnConsoleControl(DWORD event) {
  std::function<void()>* on_stop = g_on_stop.load();
  if (on_stop == nullptr) return FALSE;
  switch (event) {
    case CTRL_C_EVENT:
    case CTRL_BREAK_EVENT:
      (*on_stop)();
      return TRUE;
    case CTRL_CLOSE_EVENT:
    case CTRL_LOGOFF_EVENT:
    case CTRL_SHUTDOWN_EVENT:
      // Windows ends the process as soon as this returns: stop serving and
      // let main() return 0 first (it has a few seconds).
      (*on_stop)();
      Sleep(INFINITE);
      return TRUE;
    default:
      return FALSE;
  }
}

class WindowsSignalWatcher final : public SignalWatcher {
 public:
  WindowsSignalWatcher(ScopedHandle stats_event, std::function<void()> on_stats,
                       std::function<void()> on_stop)
      : stats_event_(std::move(stats_event)),
        quit_event_(CreateEventW(nullptr, TRUE, FALSE, nullptr)),
        on_stats_(std::move(on_stats)),
        on_stop_(std::move(on_stop)) {
    g_on_stop.store(&on_stop_);
    SetConsoleCtrlHandler(&OnConsoleControl, TRUE);
    if (stats_event_.valid() && quit_event_.valid()) {
      thread_ = std::thread([this] { Loop(); });
    }
  }
  ~WindowsSignalWatcher() override {
    SetConsoleCtrlHandler(&OnConsoleControl, FALSE);
    g_on_stop.store(nullptr);
    if (thread_.joinable()) {
      SetEvent(quit_event_.get());
      thread_.join();
    }
  }

 private:
  void Loop() {
    HANDLE events[2] = {quit_event_.get(), stats_event_.get()};
    while (true) {
      DWORD which = WaitForMultipleObjects(2, events, FALSE, INFINITE);
      if (which == WAIT_OBJECT_0 + 1) {
        on_stats_();
      } else {
        return;
      }
    }
  }

  ScopedHandle stats_event_;
  ScopedHandle quit_event_;
  std::function<void()> on_stats_;
  std::function<void()> on_stop_;
  std::thread thread_;
};

}  // namespace

std::string StatsEventName(const std::string& address) {
  absl::StatusOr<std::string> pipe = WindowsPipeTransport::PipeName(address);
  return absl::StrCat("Global\\portserver-stats-",
                      WindowsPipeTransport::KernelObjectName(
                          pipe.ok() ? pipe->substr(9) : address));
}

std::vector<std::string> Utf8Arguments(int argc, char** argv) {
  std::vector<std::string> args = ArgumentsUtf8(argc, argv);
  args.insert(args.begin(), argc > 0 ? argv[0] : "portserver");
  UseUtf8Console();
  return args;
}

std::string BootId() { return ""; }  // Not checked on Windows.

absl::StatusOr<std::unique_ptr<PlatformAdapters>> MakePlatformAdapters(
    const Options& options) {
  if (!options.extra_addresses.empty()) {
    // One pipe per server on Windows; start one server per pipe instead.
    return absl::InvalidArgumentError(
        "--portserver_extra_addresses is not supported on Windows (one pipe "
        "per server)");
  }
  WindowsPipeTransport::Options transport_options;
  transport_options.address = options.address;
  transport_options.max_connections = options.max_connections;
  transport_options.read_timeout = absl::Milliseconds(options.read_timeout_ms);
  absl::StatusOr<std::unique_ptr<WindowsPipeTransport>> transport =
      WindowsPipeTransport::Create(transport_options);
  if (!transport.ok()) return transport.status();
  return std::unique_ptr<PlatformAdapters>(
      new WindowsAdapters(std::move(*transport)));
}

std::string FileIdentity(const std::string& path) {
  return absl::AsciiStrToLower(WindowsLeaseStore::FullPath(path));
}

absl::StatusOr<std::unique_ptr<LeaseStore>> OpenLeaseStore(
    const Options& options, std::string* path, std::string* contents,
    const std::function<absl::Status(const std::string&)>& before_writing) {
  if (options.state_file == "none") return std::unique_ptr<LeaseStore>();
  // As Windows resolves it: "X\sj" and "X\sj." (trailing dots go), or a
  // short 8.3 name, are one journal and must get one lock (they got two,
  // and two servers shared the journal: a Windows trial).
  *path = options.state_file.empty()
              ? options.state_file
              : WindowsLeaseStore::FullPath(options.state_file);
  if (path->empty()) {
    absl::StatusOr<std::string> dir = WindowsLeaseStore::DefaultDirectory();
    if (!dir.ok()) return dir.status();
    // One journal per pipe: servers on different pipes are different
    // servers.
    absl::StatusOr<std::string> pipe =
        WindowsPipeTransport::PipeName(options.address);
    std::string base = pipe.ok() ? pipe->substr(9) : options.address;
    // Its name (JournalFileName: pipes whose names differ only in bytes
    // written '_', such as two non-ASCII names of one length, shared one
    // journal before 0.4.2; the digits of the name in lower case, as pipe
    // names ignore case), or the name servers before gave it, if that one
    // exists, the other does not, and its leases are all in this server's
    // pool: that name is also the journal of another pipe now ("a_b" for
    // "a_b" as for "a\b" before), whose leases are left to it.
    std::string name =
        JournalFileName(base, absl::AsciiStrToLower(base)) + ".journal";
    if (WindowsLeaseStore::IsDevice(absl::StrCat(*dir, "\\", name))) {
      // A DOS device name (a pipe named CON, com1, nul.x: the part before
      // the first dot counts): a leading '_' makes it a file name, and the
      // digits keep it apart from a pipe named "_con.x"
      // ("_con.x-1b2c3d4e.journal").
      name = absl::StrCat(
          "_", JournalFileNameWithDigits(base, absl::AsciiStrToLower(base)),
          ".journal");
    }
    const std::string legacy = LegacyJournalFileName(base) + ".journal";
    *path = absl::StrCat(*dir, "\\", name);
    const std::string legacy_path = absl::StrCat(*dir, "\\", legacy);
    if (legacy != name && !WindowsLeaseStore::IsDevice(legacy_path) &&
        GetFileAttributesW(Widen(*path).c_str()) == INVALID_FILE_ATTRIBUTES &&
        GetFileAttributesW(Widen(legacy_path).c_str()) !=
            INVALID_FILE_ATTRIBUTES) {
      std::string text;
      if (std::FILE* f = _wfopen(Widen(legacy_path).c_str(), L"rb")) {
        char buffer[65536];
        size_t n;
        while ((n = std::fread(buffer, 1, sizeof(buffer), f)) > 0) {
          text.append(buffer, n);
        }
        std::fclose(f);
      }
      if (!LegacyJournalFitsPool(text, options.pool)) {
        PS_LOG(WARNING) << "State file " << legacy_path
                        << " has the name servers before 0.4.2 gave the "
                           "journal of this pipe, but holds leases outside "
                           "this server's pool: it is left to the server "
                           "whose journal it is now";
      } else if (absl::Status ok = before_writing(legacy_path); !ok.ok()) {
        return ok;
      } else {
        absl::StatusOr<std::unique_ptr<WindowsLeaseStore>> old =
            WindowsLeaseStore::Open(legacy_path, contents, StartsAsJournal);
        if (old.ok()) {
          PS_LOG(INFO) << "State file " << legacy_path
                       << " has the name servers before 0.4.2 gave it: "
                          "using it";
          *path = legacy_path;
          return std::unique_ptr<LeaseStore>(std::move(*old));
        }
        if (!absl::IsAlreadyExists(old.status())) return old.status();
        // In use: the pipe whose journal that name is now is served.
      }
    }
  }
  if (absl::Status ok = before_writing(*path); !ok.ok()) return ok;
  absl::StatusOr<std::unique_ptr<WindowsLeaseStore>> store =
      WindowsLeaseStore::Open(*path, contents,
                              // Someone else's file named by mistake is
                              // refused, not overwritten.
                              StartsAsJournal);
  if (!store.ok()) return store.status();
  return std::unique_ptr<LeaseStore>(std::move(*store));
}

std::unique_ptr<OwnerWatcher> WatchOwners(
    std::function<void(int64_t)> on_exit) {
  return std::make_unique<WindowsOwnerWatcher>(std::move(on_exit));
}

std::unique_ptr<SignalWatcher> WatchSignals(const Options& options,
                                            std::function<void()> on_stats,
                                            std::function<void()> on_stop) {
  std::string name = StatsEventName(options.address);
  ScopedHandle event(CreateEventW(nullptr, FALSE, FALSE, Widen(name).c_str()));
  if (!event.valid()) {
    DWORD error = GetLastError();
    PS_LOG(WARNING) << WindowsErrorText(
                           "Cannot create the statistics event " + name, error)
                    << "; statistics are logged at exit only";
  } else {
    // Always: with a backslash in the pipe name the event's name has digits
    // no one can guess.
    PS_LOG(INFO) << "Set the event " << name << " to log the statistics";
  }
  return std::make_unique<WindowsSignalWatcher>(
      std::move(event), std::move(on_stats), std::move(on_stop));
}

}  // namespace portserver
