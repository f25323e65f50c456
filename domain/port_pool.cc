#include "domain/port_pool.h"

#include <bitset>
#include <memory>
#include <optional>

namespace portserver {
namespace {

constexpr uint32_t kMaxPort = 65535;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// Plain decimal, no sign; nullopt if not a number or above 65535 by far.
std::optional<uint32_t> ParseNumber(std::string_view s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  uint32_t value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  return value;
}

PortPoolParse Fail(std::string error) {
  PortPoolParse p;
  p.error = std::move(error);
  return p;
}

// The item between quotes, with control and non-ASCII bytes as \xNN, so
// that the error stays one printable line whatever the flag held.
std::string Quote(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "'";
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += {'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
    }
  }
  return out + "'";
}

}  // namespace

PortPoolParse ParsePortPool(std::string_view spec) {
  if (Trim(spec).empty()) return Fail("empty port pool");
  auto seen = std::make_unique<std::bitset<kMaxPort + 1>>();
  PortPoolParse result;
  while (true) {
    size_t comma = spec.find(',');
    std::string_view item = Trim(spec.substr(0, comma));
    if (item.empty()) return Fail("empty range in port pool (stray comma?)");
    size_t dash = item.find('-');
    std::string_view first_text = Trim(item.substr(0, dash));
    std::string_view last_text = dash == std::string_view::npos
                                     ? first_text
                                     : Trim(item.substr(dash + 1));
    std::optional<uint32_t> first = ParseNumber(first_text);
    std::optional<uint32_t> last = ParseNumber(last_text);
    if (!first || !last) {
      return Fail("range " + Quote(item) +
                  " is not N-P with decimal port numbers");
    }
    if (*first < 1 || *last > kMaxPort || *first > kMaxPort) {
      return Fail("range " + Quote(item) + " is outside 1-65535");
    }
    if (*first > *last) {
      return Fail("range " + Quote(item) + " ends before it starts");
    }
    if (!result.canonical.empty()) result.canonical += ',';
    result.canonical += std::to_string(*first);
    if (dash != std::string_view::npos) {
      result.canonical += '-';
      result.canonical += std::to_string(*last);
    }
    for (uint32_t port = *first; port <= *last; ++port) {
      if (seen->test(port)) {
        return Fail("range " + Quote(item) +
                    " overlaps an earlier range at port " +
                    std::to_string(port));
      }
      seen->set(port);
      result.ports.push_back(static_cast<uint16_t>(port));
    }
    if (comma == std::string_view::npos) break;
    spec.remove_prefix(comma + 1);
  }
  result.ok = true;
  return result;
}

}  // namespace portserver
