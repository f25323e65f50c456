#include "domain/control_protocol.h"

#include <algorithm>
#include <limits>
#include <set>
#include <utility>

namespace portserver {
namespace {

constexpr char kHex[] = "0123456789ABCDEF";

// `text` with each byte for which escape(byte) holds written as %XX.
template <typename Predicate>
std::string EscapeBytes(std::string_view text, Predicate escape) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (escape(c)) {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += ch;
    }
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Splits on single spaces; empty words (two spaces) are kept so that the
// caller can reject them.
std::vector<std::string_view> Words(std::string_view line) {
  std::vector<std::string_view> words;
  size_t start = 0;
  while (true) {
    size_t space = line.find(' ', start);
    if (space == std::string_view::npos) {
      words.push_back(line.substr(start));
      return words;
    }
    words.push_back(line.substr(start, space - start));
    start = space + 1;
  }
}

std::string_view StripNewline(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// "portserver/<n>" -> n, or nullopt.
std::optional<int> ParseMagic(std::string_view word) {
  std::string_view magic = kControlMagic;
  if (word.substr(0, magic.size()) != magic) return std::nullopt;
  std::string_view digits = word.substr(magic.size());
  if (digits.empty()) return std::nullopt;
  // Any number of digits is a version (1*DIGIT); one too big for an int is
  // still newer than ours, so it saturates instead of being malformed.
  constexpr int kHuge = 1000000;
  int version = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    version = std::min(version * 10 + (c - '0'), kHuge);
  }
  return version;
}

bool IsToken(std::string_view word) {
  if (word.empty()) return false;
  for (char c : word) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_')) {
      return false;
    }
  }
  return true;
}

// A request's word for an error message: as sent, but for control and
// non-ASCII bytes, written %XX so that logs stay one plain line. ('%' stays:
// the message is percent-encoded once more on the wire, like any value.)
std::string QuoteWord(std::string_view word) {
  return EscapeBytes(word,
                     [](unsigned char c) { return c < 0x20 || c >= 0x7f; });
}

// Parses "k=v" words into `fields`; returns an error text or "".
std::string ParseFields(const std::vector<std::string_view>& words,
                        size_t first, Fields& fields) {
  for (size_t i = first; i < words.size(); ++i) {
    std::string_view word = words[i];
    size_t eq = word.find('=');
    if (eq == std::string_view::npos || !IsToken(word.substr(0, eq))) {
      return "bad argument \"" + QuoteWord(word) + "\": want key=value";
    }
    std::optional<std::string> value = PercentDecode(word.substr(eq + 1));
    if (!value) {
      return "bad percent-encoding in \"" + QuoteWord(word) + "\"";
    }
    fields.emplace_back(std::string(word.substr(0, eq)), std::move(*value));
  }
  return "";
}

std::optional<std::string> Lookup(const Fields& fields, std::string_view key) {
  std::optional<std::string> found;
  for (const auto& [k, v] : fields) {
    if (k == key) found = v;
  }
  return found;
}

void AppendField(std::string& out, std::string_view key,
                 std::string_view value) {
  out += ' ';
  out += key;
  out += '=';
  out += PercentEncode(value);
}

}  // namespace

std::string DisplayCommandLine(std::string text, size_t max_bytes) {
  for (char& c : text) {
    if (IsLabelControlByte(c)) c = '?';
  }
  if (text.size() > max_bytes) {
    text.resize(Utf8CutLength(text, max_bytes >= 3 ? max_bytes - 3 : 0));
    text += "...";
    text.resize(std::min(text.size(), max_bytes));
  }
  return text;
}

std::string PercentEncode(std::string_view raw) {
  return EscapeBytes(
      raw, [](unsigned char c) { return c <= 0x20 || c >= 0x7f || c == '%'; });
}

