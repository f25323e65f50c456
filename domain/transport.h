// Transport: carries requests in and answers out. The domain implements
// RequestHandler; an adapter (an AF_UNIX server on Linux, a named pipe on
// Windows, an in-memory queue in tests) implements Transport and calls it.
//
// Example:
//   PortService service(...);              // a RequestHandler
//   ServeResult r = transport.Serve(service);  // until Shutdown()
//
// A transport delivers each connection's bytes up to and including the first
// '\n' (or what arrived before end of stream, the size limit or the read
// timeout) as one Request, writes the returned reply, if any, and closes.
#ifndef PORTSERVER_DOMAIN_TRANSPORT_H_
#define PORTSERVER_DOMAIN_TRANSPORT_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace portserver {

// Who is on the other end, as the kernel reports it (SO_PEERCRED on Linux).
// `known` is false where the transport cannot tell. A known `pid` of 0 is
// a caller the server's pid namespace cannot see (SO_PEERCRED, unix(7)).
struct PeerCredentials {
  bool known = false;
  int64_t pid = 0;
  uint32_t uid = 0;
};

struct Request {
  // Why the transport stopped reading.
  enum class End {
    kNewline,       // `data` ends with the first '\n' the client sent.
    kEof,           // The client closed its side; `data` is all it sent.
    kTooLong,       // The size limit was reached before any '\n'.
    kTimedOut,      // The client sent no complete request in time.
    kOverCapacity,  // Closed before a complete request: the server was at
                    // its connection cap and this was the oldest connection.
                    // `data` is what it had sent; no reply is sent.
  };
  std::string_view data;
  End end = End::kNewline;
  PeerCredentials peer;
};

// Implemented by the domain. Thread-safe implementations may be shared by
// several transports.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // Returns the bytes to send back; an empty string means "close without a
  // reply", which clients read as a denial.
  virtual std::string HandleRequest(const Request& request) = 0;
  // Called once the reply to a request has been sent and its connection
  // closed (or closed without a reply), on the thread that called
  // HandleRequest for it: for work the client need not wait for.
  // Transports call it once for every request they handed to
  // HandleRequest; one that writes replies asynchronously (Windows) may
  // handle other requests before a reply's write completes. The default
  // does nothing.
  virtual void AfterReply() {}
  // Called by a transport that could not accept a connection for want of
  // descriptors (EMFILE, ENFILE): gives back descriptors kept only to save
  // work (the process probe's remembered pidfds). True if any was given
  // back; the transport then tries once more. The default gives nothing.
  virtual bool ReleaseDescriptors() { return false; }
  // Called when a connection was closed unanswered because no descriptor
  // (or kernel memory) was left for it: to count it (as a refused
  // connection) and say why. `process_limit`: the process's own descriptor
  // limit was reached (EMFILE), not the host's file table or memory
  // (ENFILE, ENOBUFS, ENOMEM). The default does nothing.
  virtual void RefusedForDescriptors(bool process_limit) {}
};

struct ServeResult {
  bool ok = true;
  std::string error;  // Set when !ok: why serving stopped.
};

class Transport {
 public:
  Transport() = default;
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;
  virtual ~Transport() = default;

  // Serves requests with `handler` until Shutdown() is called (returns ok)
  // or the transport fails (returns the error). Calls `handler` from the
  // calling thread only.
  virtual ServeResult Serve(RequestHandler& handler) = 0;

  // Makes Serve() return soon. Thread-safe; may be called before Serve().
  virtual void Shutdown() = 0;
};

}  // namespace portserver

#endif  // PORTSERVER_DOMAIN_TRANSPORT_H_
