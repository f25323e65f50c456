#include "app/options.h"

#include <gflags/gflags.h>

#include <algorithm>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "app/version.h"
#include "domain/port_pool.h"

// Where a flag's effect differs between Linux (app/platform_linux.cc) and
// Windows (app/platform_windows.cc), --help describes the platform it was
// built for.
#ifdef _WIN32
constexpr char kExtraAddressesHelp[] =
    "Comma separated further addresses to listen on, each like "
    "--portserver_address. Not supported on Windows (one pipe per "
    "server): a server given any exits 2; start one server per pipe.";
constexpr char kStateFileHelp[] =
    "File that journals leases, so that a restart (even after the server "
    "was killed) never hands out a port still leased to a live process. "
    "Empty: %LOCALAPPDATA%\\portserver\\<pipe name>.journal, the pipe "
    "name without its \\\\.\\pipe\\ prefix and with each character "
    "other than ASCII letters, digits, '-', '_' and '.' written '_' and, "
    "if any was, '-' and its FNV-1a in 8 hex digits after it (exit 2 "
    "if LOCALAPPDATA is unset). Leases on ports outside the pool (a "
    "journal written under another pool) are carried, with a warning: "
    "kept in the journal, with their ports' locks, while their owners "
    "live, not leased. 'none': keep leases in memory only, as the "
    "reference server does. A clean stop leaves the journal and its .lock "
    "in place. A full disk is logged, and every live lease is written "
    "again as soon as the file can be; a deleted journal is not noticed "
    "until the next compaction.";
constexpr char kMaxConnectionsHelp[] =
    "Most client connections open at once. At the cap, the oldest "
    "connection without a complete request is closed to make room.";
constexpr char kReservePoolHelp[] =
    "Linux only (net.ipv4.ip_local_reserved_ports): accepted on Windows, "
    "where it has no effect.";
constexpr char kVerboseHelp[] =
    "Enable verbose messages (one line per request). Without it, "
    "refusals (but for malformed requests) are still logged, at most "
    "10 lines a second; the next line logged says how many were "
    "suppressed, and the statistics (see 'statistics' below) report the "
    "total (refusal-lines-suppressed).";
#else
constexpr char kExtraAddressesHelp[] =
    "Comma separated further addresses to listen on, each like "
    "--portserver_address (e.g. a path socket, whose directory's "
    "permissions say who may ask). One pool and one journal serve "
    "them all. Not bound, like --portserver_address, when the service "
    "manager passes the sockets (LISTEN_FDS).";
constexpr char kStateFileHelp[] =
    "File that journals leases, so that a restart (even after kill "
    "-9) never hands out a port still leased to a live process. "
    "Empty: <runtime dir>/<address>.journal (the address's characters "
    "other than ASCII letters, digits, '-', '_' and '.' written '_' and, "
    "if any was, '-' and its FNV-1a in 8 hex digits added), where the "
    "runtime dir "
    "is $XDG_RUNTIME_DIR/portserver, or /tmp/portserver-<uid> when "
    "XDG_RUNTIME_DIR is unset, not a directory or another user's (a "
    "journal of the address found in the other of the two is used "
    "instead, with a warning); for an @abstract address "
    "<address>.netns-<inode>.journal, since each network namespace "
    "(a container, a sandboxed test) has its own @address. Leases on "
    "ports outside the pool (a journal written under another pool) are "
    "carried, with a warning: kept in the journal, with their ports' "
    "locks, while their owners live, not leased. 'none': keep "
    "leases in memory only, "
    "as the reference server does. A clean stop (SIGTERM, SIGINT, SIGHUP) "
    "with no live lease removes the journal and its .lock (and the "
    "default directory if it is then empty). A full disk or a "
    "deleted journal is logged, and every live lease is written "
    "again as soon as the file can be.";
constexpr char kMaxConnectionsHelp[] =
    "Most client connections open at once. At the cap, the oldest "
    "connection without a complete request is closed to make room. "
    "Lowered under a low descriptor limit to half of what it "
    "leaves beyond the server's own (logged).";
