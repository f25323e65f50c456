// The extended protocol's wire format (docs/protocol.md): requests a tool
// sends and the replies it gets, shared by the server (domain/control_service)
// and the clients (client/control_client, portserverctl). The python client
// never sends it: an extended request starts with "portserver/<version>",
// a plain one is "<pid>\n" (domain/request_codec.h).
//
//   request = "portserver/" VERSION SP VERB *(SP KEY "=" VALUE) [CR] LF
//   reply   = "portserver/" VERSION SP ("ok" | "error") *(SP KEY "=" VALUE) LF
//             *(RECORD-KIND *(SP KEY "=" VALUE) LF)
//             "end" LF
//
// VALUEs are percent-encoded: bytes <= 0x20, >= 0x7f and '%' are written as
// "%XX" (upper-case hex), so a value never holds a space or a newline.
//
// Example:
//   std::string line = FormatControlRequest("allocate",
//       {{"pid", "1234"}, {"count", "5"}, {"label", "//a:b"}});
//   ControlRequest r = ParseControlRequest(line);      // r.ok, r.verb
//   ControlReplyBuilder reply;                          // server side
//   reply.Field("ports", "15000,15001");
//   std::string bytes = reply.Finish();
//   ParsedReply p = ParseControlReply(bytes);           // client side
//
// Thread-safe (pure functions; a builder is thread-compatible).
#ifndef PORTSERVER_DOMAIN_CONTROL_PROTOCOL_H_
#define PORTSERVER_DOMAIN_CONTROL_PROTOCOL_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace portserver {

// The protocol version this code speaks. A server answers a request of a
// newer version with its own version and error code "unsupported-version";
// a client reads the version of every reply's first word.
inline constexpr int kControlProtocolVersion = 1;
inline constexpr char kControlMagic[] = "portserver/";

// Limits (docs/protocol.md).
inline constexpr size_t kMaxPortsPerRequest = 1024;  // allocate count, release
inline constexpr size_t kMaxWhoPorts = 64;           // who ports=
// Ports whose records fit in one reply whatever they hold: a who of more
// (up to kMaxWhoPorts) is answered when its records fit, refused
// (bad-argument) when they do not. portserverctl asks this many at a time.
inline constexpr size_t kWhoPortsThatAlwaysFit = 20;
inline constexpr size_t kMaxLabelBytes = 128;        // decoded
inline constexpr size_t kMaxCommandLineBytes = 256;  // kept per owner
inline constexpr size_t kMaxReplyBytes = 32 * 1024;  // one reply, all lines
inline constexpr size_t kMaxLeasesPerPage = 1000;    // leases limit=
// The longest record a reply can hold: a leased port with the longest
// label and command line, every byte of them percent-encoded (3 bytes
// each), and the widest numbers; about 1,300 bytes (control_service_test
// builds one). A reply holds a header and at most kWhoPortsThatAlwaysFit
// of them, or
// leases records until one more might not fit.
inline constexpr size_t kMaxRecordBytes = 1536;
inline constexpr size_t kMaxReplyHeaderBytes = 1024;
static_assert(kMaxReplyHeaderBytes + kWhoPortsThatAlwaysFit * kMaxRecordBytes <=
                  kMaxReplyBytes,
              "a who reply must fit in one reply");

// True for a byte no label may hold (docs/protocol.md): a C0 control
// character or DEL, which could forge a line of the log or of
// portserverctl's output. The server refuses such a label, the journal's
// reader drops it, and the C++ client sends '?' in its place.
inline constexpr bool IsLabelControlByte(char ch) {
  auto c = static_cast<unsigned char>(ch);
  return c < 0x20 || c == 0x7f;
}

