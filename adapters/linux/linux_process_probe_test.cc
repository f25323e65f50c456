#include "adapters/linux/linux_process_probe.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "adapters/linux/test_processes.h"
#include "gtest/gtest.h"

namespace portserver {
namespace {

using State = ProcessProbe::State;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// Field 22 of /proc/<pid>/stat, parsed independently of the probe.
uint64_t StartTimeOf(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i) fields >> field;
  return std::stoull(field);
}

template <size_t N>
std::string WithNul(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

// A fake procfs under TEST_TMPDIR.
class FixtureProcRoot {
 public:
  FixtureProcRoot() {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string base = tmp != nullptr ? tmp : "/tmp";
    root_ = base + "/proc.XXXXXX";
    if (mkdtemp(root_.data()) == nullptr) root_.clear();
  }
  const std::string& root() const { return root_; }

  // A process with NSpid `nspid` (e.g. "200\t5") in pid namespace `ns`.
  void WriteNamespaced(int64_t pid, const std::string& nspid,
                       const std::string& ns) {
    std::string dir = root_ + "/" + std::to_string(pid);
    mkdir(dir.c_str(), 0755);
    std::ofstream out(dir + "/status", std::ios::trunc | std::ios::binary);
    out << "Name:\tx\nTgid:\t" << pid << "\nNSpid:\t" << nspid
        << "\nNSpgid:\t1\n";
    mkdir((dir + "/ns").c_str(), 0755);
    symlink(ns.c_str(), (dir + "/ns/pid").c_str());
  }

  // A thread `tid` of process `pid` with NSpid `nspid`.
  void WriteTask(int64_t pid, int64_t tid, const std::string& nspid) {
    std::string dir = root_ + "/" + std::to_string(pid) + "/task";
    mkdir(dir.c_str(), 0755);
    dir += "/" + std::to_string(tid);
    mkdir(dir.c_str(), 0755);
    std::ofstream out(dir + "/status", std::ios::trunc | std::ios::binary);
    out << "Name:\tx\nTgid:\t" << pid << "\nNSpid:\t" << nspid
        << "\nNSpgid:\t1\n";
  }

  void WriteStat(int64_t pid, const std::string& contents) {
    std::string dir = root_ + "/" + std::to_string(pid);
    mkdir(dir.c_str(), 0755);
    std::ofstream out(dir + "/stat", std::ios::trunc | std::ios::binary);
    out << contents;
  }

 private:
  std::string root_;
};

// A plausible stat line: fields 4..21 are small numbers, 22 is `start`,
// then more fields follow, as in every kernel since 2.6.
std::string StatLine(int64_t pid, const std::string& comm, char state,
                     uint64_t start) {
  std::string line = std::to_string(pid) + " (" + comm + ") " + state;
  for (int field = 4; field <= 21; ++field) {
    line += " " + std::to_string(field * 3 - 1);
  }
  line += " " + std::to_string(start);
  line += " 123456789 42 18446744073709551615 1 1 0 0 0 0 0\n";
  return line;
}

TEST(LinuxProcessProbe, SelfIsAliveWithItsStartTime) {
  LinuxProcessProbe probe;
  ProcessProbe::Result result = probe.Probe(getpid());
  EXPECT_EQ(result.state, State::kAlive);
  EXPECT_EQ(result.incarnation, StartTimeOf(getpid()));
  EXPECT_NE(result.incarnation, 0u);
}

// /proc/<tid>/stat exists for every thread: a thread id must still not
// pass for a process (issue 9), whether or not a pidfd is tried.
TEST(LinuxProcessProbe, ThreadIdIsNotAProcess) {
  std::mutex mu;
  std::condition_variable cv;
  pid_t tid = 0;
  bool done = false;
  std::thread thread([&] {
    std::unique_lock<std::mutex> lock(mu);
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    cv.notify_all();
    cv.wait(lock, [&] { return done; });
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return tid != 0; });
  }
  ASSERT_NE(tid, getpid());
  LinuxProcessProbe probe;
  for (int round = 0; round < 2; ++round) {  // Uncached, then again.
    ProcessProbe::Result result = probe.Probe(tid);
    EXPECT_EQ(result.state, State::kGone);
    EXPECT_EQ(result.thread_of, getpid());
  }
  EXPECT_EQ(probe.Probe(getpid()).state, State::kAlive);
  EXPECT_EQ(probe.Probe(getpid()).thread_of, 0);
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  thread.join();
}

TEST(LinuxProcessProbe, FixtureThreadIdIsNotAProcess) {
  FixtureProcRoot proc;
  ASSERT_FALSE(proc.root().empty());
  proc.WriteStat(301, StatLine(301, "worker", 'S', 5000));
  std::string dir = proc.root() + "/301";
  std::ofstream(dir + "/status") << "Name:\tworker\nTgid:\t300\nPid:\t301\n";
  LinuxProcessProbe probe(proc.root());
  ProcessProbe::Result result = probe.Probe(301);
  EXPECT_EQ(result.state, State::kGone);
  EXPECT_EQ(result.thread_of, 300);
}

TEST(LinuxProcessProbe, ReapedChildIsGone) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  LinuxProcessProbe probe;
  EXPECT_EQ(probe.Probe(child).state, State::kGone);
}