constexpr char kReservePoolHelp[] =
    "Add the pool to net.ipv4.ip_local_reserved_ports (merged with "
    "what is there), so that the kernel never gives pool ports to "
    "connect() or bind(port 0), and take out again what was added "
    "when the server stops (not after kill -9). Needs root or "
    "CAP_NET_ADMIN in the server's network namespace; exits 2 "
    "otherwise. Without it, a pool that overlaps the ephemeral range "
    "(net.ipv4.ip_local_port_range) is warned about at start-up.";
constexpr char kVerboseHelp[] =
    "Enable verbose messages (one line per request). Without it, "
    "refusals (but for malformed requests) are still logged, at most "
    "10 lines a second; the next line logged says how many were "
    "suppressed, and SIGUSR1 reports the total "
    "(refusal-lines-suppressed).";
#endif

DEFINE_string(portserver_static_pool, "15000-24999",
              "Comma separated N-P Range(s) of ports to manage (inclusive).");
DEFINE_string(portserver_address, "@unittest-portserver",
              "Address of AF_UNIX socket on which to listen on Unix (first @ "
              "is a NUL) or the name of the pipe on Windows (first @ is the "
              "\\\\.\\pipe\\ prefix).");
DEFINE_string(portserver_extra_addresses, "", kExtraAddressesHelp);
DEFINE_string(portserver_state_file, "", kStateFileHelp);
DEFINE_int32(portserver_max_ports_per_pid, 0,
             "Most ports one live process may hold at once; further requests "
             "on its behalf are denied (quota). 0: no limit, as in the "
             "reference server (a long-lived test runner may hold many).");
DEFINE_int32(portserver_max_connections, 1024, kMaxConnectionsHelp);
DEFINE_int32(portserver_read_timeout_ms, 5000,
             "How long a client may take to send its request, in "
             "milliseconds, before the connection is closed.");
DEFINE_bool(portserver_lock_ports, false,
            "Accepted for compatibility; no effect. Every server now holds a "
            "host-wide lock (on Linux the abstract socket "
            "@portserver-port-lock-<port>-<two characters>, README "
            "\"Guarantees\") on each port while it is leased, "
            "and skips ports another server holds: servers sharing one "
            "network namespace never hand out the same port, whatever their "
            "flags.");
DEFINE_bool(portserver_reserve_pool_in_kernel, false, kReservePoolHelp);
DEFINE_string(portserver_metrics_file, "",
              "Also write the metrics (Prometheus text format, as "
              "`portserverctl metrics` prints them) to this file every "
              "--portserver_metrics_interval_s seconds, atomically (a "
              "temporary file renamed over it), e.g. for node_exporter's "
              "textfile collector (a *.prom file in its directory). Empty: "
              "off.");
DEFINE_int32(portserver_metrics_interval_s, 15,
             "Seconds between two writes of --portserver_metrics_file.");
DEFINE_bool(verbose, false, kVerboseHelp);
DEFINE_bool(debug, false,
            "Enable full debug messages (per request, with the caller's "
            "credentials and the probes made).");

