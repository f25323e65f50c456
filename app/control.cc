// Server: the extended protocol's requests (docs/protocol.md) and the log
// of the biggest holders when the pool runs out.
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "app/log.h"
#include "app/server.h"

namespace portserver {

std::string Server::HandleControl(const Request& request) {
  ControlResult r = control_.Handle(request);
  LogJournalEvent(r.journal);
  if (r.allocated) {
    const Decision& d = r.decision;
    if (d.granted()) WatchAfterReply(d.pid);
    LogJournalEvent(d);
    LogBiggestHolders(d);
  }
  // As for plain requests: refusals are logged at default verbosity,
  // rate-limited; the rest only when verbose.
  uint64_t held_back = 0;
  const bool refused_allocation = r.allocated && !r.decision.granted();
  const bool replaced = r.allocated && r.decision.pid_replaced;
  // Closed at the connection cap, not carried out: logged as a plain one.
  const bool over_capacity = request.end == Request::End::kOverCapacity;
  if (Verbose() || ((refused_allocation || replaced || over_capacity) &&
                    refusals_.Allow(absl::Now(), &held_back))) {
    std::string line = absl::StrCat("Extended request: ", r.summary);
    if (options_.debug) {
      // As for plain requests: the caller, and for allocate the probes.
      std::string debug;
      if (request.peer.known) {
        absl::StrAppend(&debug, "peer_pid=", request.peer.pid,
                        " peer_uid=", request.peer.uid);
      }
      if (r.allocated) {
        const Allocation& a = r.decision.allocation;
        absl::StrAppend(
            &debug, debug.empty() ? "" : " ", "ports_checked=", a.ports_checked,
            " busy=", a.ports_busy, " reclaimed=", a.ports_reclaimed);
      }
      if (!debug.empty()) absl::StrAppend(&line, " [", debug, "]");
    }
    absl::StrAppend(&line, HeldBackNote(held_back));
    PS_LOG(INFO) << line;
  }
  return std::move(r.reply);
}

void Server::LogBiggestHolders(const Decision& d) {
  if (d.biggest_holders.empty()) return;
  Stats s = service_.stats();
  PS_LOG(WARNING) << "Pool exhausted (" << s.leased_ports << " of "
                  << s.num_ports_managed
                  << " ports leased); the biggest holders:";
  for (const HolderSummary& h : d.biggest_holders) {
    // ", label //pkg:a" for one label; with several, each with its ports:
    // ", labels //pkg:a (4), //pkg:b (1), none (2)".
    std::string labels;
    if (h.labels.size() == 1 && !h.labels[0].first.empty()) {
      labels = absl::StrCat(", label ", h.labels[0].first);
    } else if (h.labels.size() > 1) {
      labels = ", labels ";
      for (size_t i = 0; i < h.labels.size(); ++i) {
        absl::StrAppend(&labels, i == 0 ? "" : ", ",
                        h.labels[i].first.empty() ? "none" : h.labels[i].first,
                        " (", h.labels[i].second, ")");
      }
    }
    PS_LOG(WARNING) << "  pid " << h.pid << " holds " << h.ports << " port(s)"
                    << labels << ", command line: "
                    << (h.command_line.empty() ? "(unknown)" : h.command_line);
  }
}

}  // namespace portserver
