#include "adapters/linux/linux_process_info.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "adapters/linux/test_processes.h"
#include "gtest/gtest.h"

namespace portserver {
namespace {

TEST(LinuxProcessInfo, ReadsTheCommandLineOfALiveProcess) {
  // The write end is close-on-exec: EOF on the read end means exec is done.
  int sync[2];
  ASSERT_EQ(pipe2(sync, O_CLOEXEC), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    execl("/bin/sleep", "sleep", "600", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(sync[1]);
  char byte;
  ASSERT_EQ(read(sync[0], &byte, 1), 0);
  close(sync[0]);
  LinuxProcessInfo info;
  EXPECT_EQ(info.CommandLine(child, 256), "sleep 600");
  EXPECT_EQ(info.CommandLine(child, 9), "sleep 600");
  EXPECT_EQ(info.CommandLine(child, 7), "slee...");
  EXPECT_EQ(info.CommandLine(child, 5), "sl...");
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_EQ(info.CommandLine(child, 256), "");
}

// main() called pthread_exit() and another thread runs on: /proc/<pid>/
// cmdline reads empty, and listings showed "(unknown)" for such an owner
// (a scenario tester); another thread's is the same command line.
TEST(LinuxProcessInfo, CommandLineOfAProcessWhoseMainThreadExited) {
  LinuxProcessInfo info;
  const std::string ours = info.CommandLine(getpid(), 256);
  ASSERT_FALSE(ours.empty());
  MainThreadExitedChild child;  // Forked: the same command line as ours.
  ASSERT_TRUE(child.ok());
  EXPECT_EQ(info.CommandLine(child.pid(), 256), ours);
}

TEST(LinuxProcessInfo, CutsACommandLineBetweenUtf8Characters) {
  char dir[] = "/tmp/process_info_test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string root = dir;
  ASSERT_EQ(mkdir((root + "/42").c_str(), 0755), 0);
  std::string word;
  for (int i = 0; i < 10; ++i) word += "\xC3\xA9";  // e acute, 2 bytes
  { std::ofstream(root + "/42/cmdline") << word << '\0' << "x" << '\0'; }
  LinuxProcessInfo info(root);
  EXPECT_EQ(info.CommandLine(42, 256), word + " x");
  // 8 bytes: 5 before the "...", which would end inside the 3rd character:
  // two characters (4 bytes) are kept.
  EXPECT_EQ(info.CommandLine(42, 8), word.substr(0, 4) + "...");
  EXPECT_EQ(info.CommandLine(42, 9), word.substr(0, 6) + "...");
  EXPECT_EQ(info.CommandLine(42, 10), word.substr(0, 6) + "...");
  std::remove((root + "/42/cmdline").c_str());
  rmdir((root + "/42").c_str());
  rmdir(root.c_str());
}

TEST(LinuxProcessInfo, StartTimeOfThisProcessIsInThePast) {
  LinuxProcessInfo info;
  int64_t now = info.NowUnixMs();
  // Incarnation 0: the boot time itself.
  int64_t boot = info.StartTimeUnixMs(0);
  EXPECT_GT(boot, 0);
  EXPECT_LT(boot, now);
}

TEST(LinuxProcessInfo, ParsesHidePidAndGid) {
  EXPECT_EQ(ParseProcMountOptions("").hidepid, 0);
  EXPECT_EQ(
      ParseProcMountOptions("22 27 0:21 / /proc rw,relatime - proc proc rw\n")
          .hidepid,
      0);
  ProcMountOptions o = ParseProcMountOptions(
      "22 27 0:21 / /proc rw,relatime shared:12 - proc proc "
      "rw,hidepid=invisible,gid=1001\n");
  EXPECT_EQ(o.hidepid, 2);
  EXPECT_EQ(o.gid, 1001u);
  EXPECT_EQ(
      ParseProcMountOptions("22 27 0:21 / /proc rw - proc proc rw,hidepid=1\n")
          .hidepid,
      1);
  // Another mount point or file system type does not count.
  EXPECT_EQ(ParseProcMountOptions(
                "30 27 0:21 / /mnt/proc rw - proc proc rw,hidepid=2\n"
                "31 27 0:22 / /proc rw - tmpfs tmpfs rw,hidepid=2\n")
                .hidepid,
            0);
}

TEST(LinuxProcessInfo, RootAndUnknownCallers) {
  LinuxProcessInfo info;
  PeerCredentials root;
  root.known = true;
  root.uid = 0;
  EXPECT_EQ(info.AccessFor(root), ProcessInfo::Access::kAll);
  EXPECT_EQ(info.AccessFor(PeerCredentials()), ProcessInfo::Access::kNone);
}

}  // namespace
}  // namespace portserver