TEST(LinuxProcessProbe, ZombieChildIsGone) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  // Waits for the exit but leaves the child a zombie.
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, child, &info, WEXITED | WNOWAIT), 0);
  ASSERT_EQ(StateOf(child), 'Z');
  LinuxProcessProbe probe;
  EXPECT_EQ(probe.Probe(child).state, State::kGone);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
}

TEST(LinuxProcessProbe, LiveChildIsAliveWithItsStartTime) {
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipe_fds[1]);
    char byte;
    (void)!read(pipe_fds[0], &byte, 1);  // Until the parent closes the pipe.
    _exit(0);
  }
  close(pipe_fds[0]);
  LinuxProcessProbe probe;
  ProcessProbe::Result result = probe.Probe(child);
  EXPECT_EQ(result.state, State::kAlive);
  EXPECT_EQ(result.incarnation, StartTimeOf(child));
  close(pipe_fds[1]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
}

// main() called pthread_exit() and another thread runs on: the kernel shows
// the leader a zombie, but the process lives until its last thread ends
// (kill(pid, 0) and the reference's psutil.pid_exists() say so too).
TEST(LinuxProcessProbe, ProcessWhoseMainThreadExitedLivesOn) {
  MainThreadExitedChild exited;
  ASSERT_TRUE(exited.ok());
  const pid_t child = exited.pid();
  const uint64_t start = StartTimeOf(child);
  LinuxProcessProbe probe;                      // pidfds
  LinuxProcessProbe without_pidfds("/proc/.");  // /proc only
  for (LinuxProcessProbe* p : {&probe, &without_pidfds}) {
    ProcessProbe::Result result = p->Probe(child);
    EXPECT_EQ(result.state, State::kAlive) << p->proc_root();
    EXPECT_EQ(result.incarnation, start) << p->proc_root();
  }
  exited.Release();  // The last thread ends: a zombie process, unreaped.
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, child, &info, WEXITED | WNOWAIT), 0);
  EXPECT_EQ(probe.Probe(child).state, State::kGone);
  EXPECT_EQ(without_pidfds.Probe(child).state, State::kGone);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);
}

TEST(LinuxProcessProbe, MissingPidIsGone) {
  FixtureProcRoot proc;
  ASSERT_FALSE(proc.root().empty());
  LinuxProcessProbe probe(proc.root());
  EXPECT_EQ(probe.Probe(4242).state, State::kGone);
}

TEST(LinuxProcessProbe, PidsOutsidePidTAreGone) {
  LinuxProcessProbe probe;
  EXPECT_EQ(probe.Probe(int64_t{1} << 40).state, State::kGone);
  EXPECT_EQ(probe.Probe(-1).state, State::kGone);
}

TEST(LinuxProcessProbe, CommWithParenthesesAndSpacesParses) {
  FixtureProcRoot proc;
  ASSERT_FALSE(proc.root().empty());
  proc.WriteStat(77, StatLine(77, "a) (b ) c) R 1 2", 'S', 987654321));
  LinuxProcessProbe probe(proc.root());
  ProcessProbe::Result result = probe.Probe(77);
  EXPECT_EQ(result.state, State::kAlive);
  EXPECT_EQ(result.incarnation, 987654321u);
}

