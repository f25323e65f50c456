#include "app/server.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "app/log.h"
#include "app/started_thread.h"
#include "app/version.h"
#include "domain/lease_journal.h"
#include "domain/request_codec.h"

namespace portserver {
namespace {

// How often a server retries the locks of restored leases a neighbour held
// at start-up, between requests (Serve).
constexpr std::chrono::milliseconds kRetakeInterval(20);
// Locks tried per interval, in turn: bounds the time PortService's lock is
// held (a socket and a bind each, some 10-30 us) whatever their number.
constexpr size_t kRetakesPerInterval = 64;
// How often an idle server checks its journal as each request does (a few
// fstat() calls): one deleted or replaced is written afresh within this.
constexpr std::chrono::seconds kJournalCheckInterval(1);

// Up to 20 of `ports` for a log line: "15001, 15002, ...".
std::string FirstPorts(const std::vector<uint16_t>& ports) {
  std::string text;
  for (size_t i = 0; i < ports.size() && i < 20; ++i) {
    absl::StrAppend(&text, i == 0 ? "" : ", ", ports[i]);
  }
  if (ports.size() > 20) absl::StrAppend(&text, ", ...");
  return text;
}

const char* EndName(Request::End end) {
  switch (end) {
    case Request::End::kNewline:
      return "newline";
    case Request::End::kEof:
      return "eof";
    case Request::End::kTooLong:
      return "too-long";
    case Request::End::kTimedOut:
      return "timed-out";
    case Request::End::kOverCapacity:
      return "over-capacity";
  }
  return "?";
}

AllocationPolicyOptions PolicyOptions(const Options& options) {
  AllocationPolicyOptions policy;
  policy.max_ports_per_owner = options.max_ports_per_pid;
  return policy;
}

}  // namespace

Server::Server(const Options& options, const Adapters& adapters)
    : options_(options),
      transport_(*adapters.transport),
      service_(options.pool, *adapters.process_probe, *adapters.port_probe,
               PolicyOptions(options)),
      control_(service_, kPortserverVersion) {
  service_.SetProcessInfo(adapters.process_info);
  control_.SetExtraStats([this] {
    return std::vector<ExtraStat>{
        {"unwatched-owners", unwatched_owners(), false,
         "Owners whose exit is not watched (checked one per request)."},
        {"carried-leases", service_.CarriedPorts().size(), false,
         "Journaled leases on ports outside the pool, kept (not leased) "
         "for their live owners."},
        {"refusal-lines-suppressed", refusals_.suppressed(), true,
         "Refusal log lines held back by the rate limit."}};
  });
}

void Server::UseJournal(LeaseStore& store, std::string_view contents,
                        const std::string& path) {
  JournalReplay replay = ParseJournal(contents);
  for (const std::string& problem : replay.problems) {
    PS_LOG(WARNING) << "State file " << path << ": " << problem;
  }
  if (service_.FromAnotherBoot(replay) && !replay.leases.empty()) {
    PS_LOG(INFO) << "State file " << path << ": written before the host "
                 << "last booted (boot id " << replay.boot_id << "): its "
                 << replay.leases.size()
                 << " lease(s) ended with that boot; none is restored";
  }
  std::vector<uint16_t> unreserved;
  // With their notes: each restored lease keeps its label and lease time.
  size_t restored = service_.Restore(replay, &unreserved);
  std::sort(unreserved.begin(), unreserved.end());  // Named in order below.
  // A journal of this address written under another pool (the flag was
  // changed between runs, or mistyped) holds leases this server cannot
  // lease: those whose owners live are carried in its journal, said, never
  // silent. Dropping them let one start with a narrower pool hand those
  // ports out again later while their owners lived (a new user's trial).
  const std::vector<uint16_t> carried_ports = service_.CarriedPorts();
  if (!carried_ports.empty()) {
    PS_LOG(WARNING) << "State file " << path << ": " << carried_ports.size()
                    << " journaled lease(s) on ports outside this server's "
                       "pool "
                    << options_.pool_spec << " (" << FirstPorts(carried_ports)
                    << "), journaled under another pool, are carried: this "
                       "server does not lease them, but holds their port "
                       "locks and keeps them in the journal while their "
                       "owners live, so that a server started with their "
                       "pool restores them (portserverctl who shows them)";
  }
  if (!unreserved.empty()) {
    PS_LOG(WARNING) << "State file " << path << ": " << unreserved.size()
                    << " restored or carried lease(s) without their port lock ("
                    << FirstPorts(unreserved)
                    << "): another port server holds it (it may have leased "
                       "the port while this one was down), or descriptors "
                       "ran out";
  }
  const size_t carried = carried_ports.size();
  const std::string carried_text =
      carried == 0 ? "" : absl::StrCat(", ", carried, " carried (above)");
  if (replay.leases.empty()) {
    // The default place depends on the environment: a server started
    // before with another XDG_RUNTIME_DIR (a login shell, then cron or
    // sudo) journaled elsewhere, and its leases are not seen here (a new
    // user's trial). Said where people look first.
    PS_LOG(INFO) << "State file " << path
                 << ": no leases to restore (new or empty journal)"
                 << (options_.state_file.empty()
                         ? "; the default place depends on XDG_RUNTIME_DIR "
                           "(a server started with another one journaled "
                           "elsewhere): --portserver_state_file fixes it"
                         : "");
  } else if (restored + carried >= replay.leases.size()) {
    PS_LOG(INFO) << "State file " << path << ": restored " << restored << " of "
                 << replay.leases.size() << " journaled lease(s)"
                 << carried_text << ", all owners still live";
  } else {
    PS_LOG(INFO) << "State file " << path << ": restored " << restored << " of "
                 << replay.leases.size() << " journaled lease(s)"
                 << carried_text << "; dropped "
                 << replay.leases.size() - restored - carried
                 << " (owner exited or its pid reused, or recorded twice)";
  }
  journal_path_ = path;
  journal_store_ = &store;
  journal_attached_ = true;
  // Each watch taken checks its owner by start time (TryWatch): the pid
  // may have gone to another process since Restore probed it.
  // Carried leases' owners too: their ports' locks are let go as soon as
  // they end, not at the next compaction.
  std::set<int64_t> owners;
  for (const auto& lease : service_.Leases()) owners.insert(lease.second.pid);
  for (int64_t pid : service_.CarriedOwners()) owners.insert(pid);
  for (int64_t pid : owners) Watch(pid);
  StoreResult compacted = service_.AttachStore(&store);
  if (!compacted.ok) {
    PS_LOG(ERROR) << "State file " << path
                  << " cannot be rewritten: " << compacted.error
                  << "; leases may not survive a restart";
  }
}

void Server::SetListeningOn(std::vector<std::string> addresses) {
  listening_on_ = std::move(addresses);
}

absl::Status Server::Serve() {
  std::string on = listening_on_.empty() ? options_.address
                                         : absl::StrJoin(listening_on_, ", ");
  PS_LOG(INFO) << "Serving on " << on << " (pool " << options_.pool_spec << ", "
               << options_.pool.size()
               << (options_.pool.size() == 1 ? " port" : " ports")
               << "; portserver " << kPortserverVersion << ")";
  // Between requests, on one thread:
  // - Restored (or carried) leases whose lock a neighbouring server held at
  //   start-up: the lock is taken as soon as that server lets go of it, so
  //   that it cannot lease the port again once its own owner ends. Each
  //   allocation tries a few (AllocationPolicy::kRetakesPerRequest), and
  //   this thread kRetakesPerInterval every kRetakeInterval while any is
  //   left.
  // - The journal, checked every kJournalCheckInterval as each request
  //   checks it: one deleted or replaced (a /tmp cleaner, logind removing
  //   XDG_RUNTIME_DIR at the last logout) is written afresh within a second
  //   rather than at the next request, so that a crash of an idle server in
  //   between no longer loses its leases (README, "A deleted journal").
  std::mutex house_mu;
  std::condition_variable house_cv;
  bool house_stop = false;
  bool retaking = service_.RetakeReservations(0) > 0;
  std::thread house = StartThread([&] {
    std::unique_lock<std::mutex> lock(house_mu);
    auto next_check = std::chrono::steady_clock::now() + kJournalCheckInterval;
    while (!house_cv.wait_for(
        lock,
        retaking ? std::chrono::milliseconds(kRetakeInterval)
                 : std::chrono::milliseconds(kJournalCheckInterval),
        [&] { return house_stop; })) {
      if (retaking && service_.RetakeReservations(kRetakesPerInterval) == 0) {
        PS_LOG(INFO) << "Every restored lease holds its port lock again";
        retaking = false;
      }
      if (journal_attached_ && std::chrono::steady_clock::now() >= next_check) {
        LogJournalEvent(service_.MaintainStore());
        next_check = std::chrono::steady_clock::now() + kJournalCheckInterval;
      }
    }
  });
  ServeResult result = transport_.Serve(*this);
  {
    std::lock_guard<std::mutex> lock(house_mu);
    house_stop = true;
  }
  house_cv.notify_all();
  house.join();
  DumpStats();
  if (journal_attached_) {
    journal_attached_ = false;
    Stats s = service_.stats();
    const bool removed = service_.DetachStore();
    // Pruned by DetachStore(): those whose owners still live.
    const size_t carried = service_.CarriedPorts().size();
    const std::string carried_text =
        carried == 0 ? ""
                     : absl::StrCat(" and ", carried,
                                    " carried lease(s) outside the pool");
    // Serving has stopped: the store's own thread-compatible Location().
    NoteJournalMove(journal_store_->Location());
    if (removed) {
      PS_LOG(INFO) << "State file " << journal_path_
                   << " removed: no live leases to keep";
    } else if (service_.journal_behind() &&
               service_.stats().journal_missed_grants > 0) {
      PS_LOG(ERROR) << "State file " << journal_path_
                    << " kept, but it lacks the leases granted while it "
                       "could not be written (journal-missed-grants): a "
                       "restart restores only those it holds, of "
                    << s.leased_ports << " live lease(s)";
    } else if (service_.journal_behind()) {
      // Only a rewrite failed (a compaction, the start-up's): no grant is
      // missing from the file (a new user's trial read the message above
      // with journal-missed-grants 0 and a complete journal).
      PS_LOG(WARNING) << "State file " << journal_path_
                      << " kept as last written: it could not be rewritten "
                         "(journal-errors), but no grant is missing from it "
                         "("
                      << s.leased_ports
                      << " live lease(s)); a lease released since comes "
                         "back to its owner at a restart if it still lives";
    } else if (s.leased_ports == 0 && carried == 0) {
      PS_LOG(INFO) << "State file " << journal_path_
                   << " kept (this platform keeps it): no live lease in it";
    } else {
      PS_LOG(INFO) << "State file " << journal_path_
                   << " kept: " << s.leased_ports << " live lease(s)"
                   << carried_text;
    }
  }
  if (!result.ok) {
    PS_LOG(ERROR) << "Serving stopped: " << result.error;
    return absl::InternalError(result.error);
  }
  PS_LOG(INFO) << "Goodbye.";
  return absl::OkStatus();
}

void Server::Shutdown() { transport_.Shutdown(); }

void Server::DumpStats() {
  Stats s = service_.stats();
  PS_LOG(INFO) << "Dumping statistics (portserver " << kPortserverVersion
               << "):";
  PS_LOG(INFO) << "client-request-errors " << s.client_request_errors;
  PS_LOG(INFO) << "denied-allocations " << s.denied_allocations;
  PS_LOG(INFO) << "num-ports-managed " << s.num_ports_managed;
  PS_LOG(INFO) << "num-ports-checked-for-last-request "
               << s.num_ports_checked_for_last_request;
  PS_LOG(INFO) << "total-allocations " << s.total_allocations;
  PS_LOG(INFO) << "denied-invalid-pid " << s.denied_invalid_pid;
  PS_LOG(INFO) << "denied-no-such-process " << s.denied_no_such_process;
  PS_LOG(INFO) << "denied-pool-exhausted " << s.denied_pool_exhausted;
  PS_LOG(INFO) << "denied-quota " << s.denied_quota;
  PS_LOG(INFO) << "denied-permission " << s.denied_permission;
  PS_LOG(INFO) << "pids-translated " << s.pids_translated;
  PS_LOG(INFO) << "pids-replaced-by-caller " << s.pids_replaced_by_caller;
  PS_LOG(INFO) << "refused-connections " << s.refused_connections;
  PS_LOG(INFO) << "leased-ports " << s.leased_ports;
  PS_LOG(INFO) << "owners " << s.owners;
  PS_LOG(INFO) << "busy-ports-cooling " << s.busy_ports_cooling;
  PS_LOG(INFO) << "time-wait-ports-cooling " << s.time_wait_ports_cooling;
  PS_LOG(INFO) << "time-wait-grants " << s.time_wait_grants;
  PS_LOG(INFO) << "port-probe-failures " << s.port_probe_failures;
  PS_LOG(INFO) << "unwatched-owners " << unwatched_owners();
  PS_LOG(INFO) << "carried-leases " << service_.CarriedPorts().size();
  PS_LOG(INFO) << "refusal-lines-suppressed " << refusals_.suppressed();
  PS_LOG(INFO) << "journal-outages " << s.journal_outages;
  PS_LOG(INFO) << "journal-missed-grants " << s.journal_missed_grants;
  PS_LOG(INFO) << "journal-rewrites " << s.journal_rewrites;
  PS_LOG(INFO) << "journal-errors " << s.journal_errors;
  PS_LOG(INFO) << "journal-compactions " << s.journal_compactions;
  PS_LOG(INFO) << "ports-released " << s.ports_released;
}

void Server::SetOwnerWatcher(OwnerWatcher* watcher) {
  watcher_ = watcher;
  if (watcher_ != nullptr) service_.SetSweepPerRequest(0);
}

size_t Server::unwatched_owners() const {
  std::lock_guard<std::mutex> lock(unwatched_mu_);
  return unwatched_.size();
}

Server::OwnerCheck Server::ReclaimIfGone(int64_t pid) {
  bool unknown = false;
  size_t back = service_.OwnerExited(pid, &unknown);
  if (Verbose() && back > 0) {
    PS_LOG(INFO) << "Owner pid " << pid << " exited: " << back
                 << " port(s) back in the pool";
  }
  // Holds(), not PortsOf(): an owner of carried leases alone matters too
  // (a reviewer: one that could not be watched was dropped from the
  // unwatched owners while alive, and its carried ports kept locked after
  // its end).
  if (back > 0 || !service_.Holds(pid)) return OwnerCheck::kHoldsNone;
  return unknown ? OwnerCheck::kUnknown : OwnerCheck::kAlive;
}

bool Server::TryWatch(int64_t pid, const char** why) {
  *why = "cannot watch it for its exit";
  if (watcher_ == nullptr) return true;
  OwnerWatcher::Result result = watcher_->Watch(pid);
  // No watch could be had (mostly out of descriptors): the process probe's
  // remembered pidfds give way to it, once. Under a low limit a restart
  // left 7 of 21 owners unwatched, the journal unwritten and every client
  // turned away (a new user's trial).
  if (result == OwnerWatcher::Result::kUnavailable &&
      service_.ReleaseProbeCaches()) {
    result = watcher_->Watch(pid);
  }
  switch (result) {
    case OwnerWatcher::Result::kAlreadyWatching:
      return true;
    case OwnerWatcher::Result::kWatching:
      // The watch is on whatever process has the pid now: if the owner
      // ended and its pid went to another process since it was last
      // checked, that watch would keep its ports for the other's life (a
      // chaos test found it after a reply, a reviewer at a restart). So the
      // owner is checked by start time once the watch is taken; if it ends
      // later, the watch (on it, then) says so. If the probe cannot tell,
      // later requests check it too (the watch may follow another process).
      if (ReclaimIfGone(pid) != OwnerCheck::kUnknown) return true;
      *why = "watched, but the process probe cannot confirm it is the owner";
      return false;
    case OwnerWatcher::Result::kGone:
      // Ended before it could be watched: its ports come back now if the
      // probe agrees. If it cannot tell (out of descriptors), later
      // requests check it.
      if (ReclaimIfGone(pid) == OwnerCheck::kHoldsNone) return true;
      *why = "it has ended, but the process probe cannot confirm it yet";
      return false;
    case OwnerWatcher::Result::kUnavailable:
      break;
  }
  return false;
}

void Server::Watch(int64_t pid) {
  const char* why = nullptr;
  if (!TryWatch(pid, &why)) AddUnwatched(pid, why);
}

void Server::AddUnwatched(int64_t pid, const char* why) {
  size_t count = 0;
  {
    std::lock_guard<std::mutex> lock(unwatched_mu_);
    if (!unwatched_set_.insert(pid).second) {
      if (pid == checking_) checking_listed_again_ = true;
      return;
    }
    unwatched_.push_back(pid);
    count = unwatched_.size();
  }
  uint64_t held_back = 0;
  if (!watch_warnings_.Allow(absl::Now(), &held_back)) return;
  PS_LOG(WARNING) << "Owner pid " << pid << ": " << why
                  << "; it is checked on later requests instead, one "
                     "unwatched owner per request ("
                  << count << " unwatched now"
                  << (held_back > 0 ? absl::StrCat("; ", held_back,
                                                   " such lines suppressed")
                                    : std::string())
                  << ")";
}

void Server::WatchAfterReply(int64_t pid) {
  std::lock_guard<std::mutex> lock(unwatched_mu_);
  to_watch_.push_back(pid);
}

void Server::AfterReply() {
  std::vector<int64_t> pids;
  {
    std::lock_guard<std::mutex> lock(unwatched_mu_);
    pids.swap(to_watch_);
  }
  for (int64_t pid : pids) {
    // An owner that ended since its reply is reported gone by the watcher
    // (its ports come back at once); a new watch checks its owner by start
    // time (TryWatch). A pid still watched for a former process of it is
    // watched again when that one's exit is reported (OwnerExited).
    Watch(pid);
  }
  service_.CompleteOwnerRecords();
}

void Server::CheckUnwatched() {
  int64_t pid = 0;
  {
    std::lock_guard<std::mutex> lock(unwatched_mu_);
    if (unwatched_.empty()) return;
    pid = unwatched_.front();
    unwatched_.pop_front();
    checking_ = pid;
    checking_listed_again_ = false;
  }
  // Watched only once the probe can tell that it lives: a watch of an owner
  // that has exited but is not reaped yet (a zombie) would report at once,
  // again and again, while the probe cannot tell (a reviewer saw the
  // watcher's thread spin so).
  const char* why = nullptr;
  const OwnerCheck check = ReclaimIfGone(pid);
  bool done = check == OwnerCheck::kHoldsNone ||
              (check == OwnerCheck::kAlive && TryWatch(pid, &why));
  std::lock_guard<std::mutex> lock(unwatched_mu_);
  // Its watch, just taken, may have reported an exit the probe could not
  // confirm, asking to list it again (AddUnwatched) while it was being
  // checked: it stays listed (a reviewer found it dropped from both).
  if (done && !checking_listed_again_) {
    unwatched_set_.erase(pid);
  } else {
    unwatched_.push_back(pid);
  }
  checking_ = 0;
}

void Server::NoteJournalMove(const std::string& now) {
  if (now.empty() || now == journal_path_) return;
  PS_LOG(WARNING) << "State file " << journal_path_ << " moved to " << now
                  << ": its directory was removed with the one above it "
                     "(XDG_RUNTIME_DIR at the user's last logout?); a "
                     "restart looks for it there";
  journal_path_ = now;
}

void Server::LogJournalEvent(const Decision& d) {
  // From requests and from Serve's thread between them (journal_path_).
  std::lock_guard<std::mutex> lock(journal_log_mu_);
  if (d.journal_event != JournalEvent::kNone) {
    NoteJournalMove(service_.store_location());
  }
  switch (d.journal_event) {
    case JournalEvent::kNone:
      return;
    case JournalEvent::kFellBehind:
      PS_LOG(ERROR) << "State file " << journal_path_
                    << " cannot be written: " << d.store_error
                    << ". Leases granted from now on are not journaled (a "
                       "restart after a crash could hand their ports out "
                       "again) until a snapshot of every live lease can be "
                       "written; tried again on every request, logged once";
      return;
    case JournalEvent::kCaughtUp:
      PS_LOG(WARNING) << "State file " << journal_path_
                      << " written again: it holds every live lease, "
                         "including the "
                      << d.journal_missed
                      << " granted while it could not be written";
      return;
    case JournalEvent::kRewritten:
      PS_LOG(WARNING) << "State file " << journal_path_
                      << " (or its lock) was deleted or replaced, or "
                         "truncated: wrote a fresh one holding every live "
                         "lease";
      return;
  }
}

void Server::OwnerExited(int64_t pid) {
  switch (ReclaimIfGone(pid)) {
    case OwnerCheck::kHoldsNone:
      return;
    case OwnerCheck::kAlive:
      // The watched process ended, yet the pid's owner looks alive: a
      // process that took the pid within the tick its owner started in
      // (same start time; README, Leases). Its ports last until that one
      // exits: watch it.
      Watch(pid);
      return;
    case OwnerCheck::kUnknown:
      // Not watched again: a process that has exited but is not reaped yet
      // would be reported again at once, a spin for as long as the probe
      // cannot tell. Later requests check it.
      AddUnwatched(pid,
                   "it may have ended, but the process probe cannot tell yet");
      return;
  }
}

std::string Server::HeldBackNote(uint64_t held_back) {
  return held_back == 0
             ? ""
             : absl::StrCat(" [", held_back,
                            " earlier refusal line(s) suppressed by the rate "
                            "limit]");
}

bool Server::ReleaseDescriptors() { return service_.ReleaseProbeCaches(); }

void Server::RefusedForDescriptors(bool process_limit) {
  service_.CountRefusedConnection();
  uint64_t held_back = 0;
  if (!refusals_.Allow(absl::Now(), &held_back)) return;
  PS_LOG(WARNING) << "A connection was closed unanswered: "
                  << (process_limit
                          ? "no descriptor was left for it (RLIMIT_NOFILE; "
                            "each leased port holds one, each owner one "
                            "more). Raise the limit or shrink the pool"
                          : "the host is out of open files or kernel memory "
                            "(ENFILE, ENOBUFS, ENOMEM)")
                  << "; refused-connections counts these"
                  << HeldBackNote(held_back);
}

std::string Server::HandleRequest(const Request& request) {
  CheckUnwatched();
  if (IsExtendedRequest(request.data)) return HandleControl(request);
  Decision d = service_.Decide(request);
  if (d.granted()) WatchAfterReply(d.pid);
  LogBiggestHolders(d);
  LogJournalEvent(d);
  // Refusals are logged at default verbosity, rate-limited; malformed
  // requests (which can be a flood of garbage) and grants only when verbose.
  uint64_t held_back = 0;
  // A grant to the caller instead of the pid it named (not translatable
  // from its pid namespace) is logged as refusals are: it may be a mistake.
  if (!Verbose() &&
      ((d.granted() && !d.pid_replaced) || d.outcome == Outcome::kMalformed ||
       !refusals_.Allow(absl::Now(), &held_back))) {
    return std::move(d.reply);
  }
  std::string line;
  if (d.outcome == Outcome::kMalformed) {
    line = absl::StrCat("Bad request: ", d.detail);
  } else if (d.outcome == Outcome::kOverCapacity) {
    line = "Connection closed unanswered: connection cap reached";
  } else if (d.granted()) {
    line = absl::StrCat("Request on behalf of pid ", d.pid, ": port ", d.port);
  } else {
    line = absl::StrCat("Request on behalf of pid ", d.pid, ": denied (",
                        OutcomeName(d.outcome), ")");
  }
  if (d.outcome != Outcome::kMalformed && d.outcome != Outcome::kOverCapacity &&
      !d.detail.empty()) {
    absl::StrAppend(&line, " (", d.detail, ")");
  }
  if (options_.debug) {
    absl::StrAppend(&line, " [end=", EndName(request.end));
    if (request.peer.known) {
      absl::StrAppend(&line, " peer_pid=", request.peer.pid,
                      " peer_uid=", request.peer.uid);
    }
    absl::StrAppend(&line, " ports_checked=", d.allocation.ports_checked,
                    " busy=", d.allocation.ports_busy,
                    " reclaimed=", d.allocation.ports_reclaimed, "]");
  } else if (d.allocation.ports_busy > 0) {
    absl::StrAppend(&line, " (", d.allocation.ports_busy,
                    " port(s) found in use by others)");
  }
  absl::StrAppend(&line, HeldBackNote(held_back));
  PS_LOG(INFO) << line;
  return std::move(d.reply);
}

}  // namespace portserver
