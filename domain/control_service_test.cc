#include "domain/control_service.h"

#include <algorithm>
#include <numeric>
#include <set>

#include "adapters/fake/fake_lease_store.h"
#include "adapters/fake/fake_port_probe.h"
#include "adapters/fake/fake_process_info.h"
#include "adapters/fake/fake_process_probe.h"
#include "domain/lease_journal.h"
#include "domain/request_codec.h"
#include "gtest/gtest.h"

namespace portserver {
namespace {

std::vector<uint16_t> Range(uint16_t first, uint16_t last) {
  std::vector<uint16_t> ports(last - first + 1);
  std::iota(ports.begin(), ports.end(), first);
  return ports;
}

PeerCredentials Peer(int64_t pid, uint32_t uid) {
  PeerCredentials p;
  p.known = true;
  p.pid = pid;
  p.uid = uid;
  return p;
}

class ControlServiceTest : public ::testing::Test {
 protected:
  ControlServiceTest()
      : service_(Range(100, 104), processes_, ports_),
        control_(service_, "9.8.7", [this] { return info_.NowUnixMs(); }) {
    service_.SetProcessInfo(&info_);
    processes_.Spawn(42, 1000);
    processes_.Spawn(43, 2000);
    info_.SetCommandLine(42, "python3 leaky_test.py --shard=1");
    info_.SetCommandLine(43, "sleep 600");
  }

  // Sends `line` as `peer` and parses the reply, which must be well formed.
  ParsedReply Ask(const std::string& line, PeerCredentials peer = Peer(9, 0),
                  Request::End end = Request::End::kNewline) {
    Request r;
    r.data = line;
    r.end = end;
    r.peer = peer;
    last_ = control_.Handle(r);
    ParsedReply p = ParseControlReply(last_.reply);
    EXPECT_TRUE(p.ok) << p.error << " in " << last_.reply;
    return p;
  }

  std::set<uint16_t> Ports(const ParsedReply& p) {
    std::optional<std::vector<uint16_t>> list =
        ParsePortList(p.header.Get("ports").value_or(""), 1024);
    EXPECT_TRUE(list.has_value()) << last_.reply;
    if (!list) return {};
    return std::set<uint16_t>(list->begin(), list->end());
  }

