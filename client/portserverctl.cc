// portserverctl: asks a running port server what it holds, over the
// extended protocol (docs/protocol.md).
//
//   portserverctl [--address A] [--json] status
//   portserverctl [--address A] [--json] leases [--owner PID] [--label L]
//   portserverctl [--address A] [--json] who PORT...
//   portserverctl [--address A] [--json] release PORT...
//   portserverctl [--address A] [--json] metrics
//   portserverctl [--address A] [--json] version
//
// The address defaults to $PORTSERVER_ADDRESS, then @unittest-portserver.
// Output is for people (aligned columns, ages such as "3m12s") unless --json.
// Exit status: 0 done; 1 refused, (who) a port neither leased nor carried, or
// the output could not be written; 2 usage; 3 no server (none listening, or
// one without the extended protocol).
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "app/version.h"
#include "client/cli_platform.h"
#include "client/control_client.h"
#include "client/ctl_format.h"
#include "client/portpicker.h"
#include "domain/control_protocol.h"

namespace {

using portpicker::FormatAge;
using portpicker::JsonString;
using portpicker::LabelCell;
using portpicker::PrintableCell;
using portpicker::Table;
using portserver::Fields;
using portserver::ParsedReply;
using portserver::ReplyLine;

constexpr int kDone = 0;
constexpr int kRefused = 1;
constexpr int kUsage = 2;
constexpr int kNoServer = 3;

constexpr char kDefaultAddress[] = "@unittest-portserver";

constexpr char kUsageText[] =
    "usage: portserverctl [--address A] [--json] COMMAND\n"
    "\n"
    "Asks a running portserver what it holds.\n"
    "\n"
    "commands:\n"
    "  status              version, uptime, pool, leases, statistics\n"
    "  leases [--owner PID] [--label L]\n"
    "                      every lease: port, owner, age, label, command line\n"
    "                      (L as portpicker sends a label: cut to 128 bytes,\n"
    "                      control characters as '?')\n"
    "  who PORT...         who holds each port (1024 at most), or whether\n"
    "                      it is free, in TIME_WAIT, busy outside the\n"
    "                      server, locked by another port server, unknown\n"
    "                      (the probe could not tell), not in the pool, or\n"
    "                      carried (outside the pool, kept for the owner of\n"
    "                      a lease journaled under another pool)\n"
#ifdef _WIN32
    "  release PORT...     end these leases now (all or none; only their\n"
    "                      owner's user or an administrator)\n"
#else
    "  release PORT...     end these leases now (all or none; only their\n"
    "                      owner's user or root)\n"
#endif
    "  metrics             statistics in Prometheus text format\n"
    "  version             this tool's and the server's versions\n"
    "\n"
    "options:\n"
    "  --address A         the server's address (default: "
    "$PORTSERVER_ADDRESS,\n"
#ifdef _WIN32
    "                      then @unittest-portserver; a leading @ stands\n"
    "                      for \\\\.\\pipe\\)\n"
#else
    "                      then @unittest-portserver; a leading @ is the\n"
    "                      abstract namespace)\n"
#endif
    "  --json              machine-readable output (one JSON object)\n"
    "  -h, --help          print this help and exit\n"
    "  --version           print portserverctl's version and exit (the\n"
    "                      version command asks the server for its own)\n"
    "\n"
    "exit status: 0 done, 1 refused or not found (who: a port neither leased\n"
    "nor carried)\n"
    "or the output could not be written, 2 usage, 3 no server (or one\n"
    "without the extended protocol).\n";

struct Args {
  std::string address;
  bool json = false;
  std::string verb;
  std::vector<std::string> operands;
  std::string owner;
  std::optional<std::string> label;
};

// `code`, unless what was printed could not all be written (a full disk, a
// closed stdout): then 1, with a message, so that `portserverctl --json
// leases > file` does not leave an empty file and succeed.
int Finish(int code) {
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    std::fprintf(stderr, "portserverctl: cannot write the output: %s\n",
                 std::strerror(errno));
    return code == kDone ? kRefused : code;
  }
  return code;
}

