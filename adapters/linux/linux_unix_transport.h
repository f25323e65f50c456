// LinuxUnixTransport: a Transport that serves one or several AF_UNIX stream
// sockets, in the Linux abstract namespace ("@name") or at filesystem paths,
// bound here or passed in already listening (systemd socket activation),
// with one thread and epoll. Each connection, whatever socket it came in
// on, delivers one Request (up to the first '\n', end of stream,
// `max_request_bytes` or `read_timeout`) to the one handler, gets the
// handler's reply, if any, and is closed. A slow or idle client never
// stalls the others.
//
// Example:
//   LinuxUnixTransport::Options options;
//   options.address = "@unittest-portserver";
//   absl::StatusOr<std::unique_ptr<LinuxUnixTransport>> transport =
//       LinuxUnixTransport::Create(options);  // Bound and listening.
//   if (!transport.ok()) return transport.status();
//   ServeResult result = (*transport)->Serve(handler);  // Until Shutdown().
//
//   // Several addresses, one handler (one pool, one ledger):
//   options.extra_addresses = {"/run/portserver/portserver.sock"};
//   // Or sockets passed by systemd (see linux_socket_activation.h):
//   options.address.clear();
//   options.inherited = {{3, "@unittest-portserver"}};
//
// Thread-safety: Shutdown() may be called from any thread and from a signal
// handler. Serve() runs on one thread at a time. The destructor must not
// run while Serve() does.
#ifndef PORTSERVER_ADAPTERS_LINUX_LINUX_UNIX_TRANSPORT_H_
#define PORTSERVER_ADAPTERS_LINUX_LINUX_UNIX_TRANSPORT_H_

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "domain/request_codec.h"
#include "domain/transport.h"

namespace portserver {

class LinuxUnixTransport final : public Transport {
 public:
  // A socket that is already bound and listening, e.g. passed by systemd.
  struct InheritedListener {
    int fd = -1;       // Owned by the transport from Create() on, even when
                       // Create() fails.
    std::string name;  // For messages, e.g. "@unittest-portserver".
  };

  struct Options {
    // "@name" for the abstract namespace (no file; gone with the process),
    // anything else is a filesystem path. May be empty when
    // `extra_addresses` or `inherited` names a listener; at least one of the
    // three must.
    std::string address;
    // Further addresses, bound like `address`, all served alike.
    std::vector<std::string> extra_addresses;
    // Sockets to serve as they are (never bound, unlinked or chmod-ed
    // here). Each must be an AF_UNIX SOCK_STREAM socket in the listening
    // state; anything else fails Create() with InvalidArgument.
    std::vector<InheritedListener> inherited;
    // How long a client may take, from accept, to send its request. > 0.
    absl::Duration read_timeout = absl::Seconds(5);
    // Reading stops here without a '\n' (Request::End::kTooLong). >= 1.
    // An extended request (RequestByteLimit) may have up to
    // kMaxExtendedRequestBytes instead.
    size_t max_request_bytes = kMaxRequestBytes;
    // Most open connections. When a new one arrives at the cap, the oldest
    // (which has not sent a complete request) is closed without a reply and
    // handed to the handler as Request::End::kOverCapacity. >= 1.
    size_t max_connections = 1024;
    // How often the path sockets bound here are checked while serving
    // (zero: never). One whose file is gone (systemd-tmpfiles ages files
    // in /tmp out after 10 days; a stray rm) is bound again at its path, so
    // that clients reach the server there again; a path that names
    // something else now is left alone. Inherited sockets are not checked.
    absl::Duration path_check_interval = absl::Seconds(10);
    // Told, one line each, what a path check found and did (the server
    // logs it as a warning). Called on the serving thread; may be empty.
    std::function<void(const std::string&)> notice;
  };

  // Creates, binds and listens the sockets (address, then extra_addresses),
  // and takes the inherited ones. Errors:
  //   InvalidArgument: bad options; no listener at all, an empty address,
  //     one too long for sun_path, the same address twice, or an inherited
  //     descriptor that is not a listening AF_UNIX stream socket (the
  //     message names its descriptor number and what it is instead).
  //   AlreadyExists: another server listens on the address ("... in use").
  //   FailedPrecondition: something that is not a socket is at the path
  //     (it is left alone).
  //   Other codes from the errno of a failed system call.
  // A socket file left at a path by a dead server is replaced.
  // A path socket bound here gets mode 0666 (restrict access through its
  // directory) and is removed by the destructor if it is still the one bound
  // here. On failure every socket bound so far is closed and its file
  // removed.
  static absl::StatusOr<std::unique_ptr<LinuxUnixTransport>> Create(
      const Options& options);

  ~LinuxUnixTransport() override;

  // Serves until Shutdown() (returns ok, after closing open connections
  // without calling `handler` for them) or an unexpected epoll failure.
  // Calls `handler` on this thread, once per accepted connection that is
  // not dropped for lack of resources (connections evicted at the cap
  // included).
  ServeResult Serve(RequestHandler& handler) override;

  // Makes Serve() return soon, or at once if it has not started yet; every
  // later Serve() also returns at once. Async-signal-safe.
  void Shutdown() override;

  // The address as given in Options.
  const std::string& address() const { return options_.address; }

  // Every socket served, in Options order (address, extra_addresses,
  // inherited): its name and descriptor. Not while Serve() runs: a path
  // socket bound again (path_check_interval) changes its descriptor.
  struct ListenerInfo {
    std::string name;
    int fd;
    bool inherited;
  };
  std::vector<ListenerInfo> listeners() const;

  // One listening socket. Exposed for the implementation only.
  struct Listener {
    int fd = -1;
    std::string name;
    bool inherited = false;
    // Set for a path socket bound here: the inode, to be unlinked only if
    // the path still names it.
    bool owns_path = false;
    dev_t path_dev = 0;
    ino_t path_ino = 0;
  };

 private:
  LinuxUnixTransport(Options options, std::vector<Listener> listeners,
                     int epoll_fd, int wake_fd, int reserve_fd);

  const Options options_;
  std::vector<Listener> listeners_;  // A path socket bound again changes.

  const int epoll_fd_;  // Watches listeners_ and wake_fd_.
  const int wake_fd_;   // eventfd written by Shutdown().
  int reserve_fd_;      // Spare descriptor, given up to drop a client on
                        // EMFILE; -1 if none. Used by Serve() only.
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_LINUX_LINUX_UNIX_TRANSPORT_H_