namespace portserver {
namespace {

// The reference's alias, kept for compatibility.
constexpr std::string_view kAddressAlias = "portserver_unix_socket_address";

struct FlagSpec {
  const char* name;
  const char* metavar;  // nullptr for booleans.
};
// The reference server's flags first, then ours (kFirstOwnFlag on).
constexpr FlagSpec kFlags[] = {
    {"portserver_static_pool", "PORTSERVER_STATIC_POOL"},
    {"portserver_address", "PORTSERVER_ADDRESS"},
    {"verbose", nullptr},
    {"debug", nullptr},
    {"portserver_extra_addresses", "ADDRESS[,ADDRESS...]"},
    {"portserver_state_file", "PATH"},
    {"portserver_max_ports_per_pid", "N"},
    {"portserver_max_connections", "N"},
    {"portserver_read_timeout_ms", "MS"},
    {"portserver_reserve_pool_in_kernel", nullptr},
    {"portserver_lock_ports", nullptr},
    {"portserver_metrics_file", "PATH"},
    {"portserver_metrics_interval_s", "N"},
};
constexpr size_t kFirstOwnFlag = 4;

// Wraps `text` at 72 columns, each line indented by 8 spaces.
std::string Wrapped(const std::string& text) {
  std::string out, line;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    std::string word = text.substr(start, end - start);
    if (!line.empty() && line.size() + 1 + word.size() > 72) {
      absl::StrAppend(&out, "        ", line, "\n");
      line.clear();
    }
    absl::StrAppend(&line, line.empty() ? "" : " ", word);
    start = end + 1;
  }
  if (!line.empty()) absl::StrAppend(&out, "        ", line, "\n");
  return out;
}

const FlagSpec* FindFlag(std::string_view name) {
  if (name == kAddressAlias) name = "portserver_address";
  for (const FlagSpec& f : kFlags) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

absl::Status Bad(const std::string& message) {
  return absl::InvalidArgumentError(message);
}

// The flag name that `prefix` abbreviates, as python's argparse takes any
// unambiguous prefix of a long option (allow_abbrev, on by default: the
// reference server's --portserver_static=..., --portserver_addr=...,
// --verb): "" if none does; an error if several do. Only the reference's
// flags are abbreviated, so that a command line the reference takes means
// the same here (--v is --verbose, though --version shares it;
// --portserver_st is the pool, not the state file). This server's own
// flags take their whole names: abbreviated, a typo of one silently named
// another (--portserver_e=x was --portserver_extra_addresses, and a server
// started on the default address: a new user's trial).
absl::StatusOr<std::string> Unabbreviated(std::string_view prefix) {
  auto prefixed = [&](const std::vector<std::string>& names) {
    std::vector<std::string> matches;
    for (const std::string& name : names) {
      if (!prefix.empty() && name.compare(0, prefix.size(), prefix) == 0) {
        matches.push_back(name);
      }
    }
    return matches;
  };
  // The reference's flags: those before kFirstOwnFlag, its alias, -h.
  std::vector<std::string> reference = {"help", std::string(kAddressAlias)};
  for (size_t i = 0; i < kFirstOwnFlag; ++i) {
    reference.push_back(kFlags[i].name);
  }
  std::vector<std::string> matches = prefixed(reference);
  if (matches.size() > 1) {
    return Bad(absl::StrCat("ambiguous flag '--", std::string(prefix),
                            "': could be --", absl::StrJoin(matches, ", --")));
  }
  if (matches.size() == 1) return matches.front();
  return prefix == "version" ? "version" : "";
}

}  // namespace

absl::StatusOr<CommandLine> ParseCommandLine(int argc,
                                             const char* const* argv) {
  // Start from the defaults, so that parsing twice (tests) is independent.
  for (const FlagSpec& f : kFlags) {
    gflags::CommandLineFlagInfo info;
    gflags::GetCommandLineFlagInfo(f.name, &info);
    gflags::SetCommandLineOption(f.name, info.default_value.c_str());
  }
  CommandLine result;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help" || arg == "-help") {
      result.help = true;
      continue;
    }
    if (arg == "--version" || arg == "-version") {
      result.version = true;
      continue;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      return Bad(absl::StrCat("unexpected argument '", std::string(arg),
                              "' (flags start with --; see --help)"));
    }
    std::string_view body = arg.substr(arg[1] == '-' ? 2 : 1);
    std::optional<std::string_view> value;
    if (size_t eq = body.find('='); eq != std::string_view::npos) {
      value = body.substr(eq + 1);
      body = body.substr(0, eq);
    }
    std::string whole;  // `body` written out, if it was abbreviated.
    if (FindFlag(body) == nullptr && arg[1] == '-') {
      absl::StatusOr<std::string> name = Unabbreviated(body);
      if (!name.ok()) return name.status();
      whole = *name;
      if (whole == "help" && !value) {
        result.help = true;
        continue;
      }
      if (whole == "version" && !value) {
        result.version = true;
        continue;
      }
      if (!whole.empty()) body = whole;
    }
    const FlagSpec* flag = FindFlag(body);
    bool negated = false;
    if (flag == nullptr && body.substr(0, 2) == "no") {
      flag = FindFlag(body.substr(2));
      negated = flag != nullptr && flag->metavar == nullptr && !value;
      if (!negated) flag = nullptr;
    }
    if (flag == nullptr) {
      return Bad(
          absl::StrCat("unknown flag '", std::string(arg), "' (see --help)"));
    }
    std::string text;
    if (flag->metavar == nullptr) {  // Boolean.
      text = negated ? "false" : std::string(value.value_or("true"));
    } else if (value) {
      text = std::string(*value);
    } else if (i + 1 < argc) {
      text = argv[++i];
    } else {
      return Bad(absl::StrCat("flag --", flag->name, " needs a value"));
    }
    if (gflags::SetCommandLineOption(flag->name, text.c_str()).empty()) {
      return Bad(
          absl::StrCat("bad value '", text, "' for flag --", flag->name));
    }
  }
  if (result.help || result.version) return result;

  Options& o = result.options;
  o.pool_spec = FLAGS_portserver_static_pool;
  PortPoolParse pool = ParsePortPool(o.pool_spec);
  if (!pool.ok) {
    return Bad(absl::StrCat("bad --portserver_static_pool '", o.pool_spec,
                            "': ", pool.error));
  }
  o.pool = std::move(pool.ports);
  o.pool_spec = std::move(pool.canonical);  // " 10-20" logs as "10-20".
  o.address = FLAGS_portserver_address;
  if (o.address.empty() || o.address == "@") {
    return Bad("empty --portserver_address");
  }
  if (!FLAGS_portserver_extra_addresses.empty()) {
    for (absl::string_view extra :
         absl::StrSplit(FLAGS_portserver_extra_addresses, ',')) {
      if (extra.empty() || extra == "@") {
        return Bad(
            absl::StrCat("empty address in --portserver_extra_addresses '",
                         FLAGS_portserver_extra_addresses, "'"));
      }
      if (extra == o.address ||
          std::find(o.extra_addresses.begin(), o.extra_addresses.end(),
                    extra) != o.extra_addresses.end()) {
        return Bad(absl::StrCat("address ", extra, " is given twice"));
      }
      o.extra_addresses.emplace_back(extra);
    }
  }
  o.state_file = FLAGS_portserver_state_file;
  if (FLAGS_portserver_max_ports_per_pid < 0) {
    return Bad("--portserver_max_ports_per_pid must be 0 (no limit) or more");
  }
  o.max_ports_per_pid = static_cast<size_t>(FLAGS_portserver_max_ports_per_pid);
  if (FLAGS_portserver_max_connections < 1) {
    return Bad("--portserver_max_connections must be at least 1");
  }
  o.max_connections = static_cast<size_t>(FLAGS_portserver_max_connections);
  if (FLAGS_portserver_read_timeout_ms < 1) {
    return Bad("--portserver_read_timeout_ms must be at least 1");
  }
  o.read_timeout_ms = FLAGS_portserver_read_timeout_ms;
  o.lock_ports = FLAGS_portserver_lock_ports;
  o.reserve_pool_in_kernel = FLAGS_portserver_reserve_pool_in_kernel;
  o.metrics_file = FLAGS_portserver_metrics_file;
  if (FLAGS_portserver_metrics_interval_s < 1) {
    return Bad("--portserver_metrics_interval_s must be at least 1");
  }
  o.metrics_interval_s = FLAGS_portserver_metrics_interval_s;
  o.debug = FLAGS_debug;
  o.verbose = FLAGS_verbose || FLAGS_debug;
  return result;
}

