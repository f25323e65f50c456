// Who an owner is, and how the journal keeps every live lease through the
// host's faults (issue 9): pid 1 of the caller's own pid namespace, thread
// ids, a journal that cannot be written for a while, a journal deleted
// while the server runs, and a clean stop with nothing left to keep.
#include <numeric>
#include <set>

#include "adapters/fake/fake_lease_store.h"
#include "adapters/fake/fake_port_probe.h"
#include "adapters/fake/fake_process_probe.h"
#include "domain/lease_journal.h"
#include "domain/port_service.h"
#include "gtest/gtest.h"

namespace portserver {
namespace {

using Kind = ProcessProbe::Mapping::Kind;

std::vector<uint16_t> Range(uint16_t first, uint16_t last) {
  std::vector<uint16_t> ports(last - first + 1);
  std::iota(ports.begin(), ports.end(), first);
  return ports;
}

Request FromPeer(std::string_view data, int64_t pid, uint32_t uid = 0) {
  Request r;
  r.data = data;
  r.end = Request::End::kNewline;
  r.peer = PeerCredentials{true, pid, uid};
  return r;
}

// The ports the journal would give back after a crash.
std::set<uint16_t> JournaledPorts(const FakeLeaseStore& store) {
  std::set<uint16_t> ports;
  for (const auto& lease : ParseJournal(store.contents()).leases) {
    ports.insert(lease.first);
  }
  return ports;
}

std::set<uint16_t> LeasedPorts(const PortService& service) {
  std::set<uint16_t> ports;
  for (const auto& lease : service.Leases()) ports.insert(lease.first);
  return ports;
}

class OwnerTest : public ::testing::Test {
 protected:
  OwnerTest() : service_(Range(100, 199), processes_, ports_) {}
  FakeProcessProbe processes_;
  FakePortProbe ports_;
  PortService service_;
};

TEST_F(OwnerTest, InitOfTheCallersOwnPidNamespaceIsTranslatedAndServed) {
  // A container's entrypoint is pid 1 there and 5000 here.
  processes_.Spawn(5000);
  processes_.SetMapping(5000, 1, {Kind::kTranslated, 5000});
  Decision d = service_.Decide(FromPeer("1\n", 5000));
  ASSERT_TRUE(d.granted()) << OutcomeName(d.outcome);
  EXPECT_EQ(d.pid, 5000);
  EXPECT_EQ(d.named_pid, 1);
  EXPECT_EQ(service_.PortsOf(5000), (std::vector<uint16_t>{d.port}));
}

TEST_F(OwnerTest, InitOfOurOwnPidNamespaceIsStillDenied) {
  processes_.Spawn(5000);
  // Same namespace (the default mapping): pid 1 is our init.
  EXPECT_EQ(service_.Decide(FromPeer("1\n", 5000)).outcome, Outcome::kInit);
  // Without credentials there is nothing to translate.
  EXPECT_EQ(service_.Allocate(1).outcome, Outcome::kInit);
  EXPECT_TRUE(service_.PortsOf(1).empty());
}

TEST_F(OwnerTest, AThreadIdIsNotAnOwner) {
  processes_.Spawn(42);
  processes_.SpawnThread(43, 42);
  Decision d = service_.Allocate(43);
  EXPECT_EQ(d.outcome, Outcome::kThread);
  EXPECT_NE(d.detail.find("thread of process 42"), std::string::npos)
      << d.detail;
  EXPECT_TRUE(service_.PortsOf(43).empty());
  EXPECT_EQ(service_.stats().denied_no_such_process, 1u);
  // Named through a caller's namespace, the rule is the same.
  EXPECT_EQ(service_.Decide(FromPeer("43\n", 42)).outcome, Outcome::kThread);
  // The process itself is served.
  EXPECT_TRUE(service_.Allocate(42).granted());
}

TEST_F(OwnerTest, JournaledLeaseOfAThreadIdIsNotRestored) {
  processes_.Spawn(42);
  processes_.SpawnThread(43, 42);
  EXPECT_EQ(service_.Restore({{100, Owner{43, 7}},
                              {101, Owner{42, processes_.IncarnationOf(42)}}}),
            1u);
  EXPECT_TRUE(service_.PortsOf(43).empty());
  EXPECT_EQ(service_.PortsOf(42), (std::vector<uint16_t>{101}));
}

class JournalFaultTest : public OwnerTest {
 protected:
  void SetUp() override {
    processes_.Spawn(10);
    ASSERT_TRUE(service_.AttachStore(&store_).ok);
  }
  Decision Ask(int64_t pid) {
    return service_.Decide(FromPeer(std::to_string(pid) + "\n", pid));
  }
  FakeLeaseStore store_;
};

TEST_F(JournalFaultTest, GrantsMadeWhileTheDiskWasFullAreWrittenOnceItIsNot) {
  ASSERT_TRUE(Ask(10).granted());
  store_.FailWrites(true);
  Decision first = Ask(10);
  ASSERT_TRUE(first.granted());
  EXPECT_EQ(first.journal_event, JournalEvent::kFellBehind);
  EXPECT_NE(first.store_error.find("disk full"), std::string::npos);
  for (int i = 0; i < 5; ++i) {
    Decision d = Ask(10);
    ASSERT_TRUE(d.granted());
    EXPECT_EQ(d.journal_event, JournalEvent::kNone) << "logged once only";
  }
  EXPECT_NE(JournaledPorts(store_), LeasedPorts(service_));
  Stats during = service_.stats();
  EXPECT_EQ(during.journal_outages, 1u);
  EXPECT_EQ(during.journal_missed_grants, 6u);

  store_.FailWrites(false);
  // Any request, even a denial, brings the journal up to date.
  Decision next = Ask(99);
  EXPECT_EQ(next.outcome, Outcome::kNoSuchProcess);
  EXPECT_EQ(next.journal_event, JournalEvent::kCaughtUp);
  EXPECT_EQ(next.journal_missed, 6u);
  EXPECT_EQ(JournaledPorts(store_), LeasedPorts(service_));
  EXPECT_EQ(LeasedPorts(service_).size(), 7u);
  // And appends go on from there.
  ASSERT_TRUE(Ask(10).granted());
  EXPECT_EQ(JournaledPorts(store_), LeasedPorts(service_));
}

TEST_F(JournalFaultTest, FailedFirstCompactionLeavesTheJournalBehind) {
  FakeLeaseStore full;
  full.FailWrites(true);
  PortService service(Range(100, 109), processes_, ports_);
  EXPECT_FALSE(service.AttachStore(&full).ok);
  Request r = FromPeer("10\n", 10);
  ASSERT_TRUE(service.Decide(r).granted());
  full.FailWrites(false);
  EXPECT_EQ(service.Decide(r).journal_event, JournalEvent::kCaughtUp);
  EXPECT_EQ(JournaledPorts(full), LeasedPorts(service));
}

TEST_F(JournalFaultTest, DeletedJournalIsRewrittenWithEveryLiveLease) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Ask(10).granted());
  store_.Delete();
  EXPECT_TRUE(JournaledPorts(store_).empty());
  Decision d = Ask(99);  // Any request notices.
  EXPECT_EQ(d.journal_event, JournalEvent::kRewritten);
  EXPECT_EQ(JournaledPorts(store_), LeasedPorts(service_));
  EXPECT_EQ(service_.stats().journal_rewrites, 1u);
  ASSERT_TRUE(Ask(10).granted());
  EXPECT_EQ(JournaledPorts(store_), LeasedPorts(service_));
}

