// The command line of the portserver daemon: the flags of the reference
// portserver 1.6.0, read through gflags, plus our own (journal, quota,
// connection cap, read timeout, kernel reservation of the pool).
//
// Example:
//   absl::StatusOr<CommandLine> cl = ParseCommandLine(argc, argv);
//   if (!cl.ok()) { Die(cl.status().message()); }        // exit 2
//   if (cl->help) { std::cout << UsageText(); }           // exit 0
//   if (cl->version) { std::cout << VersionText(); }      // exit 0
//
// Not thread-safe (gflags' registry is process-wide); call once from main.
#ifndef PORTSERVER_APP_OPTIONS_H_
#define PORTSERVER_APP_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace portserver {

struct Options {
  std::string pool_spec;       // Without blanks, e.g. "15000-24999".
  std::vector<uint16_t> pool;  // Parsed, in round-robin order.
  std::string address;         // "@name" (abstract) or a path.
  // More addresses served alike (--portserver_extra_addresses), in order.
  std::vector<std::string> extra_addresses;
  std::string state_file;        // "" = per-user default; "none" = no journal.
  size_t max_ports_per_pid = 0;  // 0 = no limit (the default).
  size_t max_connections = 1024;
  int read_timeout_ms = 5000;
  bool lock_ports = false;  // Accepted, no effect: locks are always held.
  bool reserve_pool_in_kernel = false;  // Add the pool to
                                        // ip_local_reserved_ports.
  std::string metrics_file;             // "" = do not write metrics to a file.
  int metrics_interval_s = 15;          // Between two writes of metrics_file.
  bool verbose = false;                 // One log line per request.
  bool debug = false;                   // verbose, plus request details.
};

struct CommandLine {
  bool help = false;     // -h or --help: print UsageText() and exit 0.
  bool version = false;  // --version: print "portserver <version>", exit 0.
  Options options;
};

// Accepts --flag=value, --flag value, -flag, --bool, --nobool and
// --bool=true|false. Any other argument, an unknown flag, a bad value or a
// bad pool is an InvalidArgument error with a one-line message. -h/--help
// and --version win over any error in the other arguments (help first).
absl::StatusOr<CommandLine> ParseCommandLine(int argc, const char* const* argv);

// The --help text, built from the flag registry (names, help, defaults).
std::string UsageText();

// The --version text: "portserver <version>\n", the version from
// //:version.bzl (app/version.h).
std::string VersionText();

}  // namespace portserver

#endif  // PORTSERVER_APP_OPTIONS_H_
