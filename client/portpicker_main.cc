// portpicker: prints free ports, for shell scripts. The C++ counterpart of
// `python3 -m portpicker` (portpicker 1.6), plus -n and --no-fallback.
//
//   portpicker [-n N] [--no-fallback] [pid] [bind_timeout]
//
// Asks the port server named by PORTSERVER_ADDRESS for N ports (default 1)
// leased to `pid` (default: the parent process, i.e. the calling shell, as
// python 1.6; Debian's python 1.5.2 used its own pid, which dies at once),
// labelled with $TEST_TARGET when set. Against a server of the extended
// protocol (ours) that is one request, all or none, and a refusal says why
// ("pool exhausted (10000 of 10000 leased)"); against python's server, N
// plain requests, not all or none: the ports taken before a refusal stay
// leased to `pid` until it exits (python's server has no release), though
// portpicker then prints none of them. If the server refuses or fails (a
// warning goes to stderr), or without a server (PORTSERVER_ADDRESS unset or
// empty: no warning), picks ports without a server, unless --no-fallback is
// given: then it exits 1, for CI jobs where a silent fallback would hide a
// broken setup. Prints the ports, one per line, and exits 0; exits 1 if no
// port was found or the ports could not be written to stdout, 2 on a bad
// argument.
//
// With `bind_timeout` (seconds, may be fractional), ports picked without a
// server stay bound for that long after portpicker has exited, by a child
// that holds TCP sockets bound with SO_REUSEADDR (see portpicker::HoldPort):
// the kernel will not give the ports to anyone else meanwhile, and the
// script's next command can still take them over if it binds with
// SO_REUSEADDR. As in python 1.6 the child closes stdin, stdout and stderr,
// so `port=$(portpicker $$ 2)` returns at once, and ports a server leased to
// `pid` are not held (the lease keeps them; a hold would refuse a program that
// binds without SO_REUSEADDR, python's socketserver.TCPServer for one). Unlike
// python 1.6, only TCP is held (python holds a listening TCP socket, which
// no server can bind before the timeout, and a UDP socket).
//
//   port="$(portpicker $$ 1.5)"
//   my_server --port="$port" &
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "app/version.h"
#include "client/cli_platform.h"
#include "client/control_client.h"
#include "client/portpicker.h"
#include "client/portpicker_main_platform.h"
#include "domain/control_protocol.h"