int Usage(const std::string& message) {
  std::fprintf(stderr, "portserverctl: %s\n(see portserverctl --help)\n",
               message.c_str());
  return kUsage;
}

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

int64_t IntField(const ReplyLine& line, const char* key, int64_t fallback) {
  int64_t value = fallback;
  std::optional<std::string> text = line.Get(key);
  if (text && absl::SimpleAtoi(*text, &value)) return value;
  return fallback;
}

// A JSON object of a record's fields: numbers where the field is numeric.
std::string JsonObject(const ReplyLine& line) {
  static const char* const kNumeric[] = {"port",       "pid",      "uid",
                                         "started_ms", "since_ms", "value"};
  std::vector<std::string> members;
  for (const auto& [key, value] : line.fields) {
    bool numeric = false;
    for (const char* n : kNumeric) numeric = numeric || key == n;
    int64_t number = 0;
    if (key == "cmdline_hidden") {
      members.push_back(JsonString(key) + ":true");
    } else if (numeric && absl::SimpleAtoi(value, &number)) {
      members.push_back(JsonString(key) + ":" + std::to_string(number));
    } else {
      members.push_back(JsonString(key) + ":" + JsonString(value));
    }
  }
  return "{" + absl::StrJoin(members, ",") + "}";
}

class Ctl {
 public:
  explicit Ctl(Args args) : args_(std::move(args)) {}

  int Run() {
    if (args_.verb == "status") return Status();
    if (args_.verb == "leases") return Leases();
    if (args_.verb == "who") return Who();
    if (args_.verb == "release") return Release();
    if (args_.verb == "metrics") return Metrics();
    if (args_.verb == "version") return Version();
    return Usage("unknown command \"" + args_.verb + "\"");
  }

 private:
  // One exchange; on failure prints why and sets *exit_code.
  std::optional<ParsedReply> Ask(const std::string& verb, const Fields& args,
                                 int* exit_code) {
    absl::StatusOr<ParsedReply> reply = portpicker::ControlExchange(
        args_.address, portserver::FormatControlRequest(verb, args));
    if (!reply.ok()) {
      std::fprintf(stderr, "portserverctl: %s\n",
                   std::string(reply.status().message()).c_str());
      if (args_.json) {
        std::printf("{\"error\":{\"code\":\"no-server\",\"message\":%s}}\n",
                    JsonString(std::string(reply.status().message())).c_str());
      }
      *exit_code = kNoServer;
      return std::nullopt;
    }
    if (reply->is_error()) {
      std::string code = reply->header.Get("code").value_or("error");
      std::string message = reply->header.Get("message").value_or(code);
      std::fprintf(stderr, "portserverctl: %s\n", message.c_str());
      if (args_.json) {
        std::printf("{\"error\":{\"code\":%s,\"message\":%s}}\n",
                    JsonString(code).c_str(), JsonString(message).c_str());
      }
      *exit_code = kRefused;
      return std::nullopt;
    }
    return *std::move(reply);
  }

