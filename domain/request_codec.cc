#include "domain/request_codec.h"

#include <limits>

namespace portserver {
namespace {

ParsedRequest Malformed(std::string error) {
  ParsedRequest r;
  r.error = std::move(error);
  return r;
}

}  // namespace

ParsedRequest ParseRequest(std::string_view data) {
  if (data.size() > kMaxRequestBytes) {
    return Malformed("request longer than " + std::to_string(kMaxRequestBytes) +
                     " bytes");
  }
  std::string_view body = data;
  if (!body.empty() && body.back() == '\n') {
    body.remove_suffix(1);
    if (!body.empty() && body.back() == '\r') body.remove_suffix(1);
  }
  if (body.empty()) return Malformed("empty request");
  bool negative = false;
  if (body.front() == '-') {
    negative = true;
    body.remove_prefix(1);
  }
  if (body.empty()) return Malformed("no digits after '-'");
  if (body.size() > 19) return Malformed("more than 19 digits");
  // Accumulate negatively: the range of int64 is larger on that side.
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  int64_t value = 0;
  for (char c : body) {
    if (c < '0' || c > '9') {
      return Malformed("not a decimal pid (byte " +
                       std::to_string(static_cast<unsigned char>(c)) + ")");
    }
    int digit = c - '0';
    if (value < (kMin + digit) / 10) return Malformed("pid out of range");
    value = value * 10 - digit;
  }
  if (!negative) {
    if (value == kMin) return Malformed("pid out of range");
    value = -value;
  }
  ParsedRequest r;
  r.ok = true;
  r.pid = value;
  return r;
}

bool IsExtendedRequest(std::string_view data) {
  std::string_view prefix = kExtendedRequestPrefix;
  return data.substr(0, prefix.size()) == prefix;
}

size_t RequestByteLimit(std::string_view first_bytes) {
  return IsExtendedRequest(first_bytes) ? kMaxExtendedRequestBytes
                                        : kMaxRequestBytes;
}

std::string FormatReply(uint16_t port) { return std::to_string(port) + "\n"; }

}  // namespace portserver
