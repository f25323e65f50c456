#include "adapters/windows/windows_port_lock_probe.h"

#include <memory>

#include "adapters/fake/fake_port_probe.h"
#include "adapters/windows/windows_test_util.h"
#include "adapters/windows/windows_text.h"
#include "gtest/gtest.h"

namespace portserver {
namespace {

// A lock prefix of this run only: parallel runs never share locks.
std::string UniquePrefix() { return UniquePipeAddress("lock").substr(1) + "-"; }

TEST(WindowsPortLockProbe, OnlyOneServerHoldsAPortUntilItLetsGo) {
  FakePortProbe ports;
  const std::string prefix = UniquePrefix();
  WindowsPortLockProbe first(ports, prefix);
  WindowsPortLockProbe second(ports, prefix);
  EXPECT_TRUE(first.IsFree(20000));
  EXPECT_TRUE(first.IsFree(20000));  // Its own lock: still free to it.
  EXPECT_FALSE(second.IsFree(20000));
  EXPECT_TRUE(second.IsFree(20001));
  first.Release(20000);
  EXPECT_TRUE(second.IsFree(20000));
  EXPECT_EQ(first.locks_held(), 0u);
  EXPECT_EQ(second.locks_held(), 2u);
}

TEST(WindowsPortLockProbe, BusyPortHoldsNoLock) {
  FakePortProbe ports;
  ports.Occupy(20000);
  const std::string prefix = UniquePrefix();
  WindowsPortLockProbe first(ports, prefix);
  WindowsPortLockProbe second(ports, prefix);
  EXPECT_FALSE(first.IsFree(20000));
  EXPECT_EQ(first.locks_held(), 0u);
  ports.Vacate(20000);
  EXPECT_TRUE(second.IsFree(20000));
}

// Who holds a busy port's lock: another server (true), or nobody, the
// port being in use outside any server (false). Asking keeps no lock.
TEST(WindowsPortLockProbe, TellsALockAnotherServerHoldsFromOtherUse) {
  FakePortProbe ports;
  const std::string prefix = UniquePrefix();
  WindowsPortLockProbe mine(ports, prefix);
  WindowsPortLockProbe other(ports, prefix);
  ASSERT_TRUE(other.IsFree(26000));
  ports.Occupy(26001);
  ASSERT_EQ(mine.Check(26000), PortState::kBusy);
  ASSERT_EQ(mine.Check(26001), PortState::kBusy);
  EXPECT_TRUE(mine.HeldByAnotherServer(26000));
  EXPECT_FALSE(mine.HeldByAnotherServer(26001));
  EXPECT_FALSE(mine.HeldByAnotherServer(26002));  // Free: nobody's.
  ASSERT_TRUE(mine.IsFree(26002));
  EXPECT_FALSE(mine.HeldByAnotherServer(26002));  // Its own.
  EXPECT_EQ(mine.locks_held(), 1u);
  ports.Vacate(26001);
  EXPECT_TRUE(other.IsFree(26001)) << "asking kept the lock of 26001";
}

// An object of another type under a port's lock name (any program may make
// an event of any name): that port is busy, not "cannot tell", which
// denied every request while the event lived (a Windows trial).
TEST(WindowsPortLockProbe, AnEventUnderTheLockNameMakesThatPortBusyOnly) {
  FakePortProbe ports;
  const std::string prefix = UniquePrefix();
  ScopedHandle squat(CreateEventW(
      nullptr, TRUE, FALSE, Widen(prefix + std::to_string(27000)).c_str()));
  ASSERT_TRUE(squat.valid());
  WindowsPortLockProbe probe(ports, prefix);
  EXPECT_EQ(probe.Check(27000), PortState::kBusy);
  EXPECT_TRUE(probe.HeldByAnotherServer(27000));
  EXPECT_EQ(probe.Check(27001), PortState::kFree);
  EXPECT_EQ(probe.locks_held(), 1u);
}

// Check() passes the inner probe's state through once the lock is held,
// holds the lock for every leasable state and none otherwise.
TEST(WindowsPortLockProbe, CheckPassesTheInnerStateThrough) {
  FakePortProbe ports;
  ports.LingerInTimeWait(20000);
  ports.Occupy(20001);
  const std::string prefix = UniquePrefix();
  WindowsPortLockProbe first(ports, prefix);
  WindowsPortLockProbe second(ports, prefix);
  EXPECT_EQ(first.Check(20000), PortState::kReuseAddrOnly);
  EXPECT_EQ(first.Check(20001), PortState::kBusy);
  EXPECT_EQ(first.Check(20002), PortState::kFree);
  EXPECT_EQ(first.locks_held(), 2u);
  EXPECT_EQ(second.Check(20000), PortState::kBusy);  // first's lock
  ports.RunOutOfDescriptors(true);
  EXPECT_EQ(second.Check(20003), PortState::kUnknown);
  EXPECT_EQ(second.locks_held(), 0u);
}

// A lease restored from the journal: its owner may have bound the port, so
// Reserve() takes the lock without a bind test; another server's lock wins.
TEST(WindowsPortLockProbe, ReserveTakesTheLockWithoutABindTest) {
  FakePortProbe ports;
  ports.Occupy(20000);
  const std::string prefix = UniquePrefix();
  WindowsPortLockProbe first(ports, prefix);
  WindowsPortLockProbe second(ports, prefix);
  EXPECT_TRUE(first.Reserve(20000));
  EXPECT_TRUE(first.Reserve(20000));  // Already its own.
  EXPECT_EQ(first.locks_held(), 1u);
  EXPECT_FALSE(second.Reserve(20000));
  ports.Vacate(20000);
  EXPECT_EQ(second.Check(20000), PortState::kBusy);
  first.Release(20000);
  EXPECT_TRUE(second.Reserve(20000));
  EXPECT_EQ(first.locks_held(), 0u);
}

TEST(WindowsPortLockProbe, LocksGoWithTheServer) {
  FakePortProbe ports;
  const std::string prefix = UniquePrefix();
  WindowsPortLockProbe second(ports, prefix);
  {
    WindowsPortLockProbe first(ports, prefix);
    EXPECT_TRUE(first.IsFree(20000));
    EXPECT_FALSE(second.IsFree(20000));
  }
  EXPECT_TRUE(second.IsFree(20000));
}

TEST(WindowsPortLockProbe, LockOfAKilledProcessIsDropped) {
  // A child holds the kernel object: this test executable, suspended, with
  // a duplicated handle to a mutex of the lock's name.
  FakePortProbe ports;
  const std::string prefix = UniquePrefix();
  std::unique_ptr<ChildProcess> child = ChildProcess::Start(
      Quote(ExePath("adapters/windows/python_style_client.exe")) + " @none",
      /*capture=*/false, CREATE_SUSPENDED);
  ASSERT_NE(child, nullptr);
  {
    WindowsPortLockProbe parent(ports, prefix);
    ASSERT_TRUE(parent.IsFree(20000));
    ScopedHandle mutex(
        OpenMutexW(SYNCHRONIZE, FALSE, Widen(prefix + "20000").c_str()));
    ASSERT_TRUE(mutex.valid());
    HANDLE in_child = nullptr;
    ASSERT_TRUE(DuplicateHandle(GetCurrentProcess(), mutex.get(),
                                child->handle(), &in_child, 0, FALSE,
                                DUPLICATE_SAME_ACCESS));
  }
  WindowsPortLockProbe other(ports, prefix);
  EXPECT_FALSE(other.IsFree(20000));  // The child keeps the lock alive.
  child->Kill();
  EXPECT_TRUE(other.IsFree(20000));
}

}  // namespace
}  // namespace portserver
