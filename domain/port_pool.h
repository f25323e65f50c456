// Parses the --portserver_static_pool syntax: comma separated inclusive
// ranges "N-P" (a single "N" means "N-N"), each within 1-65535, N <= P, no
// port named twice. Blanks (spaces, tabs) around an item or a number are
// ignored; `canonical` spells the pool without them, "N-P" or "N" per range,
// for logs and errors that quote the pool.
//
// Example:
//   PortPoolParse p = ParsePortPool("15000-24999");
//   if (!p.ok) Fail(p.error);   // e.g. "range '5-3' ends before it starts"
//   p.ports                      // 15000, 15001, ..., 24999 in given order
//   ParsePortPool(" 10 - 20,30").canonical   // "10-20,30"
//
// Thread-safe (pure function).
#ifndef PORTSERVER_DOMAIN_PORT_POOL_H_
#define PORTSERVER_DOMAIN_PORT_POOL_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace portserver {

struct PortPoolParse {
  bool ok = false;
  std::vector<uint16_t> ports;  // In the order the ranges name them.
  std::string error;            // One line naming the bad item, when !ok.
  std::string canonical;        // The ranges without blanks, when ok.
};

PortPoolParse ParsePortPool(std::string_view spec);

}  // namespace portserver

#endif  // PORTSERVER_DOMAIN_PORT_POOL_H_
