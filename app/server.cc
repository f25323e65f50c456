#include "app/server.h"

#include "absl/strings/str_cat.h"
#include "app/log.h"
#include "app/version.h"
#include "domain/lease_journal.h"

namespace portserver {
namespace {

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
               PolicyOptions(options)) {}

void Server::UseJournal(LeaseStore& store, std::string_view contents,
                        const std::string& path) {
  JournalReplay replay = ParseJournal(contents);
  for (const std::string& problem : replay.problems) {
    PS_LOG(WARNING) << "State file " << path << ": " << problem;
  }
  size_t restored = service_.Restore(replay.leases);
  PS_LOG(INFO) << "State file " << path << ": restored " << restored << " of "
               << replay.leases.size()
               << " journaled leases (the others' owners are gone)";
  for (const auto& lease : service_.Leases()) Watch(lease.second.pid);
  StoreResult compacted = service_.AttachStore(&store);
  if (!compacted.ok) {
    PS_LOG(ERROR) << "State file " << path << " cannot be rewritten: "
                  << compacted.error << "; leases may not survive a restart";
  }
}

absl::Status Server::Serve() {
  PS_LOG(INFO) << "Serving on " << options_.address << " (pool "
               << options_.pool_spec << ", " << options_.pool.size()
               << " ports; portserver " << kPortserverVersion << ")";
  ServeResult result = transport_.Serve(*this);
  DumpStats();
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
  PS_LOG(INFO) << "journal-errors " << s.journal_errors;
  PS_LOG(INFO) << "journal-compactions " << s.journal_compactions;
}

void Server::SetOwnerWatcher(OwnerWatcher* watcher) {
  watcher_ = watcher;
  if (watcher_ != nullptr && !watch_failed_) service_.SetSweepPerRequest(0);
}

void Server::Watch(int64_t pid) {
  if (watcher_ == nullptr || watcher_->Watch(pid)) return;
  if (!watch_failed_.exchange(true)) {
    service_.SetSweepPerRequest(1);
    PS_LOG(WARNING) << "Cannot watch pid " << pid
                    << " for its exit: dead owners are found by sweeping "
                       "one on every request from now on";
  }
}

void Server::OwnerExited(int64_t pid) {
  size_t back = service_.OwnerExited(pid);
  if (Verbose() && back > 0) {
    PS_LOG(INFO) << "Owner pid " << pid << " exited: " << back
                 << " port(s) back in the pool";
  }
}

std::string Server::HandleRequest(const Request& request) {
  Decision d = service_.Decide(request);
  if (d.granted()) Watch(d.pid);
  if (!d.store_error.empty()) {
    PS_LOG(WARNING) << "Port " << d.port << " for pid " << d.pid
                    << " not journaled: " << d.store_error;
  }
  if (!Verbose()) return std::move(d.reply);
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
  if (d.outcome != Outcome::kMalformed &&
      d.outcome != Outcome::kOverCapacity && !d.detail.empty()) {
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
  PS_LOG(INFO) << line;
  return std::move(d.reply);
}

}  // namespace portserver