  int Status() {
    if (!args_.operands.empty()) return Usage("status takes no operands");
    int code = kDone;
    std::optional<ParsedReply> r = Ask("status", {}, &code);
    if (!r) return code;
    const ReplyLine& h = r->header;
    if (args_.json) {
      std::vector<std::string> stats;
      for (const ReplyLine& s : r->records) {
        stats.push_back(JsonString(s.Get("name").value_or("")) + ":" +
                        std::to_string(IntField(s, "value", 0)));
      }
      std::printf(
          "{\"address\":%s,\"server\":%s,\"protocol\":%lld,\"uptime_ms\":%lld,"
          "\"pool\":%lld,\"free\":%lld,\"leased\":%lld,\"busy_cooling\":%lld,"
          "\"time_wait_cooling\":%lld,\"owners\":%lld,\"stats\":{%s}}\n",
          JsonString(args_.address).c_str(),
          JsonString(h.Get("server").value_or("")).c_str(),
          static_cast<long long>(IntField(h, "protocol", 0)),
          static_cast<long long>(IntField(h, "uptime_ms", 0)),
          static_cast<long long>(IntField(h, "pool", 0)),
          static_cast<long long>(IntField(h, "free", 0)),
          static_cast<long long>(IntField(h, "leased", 0)),
          static_cast<long long>(IntField(h, "busy_cooling", 0)),
          static_cast<long long>(IntField(h, "time_wait_cooling", 0)),
          static_cast<long long>(IntField(h, "owners", 0)),
          absl::StrJoin(stats, ",").c_str());
      return kDone;
    }
    std::printf("portserver %s (protocol %s) at %s, up %s\n",
                h.Get("server").value_or("?").c_str(),
                h.Get("protocol").value_or("?").c_str(), args_.address.c_str(),
                FormatAge(IntField(h, "uptime_ms", 0)).c_str());
    Table pool({"pool", h.Get("pool").value_or("?"), "ports"});
    pool.Add({"free", h.Get("free").value_or("?"), "waiting in the queue"});
    pool.Add({"leased", h.Get("leased").value_or("?"), "held by live owners"});
    pool.Add({"busy", h.Get("busy_cooling").value_or("?"),
              "in use outside the server, cooling"});
    pool.Add({"time-wait", h.Get("time_wait_cooling").value_or("?"),
              "bindable with SO_REUSEADDR only, cooling"});
    pool.Add({"owners", h.Get("owners").value_or("?"), "processes"});
    std::fputs(pool.Render().c_str(), stdout);
    Table stats({"statistic", "value"});
    for (const ReplyLine& s : r->records) {
      stats.Add({s.Get("name").value_or(""), s.Get("value").value_or("")});
    }
    std::printf("\n%s", stats.Render().c_str());
    return kDone;
  }

  // Rows of leases for people: PORT PID UID AGE LABEL COMMAND. The label and
  // command line are others' text: printable only (PrintableCell).
  static std::vector<std::string> LeaseRow(const ReplyLine& l, int64_t now) {
    int64_t since = IntField(l, "since_ms", -1);
    std::string command = l.Get("cmdline_hidden")
                              ? "(hidden: another user's, hidepid)"
                              : PrintableCell(l.Get("cmdline").value_or(""));
    return {l.Get("port").value_or(""),
            l.Get("pid").value_or(""),
            l.Get("uid").value_or("?"),
            since >= 0 ? FormatAge(now - since) : "?",
            PrintableCell(LabelCell(l.Get("label"))),
            command};
  }

  int Leases() {
    if (!args_.operands.empty()) {
      return Usage("leases takes only --owner PID and --label L");
    }
    Fields base;
    if (!args_.owner.empty()) base.emplace_back("owner", args_.owner);
    // The label as the C++ client and `portpicker` sent it (cut to 128 bytes
    // at a character boundary, control characters as '?'), so that
    // `--label "$TEST_TARGET"` finds the leases of a long or odd target.
    if (args_.label) {
      base.emplace_back("label", portpicker::SendableLabel(*args_.label));
    }
    std::vector<ReplyLine> leases;
    std::string after = "0";
    while (true) {
      Fields args = base;
      args.emplace_back("after", after);
      int code = kDone;
      std::optional<ParsedReply> r = Ask("leases", args, &code);
      if (!r) return code;
      for (ReplyLine& l : r->records) leases.push_back(std::move(l));
      std::optional<std::string> next = r->header.Get("next");
      if (!next) break;
      after = *next;
    }
    if (args_.json) {
      std::vector<std::string> items;
      for (const ReplyLine& l : leases) items.push_back(JsonObject(l));
      std::printf("{\"leases\":[%s]}\n", absl::StrJoin(items, ",").c_str());
      return kDone;
    }
    if (leases.empty()) {
      std::printf("no leases%s\n", base.empty() ? "" : " match");
      return kDone;
    }
    const int64_t now = NowMs();
    Table t({"PORT", "PID", "UID", "AGE", "LABEL", "COMMAND"});
    for (const ReplyLine& l : leases) t.Add(LeaseRow(l, now));
    std::fputs(t.Render().c_str(), stdout);
    return kDone;
  }

