// control_client: one exchange of the extended protocol (docs/protocol.md)
// with a port server, for the C++ client and portserverctl; plus the
// multi-port allocation that PickUnusedPorts and `portpicker -n` use.
//
// Example:
//   absl::StatusOr<portserver::ParsedReply> reply =
//   portpicker::ControlExchange(
//       "@unittest-portserver", portserver::FormatControlRequest("status",
//       {}));
//   if (!reply.ok()) return reply.status();   // no server, or a python one
//   if (reply->is_error()) Print(*reply->header.Get("message"));
//
// Thread-safe (no shared state).
#ifndef PORTSERVER_CLIENT_CONTROL_CLIENT_H_
#define PORTSERVER_CLIENT_CONTROL_CLIENT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "domain/control_protocol.h"

namespace portpicker {

// Sends `request` (one line of the extended protocol) to the server at
// `address` ("@name" or a path) and reads the whole reply, all within
// `timeout`. Returns the parsed reply (whose header may say "error"), or
//   InvalidArgument    bad address;
//   Unavailable        no server accepts connections at `address`;
//   Unimplemented      the server closed without a reply: it does not speak
//                      the extended protocol (python's /usr/bin/portserver,
//                      or an older one of ours);
//   DeadlineExceeded   no complete reply within `timeout`;
//   Internal           the reply is malformed, cut or over kMaxReplyBytes.
absl::StatusOr<portserver::ParsedReply> ControlExchange(
    const std::string& address, const std::string& request,
    absl::Duration timeout = absl::Seconds(10));

// The label a client sends with its leases: Bazel's TEST_TARGET when set
// (e.g. "//pkg:my_test"), else "".
std::string DefaultLabel();

// `label` as the server takes it (docs/protocol.md): cut to kMaxLabelBytes
// (128) bytes, never inside a UTF-8 character, each control character
// (bytes 0-31 and 127, which the server refuses) replaced by '?'. A label only
// describes a lease: a stray tab in TEST_TARGET must not cost the reservation.
// GetPortsFromPortServer sends this.
std::string SendableLabel(std::string_view label);

// Asks the server at `address` for `count` ports (1 to 1024) for `pid`, all
// or none, in one round trip (`allocate`). Returns the ports, or the errors
// of ControlExchange, or the server's refusal with its message, e.g.
// "pool exhausted (10000 of 10000 leased)" (below). If `owner` is not null,
// it receives the pid the server leased them to (its own namespace's), 0 if
// the reply does not say; `leased_to_caller`, if not null, whether the
// server leased them to the caller instead of `pid` (a pid of another pid
// namespace it could not translate: they end with the caller). A refusal's
// status follows its code (RefusalStatus):
//   ResourceExhausted  pool-exhausted, quota-exceeded;
//   PermissionDenied   permission-denied ("denied: pid 16498 runs as uid 0,
//                      the caller as uid 65534");
//   NotFound           no-such-process, not-leased (a release);
//   InvalidArgument    invalid-pid, pid-is-init, bad-argument, malformed;
//   Unknown            another refusal.
absl::StatusOr<std::vector<int>> GetPortsFromPortServer(
    const std::string& address, int64_t pid, int count,
    const std::string& label, absl::Duration timeout = absl::Seconds(10),
    int64_t* owner = nullptr, bool* leased_to_caller = nullptr);

// The status for an error reply, by its code (as above), with the server's
// message (the code if the reply has none).
absl::Status RefusalStatus(const portserver::ParsedReply& reply);

}  // namespace portpicker

#endif  // PORTSERVER_CLIENT_CONTROL_CLIENT_H_
