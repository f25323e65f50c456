// Fuzz target for ParseRequest, the bytes a client sends.
//
// Properties:
//   - ParseRequest never crashes (and ASan/UBSan see nothing wrong).
//   - An input longer than kMaxRequestBytes is never ok.
//   - If ok, the pid printed in decimal round-trips:
//     ParseRequest(std::to_string(pid) + "\n").pid == pid. Pids of -10^18
//     and below take 21 bytes with the newline, more than kMaxRequestBytes,
//     so for them the form without the newline must round-trip instead.
//   - ok exactly when the header's grammar says so: an optional '-', 1 to 19
//     decimal digits, an optional "\n" or "\r\n", the value within int64
//     (checked against std::from_chars); a rejection has a one-line error.
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "domain/request_codec.h"
#include "fuzz/fuzz_check.h"

namespace portserver {
namespace {

using fuzz::IsOneLine;
using fuzz::Printable;

// The header's grammar, independently: whether `data` is a valid request and
// its pid if so.
bool ReferenceParse(std::string_view data, int64_t& pid) {
  if (data.size() > kMaxRequestBytes) return false;
  std::string_view body = data;
  if (body.size() >= 2 && body.substr(body.size() - 2) == "\r\n") {
    body.remove_suffix(2);
  } else if (!body.empty() && body.back() == '\n') {
    body.remove_suffix(1);
  }
  std::string_view digits = body;
  if (!digits.empty() && digits.front() == '-') digits.remove_prefix(1);
  if (digits.empty() || digits.size() > 19) return false;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
  }
  const char* end = body.data() + body.size();
  std::from_chars_result res = std::from_chars(body.data(), end, pid);
  return res.ec == std::errc() && res.ptr == end;
}

void Check(std::string_view data) {
  ParsedRequest r = ParseRequest(data);
  std::string in = "input '" + Printable(data) + "'";

  if (data.size() > kMaxRequestBytes) {
    FUZZ_CHECK(!r.ok, in + " is longer than kMaxRequestBytes but ok");
  }
  if (r.ok) {
    std::string request = std::to_string(r.pid) + "\n";
    if (request.size() > kMaxRequestBytes) request.pop_back();
    ParsedRequest again = ParseRequest(request);
    FUZZ_CHECK(again.ok && again.pid == r.pid,
               in + ": pid " + std::to_string(r.pid) +
                   " does not round-trip through '" + Printable(request) + "'");
  } else {
    FUZZ_CHECK(IsOneLine(r.error),
               in + ": error is not one line: '" + Printable(r.error) + "'");
  }

  int64_t expected = 0;
  bool expected_ok = ReferenceParse(data, expected);
  FUZZ_CHECK(r.ok == expected_ok,
             in + (r.ok ? " is ok but the grammar rejects it"
                        : " is rejected (" + r.error +
                              ") but the grammar accepts it"));
  if (r.ok) {
    FUZZ_CHECK(r.pid == expected, in + ": pid " + std::to_string(r.pid) +
                                      ", expected " + std::to_string(expected));
  }
}

}  // namespace
}  // namespace portserver

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  portserver::Check(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
