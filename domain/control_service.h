// ControlService: answers the extended protocol's requests (docs/protocol.md)
// on top of a PortService: allocate several ports, release, leases, who,
// status, metrics, version. Every extended request gets a reply, an error
// reply if need be: never a silent close.
//
// Example:
//   ControlService control(service, "1.2.0", start_unix_ms);
//   if (IsExtendedRequest(request.data)) {
//     ControlResult r = control.Handle(request);
//     Send(r.reply);
//   }
//
// Thread-safe. `service` must outlive it.
#ifndef PORTSERVER_DOMAIN_CONTROL_SERVICE_H_
#define PORTSERVER_DOMAIN_CONTROL_SERVICE_H_

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "domain/control_protocol.h"
#include "domain/metrics_text.h"
#include "domain/port_service.h"
#include "domain/transport.h"

namespace portserver {

struct ControlResult {
  std::string reply;       // Always a whole reply (ends with "end\n").
  std::string verb;        // As requested ("" if the request was unreadable).
  bool ok = false;         // The header says "ok".
  std::string error_code;  // When !ok.
  std::string summary;     // One line for the log: what was asked and done.
  // For allocate: the decision (granted pid to watch, holders to log).
  bool allocated = false;
  Decision decision;
  // The journal's news from before the request was served, for the log
  // (PortService::MaintainStore: rewritten, fell behind, caught up).
  Decision journal;
};

class ControlService {
 public:
  // `version`: the server's release (app/version.h). `now_unix_ms` tells
  // the time (ms since the Unix epoch); default the system clock.
  ControlService(PortService& service, std::string version,
                 std::function<int64_t()> now_unix_ms = nullptr);
  ControlService(const ControlService&) = delete;
  ControlService& operator=(const ControlService&) = delete;

  // Answers one extended request (IsExtendedRequest(request.data)), whatever
  // its end: a request cut at the size limit or the timeout gets an error.
  ControlResult Handle(const Request& request);

  // The metrics text, as the `metrics` verb returns it.
  std::string MetricsText();

  // Statistics the embedding program keeps, added to `status` and
  // `metrics` (called on each of those requests, from the serving thread).
  // Call before serving.
  void SetExtraStats(std::function<std::vector<ExtraStat>()> extra);

  ControlCounters counters() const;

 private:
  void Allocate(const ControlRequest& r, const PeerCredentials& peer,
                ControlReplyBuilder& reply, ControlResult& result);
  void Release(const ControlRequest& r, const PeerCredentials& peer,
               ControlReplyBuilder& reply, ControlResult& result);
  void Leases(const ControlRequest& r, const PeerCredentials& peer,
              ControlReplyBuilder& reply, ControlResult& result);
  void Who(const ControlRequest& r, const PeerCredentials& peer,
           ControlReplyBuilder& reply, ControlResult& result);
  void Status(ControlReplyBuilder& reply);
  ServerIdentity Identity() const;
  void CountVerb(const std::string& verb);

  PortService& service_;
  const std::string version_;
  const std::function<int64_t()> now_;
  const int64_t start_unix_ms_;
  std::function<std::vector<ExtraStat>()> extra_;  // May be empty.
  mutable std::mutex mu_;
  ControlCounters counters_;  // Guarded by mu_.
};

}  // namespace portserver

#endif  // PORTSERVER_DOMAIN_CONTROL_SERVICE_H_
