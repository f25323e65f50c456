// portpicker: prints a free port, for shell scripts. The C++ counterpart of
// `python3 -m portpicker` (portpicker 1.6).
//
//   portpicker [pid] [bind_timeout]
//
// Asks the port server named by PORTSERVER_ADDRESS for a port leased to
// `pid` (default: the parent process, i.e. the calling shell, as python 1.6;
// Debian's python 1.5.2 used its own pid, which dies at once). Without a
// server, or if it fails (a warning goes to stderr), picks a port without a
// server. Prints the port and exits 0; exits 1 if no port was found, 2 on a
// bad argument.
//
// With `bind_timeout` (seconds, may be fractional) the port stays bound for
// that long after portpicker has exited, by a child that holds a TCP socket
// bound with SO_REUSEADDR (see portpicker::HoldPort): the kernel will not
// give the port to anyone else meanwhile, and the script's next command can
// still take it over if it binds with SO_REUSEADDR. As in python 1.6 the
// child closes stdin, stdout and stderr, so `port=$(portpicker $$ 2)` returns
// at once. Unlike python 1.6, the port is held with a port server too (python
// only holds it without one) and only TCP is held (python holds a listening
// TCP socket, which no server can bind before the timeout, and a UDP socket).
//
//   port="$(portpicker $$ 1.5)"
//   my_server --port="$port" &
#include <errno.h>
#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/portpicker.h"

namespace {

constexpr char kUsage[] =
    "usage: portpicker [-h] [pid] [bind_timeout]\n"
    "Prints a free port, leased by the port server at $PORTSERVER_ADDRESS to\n"
    "pid (default: the parent process). With bind_timeout (seconds), keeps\n"
    "the port bound that long after exiting (SO_REUSEADDR, not listening).\n"
    "Exit status: 0 port printed, 1 no port found, 2 bad arguments.\n";

void PrintError(const std::string& message) {
  std::fprintf(stderr, "portpicker: %s\n", message.c_str());
}

int BadArgument(const std::string& message) {
  PrintError(message + " (usage: portpicker [pid] [bind_timeout])");
  return 2;
}

absl::StatusOr<int> PickPort(int64_t pid) {
  const char* address = std::getenv(portpicker::kPortServerAddressEnv);
  if (address != nullptr && address[0] != '\0') {
    absl::StatusOr<int> port = portpicker::GetPortFromPortServer(address, pid);
    if (port.ok()) return port;
    PrintError(std::string(port.status().message()) +
               "; picking a port without the server");
  }
  return portpicker::PickUnusedPortWithoutServer();
}

// Forks a child that keeps `fd` open for `seconds`, detached from our stdio.
// The caller closes its own copy of `fd`.
void HoldInChild(int fd, double seconds) {
  const pid_t child = fork();
  if (child < 0) {
    PrintError(std::string("cannot fork to keep the port bound: ") +
               std::strerror(errno));
    return;
  }
  if (child > 0) return;
  const int null = open("/dev/null", O_RDWR);
  for (int stdio = 0; stdio <= 2; ++stdio) {
    if (null >= 0) dup2(null, stdio);
  }
  absl::SleepFor(absl::Seconds(seconds));
  close(fd);
  _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (std::strcmp(argv[1], "-h") == 0 ||
                    std::strcmp(argv[1], "--help") == 0)) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (argc > 3) return BadArgument("too many arguments");
  int64_t pid = getppid();
  if (argc > 1 && !(absl::SimpleAtoi(argv[1], &pid) && pid > 0)) {
    return BadArgument(std::string("bad pid \"") + argv[1] +
                       "\": want a positive integer");
  }
  double bind_timeout = 0;
  if (argc > 2 && !(absl::SimpleAtod(argv[2], &bind_timeout) &&
                    std::isfinite(bind_timeout) && bind_timeout >= 0)) {
    return BadArgument(std::string("bad bind_timeout \"") + argv[2] +
                       "\": want a number of seconds >= 0");
  }

  absl::StatusOr<int> port = PickPort(pid);
  if (!port.ok()) {
    PrintError(std::string(port.status().message()));
    return 1;
  }
  // Bound before the port is printed, so the script never sees it unheld.
  int held_fd = -1;
  if (bind_timeout > 0) {
    absl::StatusOr<int> held = portpicker::HoldPort(*port);
    if (held.ok()) {
      held_fd = *held;
    } else {
      PrintError("cannot keep the port bound: " +
                 std::string(held.status().message()));
    }
  }
  // Flushed before fork(), or the child would inherit the buffered line.
  if (std::printf("%d\n", *port) < 0 || std::fflush(stdout) != 0) {
    PrintError(std::string("cannot write the port: ") + std::strerror(errno));
    return 1;
  }
  if (held_fd >= 0) {
    HoldInChild(held_fd, bind_timeout);
    close(held_fd);
  }
  return 0;
}
