// The server's statistics in Prometheus' text exposition format (version
// 0.0.4: https://prometheus.io/docs/instrumenting/exposition_formats/), for
// the `metrics` verb and the node_exporter textfile collector. Every name
// starts with "portserver_"; counters end in "_total"; README.md lists them.
//
// Example:
//   std::string text = PrometheusText(service.stats(), service.pool_view(),
//                                     {"1.2.0", uptime_ms}, control_counters);
//
// Thread-safe (a pure function).
#ifndef PORTSERVER_DOMAIN_METRICS_TEXT_H_
#define PORTSERVER_DOMAIN_METRICS_TEXT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "domain/owner_records.h"
#include "domain/port_service.h"

namespace portserver {

struct ServerIdentity {
  std::string version;    // The server's release, e.g. "1.2.0".
  int64_t uptime_ms = 0;  // Since it started serving.
};

// Extended requests by verb ("allocate", ...; "malformed" for requests that
// could not be read).
using ControlCounters = std::map<std::string, uint64_t>;

// A statistic the embedding program keeps (e.g. the daemon's
// "unwatched-owners"): `name` as SIGUSR1 logs it, lower-case with '-'.
struct ExtraStat {
  std::string name;
  uint64_t value = 0;
  bool counter = false;  // Else a gauge.
  std::string help;
};

// `extra` become portserver_<name with '_'>[_total] families.
std::string PrometheusText(const Stats& stats, const PoolView& pool,
                           const ServerIdentity& identity,
                           const ControlCounters& control,
                           const std::vector<ExtraStat>& extra = {});

}  // namespace portserver

#endif  // PORTSERVER_DOMAIN_METRICS_TEXT_H_
