// The platform's adapters and signals, chosen at build time: platform_linux.cc
// on Linux (a Windows file will sit beside it, picked by select() in BUILD).
// This is the only place that names concrete adapters.
//
// Example:
//   absl::StatusOr<std::unique_ptr<PlatformAdapters>> p =
//       MakePlatformAdapters(options);            // binds the address
//   Server server(options, (*p)->adapters());
//   auto signals = WatchSignals(options, [&] { server.DumpStats(); },
//                               [&] { server.Shutdown(); });
#ifndef PORTSERVER_APP_PLATFORM_H_
#define PORTSERVER_APP_PLATFORM_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "app/options.h"
#include "app/server.h"
#include "domain/lease_store.h"

namespace portserver {

class PlatformAdapters {
 public:
  virtual ~PlatformAdapters() = default;
  virtual Adapters adapters() = 0;
  // What the transport listens on, for the log ("@name", a path, ...).
  // Empty if the platform cannot tell (the server then names
  // options.address).
  virtual std::vector<std::string> listening_on() const { return {}; }
};

// The server's arguments as UTF-8, argv[0] first: argv itself on Linux. On
// Windows they are read from the UTF-16 command line, since argv is in the
// ANSI code page, which may lack characters of a pipe name or a path
// (adapters/windows/windows_text.h), and a console is set to show the UTF-8
// the server logs (SetConsoleOutputCP). Call first thing in main().
std::vector<std::string> Utf8Arguments(int argc, char** argv);

// Creates the adapters; the transport is bound and listening on return, on
// options.address and options.extra_addresses or, where the platform has
// socket activation (Linux: LISTEN_FDS) and it is used, on exactly the
// passed sockets. Errors name the problem (e.g. "address @x is already in
// use", a passed socket of the wrong kind).
absl::StatusOr<std::unique_ptr<PlatformAdapters>> MakePlatformAdapters(
    const Options& options);

// Opens the lease journal that options.state_file names ("" = the
// platform's per-user default, "none" = no journal: returns null). `*path`
// receives the file used and `*contents` what it holds. Errors name the file.
// `before_writing` is called with each path about to be opened as the
// journal, before it is made (on Linux before the default directory is
// made too; Windows makes that directory first); an error from it is
// returned as is, and the journal is not written.
absl::StatusOr<std::unique_ptr<LeaseStore>> OpenLeaseStore(
    const Options& options, std::string* path, std::string* contents,
    const std::function<absl::Status(const std::string&)>& before_writing);

// A name for the file `path` names, equal for two spellings of one file, to
// tell whether two paths the server writes collide: Linux: absolute, with
// its directory's symbolic links, `.` and `..` resolved
// (std::filesystem::weakly_canonical; the last name is not followed);
// Windows: WindowsLeaseStore::FullPath, in lower case (names ignore case).
// Hard links are not seen. Not for opening. Thread-safe.
std::string FileIdentity(const std::string& path);

// The id of this boot, for the journal (PortService::SetBootId): on Linux
// /proc/sys/kernel/random/boot_id (a UUID, random(4)); "" where there is
// none (Windows).
std::string BootId();

// The platform's OwnerWatcher (app/server.h): pidfds on Linux.
std::unique_ptr<OwnerWatcher> WatchOwners(std::function<void(int64_t)> on_exit);

// Calls `on_stats` for each SIGUSR1 and `on_stop` for SIGTERM, SIGINT or
// SIGHUP, on a thread of its own, until the returned object is destroyed.
// Call before starting any other thread: it blocks those signals in the
// calling thread, and only threads started later inherit that. On Windows:
// `on_stop` for Ctrl+C, Ctrl+Break and console close, `on_stats` each time
// the named event of the server's address is set (app/platform_windows.h).
class SignalWatcher {
 public:
  virtual ~SignalWatcher() = default;
};
std::unique_ptr<SignalWatcher> WatchSignals(const Options& options,
                                            std::function<void()> on_stats,
                                            std::function<void()> on_stop);

}  // namespace portserver

#endif  // PORTSERVER_APP_PLATFORM_H_