TEST_F(JournalFaultTest, CleanStopRewritesADeletedJournal) {
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Ask(10).granted());
  store_.Delete();
  EXPECT_FALSE(service_.DetachStore());
  EXPECT_FALSE(service_.journal_behind());
  EXPECT_EQ(JournaledPorts(store_), LeasedPorts(service_));
  EXPECT_EQ(JournaledPorts(store_).size(), 3u);
}

TEST_F(JournalFaultTest, CleanStopWithoutLeasesRemovesTheStore) {
  ASSERT_TRUE(Ask(10).granted());
  processes_.Kill(10);
  service_.OwnerExited(10);
  EXPECT_TRUE(service_.DetachStore());
  EXPECT_TRUE(store_.removed());
}

// A store that keeps its files (the Windows journal): a clean stop without
// leases does not report them removed (the log said "removed" on Windows
// while the files stayed, found by a Windows trial).
TEST(PortServiceCleanStop, StoreThatKeepsItsFilesIsNotReportedRemoved) {
  class KeepingStore final : public LeaseStore {
   public:
    StoreResult Append(std::string_view) override { return {}; }
    StoreResult Replace(std::string_view text) override {
      if (fail) return StoreResult{false, "disk full"};
      contents = std::string(text);
      return {};
    }
    bool fail = false;
    std::string contents;
  } store;
  FakeProcessProbe processes;
  FakePortProbe ports;
  PortService service({100, 101}, processes, ports);
  ASSERT_TRUE(service.AttachStore(&store).ok);
  // A release it could not take, then a clean stop with no lease left: the
  // kept journal is written without it (a reviewer's case).
  processes.Spawn(10);
  Request r;
  std::string line = "10\n";
  r.data = line;
  ASSERT_TRUE(service.Decide(r).granted());
  store.fail = true;
  ASSERT_TRUE(service.Release({100}, PeerCredentials{true, 10, 0}).ok);
  ASSERT_TRUE(service.journal_behind());
  store.fail = false;
  EXPECT_FALSE(service.DetachStore());
  EXPECT_FALSE(service.journal_behind());
  EXPECT_TRUE(ParseJournal(store.contents).leases.empty()) << store.contents;
}

TEST_F(JournalFaultTest, CleanStopWithLiveLeasesKeepsTheStore) {
  ASSERT_TRUE(Ask(10).granted());
  EXPECT_FALSE(service_.DetachStore());
  EXPECT_FALSE(store_.removed());
  EXPECT_EQ(JournaledPorts(store_), LeasedPorts(service_));
}

}  // namespace
}  // namespace portserver
