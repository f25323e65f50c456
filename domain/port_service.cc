#include "domain/port_service.h"

#include "domain/request_codec.h"

namespace portserver {

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kGranted:
      return "granted";
    case Outcome::kMalformed:
      return "malformed-request";
    case Outcome::kInvalidPid:
      return "invalid-pid";
    case Outcome::kInit:
      return "pid-is-init";
    case Outcome::kNoSuchProcess:
      return "no-such-process";
    case Outcome::kProbeFailed:
      return "process-probe-failed";
    case Outcome::kPoolExhausted:
      return "pool-exhausted";
  }
  return "unknown";
}

PortService::PortService(const std::vector<uint16_t>& pool,
                         ProcessProbe& process_probe, PortProbe& port_probe,
                         AllocationPolicyOptions options)
    : process_probe_(process_probe),
      policy_(pool, ledger_, process_probe, port_probe, options) {
  stats_.num_ports_managed = pool.size();
}

Decision PortService::Allocate(int64_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  return AllocateLocked(pid);
}

Decision PortService::AllocateLocked(int64_t pid) {
  Decision d;
  d.pid = pid;
  if (pid <= 0) {
    d.outcome = Outcome::kInvalidPid;
  } else if (pid == 1) {
    d.outcome = Outcome::kInit;
  } else {
    ProcessProbe::Result who = process_probe_.Probe(pid);
    if (who.state == ProcessProbe::State::kGone) {
      d.outcome = Outcome::kNoSuchProcess;
    } else if (who.state == ProcessProbe::State::kError) {
      d.outcome = Outcome::kProbeFailed;
    } else {
      d.allocation = policy_.Allocate(Owner{pid, who.incarnation});
      stats_.num_ports_checked_for_last_request = d.allocation.ports_checked;
      if (d.allocation.ok) {
        d.outcome = Outcome::kGranted;
        d.port = d.allocation.port;
        d.reply = FormatReply(d.port);
      } else {
        d.outcome = Outcome::kPoolExhausted;
      }
    }
  }
  if (d.granted()) {
    ++stats_.total_allocations;
  } else {
    ++stats_.denied_allocations;
  }
  return d;
}

Decision PortService::Decide(const Request& request) {
  std::lock_guard<std::mutex> lock(mu_);
  ParsedRequest parsed;
  switch (request.end) {
    case Request::End::kNewline:
    case Request::End::kEof:
      parsed = ParseRequest(request.data);
      break;
    case Request::End::kTooLong:
      parsed.error = "request longer than " +
                     std::to_string(kMaxRequestBytes) + " bytes";
      break;
    case Request::End::kTimedOut:
      parsed.error = "no complete request before the read timeout";
      break;
  }
  if (!parsed.ok) {
    ++stats_.client_request_errors;
    Decision d;
    d.outcome = Outcome::kMalformed;
    d.detail = std::move(parsed.error);
    return d;
  }
  return AllocateLocked(parsed.pid);
}

std::string PortService::HandleRequest(const Request& request) {
  return Decide(request).reply;
}

size_t PortService::OwnerExited(int64_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  return policy_.OwnerExited(pid);
}

std::vector<uint16_t> PortService::PortsOf(int64_t pid) const {
  std::lock_guard<std::mutex> lock(mu_);
  return ledger_.PortsOf(pid);
}

Stats PortService::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.leased_ports = ledger_.leased_ports();
  s.owners = ledger_.owners();
  return s;
}

}  // namespace portserver
