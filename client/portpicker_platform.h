// Internal to //client: what the portpicker library needs from the OS,
// implemented once per platform (portpicker_posix.cc: AF_UNIX sockets and
// BSD sockets; portpicker_windows.cc: named pipes and Winsock), picked by
// select() in client/BUILD.bazel.
//
// Example:
//   absl::StatusOr<std::string> reply =
//       internal::ExchangeWithServer("@unittest-portserver", "1234\n",
//                                    absl::Seconds(10));
//   int port = internal::BindBothFamilies(0, internal::Protocol::kTcp);
//
// Thread-safe (no state).
#ifndef PORTSERVER_CLIENT_PORTPICKER_PLATFORM_H_
#define PORTSERVER_CLIENT_PORTPICKER_PLATFORM_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace portpicker {
namespace internal {

enum class Protocol { kTcp, kUdp };

// Sends `request` to the port server at `address` and returns what it
// answered until it closed (or, with `until_newline`, up to the first
// newline, for a server that does not close): empty for a denial, or for a
// server that closed (or reset) without answering. On POSIX `address` is an
// AF_UNIX path or "@name" (abstract); on Windows a named pipe, "@name" for
// "\\.\pipe\name" or the full
// "\\.\pipe\name". The whole exchange is bounded by `timeout`.
// Errors: InvalidArgument (bad address), Unavailable (no server, I/O
// failure), DeadlineExceeded (no answer in time), Internal (a reply of more
// than `max_reply_bytes`). The defaults fit a plain "<port>\n" reply; the
// extended protocol (control_client.cc) reads up to its reply limit until
// the server closes.
absl::StatusOr<std::string> ExchangeWithServer(const std::string& address,
                                               const std::string& request,
                                               absl::Duration timeout,
                                               size_t max_reply_bytes = 64,
                                               bool until_newline = true);

// python's bind(): binds `port` (0: the system chooses) for `protocol` on
// IPv6, then IPv4, listening for TCP, and closes. Returns the port bound,
// or 0 if a bind failed or no family had sockets.
int BindBothFamilies(int port, Protocol protocol);

// This process's id.
int64_t CurrentPid();

}  // namespace internal
}  // namespace portpicker

#endif  // PORTSERVER_CLIENT_PORTPICKER_PLATFORM_H_
