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
// newline included. Room for a release of kMaxPortsPerRequest (1024) 5-digit
// ports: "portserver/1 release ports=" + 1024 * 6 bytes is 6171 bytes.
inline constexpr size_t kMaxExtendedRequestBytes = 8192;

// Every extended request starts with this (then the protocol version). The
// python client sends only "<pid>\n"; anything else that is not a pid
// (e.g. "abc\n") stays a malformed plain request, closed without a reply.
inline constexpr char kExtendedRequestPrefix[] = "portserver/";

// True if `data` starts an extended request (kExtendedRequestPrefix).
bool IsExtendedRequest(std::string_view data);

// The framing rule for every transport: how many bytes a request whose first
// bytes are `first_bytes` may have, newline included. kMaxRequestBytes until
// the first bytes are kExtendedRequestPrefix (11 bytes, so a transport knows
// before it reaches kMaxRequestBytes), then kMaxExtendedRequestBytes. A
// transport reads at most kMaxRequestBytes first, then asks again with what
// it has.
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