std::string VersionText() {
  return absl::StrCat("portserver ", kPortserverVersion, "\n");
}

std::string UsageText() {
  std::string usage =
      "usage: portserver [-h] [--portserver_static_pool "
      "PORTSERVER_STATIC_POOL]\n"
      "                  [--portserver_address PORTSERVER_ADDRESS] "
      "[--verbose]\n"
      "                  [--debug] [--version] [more flags below]\n"
      "\n"
      "Hands out network ports that are free and stay reserved for the asking\n"
      "process until it dies. Clients (python portpicker, the portpicker\n"
      "command, Bazel's portserver_test) find it through PORTSERVER_ADDRESS.\n"
      "Protocol: a client connects, sends \"<pid>\\n\" and receives "
      "\"<port>\\n\",\n"
      "or a close without reply when no port can be given. Tools speak an\n"
      "extended protocol on the same socket (docs/protocol.md; "
      "portserverctl).\n"
      "\n"
      "The flags python's portserver has (--help, --portserver_static_pool,\n"
      "--portserver_address and its alias, --verbose, --debug) may be cut\n"
      "to any prefix that names one of them only, as its argparse allows;\n"
      "the others take their whole names.\n"
      "\n"
      "options:\n"
      "  -h, --help\n"
      "        show this help message and exit\n"
      "  --version\n"
      "        print the version (portserver X.Y.Z) and exit\n";
  for (size_t i = 0; i < sizeof(kFlags) / sizeof(kFlags[0]); ++i) {
    const FlagSpec& f = kFlags[i];
    if (i == kFirstOwnFlag) {
      absl::StrAppend(&usage,
                      "\nnot in the reference server (the defaults keep its "
                      "behaviour but for\nthe journal):\n");
    }
    gflags::CommandLineFlagInfo info;
    gflags::GetCommandLineFlagInfo(f.name, &info);
    absl::StrAppend(&usage, "  --", f.name);
    if (f.metavar != nullptr) absl::StrAppend(&usage, " ", f.metavar);
    if (std::string_view(f.name) == "portserver_address") {
      absl::StrAppend(&usage, ", --", std::string(kAddressAlias), " ",
                      f.metavar);
    }
    absl::StrAppend(&usage, "\n", Wrapped(info.description));
    if (f.metavar != nullptr && !info.default_value.empty()) {
      absl::StrAppend(&usage, "        Default: ", info.default_value, "\n");
    }
  }
#ifdef _WIN32
  absl::StrAppend(
      &usage,
      "\n"
      "stopping: Ctrl+C, Ctrl+Break and closing the console (or logging off,\n"
      "shutting down) stop the server: it logs the statistics and exits 0.\n"
      "statistics: logged each time the auto-reset event\n"
      "Global\\portserver-stats-<pipe name> is set ('\\' in the name written\n"
      "'_', and then '-' and 8 hex digits added; the server logs the name\n"
      "at start-up); Windows has no SIGUSR1.\n"
      "exit status: 0 after a stop as above; 2, before anything is served,\n"
      "for a bad flag or pool, an address that is not a pipe name or a\n"
      "pipe in use, --portserver_extra_addresses, a state file that is not\n"
      "a journal of the server's, is in use by another server or whose\n"
      "directory is missing, a default journal whose directory\n"
      "%LOCALAPPDATA%\\portserver cannot be made (LOCALAPPDATA unset or not a\n"
      "directory), files that collide (the journal named as the metrics\n"
      "file), or a metrics file that is not\n"
      "the server's or whose directory is missing or not writable; 1 if\n"
      "serving fails later.\n");
#else
  absl::StrAppend(
      &usage,
      "\n"
      "signals: SIGUSR1 logs statistics; SIGTERM, SIGINT and SIGHUP stop the\n"
      "server (it removes its path socket and exits 0), except one that was\n"
      "ignored when it started (nohup, a shell's background job): that one\n"
      "stays ignored.\n"
      "exit status: 0 after SIGTERM/SIGINT/SIGHUP; 2, before anything is\n"
      "served, for a bad flag or pool, an address that cannot be bound, a\n"
      "passed socket of the wrong kind, a pool the kernel may not reserve\n"
      "(--portserver_reserve_pool_in_kernel), a state file that is not a\n"
      "journal of the server's, is in use by another server or whose\n"
      "directory is missing, a default journal directory that is not a\n"
      "directory, is another user's or is open to group or others, files\n"
      "that collide (the journal named as the metrics file), or a metrics\n"
      "file that is not the server's or whose directory is missing or not\n"
      "writable; 1 if serving fails later.\n");
#endif
  return usage;
}

}  // namespace portserver
