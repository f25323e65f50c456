#include "domain/port_service.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <thread>

#include "adapters/fake/fake_lease_store.h"
#include "adapters/fake/fake_port_probe.h"
#include "adapters/fake/fake_process_info.h"
#include "adapters/fake/fake_process_probe.h"
#include "domain/lease_journal.h"
#include "gtest/gtest.h"

namespace portserver {
namespace {

std::vector<uint16_t> Range(uint16_t first, uint16_t last) {
  std::vector<uint16_t> ports(last - first + 1);
  std::iota(ports.begin(), ports.end(), first);
  return ports;
}

Request Wire(std::string_view data, Request::End end = Request::End::kNewline) {
  Request r;
  r.data = data;
  r.end = end;
  return r;
}

class PortServiceTest : public ::testing::Test {
 protected:
  PortServiceTest() : service_(Range(100, 104), processes_, ports_) {
    processes_.Spawn(42);
  }
  FakeProcessProbe processes_;
  FakePortProbe ports_;
  PortService service_;
};

TEST_F(PortServiceTest, AnswersWireRequestWithPortAndNewline) {
  EXPECT_EQ(service_.HandleRequest(Wire("42\n")), "100\n");
  EXPECT_EQ(service_.HandleRequest(Wire("42", Request::End::kEof)), "101\n");
  EXPECT_EQ(service_.PortsOf(42), (std::vector<uint16_t>{100, 101}));
}

TEST_F(PortServiceTest, DeniesInvalidPidsInitAndMissingProcesses) {
  struct Case {
    int64_t pid;
    Outcome outcome;
  };
  for (Case c : {Case{0, Outcome::kInvalidPid}, Case{-5, Outcome::kInvalidPid},
                 Case{1, Outcome::kInit}, Case{43, Outcome::kNoSuchProcess},
                 Case{2147483648, Outcome::kNoSuchProcess}}) {
    Decision d = service_.Allocate(c.pid);
    EXPECT_EQ(d.outcome, c.outcome) << c.pid << ": " << OutcomeName(d.outcome);
    EXPECT_TRUE(d.reply.empty());
  }
  Stats s = service_.stats();
  EXPECT_EQ(s.denied_allocations, 5u);
  EXPECT_EQ(s.total_allocations, 0u);
  EXPECT_EQ(s.client_request_errors, 0u);
  EXPECT_EQ(s.leased_ports, 0u);
}

TEST_F(PortServiceTest, DeniesWhenProcessProbeFailsAndKeepsServing) {
  processes_.FailNextCalls(1);
  EXPECT_EQ(service_.Allocate(42).outcome, Outcome::kProbeFailed);
  EXPECT_TRUE(service_.Allocate(42).granted());
}

TEST_F(PortServiceTest, CountsMalformedRequestsAsClientErrors) {
  for (Request r : {Wire("abc\n"), Wire("", Request::End::kEof),
                    Wire("12345678901234567890", Request::End::kTooLong),
                    Wire("12", Request::End::kTimedOut), Wire("4 2\n")}) {
    Decision d = service_.Decide(r);
    EXPECT_EQ(d.outcome, Outcome::kMalformed);
    EXPECT_FALSE(d.detail.empty());
    EXPECT_TRUE(d.reply.empty());
  }
  Stats s = service_.stats();
  EXPECT_EQ(s.client_request_errors, 5u);
  EXPECT_EQ(s.denied_allocations, 0u);
  EXPECT_EQ(service_.HandleRequest(Wire("42\n")), "100\n");
}

TEST_F(PortServiceTest, CountsConnectionsRefusedAtTheCap) {
  Decision d = service_.Decide(Wire("", Request::End::kOverCapacity));
  EXPECT_EQ(d.outcome, Outcome::kOverCapacity);
  EXPECT_TRUE(d.reply.empty());
  Stats s = service_.stats();
  EXPECT_EQ(s.refused_connections, 1u);
  EXPECT_EQ(s.client_request_errors, 0u);
  EXPECT_EQ(s.denied_allocations, 0u);
}

TEST_F(PortServiceTest, ReportsReferenceStatistics) {
  ports_.Occupy(100);
  service_.Allocate(42);  // Probes 100 (busy) then 101.
  service_.Allocate(1);
  service_.Decide(Wire("x\n"));
  Stats s = service_.stats();
  EXPECT_EQ(s.total_allocations, 1u);
  EXPECT_EQ(s.denied_allocations, 1u);
  EXPECT_EQ(s.client_request_errors, 1u);
  EXPECT_EQ(s.num_ports_managed, 5u);
  EXPECT_EQ(s.num_ports_checked_for_last_request, 2u);
  EXPECT_EQ(s.leased_ports, 1u);
  EXPECT_EQ(s.owners, 1u);
}

TEST_F(PortServiceTest, PortsComeBackWhenOwnerExits) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(service_.Allocate(42).granted());
  processes_.Spawn(50);
  EXPECT_EQ(service_.Allocate(50).outcome, Outcome::kPoolExhausted);
  EXPECT_EQ(service_.OwnerExited(42), 0u);  // Still alive: nothing happens.
  processes_.Kill(42);
  EXPECT_EQ(service_.OwnerExited(42), 5u);
  std::set<uint16_t> again;
  for (int i = 0; i < 5; ++i) again.insert(service_.Allocate(50).port);
  EXPECT_EQ(again, (std::set<uint16_t>{100, 101, 102, 103, 104}));
}

TEST_F(PortServiceTest, CountsDenialsByReason) {
  service_.Allocate(0);
  service_.Allocate(1);
  service_.Allocate(43);
  for (int i = 0; i < 5; ++i) service_.Allocate(42);
  processes_.Spawn(50);
  service_.Allocate(50);
  Stats s = service_.stats();
  EXPECT_EQ(s.denied_invalid_pid, 2u);
  EXPECT_EQ(s.denied_no_such_process, 1u);
  EXPECT_EQ(s.denied_pool_exhausted, 1u);
  EXPECT_EQ(s.denied_quota, 0u);
  EXPECT_EQ(s.denied_allocations, 4u);
  EXPECT_EQ(s.total_allocations, 5u);
}

TEST_F(PortServiceTest, CountsTimeWaitGrantsAndSaysWhy) {
  for (uint16_t port = 100; port <= 103; ++port) ports_.LingerInTimeWait(port);
  Decision plain = service_.Allocate(42);
  ASSERT_TRUE(plain.granted());
  EXPECT_EQ(plain.port, 104);
  EXPECT_EQ(plain.detail, "");
  Decision fallback = service_.Allocate(42);
  ASSERT_TRUE(fallback.granted());
  EXPECT_NE(fallback.detail.find("TIME_WAIT"), std::string::npos);
  Stats s = service_.stats();
  EXPECT_EQ(s.time_wait_grants, 1u);
  EXPECT_EQ(s.time_wait_ports_cooling, 3u);
  EXPECT_EQ(s.total_allocations, 2u);
}

TEST_F(PortServiceTest, CountsDenialsWhenThePortProbeCannotTell) {
  ports_.RunOutOfDescriptors(true);
  Decision d = service_.Allocate(42);
  EXPECT_EQ(d.outcome, Outcome::kPoolExhausted);
  EXPECT_NE(d.detail.find("could not tell"), std::string::npos);
  Stats s = service_.stats();
  EXPECT_EQ(s.port_probe_failures, 1u);
  EXPECT_EQ(s.denied_pool_exhausted, 1u);
}

TEST(PortServiceQuota, DeniesOverQuotaAndCountsIt) {
  FakeProcessProbe processes;
  FakePortProbe ports;
  AllocationPolicyOptions options;
  options.max_ports_per_owner = 1;
  PortService service(Range(100, 104), processes, ports, options);
  processes.Spawn(42);
  EXPECT_TRUE(service.Allocate(42).granted());
  EXPECT_EQ(service.Allocate(42).outcome, Outcome::kQuotaExceeded);
  EXPECT_EQ(service.stats().denied_quota, 1u);
}

TEST(PortServiceRestore, KeepsOnlyLeasesOfTheSameLiveIncarnation) {
  FakeProcessProbe processes;
  FakePortProbe ports;
  PortService service(Range(100, 104), processes, ports);
  processes.Spawn(10);
  processes.Spawn(11);
  uint64_t ten = processes.IncarnationOf(10);
  uint64_t eleven_before = processes.IncarnationOf(11);
  processes.Spawn(11);  // 11 was reused since the journal was written.
  std::vector<std::pair<uint16_t, Owner>> journal = {
      {100, Owner{10, ten}},            // alive, same: kept
      {101, Owner{11, eleven_before}},  // pid reused: dropped
      {102, Owner{12, 5}},              // dead: dropped
      {103, Owner{10, ten}},            // kept
      {100, Owner{10, ten}},            // duplicate: ignored
      {1, Owner{1, 1}},                 // init, outside the pool: dropped
  };
  EXPECT_EQ(service.Restore(journal), 2u);
  EXPECT_EQ(service.PortsOf(10), (std::vector<uint16_t>{100, 103}));
  auto leases = service.Leases();
  EXPECT_EQ(leases.size(), 2u);
  // The restored ports are not handed to anyone else.
  processes.Spawn(20);
  std::set<uint16_t> others;
  for (int i = 0; i < 3; ++i) others.insert(service.Allocate(20).port);
  EXPECT_EQ(others, (std::set<uint16_t>{101, 102, 104}));
}

TEST(PortServiceJournal, JournalsEachGrantAndSurvivesARestart) {
  FakeProcessProbe processes;
  FakePortProbe ports;
  FakeLeaseStore store;
  processes.Spawn(10);
  processes.Spawn(11);
  std::set<uint16_t> before;
  {
    PortService first(Range(100, 109), processes, ports);
    ASSERT_TRUE(first.AttachStore(&store).ok);
    for (int i = 0; i < 3; ++i) before.insert(first.Allocate(10).port);
    before.insert(first.Allocate(11).port);
    processes.Kill(11);  // Its lease must not survive the restart.
  }                      // The server "crashes": only the store is left.
  JournalReplay replay = ParseJournal(store.contents());
  EXPECT_TRUE(replay.problems.empty());
  EXPECT_EQ(replay.leases.size(), 4u);

  PortService second(Range(100, 109), processes, ports);
  EXPECT_EQ(second.Restore(replay.leases), 3u);
  processes.Spawn(20);
  std::set<uint16_t> after;
  for (int i = 0; i < 7; ++i) {
    Decision d = second.Allocate(20);
    ASSERT_TRUE(d.granted());
    after.insert(d.port);
  }
  for (uint16_t port : second.PortsOf(10)) {
    EXPECT_EQ(after.count(port), 0u) << "port " << port << " leased twice";
  }
  EXPECT_EQ(second.Allocate(20).outcome, Outcome::kPoolExhausted);
}

// Each lease as the listing shows it: port -> {label, since}.
std::map<uint16_t, std::pair<std::string, int64_t>> Notes(
    PortService& service) {
  std::map<uint16_t, std::pair<std::string, int64_t>> notes;
  LeaseQuery all;
  all.limit = 1000;
  for (const LeaseView& v : service.ListLeases(all, {}).leases) {
    notes[v.port] = {v.label, v.since_unix_ms};
  }
  return notes;
}

TEST(PortServiceJournal, RestoredLeasesKeepTheirLabelAndLeaseTime) {
  FakeProcessProbe processes;
  FakePortProbe ports;
  FakeProcessInfo info;
  FakeLeaseStore store;
  processes.Spawn(10);
  processes.Spawn(11);
  processes.Spawn(12);
  const int64_t t0 = info.NowUnixMs();
  std::map<uint16_t, std::pair<std::string, int64_t>> before;
  {
    PortService first(Range(100, 109), processes, ports);
    first.SetProcessInfo(&info);
    ASSERT_TRUE(first.AttachStore(&store).ok);
    ASSERT_TRUE(first.AllocateMany(10, 2, "//pkg:a test", {}).granted());
    info.AdvanceMs(7000);
    ASSERT_TRUE(first.Allocate(11).granted());  // No label: time only.
    info.AdvanceMs(5000);
    ASSERT_TRUE(first.AllocateMany(12, 1, "//pkg:gone", {}).granted());
    processes.Kill(12);  // Its lease, and its note, must not come back.
    before = Notes(first);
  }  // The server "crashes": only the appended journal is left.
  ASSERT_EQ(before.size(), 4u);
  EXPECT_EQ(before[100], (std::pair<std::string, int64_t>{"//pkg:a test", t0}));
  EXPECT_EQ(before[102], (std::pair<std::string, int64_t>{"", t0 + 7000}));
  before.erase(103);

  PortService second(Range(100, 109), processes, ports);
  second.SetProcessInfo(&info);
  info.AdvanceMs(60000);  // The restart takes a minute.
  EXPECT_EQ(second.Restore(ParseJournal(store.contents())), 3u);
  EXPECT_EQ(Notes(second), before);

  // The start-up compaction writes a snapshot: the notes are in it too.
  FakeLeaseStore snapshot;
  ASSERT_TRUE(second.AttachStore(&snapshot).ok);
  PortService third(Range(100, 109), processes, ports);
  third.SetProcessInfo(&info);
  EXPECT_EQ(third.Restore(ParseJournal(snapshot.contents())), 3u);
  EXPECT_EQ(Notes(third), before);
}

// A journal written under a wider pool, restored by a server with a
// narrower one (a mistyped flag): the leases outside its pool whose owners
// live are carried in its journal, with their notes, so that a server with
// the first pool restores them. Dropped, they were handed out again later
// while their owners lived (a new user's trial).
// A carried lease keeps its port's reservation (on Linux, the lock that
// keeps a neighbouring server whose pool holds the port from leasing it),
// until its owner is found ended; one that cannot be reserved is named.
TEST(PortServiceJournal, CarriedLeasesHoldTheirPortsReservations) {
  FakeProcessProbe processes;
  processes.Spawn(10);
  processes.Spawn(11);
  FakeLeaseStore store;
  {
    FakePortProbe wide_ports;
    PortService wide(Range(100, 109), processes, wide_ports);
    ASSERT_TRUE(wide.AttachStore(&store).ok);
    ASSERT_TRUE(wide.AllocateMany(10, 3, "//pkg:a", {}).granted());  // 100-102
    ASSERT_TRUE(wide.AllocateMany(11, 2, "", {}).granted());         // 103-104
    EXPECT_FALSE(wide.DetachStore());
  }
  FakePortProbe ports;
  ports.LockElsewhere(104);  // A neighbour holds it already.
  PortService narrow(Range(100, 100), processes, ports);
  std::vector<uint16_t> unreserved;
  EXPECT_EQ(narrow.Restore(ParseJournal(store.contents()), &unreserved), 1u);
  EXPECT_EQ(narrow.CarriedPorts(), (std::vector<uint16_t>{101, 102, 103, 104}));
  EXPECT_EQ(ports.reserved(), (std::set<uint16_t>{100, 101, 102, 103}));
  EXPECT_EQ(unreserved, (std::vector<uint16_t>{104}));
  // `who` names a carried port's owner, label and lease time.
  PortReport carried = narrow.Describe(101, {});
  EXPECT_EQ(carried.state, PortReport::State::kCarried);
  EXPECT_EQ(carried.lease.pid, 10);
  EXPECT_EQ(carried.lease.label, "//pkg:a");
  EXPECT_EQ(narrow.Describe(105, {}).state, PortReport::State::kNotInPool);
  // The one a neighbour holds is said to be without its lock.
  EXPECT_FALSE(carried.lease.unreserved);
  EXPECT_TRUE(narrow.Describe(104, {}).lease.unreserved);
  // Retaken once the neighbour lets go, as a restored lease's lock is.
  EXPECT_EQ(narrow.RetakeReservations(), 1u);
  ports.Vacate(104);
  EXPECT_EQ(narrow.RetakeReservations(), 0u);
  EXPECT_EQ(ports.reserved(), (std::set<uint16_t>{100, 101, 102, 103, 104}));
  EXPECT_EQ(narrow.CarriedOwners(), (std::vector<int64_t>{10, 11}));
  FakeLeaseStore next;
  ASSERT_TRUE(narrow.AttachStore(&next).ok);
  // Owner 11 ends: at its exit notice, its carried ports are let go; the
  // journal's next snapshot no longer holds them.
  processes.Kill(11);
  narrow.OwnerExited(11);
  EXPECT_EQ(narrow.CarriedPorts(), (std::vector<uint16_t>{101, 102}));
  EXPECT_EQ(ports.reserved(), (std::set<uint16_t>{100, 101, 102}));
  EXPECT_TRUE(narrow.Holds(11) == false && narrow.Holds(10));
  FakeLeaseStore snapshot;
  ASSERT_TRUE(narrow.AttachStore(&snapshot).ok);
  std::vector<uint16_t> journaled;
  for (const auto& [port, owner] : ParseJournal(snapshot.contents()).leases) {
    journaled.push_back(port);
  }
  EXPECT_EQ(journaled, (std::vector<uint16_t>{100, 101, 102}));
  // A notice for a live owner drops nothing.
  narrow.OwnerExited(10);
  EXPECT_EQ(narrow.CarriedPorts(), (std::vector<uint16_t>{101, 102}));
}

// A server whose pool is port 100 alone, over a journal that names ports
// outside it (which Restore() carries) for the live owners 10 and 11.
class PortServiceCarried : public ::testing::Test {
 protected:
  PortServiceCarried() {
    processes.Spawn(10);
    processes.Spawn(11);
  }
  Owner Of(int64_t pid) { return Owner{pid, processes.IncarnationOf(pid)}; }

