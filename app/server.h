// Server: wires the domain's PortService to a set of adapters and logs what
// happens. Platform-free: app/main.cc injects Linux (or Windows) adapters,
// tests inject the in-memory fakes.
//
// Example:
//   Server server(options, adapters);
//   std::thread t([&] { server.Serve(); });
//   server.DumpStats();   // as on SIGUSR1
//   server.Shutdown();    // as on SIGTERM
//
// Thread-safe: Serve() runs on one thread; DumpStats(), Shutdown() and
// stats() may be called from any thread.
#ifndef PORTSERVER_APP_SERVER_H_
#define PORTSERVER_APP_SERVER_H_

#include <cstdint>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "app/log.h"
#include "app/options.h"
#include "domain/control_service.h"
#include "domain/lease_store.h"
#include "domain/port_probe.h"
#include "domain/port_service.h"
#include "domain/process_info.h"
#include "domain/process_probe.h"
#include "domain/transport.h"

namespace portserver {

// Tells when owners exit, so that their ports come back at once. Watch()
// is cheap for an owner already watched. The callback the platform's
// watcher was made with may run on another thread, and means "may have
// exited": the server confirms with its probe. It never runs from inside
// Watch(): the server's callback may call Watch() again, and a pid that is
// already gone would then be reported and watched without end.
class OwnerWatcher {
 public:
  virtual ~OwnerWatcher() = default;
  enum class Result {
    kWatching,         // A new watch: its exit will be reported.
    kAlreadyWatching,  // Watched already (perhaps a former process of the
                       // pid whose exit is still to be reported).
    kGone,             // No such process now; nothing will be reported.
    kUnavailable,      // Cannot be watched (out of descriptors, ...).
  };
  virtual Result Watch(int64_t pid) = 0;
};

// The adapters a server runs on. Not owned; they must outlive the Server.
struct Adapters {
  ProcessProbe* process_probe;
  PortProbe* port_probe;
  Transport* transport;
  // Command lines and times for the extended protocol; may be null.
  ProcessInfo* process_info = nullptr;
};

class Server final : private RequestHandler {
 public:
  // REQUIRES: options.pool is non-empty (ParseCommandLine ensures it).
  Server(const Options& options, const Adapters& adapters);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Restores the leases journaled in `contents` whose owners still live
  // (logging each damaged line, which is skipped), then journals every
  // grant to `store`, which must outlive the server. Call before Serve().
  void UseJournal(LeaseStore& store, std::string_view contents,
                  const std::string& path);
  // The id of this boot (BootId()): journaled; a journal of another boot
  // restores no lease (PortService::SetBootId). Call before UseJournal().
  void SetBootId(std::string boot_id) {
    service_.SetBootId(std::move(boot_id));
  }

  // From now on, tells `watcher` (which must outlive the server) of each
  // owner, so that their exits reach OwnerExited() at once; requests then
  // stop sweeping owners. An owner whose watch fails is checked instead, one
  // such owner per request (round-robin), until it ends or can be watched:
  // the others cost nothing.
  void SetOwnerWatcher(OwnerWatcher* watcher);
  // An owner may have exited: its ports come back if the probe agrees.
  void OwnerExited(int64_t pid);

  // Names the addresses served in the start-up log line (default:
  // options.address). Call before Serve().
  void SetListeningOn(std::vector<std::string> addresses);

  // Serves until Shutdown(); then logs the statistics and, if no lease is
  // live, removes the journal (LeaseStore::Remove). Returns an Internal
  // error if the transport failed.
  absl::Status Serve();
  void Shutdown();
  // Logs the reference statistics, one per line.
  void DumpStats();
  Stats stats() const { return service_.stats(); }
  // Owners whose exit is not watched now.
  size_t unwatched_owners() const;
  // Refusal lines held back by the rate limit (kRefusalLinesPerSecond).
  uint64_t refusal_lines_suppressed() const { return refusals_.suppressed(); }

  // Refusals are logged at default verbosity, at most this many lines a
  // second; the rest are counted and the next line says how many.
  static constexpr int kRefusalLinesPerSecond = 10;

