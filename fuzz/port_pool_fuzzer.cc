// Fuzz target for ParsePortPool, the --portserver_static_pool syntax.
//
// Properties:
//   - ParsePortPool never crashes (and ASan/UBSan see nothing wrong).
//   - If ok: at least one port, every port within 1-65535, no port twice,
//     and no error; `canonical` has no blank and parses to the same ports
//     in the same order (it is what the logs quote as the pool).
//   - If not ok: the error is one non-empty line (it goes into the one-line
//     "portserver: error: ..." message).
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "domain/port_pool.h"
#include "fuzz/fuzz_check.h"

namespace portserver {
namespace {

using fuzz::IsOneLine;
using fuzz::Printable;

void Check(std::string_view spec) {
  PortPoolParse p = ParsePortPool(spec);
  std::string in = "pool '" + Printable(spec) + "'";
  if (!p.ok) {
    FUZZ_CHECK(IsOneLine(p.error),
               in + ": error is not one line: '" + Printable(p.error) + "'");
    return;
  }
  FUZZ_CHECK(p.error.empty(), in + ": ok with an error: " + Printable(p.error));
  FUZZ_CHECK(!p.ports.empty(), in + ": ok with no ports");
  auto seen = std::make_unique<std::bitset<65536>>();
  for (uint16_t port : p.ports) {
    FUZZ_CHECK(port >= 1, in + ": port 0 in the pool");
    FUZZ_CHECK(!seen->test(port),
               in + ": port " + std::to_string(port) + " twice in the pool");
    seen->set(port);
  }
  FUZZ_CHECK(p.canonical.find_first_of(" \t") == std::string::npos,
             in + ": canonical '" + Printable(p.canonical) + "' has a blank");
  PortPoolParse again = ParsePortPool(p.canonical);
  FUZZ_CHECK(
      again.ok && again.ports == p.ports && again.canonical == p.canonical,
      in + ": canonical '" + Printable(p.canonical) +
          "' does not parse to the same pool");
}

}  // namespace
}  // namespace portserver

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  portserver::Check(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