namespace {

constexpr char kUsage[] =
    "usage: portpicker [-h] [-n N] [--no-fallback] [pid] [bind_timeout]\n"
    "Prints N free ports (default 1), one per line, leased by the port server\n"
    "at $PORTSERVER_ADDRESS to pid (default: the parent process; in bash,\n"
    "$(portpicker 2>/dev/null) makes that a subshell that exits at once:\n"
    "pass $$) with the label $TEST_TARGET. With bind_timeout (seconds),\n"
    "keeps ports picked without a server (or leased to this command\n"
    "itself) bound that long after exiting (SO_REUSEADDR, not listening;\n"
    "not on Windows, where it is ignored with a warning).\n"
    "  -n N           N ports (1 to 1024): all or none from a server with\n"
    "                 the extended protocol; python's server gets N plain\n"
    "                 requests, and ports taken before a refusal stay\n"
    "                 leased to pid until it exits\n"
    "                 (also -n=N, or N right after -n)\n"
    "  --no-fallback  exit 1 if the server cannot lease them (or leases\n"
    "                 them to this command instead of pid), instead of\n"
    "                 picking ports without it\n"
    "  --version      print the version and exit\n"
    "  --             the arguments after it are pid and bind_timeout\n"
    "Exit status: 0 ports printed, 1 no ports found (or not written: the\n"
    "server's leases of them are then released), 2 bad arguments.\n";

constexpr char kShortUsage[] =
    "usage: portpicker [-h] [-n N] [--no-fallback] [pid] [bind_timeout]";

void PrintError(const std::string& message) {
  std::fprintf(stderr, "portpicker: %s\n", message.c_str());
}

int BadArgument(const std::string& message) {
  PrintError(message + " (" + kShortUsage + ")");
  return 2;
}

// `count` ports from the server at `address` for `pid`: one extended
// request, or `count` plain ones against a server without the extended
// protocol. A grant to this command instead of `pid` (the server could not
// translate it from this pid namespace: the ports end with this command)
// is a warning, or with !fallback (--no-fallback) an error.
absl::StatusOr<std::vector<int>> FromServer(const std::string& address,
                                            int64_t pid, int count,
                                            bool fallback,
                                            bool* leased_to_caller) {
  int64_t owner = 0;
  bool& to_caller = *leased_to_caller;
  to_caller = false;
  absl::StatusOr<std::vector<int>> ports = portpicker::GetPortsFromPortServer(
      address, pid, count, portpicker::DefaultLabel(), absl::Seconds(10),
      &owner, &to_caller);
  if (ports.ok() && to_caller) {
    std::string what = absl::StrCat(
        "the server could not translate pid ", pid,
        " from this pid namespace (a server that is not root cannot read "
        "it) and leased ",
        count == 1 ? "the port" : "the ports", " to pid ", owner,
        ", this command, instead: ", count == 1 ? "it is" : "they are",
        " free again when it exits");
    if (!fallback) {
      return absl::FailedPreconditionError(what + " (--no-fallback)");
    }
    PrintError("warning: " + what);
  }
  if (ports.ok() || !absl::IsUnimplemented(ports.status())) return ports;
  std::vector<int> plain;
  while (static_cast<int>(plain.size()) < count) {
    absl::StatusOr<int> port = portpicker::GetPortFromPortServer(address, pid);
    if (!port.ok()) return port.status();
    plain.push_back(*port);
  }
  return plain;
}

// Ports leased to a pid that this command could not print: a script that
// sees exit 1 takes them for not given, and a retry would lease more. They
// are released (the extended protocol's `release`); a server without it
// (python's) keeps them until the pid exits. Says which.
void GiveBack(const std::vector<int>& ports) {
  const std::string address =
      portpicker::EnvironmentUtf8(portpicker::kPortServerAddressEnv)
          .value_or("");
  absl::StatusOr<portserver::ParsedReply> reply = portpicker::ControlExchange(
      address, portserver::FormatControlRequest(
                   "release", {{"ports", absl::StrJoin(ports, ",")}}));
  if (reply.ok() && !reply->is_error()) {
    PrintError(ports.size() == 1 ? "the port was released"
                                 : "the ports were released");
    return;
  }
  PrintError(absl::StrCat(
      ports.size() == 1 ? "the port stays" : "the ports stay",
      " leased until the pid exits: ",
      reply.ok() ? std::string(portpicker::RefusalStatus(*reply).message())
                 : std::string(reply.status().message())));
}

absl::StatusOr<std::vector<int>> WithoutServer(int count) {
  std::set<int> seen;
  std::vector<int> ports;
  for (int tries = 0; static_cast<int>(ports.size()) < count; ++tries) {
    absl::StatusOr<int> port = portpicker::PickUnusedPortWithoutServer();
    if (!port.ok()) return port.status();
    if (seen.insert(*port).second) ports.push_back(*port);
    if (tries > 10 * count) {
      return absl::ResourceExhaustedError("no distinct free ports found");
    }
  }
  return ports;
}

// `*leased`: whether the server leased them to `pid` (else they were picked
// without it, or leased to this command, which ends at once).
absl::StatusOr<std::vector<int>> PickPorts(int64_t pid, int count,
                                           bool fallback, bool* leased) {
  *leased = false;
  const std::string address =
      portpicker::EnvironmentUtf8(portpicker::kPortServerAddressEnv)
          .value_or("");
  if (!address.empty()) {
    bool to_caller = false;
    absl::StatusOr<std::vector<int>> ports =
        FromServer(address, pid, count, fallback, &to_caller);
    if (ports.ok()) {
      *leased = !to_caller;
      return ports;
    }
    if (!fallback) return ports.status();
    PrintError(std::string(ports.status().message()) +
               "; picking without the server");
  } else if (!fallback) {
    return absl::FailedPreconditionError(
        "PORTSERVER_ADDRESS is not set (and --no-fallback was given)");
  }
  return WithoutServer(count);
}

}  // namespace

