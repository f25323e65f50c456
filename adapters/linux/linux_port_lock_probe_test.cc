#include "adapters/linux/linux_port_lock_probe.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "adapters/fake/fake_port_probe.h"
#include "gtest/gtest.h"

namespace portserver {
namespace {

// A prefix private to this test process, so parallel tests don't meet.
std::string Prefix() {
  return "portserver-lock-test-" + std::to_string(getpid()) + "-";
}

TEST(LinuxPortLockProbe, TwoServersNeverBothGetAPort) {
  FakePortProbe ports;
  LinuxPortLockProbe a(ports, Prefix());
  LinuxPortLockProbe b(ports, Prefix());
  EXPECT_TRUE(a.IsFree(20000));
  EXPECT_FALSE(b.IsFree(20000)) << "b got a port whose lock a holds";
  EXPECT_TRUE(b.IsFree(20001));
  EXPECT_FALSE(a.IsFree(20001));
  EXPECT_EQ(a.locks_held(), 1u);
}

TEST(LinuxPortLockProbe, ReleaseLetsAnotherServerTakeThePort) {
  FakePortProbe ports;
  LinuxPortLockProbe a(ports, Prefix());
  LinuxPortLockProbe b(ports, Prefix());
  ASSERT_TRUE(a.IsFree(20000));
  ASSERT_FALSE(b.IsFree(20000));
  a.Release(20000);
  EXPECT_EQ(a.locks_held(), 0u);
  EXPECT_TRUE(b.IsFree(20000));
  EXPECT_FALSE(a.IsFree(20000));
  a.Release(20001);  // Not held: nothing happens.
}

TEST(LinuxPortLockProbe, LockIsReleasedWhenTheHolderGoes) {
  FakePortProbe ports;
  LinuxPortLockProbe b(ports, Prefix());
  {
    LinuxPortLockProbe a(ports, Prefix());
    ASSERT_TRUE(a.IsFree(20000));
    EXPECT_FALSE(b.IsFree(20000));
  }
  EXPECT_TRUE(b.IsFree(20000));
}

TEST(LinuxPortLockProbe, BusyPortIsNotFreeAndItsLockIsGivenBack) {
  FakePortProbe ports;
  ports.Occupy(20000);
  LinuxPortLockProbe a(ports, Prefix());
  LinuxPortLockProbe b(ports, Prefix());
  EXPECT_FALSE(a.IsFree(20000));
  EXPECT_EQ(a.locks_held(), 0u);
  ports.Vacate(20000);
  EXPECT_TRUE(b.IsFree(20000)) << "a kept the lock of a busy port";
}

TEST(LinuxPortLockProbe, HeldPortIsStillProbedAndReleasedIfBusy) {
  FakePortProbe ports;
  LinuxPortLockProbe a(ports, Prefix());
  LinuxPortLockProbe b(ports, Prefix());
  ASSERT_TRUE(a.IsFree(20000));
  ports.Occupy(20000);
  EXPECT_FALSE(a.IsFree(20000));
  EXPECT_EQ(a.locks_held(), 0u);
  ports.Vacate(20000);
  EXPECT_TRUE(b.IsFree(20000));
}

TEST(LinuxPortLockProbe, LockIsVisibleToOtherProcesses) {
  const std::string prefix = Prefix();  // The child's pid differs.
  FakePortProbe ports;
  LinuxPortLockProbe a(ports, prefix);
  ASSERT_TRUE(a.IsFree(20000));
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    FakePortProbe child_ports;
    LinuxPortLockProbe c(child_ports, prefix);
    char verdict = c.IsFree(20000) ? 'y' : 'n';
    (void)!write(pipe_fds[1], &verdict, 1);
    _exit(0);
  }
  close(pipe_fds[1]);
  char verdict = '?';
  ASSERT_EQ(read(pipe_fds[0], &verdict, 1), 1);
  close(pipe_fds[0]);
  waitpid(child, nullptr, 0);
  EXPECT_EQ(verdict, 'n');
}

TEST(LinuxPortLockProbe, TimeWaitPortIsReportedAsSuchWithItsLockHeld) {
  FakePortProbe ports;
  ports.LingerInTimeWait(20000);
  LinuxPortLockProbe a(ports, Prefix());
  LinuxPortLockProbe b(ports, Prefix());
  EXPECT_EQ(a.Check(20000), PortState::kReuseAddrOnly);
  EXPECT_EQ(a.locks_held(), 1u);
  EXPECT_EQ(b.Check(20000), PortState::kBusy);
  a.Release(20000);  // The policy did not take it.
  EXPECT_EQ(b.Check(20000), PortState::kReuseAddrOnly);
}

// Out of descriptors, the lock cannot be taken: the answer is kUnknown (not
// "busy", which would set every port of the pool aside one by one, and not
// "free", which would lease a port without its lock).
TEST(LinuxPortLockProbe, OutOfDescriptorsIsUnknownAndHoldsNothing) {
  const std::string prefix = Prefix();
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    FakePortProbe ports;
    LinuxPortLockProbe a(ports, prefix);
    int lowest = dup(0);  // The lowest free descriptor.
    close(lowest);
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = static_cast<rlim_t>(lowest);
    setrlimit(RLIMIT_NOFILE, &limit);
    char verdict = a.Check(20000) == PortState::kUnknown && a.locks_held() == 0
                       ? 'u'
                       : 'x';
    (void)!write(pipe_fds[1], &verdict, 1);
    _exit(0);
  }
  close(pipe_fds[1]);
  char verdict = '?';
  ASSERT_EQ(read(pipe_fds[0], &verdict, 1), 1);
  close(pipe_fds[0]);
  waitpid(child, nullptr, 0);
  EXPECT_EQ(verdict, 'u');
  // The port's lock was never taken: another server can have it.
  FakePortProbe ports;
  LinuxPortLockProbe b(ports, prefix);
  EXPECT_EQ(b.Check(20000), PortState::kFree);
}

}  // namespace
}  // namespace portserver
