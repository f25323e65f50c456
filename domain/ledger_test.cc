#include "domain/ledger.h"

#include "adapters/fake/fake_process_probe.h"
#include "gtest/gtest.h"

namespace portserver {
namespace {

using Ports = std::vector<uint16_t>;

TEST(Ledger, RecordsLeasesPerOwner) {
  Ledger ledger;
  Owner a{100, 7};
  EXPECT_TRUE(ledger.Lease(10, a));
  EXPECT_TRUE(ledger.Lease(11, a));
  EXPECT_EQ(ledger.PortsOf(100), (Ports{10, 11}));
  ASSERT_TRUE(ledger.HolderOf(11).has_value());
  EXPECT_EQ(*ledger.HolderOf(11), a);
  EXPECT_FALSE(ledger.HolderOf(12).has_value());
  EXPECT_EQ(ledger.leased_ports(), 2u);
  EXPECT_EQ(ledger.owners(), 1u);
}

TEST(Ledger, RefusesDoubleLease) {
  Ledger ledger;
  EXPECT_TRUE(ledger.Lease(10, Owner{100, 1}));
  EXPECT_FALSE(ledger.Lease(10, Owner{200, 1}));
  EXPECT_FALSE(ledger.Lease(10, Owner{100, 1}));
  EXPECT_EQ(*ledger.HolderOf(10), (Owner{100, 1}));
}

TEST(Ledger, RefusesPortZeroAndNonPositivePids) {
  Ledger ledger;
  EXPECT_FALSE(ledger.Lease(0, Owner{100, 1}));
  EXPECT_FALSE(ledger.Lease(10, Owner{0, 1}));
  EXPECT_FALSE(ledger.Lease(10, Owner{-4, 1}));
  EXPECT_EQ(ledger.leased_ports(), 0u);
  EXPECT_TRUE(ledger.Lease(65535, Owner{100, 1}));
  EXPECT_EQ(ledger.HolderOf(65535)->pid, 100);
  EXPECT_FALSE(ledger.HolderOf(65534).has_value());
}

TEST(Ledger, RefusesSecondIncarnationOfSamePid) {
  Ledger ledger;
  EXPECT_TRUE(ledger.Lease(10, Owner{100, 1}));
  EXPECT_FALSE(ledger.Lease(11, Owner{100, 2}));
  EXPECT_EQ(ledger.PortsOf(100), (Ports{10}));
}

TEST(Ledger, ReleaseReturnsPortsAndForgetsOwner) {
  Ledger ledger;
  ledger.Lease(10, Owner{100, 1});
  ledger.Lease(11, Owner{100, 1});
  EXPECT_EQ(ledger.Release(100), (Ports{10, 11}));
  EXPECT_FALSE(ledger.HolderOf(10).has_value());
  EXPECT_EQ(ledger.owners(), 0u);
  EXPECT_TRUE(ledger.Release(100).empty());
}

TEST(Ledger, ReleasesPortsOfDeadProcess) {
  FakeProcessProbe processes;
  processes.Spawn(100);
  Ledger ledger;
  ledger.Lease(10, Owner{100, processes.IncarnationOf(100)});
  EXPECT_TRUE(ledger.ReclaimIfGone(100, processes).empty());
  processes.Kill(100);
  EXPECT_EQ(ledger.ReclaimIfGone(100, processes), (Ports{10}));
  EXPECT_EQ(ledger.leased_ports(), 0u);
}

TEST(Ledger, ReleasesPortsWhenPidIsReused) {
  FakeProcessProbe processes;
  processes.Spawn(100);
  Ledger ledger;
  ledger.Lease(10, Owner{100, processes.IncarnationOf(100)});
  processes.Spawn(100);  // Same pid, a new process.
  EXPECT_EQ(ledger.ReclaimIfGone(100, processes), (Ports{10}));
}

TEST(Ledger, KeepsLeaseWhenProbeFails) {
  FakeProcessProbe processes;
  Ledger ledger;
  ledger.Lease(10, Owner{100, 1});  // pid 100 is not alive in the fake...
  processes.FailNextCalls(1);       // ...but the probe cannot tell.
  EXPECT_TRUE(ledger.ReclaimIfGone(100, processes).empty());
  EXPECT_EQ(ledger.leased_ports(), 1u);
  EXPECT_EQ(ledger.ReclaimIfGone(100, processes), (Ports{10}));
}

TEST(Ledger, SweepIsBoundedAndRoundRobin) {
  FakeProcessProbe processes;
  Ledger ledger;
  for (int pid = 100; pid < 110; ++pid) {
    processes.Spawn(pid);
    ledger.Lease(static_cast<uint16_t>(pid),
                 Owner{pid, processes.IncarnationOf(pid)});
  }
  for (int pid = 100; pid < 110; ++pid) processes.Kill(pid);

  int before = processes.probe_count();
  EXPECT_EQ(ledger.Sweep(processes, 3), (Ports{100, 101, 102}));
  EXPECT_EQ(processes.probe_count() - before, 3);
  EXPECT_EQ(ledger.Sweep(processes, 3), (Ports{103, 104, 105}));
  EXPECT_EQ(ledger.Sweep(processes, 100), (Ports{106, 107, 108, 109}));
  EXPECT_EQ(ledger.owners(), 0u);
  EXPECT_TRUE(ledger.Sweep(processes, 5).empty());
}

TEST(Ledger, SweepWrapsAroundToEarlierOwners) {
  FakeProcessProbe processes;
  Ledger ledger;
  for (int pid : {100, 200, 300}) {
    processes.Spawn(pid);
    ledger.Lease(static_cast<uint16_t>(pid),
                 Owner{pid, processes.IncarnationOf(pid)});
  }
  EXPECT_TRUE(ledger.Sweep(processes, 2).empty());  // Looked at 100, 200.
  processes.Kill(100);
  // Next looks at 300, then wraps to 100.
  EXPECT_EQ(ledger.Sweep(processes, 2), (Ports{100}));
}

}  // namespace
}  // namespace portserver
