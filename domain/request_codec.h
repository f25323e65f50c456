// The wire format shared with python portpicker: the client sends "<pid>\n",
// the server answers "<port>\n" or closes without a reply (a denial).
//
// Example:
//   ParsedRequest r = ParseRequest("1234\n");   // r.ok, r.pid == 1234
//   std::string reply = FormatReply(15000);      // "15000\n"
//
// Thread-safe (pure functions).
#ifndef PORTSERVER_DOMAIN_REQUEST_CODEC_H_
#define PORTSERVER_DOMAIN_REQUEST_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace portserver {

// The longest valid request, newline included. Transports stop reading here.
inline constexpr size_t kMaxRequestBytes = 20;

// The longest extended request (docs/protocol.md; domain/control_protocol.h),
// newline included.
inline constexpr size_t kMaxExtendedRequestBytes = 4096;

// True if `data` starts an extended request: its first byte is an ASCII
// letter, which the python client never sends (it sends "<pid>\n").
bool IsExtendedRequest(std::string_view data);

// The framing rule for every transport: how many bytes a request whose first
// bytes are `first_bytes` may have, newline included. kMaxRequestBytes while
// nothing or a plain request has arrived, kMaxExtendedRequestBytes for an
// extended one. A transport reads at most kMaxRequestBytes first, then asks
// again with what it has.
size_t RequestByteLimit(std::string_view first_bytes);

struct ParsedRequest {
  bool ok = false;
  int64_t pid = 0;    // Valid when ok. May be <= 0: that is for policy to deny.
  std::string error;  // Why the bytes are malformed, when !ok.
};

// Accepts an optional '-', 1 to 19 decimal digits and an optional "\n" or
// "\r\n", nothing else, at most kMaxRequestBytes bytes, value within int64.
ParsedRequest ParseRequest(std::string_view data);

// "<port>\n".
std::string FormatReply(uint16_t port);

}  // namespace portserver

#endif  // PORTSERVER_DOMAIN_REQUEST_CODEC_H_
