#include "domain/control_service.h"

#include <chrono>
#include <utility>

#include "domain/request_codec.h"

namespace portserver {
namespace {

constexpr char kVerbs[] = "allocate,release,leases,who,status,metrics,version";

int64_t SystemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Answers a request whose argument is bad: the error reply and the log's
// summary say the same.
void BadArgument(const std::string& message, ControlReplyBuilder& reply,
                 ControlResult& result) {
  reply.Error("bad-argument", message);
  result.error_code = "bad-argument";
  result.summary += ": bad-argument (" + message + ")";
}

// The error code and message of a denied allocation.
std::pair<std::string, std::string> DenialText(const Decision& d,
                                               const PoolView& pool,
                                               size_t count) {
  std::string code = OutcomeName(d.outcome);
  std::string pid = std::to_string(d.pid);
  switch (d.outcome) {
    case Outcome::kInvalidPid:
      return {code, "pid " + pid + " is not a valid pid (want > 1)"};
    case Outcome::kInit:
      // Named as such (portpicker 1), or the pid of a client's parent that
      // has exited ($PPID after reparenting): init owns no lease.
      return {code,
              "pid 1 is init, which cannot own ports (a client whose parent "
              "exited may have named it as $PPID)"};
    case Outcome::kNoSuchProcess:
      // A zombie (ended, not yet waited for by its parent) is listed by ps:
      // "no process" alone sent a new user's trial the wrong way.
      return {code, "no live process has pid " + pid +
                        " (none, or one that has ended and awaits its "
                        "parent's wait(): a zombie)"};
    case Outcome::kProbeFailed:
      return {code, "cannot tell whether pid " + pid + " is alive"};
    case Outcome::kPoolExhausted:
      if (count > pool.pool) {  // Refused before anything was probed.
        return {code, "pool exhausted: " + std::to_string(count) +
                          " ports asked for, the pool has only " +
                          std::to_string(pool.pool)};
      }
      if (d.allocation.probe_failed) {
        // Not a pool that ran out, though the code stays (clients know
        // it): the cause first ("pool exhausted (24 of 100 leased...)"
        // with 76 ports free misled a new user).
        return {code, "cannot check ports (" + d.detail + "; " +
                          std::to_string(pool.leased) + " of " +
                          std::to_string(pool.pool) + " leased)"};
      }
      // Ports neither leased nor free are in use outside the server.
      return {code,
              "pool exhausted (" + std::to_string(pool.leased) + " of " +
                  std::to_string(pool.pool) + " leased" +
                  (pool.cooling > 0 ? ", " + std::to_string(pool.cooling) +
                                          " in use outside the server"
                                    : std::string()) +
                  (count > 1 || d.allocation.probe_failed ? "; " + d.detail
                                                          : std::string()) +
                  ")"};
    case Outcome::kQuotaExceeded:
      return {code, d.detail.empty()
                        ? "pid " + pid + " holds its quota of ports"
                        : d.detail};
    case Outcome::kPermissionDenied:
      return {code, "denied: " + d.detail};
    default:
      return {code, d.detail.empty() ? code : d.detail};
  }
}

void LeaseFields(const LeaseView& v, ControlReplyBuilder& reply) {
  reply.RecordField("port", v.port);
  reply.RecordField("pid", v.pid);
  if (v.uid_known) reply.RecordField("uid", v.uid);
  if (v.start_unix_ms >= 0) reply.RecordField("started_ms", v.start_unix_ms);
  if (v.since_unix_ms >= 0) reply.RecordField("since_ms", v.since_unix_ms);
  if (!v.label.empty()) reply.RecordField("label", v.label);
  if (v.command_line_hidden) {
    reply.RecordField("cmdline_hidden", "1");
  } else if (!v.command_line.empty()) {
    reply.RecordField("cmdline", v.command_line);
  }
  if (v.unreserved) reply.RecordField("unlocked", "1");
}

}  // namespace

ControlService::ControlService(PortService& service, std::string version,
                               std::function<int64_t()> now_unix_ms)
    : service_(service),
      version_(std::move(version)),
      now_(now_unix_ms ? std::move(now_unix_ms) : SystemNowMs),
      start_unix_ms_(now_()) {}

void ControlService::CountVerb(const std::string& verb) {
  std::lock_guard<std::mutex> lock(mu_);
  ++counters_[verb];
}

ControlCounters ControlService::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

ServerIdentity ControlService::Identity() const {
  return ServerIdentity{version_, now_() - start_unix_ms_};
}

void ControlService::SetExtraStats(
    std::function<std::vector<ExtraStat>()> extra) {
  extra_ = std::move(extra);
}

std::string ControlService::MetricsText() {
  return PrometheusText(service_.stats(), service_.pool_view(), Identity(),
                        counters(),
                        extra_ ? extra_() : std::vector<ExtraStat>());
}

ControlResult ControlService::Handle(const Request& request) {
  ControlResult result;
  // Every request, even one that cannot be read, looks after the journal
  // first, as plain ones do: a deleted journal is rewritten, one behind is
  // caught up (README).
  result.journal = service_.MaintainStore();
  ControlReplyBuilder reply;
  auto fail = [&](const std::string& code, const std::string& message) {
    reply.Error(code, message);
    result.error_code = code;
    result.summary +=
        (result.summary.empty() ? "" : ": ") + code + " (" + message + ")";
  };
  ControlRequest r;
  switch (request.end) {
    case Request::End::kNewline:
    case Request::End::kEof:
      r = ParseControlRequest(request.data);
      break;
    case Request::End::kTooLong:
      r.error = "request longer than " +
                std::to_string(kMaxExtendedRequestBytes) + " bytes";
      break;
    case Request::End::kTimedOut:
      r.error = "no complete request before the read timeout";
      break;
    case Request::End::kOverCapacity:
      // The transport closed it at its connection cap before it was
      // complete, and sends no reply: whatever it had sent so far ("release
      // ports=15008" of "15008,15009") is not carried out. Counted as a
      // refused connection, as a plain request (README).
      service_.Decide(request);
      result.summary =
          "closed at the connection cap before the request "
          "was complete: not carried out";
      result.error_code = "malformed";
      reply.Error("malformed",
                  "closed at the connection cap before the "
                  "request was complete");
      result.reply = reply.Finish();
      return result;
  }
  if (!r.ok) {
    CountVerb("malformed");
    fail(r.unsupported_version ? "unsupported-version" : "malformed", r.error);
    result.reply = reply.Finish();
    return result;
  }
  result.verb = r.verb;
  result.summary = r.verb;
  if ((std::string(",") + kVerbs + ",").find("," + r.verb + ",") !=
      std::string::npos) {
    CountVerb(r.verb);
  }
  if (r.verb == "allocate") {
    Allocate(r, request.peer, reply, result);
  } else if (r.verb == "release") {
    Release(r, request.peer, reply, result);
  } else if (r.verb == "leases") {
    Leases(r, request.peer, reply, result);
  } else if (r.verb == "who") {
    Who(r, request.peer, reply, result);
  } else if (r.verb == "status") {
    Status(reply);
  } else if (r.verb == "metrics") {
    std::string text = MetricsText();
    size_t start = 0;
    while (start < text.size()) {
      size_t newline = text.find('\n', start);
      reply.Record("metric");
      reply.RecordField("text", text.substr(start, newline - start));
      start = newline + 1;
    }
  } else if (r.verb == "version") {
    reply.Field("server", version_);
    reply.Field("protocol", kControlProtocolVersion);
    reply.Field("verbs", kVerbs);
  } else {
    result.verb.clear();
    CountVerb("unknown");
    fail("unknown-verb",
         "unknown verb \"" + r.verb + "\"; this server knows " + kVerbs);
    result.reply = reply.Finish();
    return result;
  }
  result.ok = result.error_code.empty();
  result.reply = reply.Finish();
  return result;
}

void ControlService::Allocate(const ControlRequest& r,
                              const PeerCredentials& peer,
                              ControlReplyBuilder& reply,
                              ControlResult& result) {
  auto bad = [&](const std::string& message) {
    BadArgument(message, reply, result);
  };
  std::optional<std::string> pid_text = r.Get("pid");
  std::optional<int64_t> pid = pid_text ? ParseInt(*pid_text) : std::nullopt;
  if (!pid) return bad("allocate needs pid=<pid>");
  int64_t count = 1;
  if (std::optional<std::string> c = r.Get("count")) {
    std::optional<int64_t> n = ParseInt(*c);
    if (!n || *n < 1 || *n > static_cast<int64_t>(kMaxPortsPerRequest)) {
      return bad("count must be 1 to " + std::to_string(kMaxPortsPerRequest));
    }
    count = *n;
  }
  std::string label = r.Get("label").value_or("");
  if (label.size() > kMaxLabelBytes) {
    return bad("label longer than " + std::to_string(kMaxLabelBytes) +
               " bytes");
  }
  // Shown in the log and by portserverctl: no newline or escape sequence
  // that would forge a line there.
  for (char ch : label) {
    if (IsLabelControlByte(ch)) {
      return bad("label has a control character (byte " +
                 std::to_string(static_cast<unsigned char>(ch)) + ")");
    }
  }
  Decision d =
      service_.AllocateMany(*pid, static_cast<size_t>(count), label, peer);
  result.allocated = true;
  result.summary +=
      " pid=" + std::to_string(*pid) + " count=" + std::to_string(count);
  if (!label.empty()) result.summary += " label=" + label;
  if (d.granted()) {
    reply.Field("pid", d.pid);
    reply.Field("ports", FormatPortList(d.ports));
    // The pid named could not be translated from the caller's pid namespace
    // (a server that is not root): the caller itself owns the ports, and
    // they end with it. Clients warn.
    if (d.pid_replaced) reply.Field("leased_to_caller", "1");
    result.summary += ": ports " + FormatPortList(d.ports);
    if (!d.detail.empty()) result.summary += " (" + d.detail + ")";
  } else {
    auto [code, message] =
        DenialText(d, service_.pool_view(), static_cast<size_t>(count));
    reply.Error(code, message);
    result.error_code = code;
    result.summary += ": denied, " + code + " (" + message + ")";
  }
  result.decision = std::move(d);
}

void ControlService::Release(const ControlRequest& r,
                             const PeerCredentials& peer,
                             ControlReplyBuilder& reply,
                             ControlResult& result) {
  std::optional<std::string> text = r.Get("ports");
  std::string why = "no ports=";
  std::optional<std::vector<uint16_t>> ports =
      text ? ParsePortList(*text, kMaxPortsPerRequest, &why) : std::nullopt;
  if (!ports) {
    std::string message = "release needs ports=<port>[,<port>...], 1 to " +
                          std::to_string(kMaxPortsPerRequest) +
                          " distinct ports (" + why + ")";
    reply.Error("bad-argument", message);
    result.error_code = "bad-argument";
    result.summary += ": bad-argument";
    return;
  }
  result.summary += " ports=" + *text;
  if (peer.known) {
    result.summary += " by uid " + std::to_string(peer.uid) + " (pid " +
                      std::to_string(peer.pid) + ")";
  }
  ReleaseOutcome out = service_.Release(*ports, peer);
  if (!out.ok) {
    reply.Error(out.code, out.message);
    result.error_code = out.code;
    result.summary += ": refused, " + out.code + " (" + out.message + ")";
    return;
  }
  reply.Field("released", FormatPortList(out.released));
  result.summary += ": released";
  if (out.journal_fell_behind &&
      result.journal.journal_event == JournalEvent::kNone) {
    // For the log, once: the release is not in the journal yet.
    result.journal.journal_event = JournalEvent::kFellBehind;
    result.journal.store_error = out.store_error;
  }
}

void ControlService::Leases(const ControlRequest& r,
                            const PeerCredentials& peer,
                            ControlReplyBuilder& reply, ControlResult& result) {
  auto bad = [&](const std::string& message) {
    BadArgument(message, reply, result);
  };
  LeaseQuery q;
  if (std::optional<std::string> owner = r.Get("owner")) {
    std::optional<int64_t> pid = ParseInt(*owner);
    if (!pid || *pid <= 0) return bad("owner must be a pid");
    q.owner = *pid;
  }
  q.label = r.Get("label");
  if (std::optional<std::string> after = r.Get("after")) {
    std::optional<int64_t> port = ParseInt(*after);
    if (!port || *port < 0 || *port > 65535)
      return bad("after must be 0-65535");
    q.after = static_cast<uint16_t>(*port);
  }
  if (std::optional<std::string> limit = r.Get("limit")) {
    std::optional<int64_t> n = ParseInt(*limit);
    if (!n || *n < 1 || *n > static_cast<int64_t>(kMaxLeasesPerPage)) {
      return bad("limit must be 1 to " + std::to_string(kMaxLeasesPerPage));
    }
    q.limit = static_cast<size_t>(*n);
  } else {
    q.limit = kMaxLeasesPerPage;
  }
  LeasePage page = service_.ListLeases(q, peer);
  // Stop while one more record of the longest kind (kMaxRecordBytes) and
  // the header's last fields still fit under kMaxReplyBytes.
  size_t shown = 0;
  uint16_t next = page.next_after;
  for (const LeaseView& v : page.leases) {
    if (reply.size() + kMaxRecordBytes + kMaxReplyHeaderBytes >
        kMaxReplyBytes) {
      next = page.leases[shown - 1].port;
      break;
    }
    reply.Record("lease");
    LeaseFields(v, reply);
    ++shown;
  }
  reply.Field("count", static_cast<int64_t>(shown));
  if (next != 0) reply.Field("next", next);
}

void ControlService::Who(const ControlRequest& r, const PeerCredentials& peer,
                         ControlReplyBuilder& reply, ControlResult& result) {
  std::optional<std::string> text = r.Get("ports");
  std::string why = "no ports=";
  std::optional<std::vector<uint16_t>> ports =
      text ? ParsePortList(*text, kMaxWhoPorts, &why) : std::nullopt;
  if (!ports) {
    std::string message = "who needs ports=<port>[,<port>...], 1 to " +
                          std::to_string(kMaxWhoPorts) + " distinct ports (" +
                          why + ")";
    reply.Error("bad-argument", message);
    result.error_code = "bad-argument";
    result.summary += ": bad-argument";
    return;
  }
  result.summary += " ports=" + *text;
  ControlReplyBuilder answer;
  for (uint16_t port : *ports) {
    PortReport report = service_.Describe(port, peer);
    answer.Record("port");
    answer.RecordField("state", PortReportStateName(report.state));
    if (report.state == PortReport::State::kLeased ||
        report.state == PortReport::State::kCarried) {
      LeaseFields(report.lease, answer);
    } else {
      answer.RecordField("port", port);
    }
  }
  if (answer.Finish().size() > kMaxReplyBytes) {
    // Long labels and command lines: more than a reply holds.
    std::string message = "the records of these " +
                          std::to_string(ports->size()) + " ports exceed the " +
                          std::to_string(kMaxReplyBytes / 1024) +
                          " KiB a reply holds: ask for at most " +
                          std::to_string(kWhoPortsThatAlwaysFit) + " at a time";
    reply.Error("bad-argument", message);
    result.error_code = "bad-argument";
    result.summary += ": bad-argument (reply too long)";
    return;
  }
  reply = std::move(answer);
}

void ControlService::Status(ControlReplyBuilder& reply) {
  Stats s = service_.stats();
  PoolView pool = service_.pool_view();
  ServerIdentity id = Identity();
  reply.Field("server", id.version);
  reply.Field("protocol", kControlProtocolVersion);
  reply.Field("uptime_ms", id.uptime_ms);
  reply.Field("pool", static_cast<int64_t>(pool.pool));
  reply.Field("free", static_cast<int64_t>(pool.free));
  reply.Field("leased", static_cast<int64_t>(pool.leased));
  reply.Field("busy_cooling", static_cast<int64_t>(pool.cooling));
  reply.Field("time_wait_cooling",
              static_cast<int64_t>(s.time_wait_ports_cooling));
  reply.Field("owners", static_cast<int64_t>(pool.owners));
  auto stat = [&](const char* name, uint64_t value) {
    reply.Record("stat");
    reply.RecordField("name", name);
    reply.RecordField("value", static_cast<int64_t>(value));
  };
  stat("client-request-errors", s.client_request_errors);
  stat("denied-allocations", s.denied_allocations);
  stat("num-ports-managed", s.num_ports_managed);
  stat("num-ports-checked-for-last-request",
       s.num_ports_checked_for_last_request);
  stat("total-allocations", s.total_allocations);
  stat("denied-invalid-pid", s.denied_invalid_pid);
  stat("denied-no-such-process", s.denied_no_such_process);
  stat("denied-pool-exhausted", s.denied_pool_exhausted);
  stat("denied-quota", s.denied_quota);
  stat("denied-permission", s.denied_permission);
  stat("pids-translated", s.pids_translated);
  stat("pids-replaced-by-caller", s.pids_replaced_by_caller);
  stat("refused-connections", s.refused_connections);
  stat("time-wait-grants", s.time_wait_grants);
  stat("port-probe-failures", s.port_probe_failures);
  stat("ports-released", s.ports_released);
  stat("journal-outages", s.journal_outages);
  stat("journal-missed-grants", s.journal_missed_grants);
  stat("journal-rewrites", s.journal_rewrites);
  stat("journal-errors", s.journal_errors);
  stat("journal-compactions", s.journal_compactions);
  if (extra_) {
    for (const ExtraStat& e : extra_()) stat(e.name.c_str(), e.value);
  }
}

}  // namespace portserver