  FakeProcessProbe processes;
  FakePortProbe ports;
  PortService narrow{Range(100, 100), processes, ports};
};

// The reservations let go are those of the leases dropped, wherever they
// stand among the carried ones (std::remove_if leaves moved-from elements
// after the new end, not the removed ones: the first version let go of a
// kept lease's reservation and kept the dropped one's).
TEST_F(PortServiceCarried, ACarriedLeaseDroppedFirstLetsGoOfItsOwnPort) {
  narrow.Restore({{101, Of(11)}, {102, Of(10)}, {103, Of(11)}, {104, Of(10)}});
  ASSERT_EQ(ports.reserved(), (std::set<uint16_t>{101, 102, 103, 104}));
  processes.Kill(11);
  narrow.OwnerExited(11);
  EXPECT_EQ(narrow.CarriedPorts(), (std::vector<uint16_t>{102, 104}));
  EXPECT_EQ(ports.reserved(), (std::set<uint16_t>{102, 104}));
  // And through a compaction's pruning too.
  processes.Kill(10);
  FakeLeaseStore store;
  ASSERT_TRUE(narrow.AttachStore(&store).ok);
  EXPECT_TRUE(narrow.CarriedPorts().empty());
  EXPECT_TRUE(ports.reserved().empty());
}

TEST(PortServiceJournal, LeasesOutsideThePoolAreCarriedWhileTheirOwnersLive) {
  FakeProcessProbe processes;
  FakePortProbe ports;
  FakeProcessInfo info;
  FakeLeaseStore store;
  processes.Spawn(10);
  processes.Spawn(11);
  {
    PortService wide(Range(100, 109), processes, ports);
    wide.SetProcessInfo(&info);
    ASSERT_TRUE(wide.AttachStore(&store).ok);
    ASSERT_TRUE(wide.AllocateMany(10, 8, "//pkg:a", {}).granted());  // 100-107
    ASSERT_TRUE(wide.Allocate(11).granted());                        // 108
    EXPECT_FALSE(wide.DetachStore());
  }
  const std::map<uint16_t, std::pair<std::string, int64_t>> notes_before = [&] {
    PortService probe(Range(100, 109), processes, ports);
    probe.Restore(ParseJournal(store.contents()));
    return Notes(probe);
  }();
  ASSERT_EQ(notes_before.size(), 9u);

  // The narrow server: 100-104 are its own, 105-108 are carried.
  FakeLeaseStore narrow_store;
  {
    PortService narrow(Range(100, 104), processes, ports);
    EXPECT_EQ(narrow.Restore(ParseJournal(store.contents())), 5u);
    EXPECT_EQ(narrow.CarriedPorts(),
              (std::vector<uint16_t>{105, 106, 107, 108}));
    ASSERT_TRUE(narrow.AttachStore(&narrow_store).ok);
    // Only its own pool is leased: the carried ports are never handed out.
    processes.Spawn(20);
    EXPECT_EQ(narrow.Allocate(20).outcome, Outcome::kPoolExhausted);
    // A stop with carried leases keeps the journal.
    EXPECT_FALSE(narrow.DetachStore());
    EXPECT_FALSE(narrow_store.removed());
  }
  // Started again with the wide pool: every lease comes back, with its note.
  {
    PortService wide(Range(100, 109), processes, ports);
    EXPECT_EQ(wide.Restore(ParseJournal(narrow_store.contents())), 9u);
    EXPECT_EQ(Notes(wide), notes_before);
    EXPECT_TRUE(wide.CarriedPorts().empty());
  }
  // An owner that ends is carried no further (checked at compaction).
  processes.Kill(11);
  FakeLeaseStore after_exit;
  {
    PortService narrow(Range(100, 104), processes, ports);
    narrow.Restore(ParseJournal(narrow_store.contents()));
    processes.Kill(10);
    ASSERT_TRUE(narrow.AttachStore(&after_exit).ok);
    EXPECT_TRUE(narrow.CarriedPorts().empty());
  }
  // (100-104 stay leased until the pool's sweep finds owner 10 ended.)
  for (const auto& [port, owner] : ParseJournal(after_exit.contents()).leases) {
    EXPECT_LE(port, 104) << "carried after its owner ended";
  }

  // At a stop, carried leases whose owners ended are left out of the file.
  processes.Spawn(30);
  processes.Spawn(31);
  FakeLeaseStore stopped;
  {
    PortService wide(Range(100, 109), processes, ports);
    ASSERT_TRUE(wide.AttachStore(&stopped).ok);
    ASSERT_TRUE(wide.Allocate(30).granted());                 // 100
    ASSERT_TRUE(wide.AllocateMany(31, 9, "", {}).granted());  // 101-109
    EXPECT_FALSE(wide.DetachStore());
  }
  {
    PortService narrow(Range(100, 104), processes, ports);
    narrow.Restore(ParseJournal(stopped.contents()));
    ASSERT_EQ(narrow.CarriedPorts().size(), 5u);
    ASSERT_TRUE(narrow.AttachStore(&stopped).ok);
    processes.Kill(31);  // Holds 101-104 (leased) and 105-109 (carried).
    EXPECT_FALSE(narrow.DetachStore());
    EXPECT_TRUE(narrow.CarriedPorts().empty());
  }
  for (const auto& [port, owner] : ParseJournal(stopped.contents()).leases) {
    EXPECT_LE(port, 104) << "carried in the file after its owner ended";
  }
}

TEST(PortServiceJournal, NotesComeBackOnlyWithTheirOwnLease) {
  FakeProcessProbe processes;
  FakePortProbe ports;
  FakeProcessInfo info;
  processes.Spawn(20);
  processes.Spawn(21);
  const Owner dead{19, 3};
  const Owner alive{20, processes.IncarnationOf(20)};
  const Owner other{21, processes.IncarnationOf(21)};
  std::string text =
      JournalHeader() +
      // Port 100: a dead owner's lease with a note, then a live owner's
      // lease of the same port written without one.
      JournalLease(100, dead) + JournalLeaseNote(100, 1000, "//dead:t") +
      JournalLease(100, alive) +
      // Port 101: leased twice to the same owner; the last note wins.
      JournalLease(101, alive) + JournalLeaseNote(101, 2000, "//first:t") +
      JournalLease(101, alive) + JournalLeaseNote(101, 3000, "//last:t") +
      // Port 102: its note is damaged; the lease is restored without it.
      JournalLease(102, other) + "N 102 4000 //x:t 00000000\n" +
      // Port 200: outside the pool: not restored, its note ignored.
      JournalLease(200, other) + JournalLeaseNote(200, 5000, "//out:t");
  JournalReplay replay = ParseJournal(text);
  ASSERT_EQ(replay.notes.size(), 4u);
  ASSERT_EQ(replay.problems.size(), 1u);

  PortService service(Range(100, 109), processes, ports);
  service.SetProcessInfo(&info);
  EXPECT_EQ(service.Restore(replay), 3u);
  auto notes = Notes(service);
  ASSERT_EQ(notes.size(), 3u);
  EXPECT_EQ(notes[100], (std::pair<std::string, int64_t>{"", -1}));
  EXPECT_EQ(notes[101],
            (std::pair<std::string, int64_t>{"//last:t", 3000 * 1000}));
  EXPECT_EQ(notes[102], (std::pair<std::string, int64_t>{"", -1}));
}

TEST(PortServiceJournal, CompactsToASnapshotOfLiveLeases) {
  FakeProcessProbe processes;
  FakePortProbe ports;
  FakeLeaseStore store;
  PortService service(Range(100, 199), processes, ports);
  ASSERT_TRUE(service.AttachStore(&store, /*compact_after=*/10).ok);
  EXPECT_EQ(store.replaces(), 1);
  for (int pid = 2; pid < 40; ++pid) {
    processes.Spawn(pid);
    ASSERT_TRUE(service.Allocate(pid).granted());
    processes.Kill(pid);  // Short-lived owners: their records go stale.
  }
  EXPECT_GT(store.replaces(), 1);
  EXPECT_EQ(service.stats().journal_compactions,
            static_cast<uint64_t>(store.replaces()));
  // The journal stays small: bounded by the threshold plus a snapshot.
  JournalReplay replay = ParseJournal(store.contents());
  EXPECT_LE(replay.leases.size(), 10u + 1 + service.stats().leased_ports);
}

TEST(PortServiceJournal, StoreFailureIsCountedAndServingGoesOn) {
  FakeProcessProbe processes;
  FakePortProbe ports;
  FakeLeaseStore store;
  PortService service(Range(100, 104), processes, ports);
  ASSERT_TRUE(service.AttachStore(&store).ok);
  processes.Spawn(10);
  store.FailWrites(true);
  Decision d = service.Allocate(10);
  EXPECT_TRUE(d.granted());
  EXPECT_NE(d.store_error.find("disk full"), std::string::npos);
  EXPECT_EQ(service.stats().journal_errors, 1u);
}

Request FromPeer(std::string_view data, int64_t pid, uint32_t uid) {
  Request r = Wire(data);
  r.peer = PeerCredentials{true, pid, uid};
  return r;
}

TEST_F(PortServiceTest, CallerMayNameOnlyItsOwnUsersProcesses) {
  processes_.Spawn(60, /*uid=*/1000);
  processes_.Spawn(61, /*uid=*/1001);
  // uid 1000 asks for its own process: granted.
  EXPECT_TRUE(service_.Decide(FromPeer("60\n", 60, 1000)).granted());
  // uid 1000 asks for uid 1001's process: denied, and said why.
  Decision d = service_.Decide(FromPeer("61\n", 60, 1000));
  EXPECT_EQ(d.outcome, Outcome::kPermissionDenied);
  EXPECT_NE(d.detail.find("uid 1001"), std::string::npos) << d.detail;
  EXPECT_TRUE(d.reply.empty());
  // root may ask for anyone.
  EXPECT_TRUE(service_.Decide(FromPeer("61\n", 42, 0)).granted());
  // Unknown peers (a transport that cannot tell) are not checked.
  EXPECT_TRUE(service_.Decide(Wire("61\n")).granted());
  EXPECT_EQ(service_.stats().denied_permission, 1u);
}

TEST_F(PortServiceTest, PidNamedInAnotherNamespaceIsTranslated) {
  processes_.Spawn(5000);
  using Kind = ProcessProbe::Mapping::Kind;
  processes_.SetMapping(5000, 7, {Kind::kTranslated, 5000});
  Decision d = service_.Decide(FromPeer("7\n", 5000, 0));
  ASSERT_TRUE(d.granted());
  EXPECT_EQ(d.pid, 5000);
  EXPECT_EQ(d.named_pid, 7);
  EXPECT_EQ(service_.PortsOf(5000), (std::vector<uint16_t>{d.port}));
  EXPECT_TRUE(service_.PortsOf(7).empty()) << "never our unrelated pid 7";
  EXPECT_EQ(service_.stats().pids_translated, 1u);
}

TEST_F(PortServiceTest, UntranslatablePidIsLeasedToTheCaller) {
  processes_.Spawn(5000);
  processes_.Spawn(9);  // An unrelated process of ours with the named number.
  using Kind = ProcessProbe::Mapping::Kind;
  processes_.SetMapping(5000, 9, {Kind::kCaller, 5000});
  Decision d = service_.Decide(FromPeer("9\n", 5000, 0));
  ASSERT_TRUE(d.granted());
  EXPECT_EQ(d.pid, 5000);
  EXPECT_NE(d.detail.find("leased to the caller"), std::string::npos);
  EXPECT_TRUE(service_.PortsOf(9).empty());
  EXPECT_EQ(service_.stats().pids_replaced_by_caller, 1u);
  EXPECT_TRUE(d.pid_replaced);
}

TEST_F(PortServiceTest, PidNoProcessOfTheCallersNamespaceHasIsDenied) {
  processes_.Spawn(5000);
  processes_.Spawn(99);  // An unrelated process of ours with that number.
  using Kind = ProcessProbe::Mapping::Kind;
  processes_.SetMapping(5000, 99, {Kind::kNotFound, 99});
  Decision d = service_.Decide(FromPeer("99\n", 5000, 0));
  EXPECT_EQ(d.outcome, Outcome::kNoSuchProcess);
  EXPECT_NE(d.detail.find("no process of the caller's pid namespace"),
            std::string::npos);
  EXPECT_TRUE(service_.PortsOf(99).empty());
  EXPECT_TRUE(service_.PortsOf(5000).empty());
  EXPECT_EQ(service_.stats().denied_no_such_process, 1u);
  EXPECT_EQ(service_.stats().pids_replaced_by_caller, 0u);
}

// `leases owner=P` names P as allocate does: from a container, a pid of
// the caller's namespace (a helper found `--owner $$` listing nothing there).
TEST_F(PortServiceTest, LeasesOfAnOwnerNamedFromAContainer) {
  processes_.Spawn(5000);  // The caller, pid 1 of its container.
  processes_.Spawn(1);
  processes_.Spawn(77);  // Pid 77 of ours, another process.
  using Kind = ProcessProbe::Mapping::Kind;
  processes_.SetMapping(5000, 1, {Kind::kTranslated, 5000});
  processes_.SetMapping(5000, 77, {Kind::kNotFound, 77});
  // (Spawn(1) is init here: the request for "1" is the container's.)
  ASSERT_TRUE(service_.Decide(FromPeer("1\n", 5000, 0)).granted());
  ASSERT_TRUE(service_.Decide(FromPeer("77\n", 77, 0)).granted());
  PeerCredentials in_container{true, 5000, 0};
  LeaseQuery q;
  q.owner = 1;
  LeasePage page = service_.ListLeases(q, in_container);
  ASSERT_EQ(page.leases.size(), 1u);
  EXPECT_EQ(page.leases[0].pid, 5000);
  // Its pid 77 is nobody: not our pid 77's lease.
  q.owner = 77;
  EXPECT_TRUE(service_.ListLeases(q, in_container).leases.empty());
  // A caller of our namespace names our pids.
  EXPECT_EQ(service_.ListLeases(q, PeerCredentials{true, 77, 0}).leases.size(),
            1u);
  // A pid that cannot be translated (a server that is not root) is not our
  // pid of that number either (a reviewer's case).
  processes_.SetMapping(5000, 77, {Kind::kCaller, 5000});
  EXPECT_TRUE(service_.ListLeases(q, in_container).leases.empty());
}

// A journal of another boot holds no live lease: a pid and start time (in
// clock ticks after boot) may name a process of this boot.
TEST(PortServiceRestore, JournalOfAnotherBootRestoresNothing) {
  FakeProcessProbe processes;
  FakePortProbe ports;
  PortService service(Range(100, 101), processes, ports);
  processes.Spawn(5);
  const Owner five{5, processes.IncarnationOf(5)};
  service.SetBootId("this-boot");
  JournalReplay replay =
      ParseJournal(JournalHeader() + JournalBootRecord("earlier-boot") +
                   JournalLease(100, five));
  EXPECT_TRUE(service.FromAnotherBoot(replay));
  EXPECT_EQ(service.Restore(replay), 0u);
  EXPECT_TRUE(service.PortsOf(5).empty());
  // This boot's, or one that does not say (older servers): restored.
  replay = ParseJournal(JournalHeader() + JournalBootRecord("this-boot") +
                        JournalLease(100, five));
  EXPECT_FALSE(service.FromAnotherBoot(replay));
  EXPECT_EQ(service.Restore(replay), 1u);
  PortService other(Range(100, 101), processes, ports);
  other.SetBootId("this-boot");
  EXPECT_EQ(
      other.Restore(ParseJournal(JournalHeader() + JournalLease(101, five))),
      1u);
}

// Snapshots carry the boot id.
TEST(PortServiceRestore, SnapshotsNameTheBoot) {
  FakeProcessProbe processes;
  FakePortProbe ports;
  FakeLeaseStore store;
  PortService service(Range(100, 101), processes, ports);
  service.SetBootId("this-boot");
  ASSERT_TRUE(service.AttachStore(&store).ok);
  EXPECT_EQ(ParseJournal(store.contents()).boot_id, "this-boot");
}

TEST(PortServiceRestore, ProbeErrorKeepsTheLease) {
  FakeProcessProbe processes;
  FakePortProbe ports;
  PortService service(Range(100, 101), processes, ports);
  processes.Spawn(10);
  Owner ten{10, processes.IncarnationOf(10)};
  processes.FailNextCalls(1);  // Cannot tell at restart: keep, never guess.
  EXPECT_EQ(service.Restore({{100, ten}}), 1u);
  EXPECT_EQ(service.PortsOf(10), (std::vector<uint16_t>{100}));
}

TEST(PortServiceConcurrency, ConcurrentCallersNeverShareAPort) {
  FakeProcessProbe processes;
  FakePortProbe ports;
  PortService service(Range(1000, 1999), processes, ports);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 125;
  for (int t = 0; t < kThreads; ++t) processes.Spawn(100 + t);
  std::vector<std::vector<uint16_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Decision d = service.Allocate(100 + t);
        if (d.granted()) got[t].push_back(d.port);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<uint16_t> all;
  size_t total = 0;
  for (const auto& v : got) {
    total += v.size();
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(total, 1000u);
  EXPECT_EQ(all.size(), total) << "a port was leased twice";
}

// ------------------------------------------------------------- prefetch

// A port probe and a process probe that write what they are asked into one
// log, in order.
class LoggingPortProbe final : public PortProbe {
 public:
  LoggingPortProbe(FakePortProbe& inner, std::vector<std::string>& log)
      : inner_(inner), log_(log) {}
  PortState Check(uint16_t port) override {
    log_.push_back("check " + std::to_string(port));
    return inner_.Check(port);
  }
  std::vector<PortState> CheckMany(
      const std::vector<uint16_t>& ports) override {
    log_.push_back("check-many " + Join(ports));
    std::vector<PortState> states;
    for (uint16_t port : ports) states.push_back(inner_.Check(port));
    return states;
  }
  void Prefetch(const std::vector<uint16_t>& ports) override {
    log_.push_back("prefetch " + Join(ports));
  }
  void CancelPrefetch() override { log_.push_back("cancel"); }
  bool IsFree(uint16_t port) override { return IsLeasable(Check(port)); }
  void Release(uint16_t port) override { inner_.Release(port); }

 private:
  static std::string Join(const std::vector<uint16_t>& ports) {
    std::string text;
    for (uint16_t port : ports) {
      text += (text.empty() ? "" : ",") + std::to_string(port);
    }
    return text;
  }
  FakePortProbe& inner_;
  std::vector<std::string>& log_;
};

class LoggingProcessProbe final : public ProcessProbe {
 public:
  LoggingProcessProbe(FakeProcessProbe& inner, std::vector<std::string>& log)
      : inner_(inner), log_(log) {}
  Result Probe(int64_t pid) override {
    log_.push_back("owner " + std::to_string(pid));
    return inner_.Probe(pid);
  }

 private:
  FakeProcessProbe& inner_;
  std::vector<std::string>& log_;
};

// A request for several ports names the ports it will probe first to the
// port probe before its owner is checked (so that a probe with threads may
// check them meanwhile), then asks for exactly those, and settles the hint
// whatever the outcome.
TEST(PortServicePrefetch, NamesTheFirstPortsBeforeTheOwnerIsChecked) {
  std::vector<std::string> log;
  FakeProcessProbe fake_processes;
  FakePortProbe fake_ports;
  LoggingProcessProbe processes(fake_processes, log);
  LoggingPortProbe ports(fake_ports, log);
  PortService service(Range(100, 109), processes, ports);
  fake_processes.Spawn(42);
  Decision d = service.AllocateMany(42, 4, "", PeerCredentials{});
  ASSERT_TRUE(d.granted()) << OutcomeName(d.outcome);
  EXPECT_EQ(d.ports, (std::vector<uint16_t>{100, 101, 102, 103}));
  EXPECT_EQ(log,
            (std::vector<std::string>{"prefetch 100,101,102,103", "owner 42",
                                      "check-many 100,101,102,103", "cancel"}));

  // Denied (no such process): the hint is cancelled, nothing probed.
  log.clear();
  d = service.AllocateMany(43, 3, "", PeerCredentials{});
  EXPECT_EQ(d.outcome, Outcome::kNoSuchProcess);
  EXPECT_EQ(log, (std::vector<std::string>{"prefetch 104,105,106", "owner 43",
                                           "cancel"}));

  // One port, or more than the pool: no hint.
  log.clear();
  d = service.AllocateMany(42, 1, "", PeerCredentials{});
  ASSERT_TRUE(d.granted());
  d = service.AllocateMany(42, 11, "", PeerCredentials{});
  EXPECT_FALSE(d.granted());
  for (const std::string& entry : log) {
    EXPECT_EQ(entry.rfind("prefetch", 0), std::string::npos) << entry;
  }
}

// A process probe that keeps descriptors only to save work (the Linux one's
// remembered pidfds): giving them back lets the port probe make its locks.
class CachingProcessProbe final : public ProcessProbe {
 public:
  CachingProcessProbe(FakeProcessProbe& inner, FakePortProbe& ports)
      : inner_(inner), ports_(ports) {}
  Result Probe(int64_t pid) override {
    cached_ = caching_;  // Remembered: holds a descriptor.
    return inner_.Probe(pid);
  }
  void set_caching(bool caching) { caching_ = caching; }
  bool ReleaseCaches(int64_t /*keep*/) override {
    ++releases_;
    if (!cached_) return false;
    cached_ = false;
    ports_.RunOutOfDescriptors(false);
    return true;
  }
  int releases() const { return releases_; }

 private:
  FakeProcessProbe& inner_;
  FakePortProbe& ports_;
  bool caching_ = true;
  bool cached_ = false;
  int releases_ = 0;
};

// Out of descriptors, the port probe cannot tell whether a port is free;
// the process probe's remembered descriptors then give way and the request
// is tried once more, instead of being denied while descriptors sit in a
// cache (a low descriptor limit: the lock of the next port could not be
// made while 16 remembered pidfds were held).
TEST(PortServiceDescriptors, ProcessProbeCachesGiveWayToThePortProbe) {
  FakeProcessProbe fake_processes;
  FakePortProbe ports;
  CachingProcessProbe processes(fake_processes, ports);
  PortService service(Range(100, 109), processes, ports);
  fake_processes.Spawn(42);

  ports.RunOutOfDescriptors(true);
  Decision plain = service.Allocate(42);
  ASSERT_TRUE(plain.granted())
      << OutcomeName(plain.outcome) << " " << plain.detail;
  EXPECT_EQ(plain.port, 100);
  EXPECT_EQ(processes.releases(), 1);

  ports.RunOutOfDescriptors(true);
  Decision many = service.AllocateMany(42, 3, "", PeerCredentials{});
  ASSERT_TRUE(many.granted())
      << OutcomeName(many.outcome) << " " << many.detail;
  EXPECT_EQ(many.ports, (std::vector<uint16_t>{101, 102, 103}));
  EXPECT_EQ(processes.releases(), 2);
  EXPECT_EQ(service.stats().port_probe_failures, 0u);

  // Nothing kept to give back: denied as before, asked once a request.
  processes.set_caching(false);
  ports.RunOutOfDescriptors(true);
  Decision denied = service.AllocateMany(42, 2, "", PeerCredentials{});
  EXPECT_FALSE(denied.granted());
  EXPECT_NE(denied.detail.find("could not tell"), std::string::npos)
      << denied.detail;
  denied = service.Allocate(42);
  EXPECT_FALSE(denied.granted());
  EXPECT_EQ(processes.releases(), 4);
  EXPECT_EQ(service.stats().port_probe_failures, 2u);
}

// A port probe that runs out of descriptors after `checks_left` checks
// (every answer then kUnknown) until given descriptors back, and logs the
// ports it checks.
class RunningOutPortProbe final : public PortProbe {
 public:
  explicit RunningOutPortProbe(FakePortProbe& inner) : inner_(inner) {}
  PortState Check(uint16_t port) override {
    checked_.push_back(port);
    if (out_) return PortState::kUnknown;
    if (checks_left_ > 0 && --checks_left_ == 0) out_ = true;
    return inner_.Check(port);
  }
  bool IsFree(uint16_t port) override { return IsLeasable(Check(port)); }
  void Release(uint16_t port) override { inner_.Release(port); }
  void RunOutAfter(int checks) { checks_left_ = checks; }
  void RunOutNow() { out_ = true; }
  void GiveDescriptorsBack() { out_ = false; }
  bool out() const { return out_; }
  const std::vector<uint16_t>& checked() const { return checked_; }

 private:
  FakePortProbe& inner_;
  int checks_left_ = 0;
  bool out_ = false;
  std::vector<uint16_t> checked_;
};

// A process probe whose caches give the port probe its descriptors back,
// and that can make an owner end at a given probe.
class GivingProcessProbe final : public ProcessProbe {
 public:
  GivingProcessProbe(FakeProcessProbe& inner, RunningOutPortProbe& ports)
      : inner_(inner), ports_(ports) {}
  Result Probe(int64_t pid) override {
    if (++probes_ == end_at_) {
      inner_.Kill(pid);
      ports_.RunOutNow();
    }
    return inner_.Probe(pid);
  }
  bool ReleaseCaches(int64_t /*keep*/) override {
    ++releases_;
    ports_.GiveDescriptorsBack();
    return true;
  }
  // The owner ends at the n-th probe from now (and the port probe runs out
  // of descriptors with it).
  void EndOwnerAtProbe(int n) { end_at_ = probes_ + n; }
  int releases() const { return releases_; }

 private:
  FakeProcessProbe& inner_;
  RunningOutPortProbe& ports_;
  int probes_ = 0;
  int end_at_ = -1;
  int releases_ = 0;
};

// Pool 100-104, owner 42 alive, a port probe that may run out of
// descriptors and a process probe that gives them back.
class PortServiceSecondTry : public ::testing::Test {
 protected:
  PortServiceSecondTry()
      : ports(fake_ports),
        processes(fake_processes, ports),
        service(Range(100, 104), processes, ports) {
    fake_processes.Spawn(42);
  }
  FakeProcessProbe fake_processes;
  FakePortProbe fake_ports;
  RunningOutPortProbe ports;
  GivingProcessProbe processes;
  PortService service;
};

// The second try is the same request: no second tick of the backoff clock,
// which would thaw and probe again the ports the first try found busy (a
// reviewer: a port found busy twice in one request had its backoff doubled).
TEST_F(PortServiceSecondTry, IsTheSameRequest) {
  fake_ports.Occupy(100);
  ports.RunOutAfter(1);  // 100 is found busy, then descriptors run out.
  Decision d = service.Allocate(42);
  ASSERT_TRUE(d.granted()) << OutcomeName(d.outcome) << " " << d.detail;
  EXPECT_EQ(d.port, 101);
  EXPECT_EQ(processes.releases(), 1);
  EXPECT_EQ(ports.checked(), (std::vector<uint16_t>{100, 101, 101}));
  EXPECT_EQ(d.allocation.ports_checked, 3u);  // Both tries counted.
  EXPECT_EQ(d.allocation.ports_busy, 1u);
  // 100 stays set aside for its backoff (a second tick thawed it).
  EXPECT_EQ(service.stats().busy_ports_cooling, 1u);
}

// An owner found ended during its request is denied as one that had ended
// before it, and the request is not tried again: the second try leased the
// ports to the ended owner (a reviewer).
TEST_F(PortServiceSecondTry, NotForAnOwnerFoundEnded) {
  ASSERT_TRUE(service.AllocateMany(42, 2, "", PeerCredentials{}).granted());
  // 3 ports are left for 4: the queue runs out and the sweep of an
  // exhausted queue (the request's third probe of its owner, after its own
  // and the per-request sweep's) finds the owner ended; its ports, back in
  // the queue, cannot be checked (out of descriptors).
  processes.EndOwnerAtProbe(3);
  Decision d = service.AllocateMany(42, 4, "", PeerCredentials{});
  EXPECT_EQ(d.outcome, Outcome::kNoSuchProcess)
      << OutcomeName(d.outcome) << " " << d.detail;
  EXPECT_TRUE(d.allocation.owner_ended);
  EXPECT_EQ(processes.releases(), 0);
  EXPECT_TRUE(service.PortsOf(42).empty());
}

// Restore() twice, the same out-of-pool port carried for two live owners
// (two journals): the port is carried once (a reviewer: twice, and the
// first owner's end let go of the reservation while the second's carried
// lease still named it, so a neighbour could lease it to a third process).
TEST_F(PortServiceCarried, ACarriedPortIsNotReleasedWhileStillCarried) {
  narrow.Restore({{105, Of(10)}});
  narrow.Restore({{105, Of(11)}});
  processes.Kill(10);
  narrow.OwnerExited(10);
  const std::vector<uint16_t> carried = narrow.CarriedPorts();
  const bool still_carried =
      std::find(carried.begin(), carried.end(), 105) != carried.end();
  EXPECT_FALSE(still_carried && ports.reserved().count(105) == 0)
      << "port 105 still carried (for pid 11) but its reservation is let go";
}

// A carried lease's owner may release it early, as a lease in the pool
// (a new user's trial: "port 105 is not in the pool"); another user may not.
TEST_F(PortServiceCarried, ItsOwnersUserReleasesACarriedLease) {
  processes.Spawn(12, /*uid=*/1000);
  narrow.Restore({{105, Of(12)}, {106, Of(12)}});
  ReleaseOutcome other = narrow.Release({105}, PeerCredentials{true, 13, 1001});
  EXPECT_FALSE(other.ok);
  EXPECT_EQ(other.code, "permission-denied");
  EXPECT_EQ(narrow.CarriedPorts(), (std::vector<uint16_t>{105, 106}));
  ReleaseOutcome own = narrow.Release({105}, PeerCredentials{true, 12, 1000});
  EXPECT_TRUE(own.ok) << own.message;
  EXPECT_EQ(own.released, (std::vector<uint16_t>{105}));
  EXPECT_EQ(narrow.CarriedPorts(), (std::vector<uint16_t>{106}));
  EXPECT_EQ(ports.reserved(), (std::set<uint16_t>{106}));
  EXPECT_EQ(narrow.stats().ports_released, 1u);
}

// A carried lease's end lets go of a reservation (a descriptor under a low
// limit): a restored lease still without its own gets it at once, as when
// a lease in the pool ends (AllocationPolicyReservationsTest).
TEST_F(PortServiceCarried, ItsEndGivesItsReservationToARestoredLease) {
  ports.LimitReservations(1);
  narrow.Restore({{105, Of(10)}});  // Carried, reserved.
  narrow.Restore({{100, Of(11)}});  // In the pool, waits for a reservation.
  ASSERT_EQ(ports.reserved(), (std::set<uint16_t>{105}));
  processes.Kill(10);
  narrow.OwnerExited(10);
  EXPECT_EQ(ports.reserved(), (std::set<uint16_t>{100}));
  EXPECT_EQ(narrow.RetakeReservations(0), 0u);
}

// Restore() twice: the second call names only its own unreserved carried
// ports (a reviewer: it named the first call's again and counted them twice
// among those to retake).
TEST_F(PortServiceCarried, ASecondRestoreCarriesEachPortOnce) {
  ports.LockElsewhere(105);
  std::vector<uint16_t> first, second;
  narrow.Restore({{105, Of(10)}}, &first);
  EXPECT_EQ(first, (std::vector<uint16_t>{105}));
  narrow.Restore({{106, Of(11)}}, &second);
  EXPECT_EQ(second, (std::vector<uint16_t>{}));
  EXPECT_EQ(narrow.RetakeReservations(0), 1u);
  EXPECT_EQ(narrow.CarriedPorts(), (std::vector<uint16_t>{105, 106}));
}

// A journal deleted since the last request is not rewritten silently by a
// carried owner's exit notice (a reviewer: journal-rewrites stayed 0 and the
// next request, finding it intact, logged no warning): the next request
// finds it gone, rewrites it and says so.
TEST_F(PortServiceCarried,
       JournalDeletedBeforeACarriedOwnersExitIsRewrittenAndCounted) {
  narrow.Restore({{105, Of(10)}, {106, Of(11)}});
  FakeLeaseStore store;
  ASSERT_TRUE(narrow.AttachStore(&store).ok);
  store.Delete();
  processes.Kill(10);
  narrow.OwnerExited(10);
  Decision d = narrow.MaintainStore();
  EXPECT_TRUE(narrow.stats().journal_rewrites == 1 ||
              d.journal_event == JournalEvent::kRewritten)
      << "the deleted journal was rewritten without a word";
}

}  // namespace
}  // namespace portserver