TEST(LinuxProcessProbe, FixtureZombieAndDeadAreGone) {
  FixtureProcRoot proc;
  ASSERT_FALSE(proc.root().empty());
  proc.WriteStat(10, StatLine(10, "zombie", 'Z', 5));
  proc.WriteStat(11, StatLine(11, "dead", 'X', 5));
  proc.WriteStat(12, StatLine(12, "idle", 'I', 5));
  LinuxProcessProbe probe(proc.root());
  EXPECT_EQ(probe.Probe(10).state, State::kGone);
  EXPECT_EQ(probe.Probe(11).state, State::kGone);
  EXPECT_EQ(probe.Probe(12).state, State::kAlive);
}

TEST(LinuxProcessProbe, GarbageIsAnError) {
  FixtureProcRoot proc;
  ASSERT_FALSE(proc.root().empty());
  const std::vector<std::string> garbage = {
      "",
      "\n",
      "garbage",
      "5 (x",
      "5 (x)",
      "5 (x) ",
      "5 x) S 1 2 3",
      // The pid in the file is not the one asked for.
      "6 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21\n",
      "5 (x) SS 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20\n",
      "5 (x) 7 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20\n",
      "5 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 -19 20\n",
      "5 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 1x9 20\n",
      "5 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 "
      "99999999999999999999999 20\n",
      WithNul(
          "5 (x) S 1 2 3\0 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21\n"),
      std::string(100000, 'x'),
  };
  for (const std::string& contents : garbage) {
    proc.WriteStat(5, contents);
    LinuxProcessProbe probe(proc.root());
    EXPECT_EQ(probe.Probe(5).state, State::kError) << "stat: " << contents;
  }
}

TEST(LinuxProcessProbe, EveryTruncationIsAnErrorOrTheRightAnswer) {
  FixtureProcRoot proc;
  ASSERT_FALSE(proc.root().empty());
  const std::string full = StatLine(9, "cat (1)", 'R', 1234567);
  const size_t complete = full.find(" 1234567 ") + 9;  // Through vsize's ' '.
  LinuxProcessProbe probe(proc.root());
  for (size_t length = 0; length <= full.size(); ++length) {
    proc.WriteStat(9, full.substr(0, length));
    ProcessProbe::Result result = probe.Probe(9);
    if (length <= complete) {
      EXPECT_EQ(result.state, State::kError) << "length " << length;
    } else {
      EXPECT_EQ(result.state, State::kAlive) << "length " << length;
      EXPECT_EQ(result.incarnation, 1234567u) << "length " << length;
    }
  }
}

TEST(LinuxProcessProbe, UnreadableStatIsAnError) {
  FixtureProcRoot proc;
  ASSERT_FALSE(proc.root().empty());
  // A directory where the file should be: open succeeds, read fails.
  std::string dir = proc.root() + "/8";
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((dir + "/stat").c_str(), 0755), 0);
  LinuxProcessProbe probe(proc.root());
  EXPECT_EQ(probe.Probe(8).state, State::kError);
}

}  // namespace
}  // namespace portserver

