#include "adapters/windows/windows_process_probe.h"

#include <memory>

#include "adapters/windows/windows_error.h"
#include "adapters/windows/windows_test_util.h"
#include "adapters/windows/windows_user.h"
#include "gtest/gtest.h"

namespace portserver {
namespace {

uint64_t CreationTime(HANDLE process) {
  FILETIME created, exited, kernel, user;
  EXPECT_TRUE(GetProcessTimes(process, &created, &exited, &kernel, &user));
  return (uint64_t{created.dwHighDateTime} << 32) | created.dwLowDateTime;
}

// A child that never runs: this executable, suspended.
std::unique_ptr<ChildProcess> StartSuspendedChild() {
  return ChildProcess::Start(
      Quote(ExePath("adapters/windows/python_style_client.exe")) + " @none",
      /*capture=*/false, CREATE_SUSPENDED);
}

TEST(WindowsProcessProbe, LiveProcessIsAliveWithItsCreationTimeAndUser) {
  WindowsProcessProbe probe;
  ProcessProbe::Result r = probe.Probe(GetCurrentProcessId());
  ASSERT_EQ(r.state, ProcessProbe::State::kAlive);
  EXPECT_EQ(r.incarnation, CreationTime(GetCurrentProcess()));
  HANDLE raw = nullptr;
  ASSERT_TRUE(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &raw));
  ScopedHandle token(raw);
  ASSERT_TRUE(r.uid_known);
  EXPECT_EQ(r.uid, *TokenUserId(token.get()));
  EXPECT_NE(r.uid, 0u);  // Never the superuser's uid, even for an admin.
}

TEST(WindowsProcessProbe, ChildIsAliveThenGoneWhileItsHandleIsStillOpen) {
  WindowsProcessProbe probe;
  std::unique_ptr<ChildProcess> child = StartSuspendedChild();
  ASSERT_NE(child, nullptr);
  ProcessProbe::Result alive = probe.Probe(child->pid());
  ASSERT_EQ(alive.state, ProcessProbe::State::kAlive);
  EXPECT_EQ(alive.incarnation, CreationTime(child->handle()));
  child->Kill(3);
  // `child` still holds the process handle: the object and its pid live on,
  // but the process has exited.
  EXPECT_EQ(probe.Probe(child->pid()).state, ProcessProbe::State::kGone);
}

TEST(WindowsProcessProbe, ProcessThatExitedWithStillActiveCodeIsGone) {
  WindowsProcessProbe probe;
  std::unique_ptr<ChildProcess> child = StartSuspendedChild();
  ASSERT_NE(child, nullptr);
  child->Kill(STILL_ACTIVE);  // Exit code 259 looks like "running".
  EXPECT_EQ(probe.Probe(child->pid()).state, ProcessProbe::State::kGone);
}

TEST(WindowsProcessProbe, ReusedPidIsANewIncarnation) {
  WindowsProcessProbe probe;
  std::unique_ptr<ChildProcess> first = StartSuspendedChild();
  ASSERT_NE(first, nullptr);
  const DWORD pid = first->pid();
  ProcessProbe::Result before = probe.Probe(pid);
  ASSERT_EQ(before.state, ProcessProbe::State::kAlive);
  first.reset();  // Killed, every handle closed: the pid is free again.
  // Windows hands a freed pid out again soon; start children until one gets
  // it. (Wine counts pids up within a session: there the test skips.)
  for (int i = 0; i < 30; ++i) {
    std::unique_ptr<ChildProcess> next = StartSuspendedChild();
    ASSERT_NE(next, nullptr);
    if (next->pid() != pid) continue;
    ProcessProbe::Result after = probe.Probe(pid);
    ASSERT_EQ(after.state, ProcessProbe::State::kAlive);
    EXPECT_NE(after.incarnation, before.incarnation);
    EXPECT_EQ(after.incarnation, CreationTime(next->handle()));
    return;
  }
  GTEST_SKIP() << "pid " << pid << " was not reused in 30 processes";
}

TEST(WindowsProcessProbe, IncarnationIsTheCreationTimeOfEachProcess) {
  WindowsProcessProbe probe;
  std::unique_ptr<ChildProcess> a = StartSuspendedChild();
  std::unique_ptr<ChildProcess> b = StartSuspendedChild();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ProcessProbe::Result ra = probe.Probe(a->pid());
  ProcessProbe::Result rb = probe.Probe(b->pid());
  ASSERT_EQ(ra.state, ProcessProbe::State::kAlive);
  ASSERT_EQ(rb.state, ProcessProbe::State::kAlive);
  EXPECT_EQ(ra.incarnation, CreationTime(a->handle()));
  EXPECT_EQ(rb.incarnation, CreationTime(b->handle()));
  EXPECT_EQ(ra.uid, rb.uid);  // Same user.
}

// Windows ignores the two low bits of a process id: pid + 1 to pid + 3
// open process pid, but name no process (a Windows trial leased ports to
// pids 545-547 of process 544, each with a quota of its own).
TEST(WindowsProcessProbe, AliasesOfAProcessIdAreGone) {
  WindowsProcessProbe probe;
  const DWORD pid = GetCurrentProcessId();
  ASSERT_EQ(pid % 4, 0u) << "a process id with low bits set";
  ASSERT_EQ(probe.Probe(pid).state, ProcessProbe::State::kAlive);
  for (DWORD alias = pid + 1; alias < pid + 4; ++alias) {
    ScopedHandle opened(
        OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, alias));
    EXPECT_TRUE(opened.valid()) << "Windows no longer opens " << alias << " as "
                                << pid << ": the test is moot";
    EXPECT_EQ(probe.Probe(alias).state, ProcessProbe::State::kGone) << alias;
  }
}

TEST(WindowsProcessProbe, PidsNoProcessHasAreGone) {
  WindowsProcessProbe probe;
  EXPECT_EQ(probe.Probe(0x7FFFFFF0).state, ProcessProbe::State::kGone);
  EXPECT_EQ(probe.Probe(int64_t{1} << 40).state, ProcessProbe::State::kGone);
}

}  // namespace
}  // namespace portserver
