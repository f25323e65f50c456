// The kernel's own choice of local ports, and how to keep it off the pool.
//
// Linux picks a port for connect() and bind(port 0) from the ephemeral port
// range, net.ipv4.ip_local_port_range, skipping the ports listed in
// net.ipv4.ip_local_reserved_ports (both sysctls are per network namespace
// and apply to IPv4 and IPv6 alike; Documentation/networking/ip-sysctl.rst).
// A pool port inside the range and not reserved can be taken by any
// outgoing connection while it is leased. This file reads both sysctls,
// names the overlap, and (LinuxReservedPorts) adds the pool to the reserved
// ports for the life of the server.
//
// Example:
//   absl::StatusOr<PortRange> range = ReadEphemeralRange();
//   absl::StatusOr<PortSet> reserved = ReadReservedPorts();
//   std::string overlap = FormatPorts(UnreservedEphemeral(pool, *range,
//   *reserved)); auto held = LinuxReservedPorts::Reserve(pool);   // needs
//   CAP_NET_ADMIN
//   ...                                              // serve
//   held->reset();                                   // restores the sysctl
//
// The Windows counterpart is the excluded port range (netsh int ipv4 add
// excludedportrange). Thread-compatible; the files are process-wide state.
#ifndef PORTSERVER_ADAPTERS_LINUX_LINUX_EPHEMERAL_PORTS_H_
#define PORTSERVER_ADAPTERS_LINUX_LINUX_EPHEMERAL_PORTS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace portserver {

constexpr char kEphemeralRangePath[] = "/proc/sys/net/ipv4/ip_local_port_range";
constexpr char kReservedPortsPath[] =
    "/proc/sys/net/ipv4/ip_local_reserved_ports";

// Inclusive range of ports.
struct PortRange {
  uint16_t first = 0;
  uint16_t last = 0;
};

// A set of ports 0-65535, by membership: ports[p] is true if p is in it.
using PortSet = std::vector<bool>;

// Reads "first<whitespace>last" from `path`. Errors name the file.
absl::StatusOr<PortRange> ReadEphemeralRange(
    const std::string& path = kEphemeralRangePath);

// Parses the kernel's list syntax: comma separated ports or inclusive ranges
// "N-P", 0-65535; empty (or a lone newline) is the empty set.
// InvalidArgument on anything else.
absl::StatusOr<PortSet> ParsePortList(absl::string_view text);

// Reads and parses `path`. Errors name the file.
absl::StatusOr<PortSet> ReadReservedPorts(
    const std::string& path = kReservedPortsPath);

// The kernel's list syntax for `ports` (ascending, ranges merged), e.g.
// "8080,15000-24999"; "" for the empty set.
std::string FormatPorts(const PortSet& ports);

// The ports of `pool` inside `range` and not in `reserved`: those the kernel
// may hand to an outgoing connection.
PortSet UnreservedEphemeral(const std::vector<uint16_t>& pool,
                            const PortRange& range, const PortSet& reserved);

// Number of ports in `ports`.
size_t CountPorts(const PortSet& ports);

// Adds a pool to net.ipv4.ip_local_reserved_ports (merged with what is
// there) and, when destroyed, takes out again the ports it added (those
// that were not reserved before; whatever else was changed meanwhile stays).
// A kill -9 leaves them reserved: run the server again with the flag and
// stop it cleanly, or write the file by hand.
class LinuxReservedPorts final {
 public:
  // Writes the merged list to `path` and reads it back. PermissionDenied
  // (with advice: root or CAP_NET_ADMIN in the network namespace) when the
  // file cannot be opened for writing; other errors name the file.
  static absl::StatusOr<std::unique_ptr<LinuxReservedPorts>> Reserve(
      const std::vector<uint16_t>& pool,
      const std::string& path = kReservedPortsPath);
  LinuxReservedPorts(const LinuxReservedPorts&) = delete;
  LinuxReservedPorts& operator=(const LinuxReservedPorts&) = delete;
  // Restores; an error is ignored (the process is ending) but for Restore().
  ~LinuxReservedPorts();

  // Takes out the ports this object added. Idempotent. Errors name the file.
  absl::Status Restore();

  // The ports this object added (not reserved before).
  const PortSet& added() const { return added_; }

 private:
  LinuxReservedPorts(std::string path, PortSet added)
      : path_(std::move(path)), added_(std::move(added)) {}

  const std::string path_;
  PortSet added_;
  bool restored_ = false;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_LINUX_LINUX_EPHEMERAL_PORTS_H_
