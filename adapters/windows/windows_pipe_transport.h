// WindowsPipeTransport: a Transport that serves a named pipe (the Windows
// counterpart of LinuxUnixTransport), with one thread, overlapped I/O and an
// I/O completion port. Each client gets a pipe instance of its own, and
// free instances always wait for the next clients: the python client opens
// the pipe once and fails on ERROR_PIPE_BUSY, it never waits. Each
// connection delivers one Request (up to the first '\n', end of stream,
// `max_request_bytes` or `read_timeout`), gets the handler's reply in one
// write, and is closed. A slow or idle client never stalls the others.
//
// No reply to a plain request (a denial) is written as kDenialReply, a
// lone newline (an extended request cut at the connection cap is closed
// without one, as on Linux): python's
// Windows client reads the pipe with ReadFile and catches only
// FileNotFoundError, so a pipe closed without a reply raised
// BrokenPipeError out of pick_unused_port() on every denial; an empty line
// is its "Portserver failed to find a port." (a ValueError it catches), and
// it falls back as on Linux, where the reference closes without a reply
// (portpicker 1.5.2's _get_windows_port_from_port_server).
//
// Address (portserver(1)): "@name" is the pipe "\\.\pipe\name"; a name that
// already starts with "\\.\pipe\" is used as is.
//
// Example:
//   WindowsPipeTransport::Options options;
//   options.address = "@unittest-portserver";
//   absl::StatusOr<std::unique_ptr<WindowsPipeTransport>> transport =
//       WindowsPipeTransport::Create(options);  // First instance created.
//   if (!transport.ok()) return transport.status();
//   ServeResult result = (*transport)->Serve(handler);  // Until Shutdown().
//
// Callers are identified by the kernel: the client's pid
// (GetNamedPipeClientProcessId) and the user of its token (read by
// impersonating the client, or from its process), mapped to uids as
// adapters/windows/windows_user.h says (administrators are uid 0).
// A caller whose user cannot be told gets kUnknownUid, which matches no
// process.
//
// Thread-safety: Shutdown() may be called from any thread (a console
// control handler included). Serve() runs on one thread at a time. The
// destructor must not run while Serve() does.
#ifndef PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_PIPE_TRANSPORT_H_
#define PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_PIPE_TRANSPORT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "adapters/windows/windows_error.h"
#include "domain/request_codec.h"
#include "domain/transport.h"

namespace portserver {

class WindowsPipeTransport final : public Transport {
 public:
  struct Options {
    // "@name" or "\\.\pipe\name". Required.
    std::string address;
    // How long a client may take, from connecting, to send its request. > 0.
    absl::Duration read_timeout = absl::Seconds(5);
    // Reading stops here without a '\n' (Request::End::kTooLong). >= 1.
    // An extended request (RequestByteLimit in domain/request_codec.h) may
    // have up to kMaxExtendedRequestBytes instead.
    size_t max_request_bytes = kMaxRequestBytes;
    // Most open connections. When a new one arrives at the cap, the oldest
    // (which has not sent a complete request) is closed without a reply and
    // handed to the handler as Request::End::kOverCapacity. >= 1.
    size_t max_connections = 1024;
    // Free instances kept waiting for clients. A client that arrives while
    // all are taken, before the server has made new ones, gets
    // ERROR_PIPE_BUSY (python's client then fails: it does not wait). 64:
    // under wine, 32 python-style clients started at once got 3 busy
    // answers with 16 (64 got 32). >= 1.
    size_t listening_instances = 64;
  };

  // What a denial (the handler's empty reply) is written as; see above.
  static constexpr char kDenialReply[] = "\n";

  // The uid of a caller whose user cannot be told.
  static constexpr uint32_t kUnknownUid = 0xFFFFFFFFu;

  // The pipe name of `address`: "@x" -> "\\.\pipe\x"; "\\.\pipe\x" (any
  // case) unchanged. InvalidArgument for anything else, an empty name, or a
  // name longer than 256 characters.
  static absl::StatusOr<std::string> PipeName(const std::string& address);

  // `name` fit for a kernel object's name after its namespace: each '\'
  // written '_', and if one was, "-" and the FNV-1a of `name` in 8 hex
  // digits after it (so that "a\b" and "a_b" differ). Thread-safe.
  static std::string KernelObjectName(std::string name);
  // "Global\portserver-pipe-" and KernelObjectName of the pipe name (without
  // "\\.\pipe\") in lower case: the named mutex a server holds while it
  // serves `pipe_name` ("\\.\pipe\...").
  static std::string PipeLockName(const std::string& pipe_name);

  // Takes the pipe's lock (PipeLockName), then creates the completion port
  // and the free instances, the first with FILE_FLAG_FIRST_PIPE_INSTANCE:
  // clients may connect from now on, and are served once Serve() runs.
  // Errors:
  //   InvalidArgument: bad options or address.
  //   AlreadyExists: another process serves the pipe ("... in use").
  //   Other codes from a failed Win32 call (WindowsError).
  static absl::StatusOr<std::unique_ptr<WindowsPipeTransport>> Create(
      const Options& options);

  ~WindowsPipeTransport() override;

  // Serves until Shutdown() (returns ok, after closing open connections
  // without calling `handler` for them) or an unexpected failure of the
  // completion port. Calls `handler` on this thread, once per connection
  // that gets as far as a request (connections evicted at the cap
  // included).
  ServeResult Serve(RequestHandler& handler) override;

  // Makes Serve() return soon, or at once if it has not started yet; every
  // later Serve() also returns at once.
  void Shutdown() override;

  const std::string& address() const { return options_.address; }
  // "\\.\pipe\..." as created.
  const std::string& pipe_name() const { return pipe_name_; }

 private:
  WindowsPipeTransport(Options options, std::string pipe_name,
                       ScopedHandle lock, ScopedHandle port,
                       std::vector<ScopedHandle> ready);

  const Options options_;
  const std::string pipe_name_;
  const ScopedHandle lock_;  // Named mutex PipeLockName(pipe_name_).
  const ScopedHandle port_;  // The I/O completion port.
  // The instances made by Create(), until the first Serve() takes them.
  std::vector<ScopedHandle> ready_;
  std::atomic<bool> shutdown_{false};
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_PIPE_TRANSPORT_H_