namespace portserver {
namespace {

using Kind = ProcessProbe::Mapping::Kind;

TEST(LinuxProcessProbe, ReportsTheOwnersUid) {
  LinuxProcessProbe probe;
  ProcessProbe::Result self = probe.Probe(getpid());
  ASSERT_EQ(self.state, ProcessProbe::State::kAlive);
  EXPECT_TRUE(self.uid_known);
  EXPECT_EQ(self.uid, geteuid());
}

TEST(LinuxProcessProbe, CallerInOurNamespaceNamesOurPids) {
  FixtureProcRoot proc;
  proc.WriteNamespaced(100, "100", "pid:[1]");
  LinuxProcessProbe probe(proc.root());
  ProcessProbe::Mapping m = probe.MapNamedPid(100, 6);
  EXPECT_EQ(m.kind, Kind::kSame);
  EXPECT_EQ(m.pid, 6);
}

TEST(LinuxProcessProbe, ContainerCallerNamingItselfIsTranslated) {
  FixtureProcRoot proc;
  proc.WriteNamespaced(200, "200\t5", "pid:[111]");
  LinuxProcessProbe probe(proc.root());
  ProcessProbe::Mapping m = probe.MapNamedPid(200, 5);
  EXPECT_EQ(m.kind, Kind::kTranslated);
  EXPECT_EQ(m.pid, 200);
}

TEST(LinuxProcessProbe, ContainerPidIsFoundInTheCallersNamespaceOnly) {
  FixtureProcRoot proc;
  proc.WriteNamespaced(200, "200\t5", "pid:[111]");
  proc.WriteNamespaced(201, "201\t6", "pid:[111]");  // 6 in the container
  proc.WriteNamespaced(6, "6", "pid:[1]");           // our unrelated pid 6
  proc.WriteNamespaced(300, "300\t6", "pid:[222]");  // 6 in another container
  LinuxProcessProbe probe(proc.root());
  ProcessProbe::Mapping m = probe.MapNamedPid(200, 6);
  EXPECT_EQ(m.kind, Kind::kTranslated);
  EXPECT_EQ(m.pid, 201);
}

TEST(LinuxProcessProbe, PidNoProcessOfTheCallersNamespaceHasIsNotFound) {
  FixtureProcRoot proc;
  proc.WriteNamespaced(200, "200\t5", "pid:[111]");
  proc.WriteNamespaced(7, "7", "pid:[1]");           // Ours, never the answer.
  proc.WriteNamespaced(300, "300\t7", "pid:[222]");  // 7 in another one.
  LinuxProcessProbe probe(proc.root());
  ProcessProbe::Mapping m = probe.MapNamedPid(200, 7);
  EXPECT_EQ(m.kind, Kind::kNotFound);
}

// A process of the caller's depth whose namespace cannot be read (not
// dumpable, to a server that is not root) may be the one named.
TEST(LinuxProcessProbe,
     PidOfAProcessWhoseNamespaceIsUnreadableGoesToTheCaller) {
  FixtureProcRoot proc;
  proc.WriteNamespaced(200, "200\t5", "pid:[111]");
  proc.WriteNamespaced(400, "400\t7", "");  // No ns/pid link to read.
  LinuxProcessProbe probe(proc.root());
  ProcessProbe::Mapping m = probe.MapNamedPid(200, 7);
  EXPECT_EQ(m.kind, Kind::kCaller);
  EXPECT_EQ(m.pid, 200);
}

// A thread of a process of the caller's namespace: /proc lists only
// processes, its tasks say which it is.
TEST(LinuxProcessProbe, ThreadOfTheCallersNamespaceIsTranslated) {
  FixtureProcRoot proc;
  proc.WriteNamespaced(200, "200\t5", "pid:[111]");
  proc.WriteNamespaced(201, "201\t6", "pid:[111]");
  proc.WriteTask(201, 202, "202\t8");  // Thread 8 of process 6 there.
  LinuxProcessProbe probe(proc.root());
  ProcessProbe::Mapping m = probe.MapNamedPid(200, 8);
  EXPECT_EQ(m.kind, Kind::kTranslated);
  EXPECT_EQ(m.pid, 202);
  EXPECT_EQ(probe.MapNamedPid(200, 9).kind, Kind::kNotFound);
}

TEST(LinuxProcessProbe, PidThatMayBeInANestedNamespaceFallsBackToTheCaller) {
  FixtureProcRoot proc;
  proc.WriteNamespaced(200, "200\t5", "pid:[111]");
  proc.WriteNamespaced(7, "7", "pid:[1]");  // Ours, never the answer.
  // 7 at the caller's level, in a namespace below it or below another
  // container's: which cannot be told here.
  proc.WriteNamespaced(400, "400\t7\t1", "pid:[333]");
  LinuxProcessProbe probe(proc.root());
  ProcessProbe::Mapping m = probe.MapNamedPid(200, 7);
  EXPECT_EQ(m.kind, Kind::kCaller);
  EXPECT_EQ(m.pid, 200);
}

TEST(LinuxProcessProbe, UnknownCallerFallsBackToTheCaller) {
  FixtureProcRoot proc;
  LinuxProcessProbe probe(proc.root());
  ProcessProbe::Mapping m = probe.MapNamedPid(424242, 7);
  EXPECT_EQ(m.kind, Kind::kCaller);
  EXPECT_EQ(m.pid, 424242);
}

TEST(LinuxProcessProbe, RealProcessesShareOurNamespace) {
  LinuxProcessProbe probe;
  ProcessProbe::Mapping m = probe.MapNamedPid(getpid(), getppid());
  EXPECT_EQ(m.kind, Kind::kSame);
  EXPECT_EQ(m.pid, getppid());
}

}  // namespace
}  // namespace portserver