  FakeProcessProbe processes_;
  FakePortProbe ports_;
  FakeProcessInfo info_;
  PortService service_;
  ControlService control_;
  ControlResult last_;
};

TEST_F(ControlServiceTest, AllocatesSeveralPortsInOneRequest) {
  ParsedReply p =
      Ask("portserver/1 allocate pid=42 count=3 label=//a:b\n", Peer(42, 1000));
  ASSERT_FALSE(p.is_error()) << last_.reply;
  std::set<uint16_t> got = Ports(p);
  EXPECT_EQ(got.size(), 3u);
  EXPECT_EQ(service_.PortsOf(42).size(), 3u);
  EXPECT_EQ(service_.stats().total_allocations, 1u);
}

// Ports in TIME_WAIT handed out in one request are counted as plain
// requests count them; a probe that cannot tell is counted and said.
TEST_F(ControlServiceTest, SeveralPortsCountTimeWaitGrantsAndProbeFailures) {
  ports_.Occupy(100);
  ports_.Occupy(101);
  ports_.LingerInTimeWait(102);
  ports_.LingerInTimeWait(103);
  ParsedReply p = Ask("portserver/1 allocate pid=42 count=3\n");
  ASSERT_FALSE(p.is_error()) << last_.reply;
  EXPECT_EQ(Ports(p), (std::set<uint16_t>{102, 103, 104}));
  EXPECT_EQ(service_.stats().time_wait_grants, 2u);
  ports_.RunOutOfDescriptors(true);
  processes_.Kill(42);
  p = Ask("portserver/1 allocate pid=43 count=2\n");
  EXPECT_TRUE(p.is_error()) << last_.reply;
  EXPECT_NE(last_.reply.find("could%20not%20tell"), std::string::npos)
      << last_.reply;
  // The cause first: not "pool exhausted" while ports are free.
  EXPECT_EQ(p.header.Get("message").value_or("").rfind("cannot check ports", 0),
            0u)
      << last_.reply;
  EXPECT_EQ(service_.stats().port_probe_failures, 1u);
}

TEST_F(ControlServiceTest, AllOrNoneWhenThePoolIsShort) {
  ASSERT_FALSE(Ask("portserver/1 allocate pid=43 count=1\n").is_error());
  ParsedReply p = Ask("portserver/1 allocate pid=42 count=5\n");
  ASSERT_TRUE(p.is_error());
  EXPECT_EQ(p.header.Get("code"), "pool-exhausted");
  EXPECT_NE(p.header.Get("message")->find("1 of 5 leased"), std::string::npos)
      << *p.header.Get("message");
  EXPECT_TRUE(service_.PortsOf(42).empty());
  EXPECT_EQ(service_.stats().leased_ports, 1u);
  // The four ports undone are still there for a request that fits.
  p = Ask("portserver/1 allocate pid=42 count=4\n");
  ASSERT_FALSE(p.is_error()) << last_.reply;
  EXPECT_EQ(Ports(p).size(), 4u);
}

TEST_F(ControlServiceTest, AllOrNoneUnderTheQuota) {
  FakeProcessProbe processes;
  FakePortProbe ports;
  AllocationPolicyOptions options;
  options.max_ports_per_owner = 2;
  PortService service(Range(100, 104), processes, ports, options);
  ControlService control(service, "1");
  processes.Spawn(42);
  Request r;
  std::string line = "portserver/1 allocate pid=42 count=3\n";
  r.data = line;
  ParsedReply p = ParseControlReply(control.Handle(r).reply);
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.header.Get("code"), "quota-exceeded");
  // It says what was held and asked (it once said "holds its quota" of an
  // owner that held nothing).
  EXPECT_EQ(p.header.Get("message"),
            "pid 42 holds 0 ports and asked for 3 more; at most 2 may be held "
            "at once (--portserver_max_ports_per_pid)");
  EXPECT_TRUE(service.PortsOf(42).empty());
  EXPECT_EQ(ports.probe_count(), 0) << "denied before any probe";
  line = "portserver/1 allocate pid=42 count=2\n";
  r.data = line;
  ASSERT_FALSE(ParseControlReply(control.Handle(r).reply).is_error());
  line = "portserver/1 allocate pid=42\n";
  r.data = line;
  p = ParseControlReply(control.Handle(r).reply);
  EXPECT_EQ(p.header.Get("message"),
            "pid 42 holds its quota of 2 ports "
            "(--portserver_max_ports_per_pid)");
}

TEST_F(ControlServiceTest, DenialsSayWhy) {
  ParsedReply p = Ask("portserver/1 allocate pid=42\n", Peer(77, 2000));
  ASSERT_TRUE(p.is_error());
  EXPECT_EQ(p.header.Get("code"), "permission-denied");
  EXPECT_EQ(p.header.Get("message"),
            "denied: pid 42 runs as uid 1000, the caller as uid 2000");
  p = Ask("portserver/1 allocate pid=4242\n");
  EXPECT_EQ(p.header.Get("code"), "no-such-process");
  EXPECT_EQ(p.header.Get("message"),
            "no live process has pid 4242 (none, or one that has ended and "
            "awaits its parent's wait(): a zombie)");
  p = Ask("portserver/1 allocate pid=42 count=0\n");
  EXPECT_EQ(p.header.Get("code"), "bad-argument");
  p = Ask("portserver/1 allocate pid=42 count=1025\n");
  EXPECT_EQ(p.header.Get("code"), "bad-argument");
}

TEST_F(ControlServiceTest, EveryBadRequestGetsAnErrorReply) {
  EXPECT_EQ(Ask("portserver/1 frobnicate\n").header.Get("code"),
            "unknown-verb");
  EXPECT_EQ(Ask("portserver/7 status\n").header.Get("code"),
            "unsupported-version");
  EXPECT_EQ(Ask("hello\n").header.Get("code"), "malformed");
  EXPECT_EQ(Ask("portserver/1 stat", Peer(9, 0), Request::End::kTooLong)
                .header.Get("code"),
            "malformed");
  EXPECT_EQ(Ask("portserver/1 stat", Peer(9, 0), Request::End::kTimedOut)
                .header.Get("code"),
            "malformed");
  EXPECT_EQ(control_.counters().at("malformed"), 4u);
}

// A connection the transport closed at its cap is handed over with what it
// had sent: a request that would be whole with its newline, or a prefix of
// a longer one, is still not carried out, and counts as refused.
TEST_F(ControlServiceTest, RequestClosedAtTheConnectionCapIsNotCarriedOut) {
  const Request::End cap = Request::End::kOverCapacity;
  Ask("portserver/1 allocate pid=42 count=3", Peer(42, 1000), cap);
  EXPECT_TRUE(service_.PortsOf(42).empty());
  EXPECT_EQ(service_.stats().total_allocations, 0u);

  std::set<uint16_t> held =
      Ports(Ask("portserver/1 allocate pid=42 count=2\n", Peer(42, 1000)));
  ASSERT_EQ(held.size(), 2u);
  Ask("portserver/1 release ports=" + std::to_string(*held.begin()),
      Peer(42, 1000), cap);
  EXPECT_EQ(service_.PortsOf(42).size(), 2u);
  EXPECT_EQ(service_.stats().ports_released, 0u);
  EXPECT_EQ(service_.stats().refused_connections, 2u);
  EXPECT_EQ(control_.counters().at("allocate"), 1u);
}

TEST_F(ControlServiceTest, LeasesRecordOwnerCommandLineAndLabel) {
  ASSERT_FALSE(Ask("portserver/1 allocate pid=42 count=2 label=//leaky:test\n")
                   .is_error());
  info_.AdvanceMs(5000);
  ASSERT_FALSE(Ask("portserver/1 allocate pid=43\n").is_error());
  ParsedReply p = Ask("portserver/1 leases label=//leaky:test\n");
  ASSERT_EQ(p.records.size(), 2u) << last_.reply;
  for (const ReplyLine& lease : p.records) {
    EXPECT_EQ(lease.kind, "lease");
    EXPECT_EQ(lease.Get("pid"), "42");
    EXPECT_EQ(lease.Get("uid"), "1000");
    EXPECT_EQ(lease.Get("cmdline"), "python3 leaky_test.py --shard=1");
    EXPECT_EQ(lease.Get("label"), "//leaky:test");
    EXPECT_EQ(lease.Get("since_ms"), "1700000000000");
    EXPECT_EQ(
        lease.Get("started_ms"),
        std::to_string(1600000000000 + 1000 * processes_.IncarnationOf(42)));
  }
  EXPECT_EQ(Ask("portserver/1 leases\n").header.Get("count"), "3");
  EXPECT_EQ(Ask("portserver/1 leases owner=43\n").records.size(), 1u);
}

TEST_F(ControlServiceTest, CommandLineIsReadOncePerOwner) {
  for (int i = 0; i < 3; ++i) {
    Request r;
    std::string line = "42\n";
    r.data = line;
    ASSERT_TRUE(service_.Decide(r).granted());
    service_.CompleteOwnerRecords();  // What the server does after a reply.
  }
  EXPECT_EQ(info_.command_line_reads(), 1);
  ParsedReply p = Ask("portserver/1 who ports=100\n");
  ASSERT_EQ(p.records.size(), 1u);
  EXPECT_EQ(p.records[0].Get("cmdline"), "python3 leaky_test.py --shard=1");
  EXPECT_EQ(info_.command_line_reads(), 1);
}

// The command line is read once the reply is out (CompleteOwnerRecords),
// not while the client waits; a listing before that reads it itself.
TEST_F(ControlServiceTest, CommandLineIsReadAfterTheReply) {
  ASSERT_FALSE(Ask("portserver/1 allocate pid=42 count=2\n").is_error());
  EXPECT_EQ(info_.command_line_reads(), 0);
  service_.CompleteOwnerRecords();
  EXPECT_EQ(info_.command_line_reads(), 1);
  service_.CompleteOwnerRecords();  // Nothing left to read.
  EXPECT_EQ(info_.command_line_reads(), 1);
  // Not completed yet: the listing reads it.
  ASSERT_FALSE(Ask("portserver/1 allocate pid=43\n").is_error());
  ParsedReply p = Ask("portserver/1 leases owner=43\n");
  ASSERT_EQ(p.records.size(), 1u);
  EXPECT_EQ(p.records[0].Get("cmdline"), "sleep 600");
  EXPECT_EQ(info_.command_line_reads(), 2);
  // An owner gone (its pid reused) before the read is not read: the new
  // process's command line would be another program's.
  processes_.Spawn(46, 1000);
  ASSERT_FALSE(Ask("portserver/1 allocate pid=46\n").is_error());
  processes_.Kill(46);
  processes_.Spawn(46, 1000);
  service_.CompleteOwnerRecords();
  EXPECT_EQ(info_.command_line_reads(), 2);
}

// A process leased to just after its exec() may have no command line yet
// (its argument area is set a moment later): a listing reads it once more.
TEST_F(ControlServiceTest, CommandLineEmptyAtLeaseTimeIsReadAgainOnce) {
  processes_.Spawn(44, 1000);
  ASSERT_FALSE(Ask("portserver/1 allocate pid=44\n").is_error());
  service_.CompleteOwnerRecords();
  EXPECT_EQ(info_.command_line_reads(), 1);
  info_.SetCommandLine(44, "fresh_test --flag");
  ParsedReply p = Ask("portserver/1 leases owner=44\n");
  ASSERT_EQ(p.records.size(), 1u);
  EXPECT_EQ(p.records[0].Get("cmdline"), "fresh_test --flag");
  EXPECT_EQ(info_.command_line_reads(), 2);
  // One with none for good (a process without arguments) costs no more.
  processes_.Spawn(45, 1000);
  ASSERT_FALSE(Ask("portserver/1 allocate pid=45\n").is_error());
  service_.CompleteOwnerRecords();
  for (int i = 0; i < 3; ++i) Ask("portserver/1 leases owner=45\n");
  EXPECT_EQ(info_.command_line_reads(), 4);
}

TEST_F(ControlServiceTest, PagesCoverEveryLeaseOnce) {
  ASSERT_FALSE(Ask("portserver/1 allocate pid=42 count=5\n").is_error());
  std::set<std::string> seen;
  std::string after = "0";
  int pages = 0;
  while (true) {
    ParsedReply p = Ask("portserver/1 leases limit=2 after=" + after + "\n");
    ++pages;
    for (const ReplyLine& lease : p.records) {
      EXPECT_TRUE(seen.insert(*lease.Get("port")).second);
    }
    if (!p.header.Get("next")) break;
    after = *p.header.Get("next");
  }
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(pages, 3);
}

// The longest records there can be (the longest label and command line,
// every byte percent-encoded; the widest pid and uid) stay within
// kMaxRecordBytes, and a who of kWhoPortsThatAlwaysFit such ports or a page
// of leases within kMaxReplyBytes; a who of 64 such ports (75,860 bytes) is
// refused with a bad-argument that says how many to ask for.
TEST(ControlServiceLimits, LongestRecordsFitInOneReply) {
  FakeProcessProbe processes;
  FakePortProbe ports;
  FakeProcessInfo info;
  const uint16_t first = 60000;
  const size_t count = kMaxWhoPorts + 10;
  PortService service(Range(first, static_cast<uint16_t>(first + count - 1)),
                      processes, ports);
  ControlService control(service, "9.8.7", [&] { return info.NowUnixMs(); });
  service.SetProcessInfo(&info);
  const int64_t pid = 2147483646;
  processes.Spawn(pid, 4294967294u);
  std::string label, command_line;
  while (label.size() < kMaxLabelBytes) label += "\xC3\xA9";  // e acute
  while (command_line.size() < kMaxCommandLineBytes) command_line += "\xC3\xA9";
  info.SetCommandLine(pid, command_line);
  auto ask = [&](const std::string& line) {
    Request r;
    r.data = line;
    r.peer = Peer(9, 0);
    std::string reply = control.Handle(r).reply;
    EXPECT_LE(reply.size(), kMaxReplyBytes) << line;
    size_t longest = 0;
    for (std::string_view rest = reply; !rest.empty();) {
      size_t end = rest.find('\n');
      longest = std::max(longest, end + 1);
      rest.remove_prefix(end + 1);
    }
    EXPECT_LE(longest, kMaxRecordBytes) << line;
    ParsedReply p = ParseControlReply(reply);
    EXPECT_TRUE(p.ok && !p.is_error()) << reply.substr(0, 200);
    return p;
  };
  ask("portserver/1 allocate pid=" + std::to_string(pid) + " count=" +
      std::to_string(count) + " label=" + PercentEncode(label) + "\n");
  ASSERT_EQ(service.PortsOf(pid).size(), count);

  auto who_of = [&](size_t n) {
    std::string list;
    for (size_t i = 0; i < n; ++i) {
      list += (i == 0 ? "" : ",") + std::to_string(first + i);
    }
    return "portserver/1 who ports=" + list + "\n";
  };
  {
    Request r;
    std::string line = who_of(kMaxWhoPorts);
    r.data = line;
    r.peer = Peer(9, 0);
    ParsedReply refused = ParseControlReply(control.Handle(r).reply);
    ASSERT_TRUE(refused.is_error());
    EXPECT_EQ(refused.header.Get("code"), "bad-argument");
    EXPECT_NE(refused.header.Get("message")->find("at most 20 at a time"),
              std::string::npos);
  }
  // The boundary: every who up to the largest that fits is answered whole
  // (the whole reply, header included, within kMaxReplyBytes), every larger
  // one refused, and the largest answered is within a record of the limit.
  size_t largest_answered = kWhoPortsThatAlwaysFit - 1, largest_reply = 0;
  for (size_t n = kWhoPortsThatAlwaysFit; n <= kMaxWhoPorts; ++n) {
    Request r;
    std::string line = who_of(n);
    r.data = line;
    r.peer = Peer(9, 0);
    std::string reply = control.Handle(r).reply;
    ParsedReply p = ParseControlReply(reply);
    ASSERT_TRUE(p.ok) << n;
    if (p.is_error()) continue;
    EXPECT_EQ(largest_answered, n - 1) << "answered after a refusal: " << n;
    EXPECT_EQ(p.records.size(), n);
    EXPECT_LE(reply.size(), kMaxReplyBytes) << n;
    largest_answered = n;
    largest_reply = reply.size();
  }
  EXPECT_GT(largest_answered, kWhoPortsThatAlwaysFit);
  EXPECT_LT(largest_answered, kMaxWhoPorts);
  EXPECT_GT(largest_reply + kMaxRecordBytes, kMaxReplyBytes);

  ParsedReply w = ask(who_of(kWhoPortsThatAlwaysFit));
  ASSERT_EQ(w.records.size(), kWhoPortsThatAlwaysFit);
  EXPECT_EQ(w.records[0].Get("label"), label);
  EXPECT_EQ(w.records[0].Get("cmdline"), command_line);

  std::set<std::string> seen;
  std::string after = "0";
  while (true) {
    ParsedReply p = ask("portserver/1 leases after=" + after + "\n");
    ASSERT_FALSE(p.records.empty());
    for (const ReplyLine& lease : p.records) seen.insert(*lease.Get("port"));
    if (!p.header.Get("next")) break;
    after = *p.header.Get("next");
  }
  EXPECT_EQ(seen.size(), count);
}

TEST_F(ControlServiceTest, WhoTellsLeasedFreeBusyLockedAndOutsideThePool) {
  ASSERT_FALSE(Ask("portserver/1 allocate pid=43\n").is_error());
  ports_.Occupy(102);
  ports_.LingerInTimeWait(103);
  ParsedReply p = Ask("portserver/1 who ports=100,101,102,103,9999\n");
  ASSERT_EQ(p.records.size(), 5u);
  EXPECT_EQ(p.records[0].Get("state"), "leased");
  EXPECT_EQ(p.records[0].Get("pid"), "43");
  EXPECT_EQ(p.records[0].Get("cmdline"), "sleep 600");
  EXPECT_EQ(p.records[1].Get("state"), "free");
  EXPECT_EQ(p.records[2].Get("state"), "busy");
  EXPECT_EQ(p.records[3].Get("state"), "time-wait");
  EXPECT_EQ(p.records[4].Get("state"), "not-in-pool");
  // A neighbouring server holds the port's lock: not just "busy".
  ports_.LockElsewhere(104);
  EXPECT_EQ(Ask("portserver/1 who ports=104\n").records[0].Get("state"),
            "locked");
  ports_.Vacate(104);
  ports_.RunOutOfDescriptors(true);
  EXPECT_EQ(Ask("portserver/1 who ports=104\n").records[0].Get("state"),
            "unknown");
  ports_.RunOutOfDescriptors(false);
  // Who took no port: the next grant is still the next free one.
  p = Ask("portserver/1 allocate pid=43\n");
  EXPECT_EQ(p.header.Get("ports"), "101");
}

TEST_F(ControlServiceTest, RepeatedPortIsRefusedByName) {
  ASSERT_FALSE(Ask("portserver/1 allocate pid=43\n").is_error());
  for (const char* verb : {"who", "release"}) {
    ParsedReply p =
        Ask(std::string("portserver/1 ") + verb + " ports=101,100,101\n");
    EXPECT_EQ(p.header.Get("code"), "bad-argument") << verb;
    EXPECT_NE(
        p.header.Get("message").value_or("").find("port 101 is named twice"),
        std::string::npos)
        << last_.reply;
  }
  EXPECT_EQ(service_.PortsOf(43).size(), 1u);
}

TEST_F(ControlServiceTest, HidePidHidesOtherUsersCommandLines) {
  ASSERT_FALSE(Ask("portserver/1 allocate pid=43\n").is_error());
  ASSERT_FALSE(Ask("portserver/1 allocate pid=42\n").is_error());
  info_.SetHidePid(true);
  ParsedReply p = Ask("portserver/1 leases\n", Peer(500, 1000));
  ASSERT_EQ(p.records.size(), 2u);
  EXPECT_EQ(p.records[0].Get("pid"), "43");
  EXPECT_EQ(p.records[0].Get("cmdline"), std::nullopt);
  EXPECT_EQ(p.records[0].Get("cmdline_hidden"), "1");
  EXPECT_EQ(p.records[1].Get("cmdline"), "python3 leaky_test.py --shard=1");
  // Root sees all; without hidepid everyone does.
  EXPECT_EQ(Ask("portserver/1 leases\n", Peer(1, 0)).records[0].Get("cmdline"),
            "sleep 600");
  info_.SetHidePid(false);
  EXPECT_EQ(
      Ask("portserver/1 leases\n", Peer(500, 1000)).records[0].Get("cmdline"),
      "sleep 600");
}

TEST_F(ControlServiceTest, ReleaseOnlyByTheOwnersUserOrRoot) {
  ParsedReply p = Ask("portserver/1 allocate pid=42 count=2\n");
  std::set<uint16_t> mine = Ports(p);
  std::string first = std::to_string(*mine.begin());
  std::string second = std::to_string(*mine.rbegin());
  p = Ask("portserver/1 release ports=" + first + "\n", Peer(555, 2000));
  EXPECT_EQ(p.header.Get("code"), "permission-denied");
  EXPECT_NE(p.header.Get("message")->find("uid 1000"), std::string::npos);
  EXPECT_EQ(service_.PortsOf(42).size(), 2u);
  PeerCredentials unknown;
  p = Ask("portserver/1 release ports=" + first + "\n", unknown);
  EXPECT_EQ(p.header.Get("code"), "permission-denied");
  // All or none: one port not leased refuses the whole request.
  p = Ask("portserver/1 release ports=" + first + ",104\n", Peer(555, 1000));
  EXPECT_EQ(p.header.Get("code"), "not-leased");
  EXPECT_EQ(service_.PortsOf(42).size(), 2u);
  p = Ask("portserver/1 release ports=" + first + "\n", Peer(555, 1000));
  ASSERT_FALSE(p.is_error()) << last_.reply;
  EXPECT_EQ(p.header.Get("released"), first);
  p = Ask("portserver/1 release ports=" + second + "\n", Peer(1, 0));
  ASSERT_FALSE(p.is_error()) << last_.reply;
  EXPECT_TRUE(service_.PortsOf(42).empty());
  EXPECT_EQ(service_.stats().ports_released, 2u);
}

TEST_F(ControlServiceTest, ReleaseSaysWhenAPortIsNotInThePool) {
  ASSERT_FALSE(Ask("portserver/1 allocate pid=43\n").is_error());
  ParsedReply p = Ask("portserver/1 release ports=100,9999\n");
  EXPECT_EQ(p.header.Get("code"), "not-leased");
  EXPECT_EQ(p.header.Get("message"), "port 9999 is not in the pool");
  p = Ask("portserver/1 release ports=100,104\n");
  EXPECT_EQ(p.header.Get("code"), "not-leased");
  EXPECT_EQ(p.header.Get("message"), "port 104 is not leased");
  EXPECT_EQ(service_.PortsOf(43).size(), 1u);
}

TEST_F(ControlServiceTest, ReleasedPortIsProbedAgainBeforeReuse) {
  ParsedReply p = Ask("portserver/1 allocate pid=42 count=5\n");
  ASSERT_FALSE(p.is_error());
  ASSERT_FALSE(Ask("portserver/1 release ports=101\n").is_error());
  ports_.Occupy(101);  // Someone else binds it meanwhile.
  p = Ask("portserver/1 allocate pid=43\n");
  EXPECT_EQ(p.header.Get("code"), "pool-exhausted");
  ports_.Vacate(101);
  for (int i = 0; i < 3 && Ask("portserver/1 allocate pid=43\n").is_error();
       ++i) {
  }
  EXPECT_EQ(service_.PortsOf(43), (std::vector<uint16_t>{101}));
}

TEST_F(ControlServiceTest, ReleaseRewritesTheJournal) {
  FakeLeaseStore store;
  ASSERT_TRUE(service_.AttachStore(&store).ok);
  ASSERT_FALSE(Ask("portserver/1 allocate pid=42 count=2\n").is_error());
  EXPECT_EQ(ParseJournal(store.contents()).leases.size(), 2u);
  ASSERT_FALSE(Ask("portserver/1 release ports=100\n").is_error());
  JournalReplay replay = ParseJournal(store.contents());
  ASSERT_EQ(replay.leases.size(), 1u);
  EXPECT_EQ(replay.leases[0].first, 101);
}

// A release the journal cannot take (a foreign .tmp blocks the rewrite, a
// full disk) is logged once, as a grant that cannot be journaled is; the
// next request that can write catches up without the released lease (a
// helper found it silent, and the lease back after a crash).
TEST_F(ControlServiceTest, ReleaseTheJournalCannotTakeIsSaid) {
  FakeLeaseStore store;
  ASSERT_TRUE(service_.AttachStore(&store).ok);
  ASSERT_FALSE(Ask("portserver/1 allocate pid=42 count=2\n").is_error());
  store.FailWrites(true);
  ASSERT_FALSE(Ask("portserver/1 release ports=100\n").is_error());
  EXPECT_EQ(last_.journal.journal_event, JournalEvent::kFellBehind);
  EXPECT_FALSE(last_.journal.store_error.empty());
  EXPECT_EQ(ParseJournal(store.contents()).leases.size(), 2u);  // Behind.
  store.FailWrites(false);
  Ask("portserver/1 status\n");
  EXPECT_EQ(last_.journal.journal_event, JournalEvent::kCaughtUp);
  JournalReplay replay = ParseJournal(store.contents());
  ASSERT_EQ(replay.leases.size(), 1u);
  EXPECT_EQ(replay.leases[0].first, 101);
}

// Every extended request looks after the journal first, as plain requests
// do (they used to be the only ones: after a deletion, allocate requests
// appended to the unlinked file and a kill -9 then lost every lease).
TEST_F(ControlServiceTest, EveryRequestRewritesADeletedJournal) {
  FakeLeaseStore store;
  ASSERT_TRUE(service_.AttachStore(&store).ok);
  ASSERT_FALSE(Ask("portserver/1 allocate pid=42 count=2\n").is_error());
  for (const char* line :
       {"portserver/1 allocate pid=43 count=1\n", "portserver/1 status\n",
        "portserver/1 leases\n", "portserver/1 who ports=100\n",
        "portserver/1 version\n", "portserver/1 metrics\n",
        "portserver/1 release ports=104\n", "portserver/9 status\n",
        "portserver/1 status extra\n", "portserver/1 frobnicate\n"}) {
    SCOPED_TRACE(line);
    store.Delete();
    ASSERT_TRUE(ParseJournal(store.contents()).leases.empty());
    Ask(line);
    EXPECT_EQ(last_.journal.journal_event, JournalEvent::kRewritten);
    std::set<uint16_t> journaled, leased;
    for (const auto& lease : ParseJournal(store.contents()).leases) {
      journaled.insert(lease.first);
    }
    for (const auto& lease : service_.Leases()) leased.insert(lease.first);
    EXPECT_EQ(journaled, leased);
  }
  EXPECT_EQ(service_.stats().journal_rewrites, 10u);
}

TEST_F(ControlServiceTest, AllocateCatchesUpAJournalLeftBehind) {
  FakeLeaseStore store;
  ASSERT_TRUE(service_.AttachStore(&store).ok);
  store.FailWrites(true);
  ASSERT_FALSE(Ask("portserver/1 allocate pid=42 count=2\n").is_error());
  EXPECT_EQ(last_.decision.journal_event, JournalEvent::kFellBehind);
  ASSERT_FALSE(Ask("portserver/1 allocate pid=42 count=1\n").is_error());
  EXPECT_EQ(last_.journal.journal_event, JournalEvent::kNone)
      << "logged once, when it fell behind";
  store.FailWrites(false);
  ASSERT_FALSE(Ask("portserver/1 allocate pid=43 count=1\n").is_error());
  EXPECT_EQ(last_.journal.journal_event, JournalEvent::kCaughtUp);
  EXPECT_EQ(last_.journal.journal_missed, 3u);  // Ports granted meanwhile.
  EXPECT_EQ(ParseJournal(store.contents()).leases.size(), 4u);
  EXPECT_EQ(service_.Leases().size(), 4u);
}

TEST_F(ControlServiceTest, LeaseRestoredFromTheJournalKeepsLabelAndTime) {
  FakeLeaseStore store;
  ASSERT_TRUE(service_.AttachStore(&store).ok);
  ASSERT_FALSE(Ask("portserver/1 allocate pid=42 count=2 label=//leaky:test\n")
                   .is_error());
  const std::string since = std::to_string(info_.NowUnixMs());
  // A restart: a new server restores the journal the first one left.
  PortService restarted(Range(100, 104), processes_, ports_);
  restarted.SetProcessInfo(&info_);
  ControlService control(restarted, "9.8.7",
                         [this] { return info_.NowUnixMs(); });
  info_.AdvanceMs(30000);
  ASSERT_EQ(restarted.Restore(ParseJournal(store.contents())), 2u);
  Request r;
  std::string line = "portserver/1 leases label=//leaky:test\n";
  r.data = line;
  r.end = Request::End::kNewline;
  r.peer = Peer(9, 0);
  ParsedReply p = ParseControlReply(control.Handle(r).reply);
  ASSERT_TRUE(p.ok) << p.error;
  ASSERT_EQ(p.records.size(), 2u);
  for (const ReplyLine& lease : p.records) {
    EXPECT_EQ(lease.Get("pid"), "42");
    EXPECT_EQ(lease.Get("label"), "//leaky:test");
    EXPECT_EQ(lease.Get("since_ms"), since);
    EXPECT_EQ(lease.Get("cmdline"), "python3 leaky_test.py --shard=1");
  }
}

// A long-lived runner asks for several targets: each label of its leases
// is named with its ports, not only the first it asked with.
TEST_F(ControlServiceTest, BiggestHoldersNameEveryLabelOfTheirLeases) {
  ASSERT_FALSE(
      Ask("portserver/1 allocate pid=42 label=//pkg:first\n").is_error());
  ASSERT_FALSE(Ask("portserver/1 allocate pid=42 count=3 label=//pkg:leaky\n")
                   .is_error());
  ASSERT_FALSE(Ask("portserver/1 allocate pid=42\n").is_error());
  Request plain;
  std::string line = "43\n";
  plain.data = line;
  Decision d = service_.Decide(plain);
  ASSERT_EQ(d.outcome, Outcome::kPoolExhausted);
  ASSERT_EQ(d.biggest_holders.size(), 1u);
  EXPECT_EQ(d.biggest_holders[0].ports, 5u);
  EXPECT_EQ(d.biggest_holders[0].labels,
            (std::vector<std::pair<std::string, size_t>>{
                {"//pkg:leaky", 3}, {"", 1}, {"//pkg:first", 1}}));
}

TEST_F(ControlServiceTest, BiggestHoldersOncePerExhaustionEpisode) {
  ASSERT_FALSE(
      Ask("portserver/1 allocate pid=42 count=4 label=//big:one\n").is_error());
  ASSERT_FALSE(Ask("portserver/1 allocate pid=43\n").is_error());
  Request plain;
  std::string line = "43\n";
  plain.data = line;
  Decision d = service_.Decide(plain);
  ASSERT_EQ(d.outcome, Outcome::kPoolExhausted);
  ASSERT_EQ(d.biggest_holders.size(), 2u);
  EXPECT_EQ(d.biggest_holders[0].pid, 42);
  EXPECT_EQ(d.biggest_holders[0].ports, 4u);
  EXPECT_EQ(d.biggest_holders[0].labels,
            (std::vector<std::pair<std::string, size_t>>{{"//big:one", 4}}));
  EXPECT_EQ(d.biggest_holders[0].command_line,
            "python3 leaky_test.py --shard=1");
  EXPECT_TRUE(service_.Decide(plain).biggest_holders.empty());
  // A grant ends the episode; the next exhaustion is logged again.
  ASSERT_FALSE(Ask("portserver/1 release ports=100\n").is_error());
  ASSERT_TRUE(service_.Decide(plain).granted());
  EXPECT_FALSE(service_.Decide(plain).biggest_holders.empty());
}

// The holders are logged when the pool has run out, not when a request
// asks for more ports than are left or the probe cannot tell (a reviewer saw
// "Pool exhausted (29 of 100 ports leased)").
TEST_F(ControlServiceTest, NoHoldersWhileThePoolHasPortsLeft) {
  ASSERT_FALSE(Ask("portserver/1 allocate pid=42 count=2\n").is_error());
  ParsedReply p = Ask("portserver/1 allocate pid=43 count=4\n");
  ASSERT_EQ(p.header.Get("code").value_or(""), "pool-exhausted");
  EXPECT_FALSE(last_.decision.pool_ran_out);
  EXPECT_TRUE(last_.decision.biggest_holders.empty());
  ports_.RunOutOfDescriptors(true);
  p = Ask("portserver/1 allocate pid=43 count=2\n");
  ASSERT_EQ(p.header.Get("code").value_or(""), "pool-exhausted");
  EXPECT_TRUE(last_.decision.biggest_holders.empty());
  // One port, too, says why (a reviewer saw only "pool exhausted (65 of
  // 200 leased)").
  p = Ask("portserver/1 allocate pid=43\n");
  EXPECT_NE(p.header.Get("message").value_or("").find("out of descriptors"),
            std::string::npos)
      << last_.reply;
  Request plain;
  plain.data = "43\n";
  Decision d = service_.Decide(plain);
  ASSERT_EQ(d.outcome, Outcome::kPoolExhausted);
  EXPECT_TRUE(d.biggest_holders.empty());
  ports_.RunOutOfDescriptors(false);
  // Out for real: the 3 ports left go, then the next request is told.
  ASSERT_FALSE(Ask("portserver/1 allocate pid=43 count=3\n").is_error());
  Ask("portserver/1 allocate pid=43 count=2\n");
  EXPECT_TRUE(last_.decision.pool_ran_out);
  EXPECT_EQ(last_.decision.biggest_holders.size(), 2u);
}

// A pid the server cannot translate from the caller's pid namespace is
// leased to the caller: the reply says so, for the client to warn (its
// ports end with it, in a moment).
TEST_F(ControlServiceTest, LeaseToTheCallerInsteadIsSaid) {
  processes_.Spawn(5000, 0);
  using Kind = ProcessProbe::Mapping::Kind;
  processes_.SetMapping(5000, 1, {Kind::kCaller, 5000});
  ParsedReply p = Ask("portserver/1 allocate pid=1 count=2\n", Peer(5000, 0));
  ASSERT_FALSE(p.is_error()) << last_.reply;
  EXPECT_EQ(p.header.Get("pid"), "5000");
  EXPECT_EQ(p.header.Get("leased_to_caller"), "1");
  p = Ask("portserver/1 allocate pid=42\n", Peer(9, 0));
  ASSERT_FALSE(p.is_error()) << last_.reply;
  EXPECT_FALSE(p.header.Get("leased_to_caller").has_value());
}

// More ports than the pool has can never be had at once: the refusal says
// so, not only "pool exhausted (0 of 5 leased)" (a new user's case).
TEST_F(ControlServiceTest, AskingForMoreThanThePoolSaysSo) {
  ParsedReply p = Ask("portserver/1 allocate pid=42 count=6\n");
  ASSERT_EQ(p.header.Get("code").value_or(""), "pool-exhausted");
  EXPECT_EQ(p.header.Get("message").value_or(""),
            "pool exhausted: 6 ports asked for, the pool has only 5");
  EXPECT_EQ(last_.decision.allocation.ports_checked, 0u);  // Nothing probed.
  EXPECT_FALSE(last_.decision.pool_ran_out);  // No biggest holders logged.
  p = Ask("portserver/1 allocate pid=42 count=5\n");
  EXPECT_FALSE(p.is_error());
}

TEST_F(ControlServiceTest, StatusVersionAndMetrics) {
  ASSERT_FALSE(Ask("portserver/1 allocate pid=42 count=2\n").is_error());
  info_.AdvanceMs(192000);
  ParsedReply p = Ask("portserver/1 status\n");
  EXPECT_EQ(p.header.Get("server"), "9.8.7");
  EXPECT_EQ(p.header.Get("pool"), "5");
  EXPECT_EQ(p.header.Get("leased"), "2");
  EXPECT_EQ(p.header.Get("free"), "3");
  EXPECT_EQ(p.header.Get("owners"), "1");
  EXPECT_EQ(p.header.Get("uptime_ms"), "192000");
  p = Ask("portserver/1 version\n");
  EXPECT_EQ(p.header.Get("protocol"), "1");
  p = Ask("portserver/1 metrics\n");
  std::string text;
  for (const ReplyLine& line : p.records) text += *line.Get("text") + "\n";
  EXPECT_EQ(text, control_.MetricsText());
  EXPECT_NE(text.find("\nportserver_leased_ports 2\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("portserver_control_requests_total{verb=\"allocate\"} 1"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace portserver
