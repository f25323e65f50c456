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