namespace portserver {
namespace {

TEST(LinuxProcessProbe, LiveProcessIsAnsweredFromItsPidfd) {
  LinuxProcessProbe probe;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pause();
    _exit(0);
  }
  ProcessProbe::Result first = probe.Probe(child);
  ASSERT_EQ(first.state, ProcessProbe::State::kAlive);
  EXPECT_EQ(probe.cache_hits_for_test(), 0u);
  ProcessProbe::Result again = probe.Probe(child);
  EXPECT_EQ(probe.cache_hits_for_test(), 1u);
  EXPECT_EQ(again.state, ProcessProbe::State::kAlive);
  EXPECT_EQ(again.incarnation, first.incarnation);
  EXPECT_EQ(again.uid, first.uid);

  // Exited but not reaped (a zombie): the pidfd says so, the cache is not
  // trusted, and /proc says gone.
  kill(child, SIGKILL);
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, child, &info, WEXITED | WNOWAIT), 0);
  EXPECT_EQ(probe.Probe(child).state, ProcessProbe::State::kGone);
  EXPECT_EQ(probe.cache_hits_for_test(), 1u);
  waitpid(child, nullptr, 0);
  EXPECT_EQ(probe.Probe(child).state, ProcessProbe::State::kGone);
}

TEST(LinuxProcessProbe, FixtureRootsAreNeverCached) {
  FixtureProcRoot proc;
  proc.WriteStat(4242, StatLine(4242, "x", 'S', 77));
  LinuxProcessProbe probe(proc.root());
  EXPECT_EQ(probe.Probe(4242).incarnation, 77u);
  proc.WriteStat(4242, StatLine(4242, "x", 'S', 78));  // "Reused."
  EXPECT_EQ(probe.Probe(4242).incarnation, 78u);
  EXPECT_EQ(probe.cache_hits_for_test(), 0u);
}

}  // namespace
}  // namespace portserver