int main(int argc, char** argv) {
  // Arguments as UTF-8 (on Windows from the UTF-16 command line, not the
  // ANSI code page), and a console that shows the UTF-8 written.
  portpicker::Utf8Main utf8(argc, argv);
  int count = 1;
  bool fallback = true;
  std::vector<std::string> positional;
  bool options_ended = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (options_ended) {
      positional.push_back(arg);
    } else if (arg == "--") {
      options_ended = true;
    } else if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--version") {
      std::printf("portpicker (portserver) %s\n",
                  portserver::kPortserverVersion);
      return 0;
    } else if (arg == "--no-fallback") {
      fallback = false;
    } else if (arg.rfind("-n", 0) == 0 || arg.rfind("--n=", 0) == 0) {
      // -n N, -nN, -n=N (getopt's forms) and --n=N.
      std::string value;
      if (arg == "-n") {
        if (i + 1 >= argc) return BadArgument("-n needs a number");
        value = argv[++i];
      } else {
        value =
            arg.substr(arg[1] == '-' || arg[2] == '=' ? arg.find('=') + 1 : 2);
      }
      if (!absl::SimpleAtoi(value, &count) || count < 1 ||
          count > static_cast<int>(portserver::kMaxPortsPerRequest)) {
        return BadArgument("bad -n \"" + value + "\": want 1 to " +
                           std::to_string(portserver::kMaxPortsPerRequest));
      }
    } else if (arg.size() > 1 && arg[0] == '-' &&
               !(arg[1] >= '0' && arg[1] <= '9')) {
      return BadArgument("unknown option " + arg);
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() > 2) return BadArgument("too many arguments");
  int64_t pid = portpicker::ParentPid();
  if (!positional.empty() &&
      !(absl::SimpleAtoi(positional[0], &pid) && pid > 0)) {
    return BadArgument("bad pid \"" + positional[0] +
                       "\": want a positive integer");
  }
  double bind_timeout = 0;
  if (positional.size() > 1 &&
      !(absl::SimpleAtod(positional[1], &bind_timeout) &&
        std::isfinite(bind_timeout) && bind_timeout >= 0)) {
    return BadArgument("bad bind_timeout \"" + positional[1] +
                       "\": want a number of seconds >= 0");
  }

  bool leased = false;
  absl::StatusOr<std::vector<int>> ports =
      PickPorts(pid, count, fallback, &leased);
  if (!ports.ok()) {
    PrintError(std::string(ports.status().message()));
    return 1;
  }
  // Bound before the ports are printed, so the script never sees one unheld.
  // A server's lease to `pid` needs no hold (python 1.6 holds only without
  // one); a lease to this command ends as it exits, so that one is held.
  std::vector<int> held;
  if (bind_timeout > 0 && !leased) {
    for (int port : *ports) {
      absl::StatusOr<int> fd = portpicker::HoldPort(port);
      if (fd.ok()) {
        held.push_back(*fd);
      } else {
        PrintError("cannot keep port " + std::to_string(port) +
                   " bound: " + std::string(fd.status().message()));
      }
    }
  }
  // Written before fork() (nothing buffered for the child to inherit), in
  // as few writes as the output allows, counting what got out.
  std::string text;
  for (int port : *ports) absl::StrAppend(&text, port, "\n");
  int error = 0;
  const size_t written = portpicker::WriteStdout(text, &error);
  if (written < text.size()) {
    PrintError(std::string(ports->size() == 1 ? "cannot write the port: "
                                              : "cannot write the ports: ") +
               std::strerror(error));
    // Released only if none got out: a reader that has one (`| head -1`)
    // may be using it, and a release would lease it again (a reviewer).
    if (leased && written == 0) {
      GiveBack(*ports);
    } else if (leased) {
      PrintError(absl::StrCat(
          "the ports stay leased: ", written, " of ", text.size(),
          " bytes were written, and the reader may have taken some"));
    }
    return 1;
  }
  if (!held.empty()) portpicker::KeepBoundInBackground(held, bind_timeout);
  return 0;
}