// The length of the longest prefix of `text` of at most `max_bytes` bytes
// that does not end inside a UTF-8 character: where a label or command line
// is cut (RFC 3629: a character's later bytes are 10xxxxxx). Thread-safe.
//   Utf8CutLength("h\xC3\xA9", 2) == 1
inline size_t Utf8CutLength(std::string_view text, size_t max_bytes) {
  size_t cut = std::min(text.size(), max_bytes);
  while (cut > 0 && cut < text.size() &&
         (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) {
    --cut;
  }
  return cut;
}

// A command line as leases record it, from the text a platform read
// (Linux: /proc/<pid>/cmdline with its NULs as spaces; Windows: the UTF-16
// command line as UTF-8): control characters as '?', as ps(1) shows them,
// so that it forges no line in a log or a listing; cut to at most
// `max_bytes` bytes between UTF-8 characters, the cut marked "...".
// Thread-safe.
//   DisplayCommandLine("sleep\t600", 256) == "sleep?600"
std::string DisplayCommandLine(std::string text, size_t max_bytes);

using Fields = std::vector<std::pair<std::string, std::string>>;

// "a b%" -> "a%20b%25".
std::string PercentEncode(std::string_view raw);
// The inverse; nullopt on a bad escape.
std::optional<std::string> PercentDecode(std::string_view encoded);

struct ControlRequest {
  bool ok = false;
  int version = 0;  // As the client wrote it (when it could be read).
  std::string verb;
  Fields args;                       // Decoded values, in request order.
  std::string error;                 // Why the request is malformed, when !ok.
  bool unsupported_version = false;  // !ok because version > ours.

  // The value of `key`, or nullopt. The last one wins if repeated.
  std::optional<std::string> Get(std::string_view key) const;
};

// Parses one extended request (its line, with or without the newline).
ControlRequest ParseControlRequest(std::string_view line);

// "portserver/1 <verb> k=v ...\n" with values encoded.
std::string FormatControlRequest(std::string_view verb, const Fields& args);

// Builds a reply: the header ("ok" unless Error() is called), records, and
// "end". Field values are encoded here.
class ControlReplyBuilder {
 public:
  ControlReplyBuilder() = default;
  // Turns the header into "error code=<code> message=<message>".
  void Error(std::string_view code, std::string_view message);
  // Adds a field to the header.
  void Field(std::string_view key, std::string_view value);
  void Field(std::string_view key, int64_t value);
  // Starts a record line of kind `kind` ("lease", "port", "metric", ...).
  void Record(std::string_view kind);
  // Adds a field to the last record.
  void RecordField(std::string_view key, std::string_view value);
  void RecordField(std::string_view key, int64_t value);
  // Bytes so far (header and records), to keep a reply under kMaxReplyBytes.
  size_t size() const;
  // The whole reply, ending with "end\n".
  std::string Finish() const;

 private:
  bool error_ = false;
  std::string header_fields_;
  std::string records_;
};

struct ReplyLine {
  std::string kind;  // "ok"/"error" for the header; the record kind.
  Fields fields;     // Decoded.
  std::optional<std::string> Get(std::string_view key) const;
};

struct ParsedReply {
  bool ok = false;  // Well formed (whatever the header says).
  int version = 0;
  std::string error;  // Why the bytes are not a reply, when !ok.
  ReplyLine header;   // kind "ok" or "error"
  std::vector<ReplyLine> records;
  bool complete = false;  // The "end" line was there.
  bool is_error() const { return header.kind == "error"; }
};

// Parses the bytes of a reply. An empty input (the server closed without a
// reply: a server that does not speak the extended protocol) is !ok with
// error "no reply".
ParsedReply ParseControlReply(std::string_view bytes);

// "15000,15001" <-> ports. Parse rejects 0, > 65535, empty items, more than
// `max_count` ports and duplicates; then, if `why` is not null, sets it to
// what was wrong, e.g. "port 15000 is named twice".
std::string FormatPortList(const std::vector<uint16_t>& ports);
std::optional<std::vector<uint16_t>> ParsePortList(std::string_view text,
                                                   size_t max_count,
                                                   std::string* why = nullptr);

// A decimal int64 without sign junk: digits only, optional leading '-'.
std::optional<int64_t> ParseInt(std::string_view text);

}  // namespace portserver

#endif  // PORTSERVER_DOMAIN_CONTROL_PROTOCOL_H_