namespace portserver {
namespace {

int OpenDescriptors() {
  int n = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (readdir(dir) != nullptr) ++n;
    closedir(dir);
  }
  return n;
}

// Forks `n` children that wait in pause(), each probed alive by `probe`
// (which then remembers it).
std::vector<pid_t> ProbedChildren(LinuxProcessProbe& probe, int n) {
  std::vector<pid_t> children;
  for (int i = 0; i < n; ++i) {
    pid_t child = fork();
    if (child == 0) {
      pause();
      _exit(0);
    }
    EXPECT_GE(child, 0);
    if (child < 0) break;
    children.push_back(child);
    EXPECT_EQ(probe.Probe(child).state, ProcessProbe::State::kAlive);
  }
  return children;
}

TEST(LinuxProcessProbe, ForgetsProcessesThatExitedAtTheNextNewPid) {
  LinuxProcessProbe probe;
  int baseline = OpenDescriptors();
  std::vector<pid_t> children = ProbedChildren(probe, 5);
  ASSERT_EQ(children.size(), 5u);
  EXPECT_EQ(OpenDescriptors(), baseline + 5);
  for (pid_t child : children) {
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
  }
  // A new pid (our own) is a miss: the five dead are forgotten.
  ASSERT_EQ(probe.Probe(getpid()).state, ProcessProbe::State::kAlive);
  EXPECT_EQ(OpenDescriptors(), baseline + 1);
}

// Many exits at once among processes that live on: exactly the dead are
// forgotten, the living still answer from their pidfds. The living were
// forked after some of the dead were remembered, so they hold copies of
// those pidfds: a pidfd closed without leaving the epoll set stays in it
// (still readable) and crowds later exits out of epoll_wait().
TEST(LinuxProcessProbe, ForgetsOnlyTheDeadAmongMany) {
  LinuxProcessProbe probe;
  int baseline = OpenDescriptors();
  std::vector<pid_t> children = ProbedChildren(probe, 40);
  ASSERT_EQ(children.size(), 40u);
  ASSERT_EQ(OpenDescriptors(), baseline + 40);
  std::vector<pid_t> living;
  for (size_t i = 0; i < children.size(); ++i) {
    if (i % 4 == 3) {
      living.push_back(children[i]);
      continue;
    }
    kill(children[i], SIGKILL);
    waitpid(children[i], nullptr, 0);
  }
  ASSERT_EQ(probe.Probe(getpid()).state, ProcessProbe::State::kAlive);
  EXPECT_EQ(OpenDescriptors(), baseline + 10 + 1);
  size_t hits = probe.cache_hits_for_test();
  for (pid_t child : living) {
    EXPECT_EQ(probe.Probe(child).state, ProcessProbe::State::kAlive);
  }
  EXPECT_EQ(probe.cache_hits_for_test(), hits + living.size());
  // The five living forked first exit; the other five (holding copies of
  // the dead's pidfds) live on. The next new pid forgets exactly those five.
  for (size_t i = 0; i < 5; ++i) {
    kill(living[i], SIGKILL);
    waitpid(living[i], nullptr, 0);
  }
  ASSERT_EQ(probe.Probe(getppid()).state, ProcessProbe::State::kAlive);
  EXPECT_EQ(OpenDescriptors(), baseline + 5 + 2);
  for (size_t i = 5; i < living.size(); ++i) {
    kill(living[i], SIGKILL);
    waitpid(living[i], nullptr, 0);
  }
}

// Out of descriptors, the remembered pidfds give way: a new process is
// still told alive, not "cannot tell" (a new user's trial: each owner cost
// the server two descriptors, its watch and the probe's remembered pidfd,
// and under a low limit owners were denied as probe failures).
TEST(LinuxProcessProbe, RememberedPidfdsGiveWayWhenDescriptorsRunOut) {
  LinuxProcessProbe probe;
  std::vector<pid_t> children = ProbedChildren(probe, 10);
  ASSERT_EQ(children.size(), 10u);
  pid_t late = fork();
  if (late == 0) {
    pause();
    _exit(0);
  }
  ASSERT_GT(late, 0);
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  // The lowest free descriptor: every one below it is taken, so a limit
  // there leaves none to open.
  int lowest = dup(0);
  ASSERT_GE(lowest, 0);
  close(lowest);
  rlimit full = saved;
  full.rlim_cur = static_cast<rlim_t>(lowest);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &full), 0);
  ASSERT_LT(dup(0), 0);  // Truly full.
  const ProcessProbe::Result result = probe.Probe(late);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_EQ(result.state, ProcessProbe::State::kAlive);
  children.push_back(late);
  for (pid_t child : children) {
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
  }
}

// ReleaseCaches(keep) (another part of the server ran out of descriptors)
// closes every remembered pidfd but that of `keep`: the owner of the
// request at hand, which would need a descriptor again to be probed (then
// a denial at the limit said "cannot tell whether pid N is alive" instead
// of naming the port probe). Not the process probed last: a sweep probes
// other owners after the one asking (a reviewer).
TEST(LinuxProcessProbe, ReleaseCachesKeepsTheOwnerAsked) {
  LinuxProcessProbe probe;
  int baseline = OpenDescriptors();
  std::vector<pid_t> children = ProbedChildren(probe, 8);
  ASSERT_EQ(children.size(), 8u);
  ASSERT_EQ(OpenDescriptors(), baseline + 8);
  ASSERT_EQ(probe.Probe(children[3]).state, ProcessProbe::State::kAlive);
  ASSERT_EQ(probe.Probe(children[5]).state, ProcessProbe::State::kAlive);
  EXPECT_TRUE(probe.ReleaseCaches(children[3]));
  EXPECT_EQ(OpenDescriptors(), baseline + 1);
  size_t hits = probe.cache_hits_for_test();
  EXPECT_EQ(probe.Probe(children[3]).state, ProcessProbe::State::kAlive);
  EXPECT_EQ(probe.cache_hits_for_test(), hits + 1);  // Still remembered.
  EXPECT_FALSE(probe.ReleaseCaches(children[3]));    // Nothing else.
  EXPECT_TRUE(probe.ReleaseCaches(0));               // Not even that one.
  EXPECT_EQ(OpenDescriptors(), baseline);
  for (pid_t child : children) {
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
  }
}

}  // namespace
}  // namespace portserver