std::optional<std::string> PercentDecode(std::string_view encoded) {
  std::string out;
  out.reserve(encoded.size());
  for (size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] != '%') {
      out += encoded[i];
      continue;
    }
    if (i + 2 >= encoded.size()) return std::nullopt;
    int hi = HexValue(encoded[i + 1]);
    int lo = HexValue(encoded[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::optional<std::string> ControlRequest::Get(std::string_view key) const {
  return Lookup(args, key);
}

std::optional<std::string> ReplyLine::Get(std::string_view key) const {
  return Lookup(fields, key);
}

ControlRequest ParseControlRequest(std::string_view line) {
  ControlRequest r;
  line = StripNewline(line);
  if (line.find('\n') != std::string_view::npos ||
      line.find('\r') != std::string_view::npos) {
    r.error = "a request is one line";
    return r;
  }
  std::vector<std::string_view> words = Words(line);
  std::optional<int> version = ParseMagic(words[0]);
  if (!version || *version == 0) {
    r.error = std::string("an extended request starts with \"") +
              kControlMagic + "<version>\"";
    return r;
  }
  r.version = *version;
  if (*version > kControlProtocolVersion) {
    r.unsupported_version = true;
    r.error = "protocol version " +
              std::string(words[0].substr(sizeof(kControlMagic) - 1)) +
              " is not supported; this server speaks " + kControlMagic +
              std::to_string(kControlProtocolVersion);
    return r;
  }
  if (words.size() < 2 || words[1].empty()) {
    r.error = "no verb after " + std::string(words[0]);
    return r;
  }
  if (!IsToken(words[1])) {
    // "STATUS", "status\0": there is a verb, but not one of this form.
    r.error = "bad verb \"" + DisplayCommandLine(std::string(words[1]), 32) +
              "\": verbs are lower-case letters, digits, '-' and '_'";
    return r;
  }
  r.verb = std::string(words[1]);
  r.error = ParseFields(words, 2, r.args);
  r.ok = r.error.empty();
  return r;
}

std::string FormatControlRequest(std::string_view verb, const Fields& args) {
  std::string out = kControlMagic + std::to_string(kControlProtocolVersion);
  out += ' ';
  out += verb;
  for (const auto& [k, v] : args) AppendField(out, k, v);
  out += '\n';
  return out;
}

void ControlReplyBuilder::Error(std::string_view code,
                                std::string_view message) {
  error_ = true;
  std::string fields;
  AppendField(fields, "code", code);
  AppendField(fields, "message", message);
  header_fields_ = fields + header_fields_;
}

void ControlReplyBuilder::Field(std::string_view key, std::string_view value) {
  AppendField(header_fields_, key, value);
}

void ControlReplyBuilder::Field(std::string_view key, int64_t value) {
  Field(key, std::to_string(value));
}

void ControlReplyBuilder::Record(std::string_view kind) {
  records_ += kind;
  records_ += '\n';
}

void ControlReplyBuilder::RecordField(std::string_view key,
                                      std::string_view value) {
  // Insert before the record's newline.
  records_.pop_back();
  AppendField(records_, key, value);
  records_ += '\n';
}

void ControlReplyBuilder::RecordField(std::string_view key, int64_t value) {
  RecordField(key, std::to_string(value));
}

size_t ControlReplyBuilder::size() const {
  return 20 + header_fields_.size() + records_.size();
}

std::string ControlReplyBuilder::Finish() const {
  std::string out = kControlMagic + std::to_string(kControlProtocolVersion);
  out += error_ ? " error" : " ok";
  out += header_fields_;
  out += '\n';
  out += records_;
  out += "end\n";
  return out;
}

ParsedReply ParseControlReply(std::string_view bytes) {
  ParsedReply p;
  if (bytes.empty()) {
    p.error = "no reply";
    return p;
  }
  size_t start = 0;
  bool first = true;
  while (start < bytes.size()) {
    size_t newline = bytes.find('\n', start);
    if (newline == std::string_view::npos) {
      p.error = "reply cut short (no newline after its last line)";
      return p;
    }
    std::string_view line = StripNewline(bytes.substr(start, newline - start));
    start = newline + 1;
    if (p.complete) {
      p.error = "bytes after \"end\"";
      return p;
    }
    std::vector<std::string_view> words = Words(line);
    if (first) {
      first = false;
      std::optional<int> version = ParseMagic(words[0]);
      if (!version || words.size() < 2 ||
          (words[1] != "ok" && words[1] != "error")) {
        p.error = "not a reply of the extended protocol: \"" +
                  PercentEncode(line.substr(0, 80)) + "\"";
        return p;
      }
      p.version = *version;
      p.header.kind = std::string(words[1]);
      std::string error = ParseFields(words, 2, p.header.fields);
      if (!error.empty()) {
        p.error = error;
        return p;
      }
      continue;
    }
    if (line == "end") {
      p.complete = true;
      continue;
    }
    if (!IsToken(words[0])) {
      p.error = "bad record \"" + PercentEncode(line.substr(0, 80)) + "\"";
      return p;
    }
    ReplyLine record;
    record.kind = std::string(words[0]);
    std::string error = ParseFields(words, 1, record.fields);
    if (!error.empty()) {
      p.error = error;
      return p;
    }
    p.records.push_back(std::move(record));
  }
  if (!p.complete) {
    p.error = "reply cut short (no \"end\" line)";
    return p;
  }
  p.ok = true;
  return p;
}

std::string FormatPortList(const std::vector<uint16_t>& ports) {
  std::string out;
  for (uint16_t port : ports) {
    if (!out.empty()) out += ',';
    out += std::to_string(port);
  }
  return out;
}

std::optional<int64_t> ParseInt(std::string_view text) {
  bool negative = !text.empty() && text.front() == '-';
  if (negative) text.remove_prefix(1);
  if (text.empty() || text.size() > 18) return std::nullopt;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return negative ? -value : value;
}

std::optional<std::vector<uint16_t>> ParsePortList(std::string_view text,
                                                   size_t max_count,
                                                   std::string* why) {
  auto fail =
      [why](std::string message) -> std::optional<std::vector<uint16_t>> {
    if (why != nullptr) *why = std::move(message);
    return std::nullopt;
  };
  std::vector<uint16_t> ports;
  std::set<uint16_t> seen;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view item = text.substr(start, comma == std::string_view::npos
                                                   ? std::string_view::npos
                                                   : comma - start);
    std::optional<int64_t> port = ParseInt(item);
    if (!port || *port < 1 || *port > 65535) {
      return fail(item.empty() ? "an empty port"
                               : "a port that is not 1-65535");
    }
    if (!seen.insert(static_cast<uint16_t>(*port)).second) {
      return fail("port " + std::to_string(*port) + " is named twice");
    }
    ports.push_back(static_cast<uint16_t>(*port));
    if (ports.size() > max_count) {
      return fail("more than " + std::to_string(max_count) + " ports");
    }
    if (comma == std::string_view::npos) return ports;
    start = comma + 1;
  }
}

}  // namespace portserver
