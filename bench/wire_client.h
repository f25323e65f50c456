// WireClient: one request of the port server protocol, timed on the client
// side, plus the monotonic clock and the flag parsing the bench tools share.
//
// Example:
//   Reply r = AskForPort("@unittest-portserver", getpid());
//   if (r.kind == Reply::Kind::kPort) Use(r.port);   // r.nanos: latency
//
// Thread-compatible; no global state. Linux only (AF_UNIX, abstract names).
#ifndef PORTSERVER_BENCH_WIRE_CLIENT_H_
#define PORTSERVER_BENCH_WIRE_CLIENT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace portserver_bench {

// CLOCK_MONOTONIC in nanoseconds.
int64_t NowNanos();

struct Reply {
  enum class Kind {
    kPort,      // "<port>\n" arrived.
    kDenied,    // The server closed without sending a byte.
    kNoServer,  // connect() failed: nothing listens (yet) at the address.
    kBadReply,  // Bytes that are not "<port>\n", or a read error.
  };
  Kind kind = Kind::kBadReply;
  int port = 0;
  int64_t nanos = 0;  // socket() to end of stream.
  int error = 0;      // errno for kNoServer and read errors.
};

// One exchange on a new connection to `address` ("@name": abstract, else a
// path): sends `request`, then reads to end of stream, keeping at most
// `max_reply` bytes (reading stops there). Blocks (no timeout: the servers
// under test answer or close).
struct Exchanged {
  bool connected = false;  // False: socket() or connect() failed (`error`).
  std::string reply;       // The bytes read.
  int64_t nanos = 0;       // socket() to end of stream (or to the failure).
  int error = 0;           // errno of the failed call, or of a read error.
};
Exchanged Exchange(const std::string& address, std::string_view request,
                   size_t max_reply);

// Exchange(address, "<pid>\n", 64), the reply parsed as the plain protocol.
Reply AskForPort(const std::string& address, int64_t pid);

// Latency summary of a sample in nanoseconds (sorted in place).
struct Percentiles {
  size_t count = 0;
  int64_t p50 = 0;
  int64_t p99 = 0;
  int64_t max = 0;
  int64_t min = 0;
};
Percentiles Summarize(std::vector<int64_t>& nanos);

// Minimal "--name=value" parsing for the bench tools: no dependency, no
// global registry.
class Flags {
 public:
  Flags(int argc, char** argv);
  // The value of --name=..., or `fallback`. Marks the flag as used.
  std::string Get(std::string_view name, const std::string& fallback);
  int64_t GetInt(std::string_view name, int64_t fallback);
  double GetDouble(std::string_view name, double fallback);
  bool Has(std::string_view name);
  // Arguments after a lone "--".
  const std::vector<std::string>& rest() const { return rest_; }
  // Exits 2 naming the first flag that was given but never asked for.
  void CheckAllUsed(const char* program) const;

 private:
  struct Arg {
    std::string name;
    std::string value;
    bool used = false;
  };
  Arg* Find(std::string_view name);
  std::vector<Arg> args_;
  std::vector<std::string> rest_;
};

// Parses "N-P[,N-P...]" (a single "N" allowed) into ports in order. Returns
// false on anything else.
bool ParsePool(const std::string& spec, std::vector<uint16_t>* ports);

}  // namespace portserver_bench

#endif  // PORTSERVER_BENCH_WIRE_CLIENT_H_