  std::optional<std::string> PortOperands(const char* verb, size_t max) {
    if (args_.operands.empty()) {
      Usage(std::string(verb) + " needs at least one PORT");
      return std::nullopt;
    }
    std::set<int> seen;
    for (const std::string& p : args_.operands) {
      int port = 0;
      if (!absl::SimpleAtoi(p, &port) || port < 1 || port > 65535) {
        Usage("bad port \"" + p + "\": want 1-65535");
        return std::nullopt;
      }
      // The server takes distinct ports only (docs/protocol.md).
      if (!seen.insert(port).second) {
        Usage(absl::StrCat("port ", port, " is named twice"));
        return std::nullopt;
      }
    }
    if (args_.operands.size() > max) {
      Usage(absl::StrCat(verb, " takes at most ", max, " ports"));
      return std::nullopt;
    }
    return absl::StrJoin(args_.operands, ",");
  }

  int Who() {
    if (!PortOperands("who", portserver::kMaxPortsPerRequest)) return kUsage;
    // A reply holds the records of kWhoPortsThatAlwaysFit ports whatever
    // their labels and command lines: ask in batches of that many, in
    // order.
    std::vector<ReplyLine> records;
    const std::vector<std::string>& operands = args_.operands;
    constexpr size_t kBatch = portserver::kWhoPortsThatAlwaysFit;
    for (size_t at = 0; at < operands.size(); at += kBatch) {
      size_t end = std::min(operands.size(), at + kBatch);
      std::vector<std::string> batch(operands.begin() + at,
                                     operands.begin() + end);
      int code = kDone;
      std::optional<ParsedReply> r =
          Ask("who", {{"ports", absl::StrJoin(batch, ",")}}, &code);
      if (!r) return code;
      for (ReplyLine& l : r->records) records.push_back(std::move(l));
    }
    // A carried lease (outside the pool, journaled under another pool and
    // kept for its live owner) is held too.
    auto held = [](const ReplyLine& p) {
      return p.Get("state") == "leased" || p.Get("state") == "carried";
    };
    bool all_leased = true;
    for (const ReplyLine& p : records) all_leased = all_leased && held(p);
    if (args_.json) {
      std::vector<std::string> items;
      for (const ReplyLine& p : records) items.push_back(JsonObject(p));
      std::printf("{\"ports\":[%s]}\n", absl::StrJoin(items, ",").c_str());
      return all_leased ? kDone : kRefused;
    }
    const int64_t now = NowMs();
    Table t({"PORT", "STATE", "PID", "UID", "SINCE", "LABEL", "COMMAND"});
    for (const ReplyLine& p : records) {
      std::string state = p.Get("state").value_or("?");
      if (!held(p)) {
        static const std::map<std::string, std::string> kSaid = {
            {"free", "free"},
            {"time-wait", "time-wait (SO_REUSEADDR binds only, for now)"},
            {"busy", "busy (in use outside the server)"},
            {"locked", "locked (another port server leased it)"},
            {"unknown", "unknown (the probe could not tell)"},
            {"not-in-pool", "not in the pool"}};
        auto said = kSaid.find(state);
        std::string what =
            said == kSaid.end() ? PrintableCell(state) : said->second;
        t.Add({p.Get("port").value_or(""), what});
        continue;
      }
      std::vector<std::string> row = LeaseRow(p, now);
      if (row[3] != "?") row[3] += " ago";
      std::string what = state == "leased"
                             ? "leased"
                             : "carried (outside the pool, for its owner)";
      if (p.Get("unlocked")) {
        // Restored while a neighbouring server held the port's lock.
        what += ", without its lock (another server may lease it too)";
      }
      t.Add({row[0], what, row[1], row[2], row[3], row[4], row[5]});
    }
    std::fputs(t.Render().c_str(), stdout);
    return all_leased ? kDone : kRefused;
  }

  int Release() {
    std::optional<std::string> ports =
        PortOperands("release", portserver::kMaxPortsPerRequest);
    if (!ports) return kUsage;
    int code = kDone;
    std::optional<ParsedReply> r = Ask("release", {{"ports", *ports}}, &code);
    if (!r) return code;
    std::string released = r->header.Get("released").value_or("");
    if (args_.json) {
      std::printf("{\"released\":[%s]}\n", released.c_str());
    } else {
      std::printf("released %s\n",
                  absl::StrJoin(absl::StrSplit(released, ','), " ").c_str());
    }
    return kDone;
  }

