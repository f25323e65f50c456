#include "domain/metrics_text.h"

#include <cstdio>

namespace portserver {
namespace {

class Writer {
 public:
  // Starts a family: "# HELP" and "# TYPE" lines.
  void Family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void Sample(const char* name, uint64_t value,
              const std::string& labels = "") {
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += ' ';
    out_ += std::to_string(value);
    out_ += '\n';
  }
  void Sample(const char* name, double value) {
    char buffer[64];
    std::snprintf(buffer, sizeof(buffer), "%.3f", value);
    out_ += name;
    out_ += ' ';
    out_ += buffer;
    out_ += '\n';
  }
  void Counter(const char* name, const char* help, uint64_t value) {
    Family(name, "counter", help);
    Sample(name, value);
  }
  void Gauge(const char* name, const char* help, uint64_t value) {
    Family(name, "gauge", help);
    Sample(name, value);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// A label value, escaped as the exposition format asks (\\, \", \n).
std::string LabelValue(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string PrometheusText(const Stats& s, const PoolView& pool,
                           const ServerIdentity& identity,
                           const ControlCounters& control,
                           const std::vector<ExtraStat>& extra) {
  Writer w;
  w.Family("portserver_build_info", "gauge",
           "Always 1; the server's version is in the label.");
  w.Sample("portserver_build_info", 1,
           "version=\"" + LabelValue(identity.version) + "\"");
  w.Family("portserver_uptime_seconds", "gauge",
           "Seconds since the server started.");
  w.Sample("portserver_uptime_seconds", identity.uptime_ms / 1000.0);

  w.Gauge("portserver_pool_ports", "Ports in the pool.", pool.pool);
  w.Gauge("portserver_leased_ports", "Ports leased to live owners.",
          pool.leased);
  w.Gauge("portserver_free_ports",
          "Ports waiting in the queue to be handed out: neither leased nor "
          "set aside (busy, or in TIME_WAIT).",
          pool.free);
  w.Gauge("portserver_busy_ports_cooling",
          "Ports found in use outside the server, waiting to be probed "
          "again.",
          pool.cooling);
  w.Gauge("portserver_time_wait_ports_cooling",
          "Ports only a bind with SO_REUSEADDR takes (TIME_WAIT), waiting to "
          "be probed again.",
          s.time_wait_ports_cooling);
  w.Gauge("portserver_owners", "Processes holding at least one port.",
          pool.owners);
  w.Gauge("portserver_ports_checked_for_last_request",
          "Ports probed for the last request.",
          s.num_ports_checked_for_last_request);

  w.Counter("portserver_allocations_total",
            "Requests granted (one or several ports each).",
            s.total_allocations);
  w.Family("portserver_denied_allocations_total", "counter",
           "Requests denied, by reason.");
  w.Sample("portserver_denied_allocations_total", s.denied_invalid_pid,
           "reason=\"invalid-pid\"");
  w.Sample("portserver_denied_allocations_total", s.denied_no_such_process,
           "reason=\"no-such-process\"");
  w.Sample("portserver_denied_allocations_total", s.denied_pool_exhausted,
           "reason=\"pool-exhausted\"");
  w.Sample("portserver_denied_allocations_total", s.denied_quota,
           "reason=\"quota\"");
  w.Sample("portserver_denied_allocations_total", s.denied_permission,
           "reason=\"permission\"");
  w.Counter("portserver_client_request_errors_total",
            "Plain requests that could not be read.", s.client_request_errors);
  w.Counter("portserver_refused_connections_total",
            "Connections closed unread at the connection cap or for want of a "
            "descriptor.",
            s.refused_connections);
  w.Counter("portserver_pids_translated_total",
            "Pids named in another pid namespace and translated.",
            s.pids_translated);
  w.Counter("portserver_pids_replaced_by_caller_total",
            "Pids named in another pid namespace, leased to the caller.",
            s.pids_replaced_by_caller);
  w.Counter("portserver_ports_released_total",
            "Ports given back early by their owner's user or root.",
            s.ports_released);
  w.Counter("portserver_time_wait_grants_total",
            "Ports granted in TIME_WAIT, nothing better being free.",
            s.time_wait_grants);
  w.Counter("portserver_port_probe_failures_total",
            "Denials because the port probe could not tell.",
            s.port_probe_failures);
  w.Counter("portserver_journal_errors_total",
            "Failed writes of the lease journal.", s.journal_errors);
  w.Counter("portserver_journal_outages_total",
            "Episodes of failed journal writes.", s.journal_outages);
  w.Counter("portserver_journal_missed_grants_total",
            "Grants not appended to the journal during an outage.",
            s.journal_missed_grants);
  w.Counter("portserver_journal_rewrites_total",
            "Journals found deleted and written again.", s.journal_rewrites);
  w.Counter("portserver_journal_compactions_total",
            "Rewrites of the lease journal.", s.journal_compactions);
  w.Family("portserver_control_requests_total", "counter",
           "Extended-protocol requests, by verb.");
  for (const auto& [verb, count] : control) {
    w.Sample("portserver_control_requests_total", count,
             "verb=\"" + LabelValue(verb) + "\"");
  }
  for (const ExtraStat& e : extra) {
    std::string name = "portserver_" + e.name;
    for (char& c : name) {
      if (c == '-') c = '_';
    }
    if (e.counter) name += "_total";
    if (e.counter) {
      w.Counter(name.c_str(), e.help.c_str(), e.value);
    } else {
      w.Gauge(name.c_str(), e.help.c_str(), e.value);
    }
  }
  return w.Take();
}

}  // namespace portserver
