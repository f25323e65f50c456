#include "adapters/linux/linux_port_lock_probe.h"

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

}  // namespace
}  // namespace portserver