  // The metrics in Prometheus text format, as the `metrics` verb sends them.
  std::string MetricsText() { return control_.MetricsText(); }

 private:
  std::string HandleRequest(const Request& request) override;
  // What a client need not wait for: the exit watch of the owners granted
  // since the last call and their command lines.
  void AfterReply() override;
  // Out of descriptors: the process probe's remembered pidfds give way.
  bool ReleaseDescriptors() override;
  // A connection closed unanswered for want of a descriptor: counted as a
  // refused connection and logged (rate-limited, with the refusals).
  void RefusedForDescriptors(bool process_limit) override;
  // " [N earlier refusal line(s) suppressed by the rate limit]" for a
  // refusal line after `held_back` held back (refusals_); "" for none.
  static std::string HeldBackNote(uint64_t held_back);
  // An extended request (app/control.cc): answered by control_, logged.
  std::string HandleControl(const Request& request);
  // Logs the biggest holders on the first pool-exhausted denial of an
  // episode (app/control.cc).
  void LogBiggestHolders(const Decision& d);

  const Options options_;
  Transport& transport_;
  PortService service_;
  ControlService control_;
  // Watches `pid`'s exit; if it cannot be watched, or it has ended and its
  // ports cannot be taken back yet (the probe cannot tell), later requests
  // check it (CheckUnwatched). Never calls itself, directly or through the
  // watcher.
  void Watch(int64_t pid);
  // Watch() without the fallback: true if `pid` needs nothing more (watched
  // now, or holds no port), else false with the reason in `*why`. After a
  // new watch the owner is checked by start time: the watch follows
  // whatever process has the pid, which may no longer be the owner.
  bool TryWatch(int64_t pid, const char** why);
  // Lists `pid` among the owners checked one per request (once; a pid that
  // CheckUnwatched is checking is kept there), with a rate-limited warning.
  void AddUnwatched(int64_t pid, const char* why);
  // Takes back the ports of `pid` if its owner has ended (logs it when
  // verbose); says what is left.
  enum class OwnerCheck { kHoldsNone, kAlive, kUnknown };
  OwnerCheck ReclaimIfGone(int64_t pid);
  // Watch(pid) once the reply is sent (AfterReply).
  void WatchAfterReply(int64_t pid);
  // Checks the next unwatched owner: forgets it once it has ended or can
  // be watched after all.
  void CheckUnwatched();
  void LogJournalEvent(const Decision& d);
  // Logs (once) that the journal is now at `now` (LeaseStore::Location()),
  // if it is not journal_path_, and follows it.
  void NoteJournalMove(const std::string& now);

  std::vector<std::string> listening_on_;
  OwnerWatcher* watcher_ = nullptr;
  mutable std::mutex unwatched_mu_;
  std::deque<int64_t> unwatched_;    // Guarded by unwatched_mu_.
  std::set<int64_t> unwatched_set_;  // Guarded by unwatched_mu_.
  // Guarded by unwatched_mu_: the pid CheckUnwatched is checking (0: none),
  // off unwatched_ but still in unwatched_set_, and whether AddUnwatched()
  // asked for it meanwhile (its watch, just taken, reported an exit that
  // the probe could not confirm): then it stays listed.
  int64_t checking_ = 0;
  bool checking_listed_again_ = false;
  std::vector<int64_t> to_watch_;        // Guarded by unwatched_mu_.
  std::mutex journal_log_mu_;            // LogJournalEvent's.
  std::string journal_path_;             // Set by UseJournal; follows a move.
  LeaseStore* journal_store_ = nullptr;  // Set by UseJournal.
  bool journal_attached_ = false;
  LogRateLimiter refusals_{kRefusalLinesPerSecond, absl::Seconds(1)};
  // Descriptor exhaustion can fail many watches at once.
  LogRateLimiter watch_warnings_{kRefusalLinesPerSecond, absl::Seconds(1)};
};

}  // namespace portserver

#endif  // PORTSERVER_APP_SERVER_H_
