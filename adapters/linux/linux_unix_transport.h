// LinuxUnixTransport: a Transport that serves an AF_UNIX stream socket, in
// the Linux abstract namespace ("@name") or at a filesystem path, with one
// thread and epoll. Each connection delivers one Request (up to the first
// '\n', end of stream, `max_request_bytes` or `read_timeout`), gets the
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
// Thread-safety: Shutdown() may be called from any thread and from a signal
// handler. Serve() runs on one thread at a time. The destructor must not
// run while Serve() does.
#ifndef PORTSERVER_ADAPTERS_LINUX_LINUX_UNIX_TRANSPORT_H_
#define PORTSERVER_ADAPTERS_LINUX_LINUX_UNIX_TRANSPORT_H_

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "domain/request_codec.h"
#include "domain/transport.h"

namespace portserver {

class LinuxUnixTransport final : public Transport {
 public:
  struct Options {
    // "@name" for the abstract namespace (no file; gone with the process),
    // anything else is a filesystem path. Required.
    std::string address;
    // How long a client may take, from accept, to send its request. > 0.
    absl::Duration read_timeout = absl::Seconds(5);
    // Reading stops here without a '\n' (Request::End::kTooLong). >= 1.
    size_t max_request_bytes = kMaxRequestBytes;
    // Most open connections. When a new one arrives at the cap, the oldest
    // (which has not sent a complete request) is closed without a reply and
    // handed to the handler as Request::End::kOverCapacity. >= 1.
    size_t max_connections = 1024;
  };

  // Creates, binds and listens the socket. Errors:
  //   InvalidArgument: bad options; empty address or too long for sun_path.
  //   AlreadyExists: another server listens on the address ("... in use").
  //   FailedPrecondition: something that is not a socket is at the path
  //     (it is left alone).
  //   Other codes from the errno of a failed system call.
  // A socket file left at the path by a dead server is replaced.
  // A path socket gets mode 0666 (restrict access through its directory)
  // and is removed by the destructor if it is still the one bound here.
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

 private:
  LinuxUnixTransport(Options options, int listen_fd, int epoll_fd, int wake_fd,
                     int reserve_fd, bool owns_path, dev_t path_dev,
                     ino_t path_ino);

  const Options options_;
  const int listen_fd_;
  const int epoll_fd_;  // Watches listen_fd_ and wake_fd_.
  const int wake_fd_;   // eventfd written by Shutdown().
  int reserve_fd_;      // Spare descriptor, given up to drop a client on
                        // EMFILE; -1 if none. Used by Serve() only.
  // Set for a path socket: the inode this transport bound, to be unlinked
  // by the destructor only if the path still names it.
  const bool owns_path_;
  const dev_t path_dev_;
  const ino_t path_ino_;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_LINUX_LINUX_UNIX_TRANSPORT_H_
