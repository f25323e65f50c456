// portpicker: the C++ client of the port server, a port of Google's python
// `portpicker` module (pick_unused_port, return_port, add_reserved_port,
// get_port_from_port_server, is_port_free).
//
// A test asks for a port; if the environment variable PORTSERVER_ADDRESS
// names a port server (an AF_UNIX socket; a leading '@' is the Linux abstract
// namespace), the server leases a port to the calling process until that
// process dies, so parallel tests never get the same port. Without a server
// the library falls back to asking the kernel for a free port, which is only
// a best effort (see PickUnusedPortWithoutServer).
//
// Example:
//   absl::StatusOr<int> port = portpicker::PickUnusedPort();
//   if (!port.ok()) return port.status();
//   StartServerOn(*port);
//   ...
//   portpicker::ReturnPort(*port).IgnoreError();  // optional: lets a later
//                                                 // pick reuse it
//
// Thread-safety: every function here is thread-safe. The free functions
// PickUnusedPort, PickUnusedPorts, ReturnPort and AddReservedPort share one
// process-wide PortPicker (the python module's global sets); code that wants
// its own bookkeeping can use a PortPicker of its own. Nothing here prints,
// exits or aborts: failures are returned as absl::Status.
#ifndef PORTSERVER_CLIENT_PORTPICKER_H_
#define PORTSERVER_CLIENT_PORTPICKER_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace portpicker {

// The environment variable naming the port server, as in python.
inline constexpr char kPortServerAddressEnv[] = "PORTSERVER_ADDRESS";

// How long GetPortFromPortServer waits for the server by default.
inline constexpr absl::Duration kDefaultPortServerTimeout = absl::Seconds(10);

// Asks the port server at `address` for a port on behalf of `pid`: connects,
// sends "<pid>\n" and reads the reply "<port>\n". `address` is an AF_UNIX
// path, or "@name" for the abstract name "name". `pid` is sent as given; the
// server decides whether it is acceptable (ours and python's deny pid <= 1
// and pids that do not exist). The whole exchange (connect, send, reply) is
// bounded by `timeout`, so a hung server cannot block the caller for longer.
//
// Returns the port (1-65535), or
//   InvalidArgument    `address` is empty or too long for an AF_UNIX address;
//   Unavailable        no server accepts connections at `address`, or the
//                      connection failed;
//   DeadlineExceeded   the server did not answer within `timeout`;
//   ResourceExhausted  the server denied the request: it closed without a
//                      reply (or replied "0"). The protocol does not say why:
//                      no free port, or a pid it will not serve;
//   Internal           the reply is not a port number.
// Stateless: unlike python's function, this does not record the port as
// owned; PortPicker::PickUnusedPort does.
absl::StatusOr<int> GetPortFromPortServer(
    const std::string& address, int64_t pid,
    absl::Duration timeout = kDefaultPortServerTimeout);

// True if `port` can be bound now for TCP (bound and listening) and for UDP,
// each on the IPv6 and then the IPv4 wildcard address with SO_REUSEADDR, as
// python's is_port_free(). A family the host lacks is skipped; at least one
// must work. False for ports outside 1-65535. The answer is stale as soon as
// it is returned.
bool IsPortFree(int port);

// The fallback used when there is no port server, as python's
// _pick_unused_port_without_server(): up to 10 times, binds TCP port 0 and
// keeps the kernel's choice if that port is free for UDP too; then tries up
// to 10 random ports in [15000, 25000) with IsPortFree. Returns
// ResourceExhausted if none worked.
//
// What is lost without a server: the port was free only at the moment of
// the check. Nothing is reserved: the sockets are closed before this
// returns, so any process (even another caller of this function in another
// process) may take the port before you bind it, and no lease outlives the
// call or tracks your process. Bind the port as soon as possible, or better,
// bind port 0 yourself if your code can take a bound socket.
absl::StatusOr<int> PickUnusedPortWithoutServer();

// Binds a TCP socket to `port` (IPv6 dual-stack wildcard, or IPv4 if the
// host has no IPv6) with SO_REUSEADDR, without listening, and returns its
// descriptor; the caller closes it. While it is open the kernel does not hand
// the port out as an ephemeral port and binds without SO_REUSEADDR fail, yet
// a server that sets SO_REUSEADDR (most do) can bind and listen on the port:
// the holder never accepts connections. UDP is not held, since a second UDP
// socket on the port could steal datagrams. Returns Unavailable with the
// errno text if the port cannot be bound, InvalidArgument outside 1-65535.
// This is what `portpicker <pid> <bind_timeout>` holds.
absl::StatusOr<int> HoldPort(int port);