  int Metrics() {
    if (!args_.operands.empty()) return Usage("metrics takes no operands");
    int code = kDone;
    std::optional<ParsedReply> r = Ask("metrics", {}, &code);
    if (!r) return code;
    std::string text;
    for (const ReplyLine& m : r->records)
      text += m.Get("text").value_or("") + "\n";
    if (args_.json) {
      std::printf("{\"metrics\":%s}\n", JsonString(text).c_str());
    } else {
      std::fputs(text.c_str(), stdout);
    }
    return kDone;
  }

  int Version() {
    if (!args_.operands.empty()) return Usage("version takes no operands");
    int code = kDone;
    std::optional<ParsedReply> r = Ask("version", {}, &code);
    if (!r) return code;
    std::string server = r->header.Get("server").value_or("?");
    std::string protocol = r->header.Get("protocol").value_or("?");
    if (args_.json) {
      // A number as the protocol says; anything else (a server's bug) as a
      // string, so that the output stays JSON.
      int64_t number = 0;
      std::printf("{\"client\":%s,\"server\":%s,\"protocol\":%s}\n",
                  JsonString(portserver::kPortserverVersion).c_str(),
                  JsonString(server).c_str(),
                  absl::SimpleAtoi(protocol, &number)
                      ? std::to_string(number).c_str()
                      : JsonString(protocol).c_str());
    } else {
      std::printf("portserverctl %s\nserver %s (protocol %s) at %s\n",
                  portserver::kPortserverVersion, server.c_str(),
                  protocol.c_str(), args_.address.c_str());
    }
    return kDone;
  }

  Args args_;
};

}  // namespace

int main(int argc, char** argv) {
  // Arguments as UTF-8 (on Windows from the UTF-16 command line, not the
  // ANSI code page), and a console that shows the UTF-8 written.
  portpicker::Utf8Main utf8(argc, argv);
  Args args;
  const std::string env =
      portpicker::EnvironmentUtf8(portpicker::kPortServerAddressEnv)
          .value_or("");
  args.address = !env.empty() ? env : kDefaultAddress;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* name, std::string* out) -> bool {
      std::string flag = std::string("--") + name;
      if (arg == flag) {
        if (i + 1 >= argc) return false;
        *out = argv[++i];
        return true;
      }
      *out = arg.substr(flag.size() + 1);
      return true;
    };
    auto is = [&](const char* name) {
      std::string flag = std::string("--") + name;
      return arg == flag || arg.rfind(flag + "=", 0) == 0;
    };
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsageText, stdout);
      return Finish(kDone);
    } else if (arg == "--version") {
      // This program's own; the `version` command asks the server too.
      std::printf("portserverctl %s\n", portserver::kPortserverVersion);
      return Finish(kDone);
    } else if (arg == "--json") {
      args.json = true;
    } else if (is("address")) {
      if (!value("address", &args.address) || args.address.empty()) {
        return Usage("--address needs a value");
      }
    } else if (is("owner")) {
      if (!value("owner", &args.owner)) return Usage("--owner needs a PID");
      int64_t pid = 0;
      if (!absl::SimpleAtoi(args.owner, &pid) || pid <= 0) {
        return Usage("bad --owner \"" + args.owner + "\": want a pid");
      }
    } else if (is("label")) {
      std::string label;
      if (!value("label", &label)) return Usage("--label needs a value");
      args.label = label;
    } else if (arg.size() > 1 && arg[0] == '-') {
      return Usage("unknown option " + arg);
    } else if (args.verb.empty()) {
      args.verb = arg;
    } else {
      args.operands.push_back(arg);
    }
  }
  if (args.verb.empty()) return Usage("no command given");
  if ((!args.owner.empty() || args.label) && args.verb != "leases") {
    return Usage("--owner and --label go with leases");
  }
  return Finish(Ctl(std::move(args)).Run());
}