// The bookkeeping of python's module: a free set (ports given back with
// ReturnPort or added with AddReservedPort, handed out again first), the
// ports it owns (from the free set or the server) and the ports it chose
// without a server.
//
// Example:
//   PortPicker picker;
//   picker.AddReservedPort(port_from_elsewhere);
//   absl::StatusOr<int> port = picker.PickUnusedPort();  // that port
//
// Thread-safe. The port server is called without holding the lock.
class PortPicker {
 public:
  PortPicker() = default;
  PortPicker(const PortPicker&) = delete;
  PortPicker& operator=(const PortPicker&) = delete;

  // A port for `pid`: first one from the free set; else one from the server
  // named by PORTSERVER_ADDRESS (read at each call; unset or empty means no
  // server) on behalf of `pid`, if it answers with a port this picker has
  // not handed out already; else PickUnusedPortWithoutServer(), avoiding
  // every port this picker knows. A server failure is not reported: like
  // python, the call falls back. Returns ResourceExhausted if no port was
  // found.
  // The request: with Bazel's TEST_TARGET set (DefaultLabel()), an extended
  // `allocate` of one port labelled with it (docs/protocol.md), so that
  // `portserverctl leases --label` finds the test's leases; a server
  // without the extended protocol (python's) closes that without a reply,
  // and is then asked with a plain request, as without TEST_TARGET: once
  // per server address and picker, after which this picker asks that
  // address plainly only.
  absl::StatusOr<int> PickUnusedPort(int64_t pid);
  // The same on behalf of this process (getpid()).
  absl::StatusOr<int> PickUnusedPort();

  // `n` distinct ports for this process: first from the free set; the rest
  // from the server in one round trip when it speaks the extended protocol
  // (docs/protocol.md: all or none, labelled with $TEST_TARGET when set;
  // more than kMaxPortsPerRequest (1024) in several, each all or none).
  // If that server refuses (or cannot be reached, or grants a port this
  // picker has handed out already), the rest are all picked without it,
  // none reserved (as PickUnusedPort falls back): of the ports asked of the
  // server, never some leased and some not; ports an earlier part leased go
  // to the free set. Against a server
  // without the extended protocol (python's) each is picked as PickUnusedPort()
  // does, one request per port; no server: each picked without one.
  // InvalidArgument if n <= 0. If one pick fails, the ports picked so far are
  // returned with ReturnPort and the error is returned. Against python's
  // server, which has no release, the ports it leased before a refusal stay
  // leased to this process until it exits (ReturnPort keeps them in the free
  // set).
  absl::StatusOr<std::vector<int>> PickUnusedPorts(int n);

  // Gives back a port this picker handed out. A port from the free set or the
  // server goes to the free set, for the next PickUnusedPort; a port chosen
  // without a server is forgotten, not reused (it was never reserved). As in
  // python, the port server is not told: its lease ends when the process
  // dies. Returns FailedPrecondition if the port is already in the free set,
  // NotFound if this picker never handed it out.
  absl::Status ReturnPort(int port);

  // Adds a port acquired by other means to the free set (python's
  // add_reserved_port). Ports outside 1-65535 are ignored.
  void AddReservedPort(int port);

 private:
  // Whether the server at `address` was seen without the extended protocol.
  bool PlainOnly(const std::string& address);
  // One port for `pid` from the server at `address`, as PickUnusedPort asks.
  absl::StatusOr<int> FromServer(const std::string& address, int64_t pid);

  absl::Mutex mu_;
  // Server addresses seen without the extended protocol.
  std::set<std::string> plain_only_ ABSL_GUARDED_BY(mu_);
  std::set<int> free_ ABSL_GUARDED_BY(mu_);
  std::set<int> owned_ ABSL_GUARDED_BY(mu_);
  std::set<int> random_ ABSL_GUARDED_BY(mu_);
};

// The python module's functions, on one process-wide PortPicker.
absl::StatusOr<int> PickUnusedPort();
absl::StatusOr<std::vector<int>> PickUnusedPorts(int n);
absl::Status ReturnPort(int port);
void AddReservedPort(int port);

}  // namespace portpicker

#endif  // PORTSERVER_CLIENT_PORTPICKER_H_
