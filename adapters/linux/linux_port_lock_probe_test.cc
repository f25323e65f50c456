#include "adapters/linux/linux_port_lock_probe.h"

#include <netinet/in.h>
#include <sched.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "adapters/fake/fake_port_probe.h"
#include "adapters/linux/linux_port_probe.h"
#include "gtest/gtest.h"

namespace portserver {
namespace {

// A prefix private to this test process, so parallel tests don't meet:
// random, since the pid alone is not unique (each Bazel sandbox may have a
// pid namespace of its own while sharing the network namespace, where
// abstract names live).
std::string Prefix() {
  static const std::string prefix = [] {
    std::random_device random;
    uint64_t id = (static_cast<uint64_t>(random()) << 32) | random();
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%016llx",
                  static_cast<unsigned long long>(id));
    return "portserver-lock-test-" + std::string(hex) + "-";
  }();
  return prefix;
}

// Ports no one holds now: ones the kernel gave to sockets, let go of.
std::vector<uint16_t> FreePorts(int n) {
  std::vector<uint16_t> ports;
  for (int i = 0; i < n; ++i) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    socklen_t length = sizeof(addr);
    if (fd < 0 ||
        bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
      ADD_FAILURE() << "no port from the kernel: " << std::strerror(errno);
    } else {
      ports.push_back(ntohs(addr.sin_port));
    }
    if (fd >= 0) close(fd);
  }
  return ports;
}

// With two threads, a request of 8 ports or more is split over two rings
// (the caller's and a worker's): each port still gets its own answer, as
// the system calls give it (a reviewer's kind of mix: free, held on TCP,
// held on UDP, locked by another server, at both ends of the list).
TEST(LinuxPortLockProbe, BatchesSplitOverTwoThreadsAnswerEachPort) {
  LinuxPortProbe binds;
  LinuxPortLockProbe split(binds, Prefix(), /*threads=*/2);
  LinuxPortLockProbe other(binds, Prefix());
  std::string why;
  if (!split.UseKernelBatches(&why)) {
    GTEST_SKIP() << "no io_uring batches here (" << why
                 << "); LinuxPortBatchTest says where they must work";
  }
  std::vector<uint16_t> ports = FreePorts(16);
  ASSERT_EQ(ports.size(), 16u);
  // Held: the first and last on TCP, the 8th on UDP; the 9th locked.
  auto hold = [](int type, uint16_t port) {
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    return fd;
  };
  const int tcp_first = hold(SOCK_STREAM, ports[0]);
  const int tcp_last = hold(SOCK_STREAM, ports[15]);
  const int udp = hold(SOCK_DGRAM, ports[7]);
  ASSERT_EQ(other.Check(ports[8]), PortState::kFree);  // Its lock now.
  const std::vector<PortState> states = split.CheckMany(ports);
  // The worker's half (ports 0-7) in one submission; the caller's (8-15)
  // in one and a second that closes the lock socket port 8's chain left
  // (its lock was held elsewhere). One ring would have made two.
  EXPECT_EQ(split.kernel_submissions(), 3u);
  for (size_t i = 0; i < ports.size(); ++i) {
    SCOPED_TRACE(i);
    const bool busy = i == 0 || i == 15 || i == 7 || i == 8;
    EXPECT_EQ(states[i], busy ? PortState::kBusy : PortState::kFree);
  }
  EXPECT_EQ(split.locks_held(), 12u);  // The free ones'.
  close(tcp_first);
  close(tcp_last);
  close(udp);
}

// A server whose checks go through io_uring and one whose checks are
// system calls (an older kernel, a seccomp profile, a version before the
// batches) take the same locks: neither leases a port the other holds.
TEST(LinuxPortLockProbe, BatchedAndSystemCallServersShareTheLocks) {
  LinuxPortProbe binds;
  LinuxPortLockProbe batched(binds, Prefix());
  LinuxPortLockProbe plain(binds, Prefix());
  std::string why;
  if (!batched.UseKernelBatches(&why)) {
    GTEST_SKIP() << "no io_uring batches here (" << why
                 << "); LinuxPortBatchTest says where they must work";
  }
  const std::vector<uint16_t> ports = FreePorts(6);
  ASSERT_EQ(ports.size(), 6u);
  const std::vector<uint16_t> first(ports.begin(), ports.begin() + 3);
  const std::vector<uint16_t> second(ports.begin() + 3, ports.end());
  for (PortState s : batched.CheckMany(first)) EXPECT_EQ(s, PortState::kFree);
  EXPECT_EQ(batched.kernel_submissions(), 1u);
  for (uint16_t port : first) {
    EXPECT_EQ(plain.Check(port), PortState::kBusy);
    EXPECT_TRUE(plain.HeldByAnotherServer(port));
  }
  for (PortState s : plain.CheckMany(second)) EXPECT_EQ(s, PortState::kFree);
  for (PortState s : batched.CheckMany(second)) EXPECT_EQ(s, PortState::kBusy);
  batched.Release(first[0]);
  EXPECT_EQ(plain.Check(first[0]), PortState::kFree);
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

// Restored leases' locks stay below the descriptor number given, so that
// the server keeps descriptors to serve with; a lock given back lets the
// next one in. Check() is not limited.
TEST(LinuxPortLockProbe, ReserveStaysBelowTheDescriptorLimitGiven) {
  FakePortProbe ports;
  LinuxPortLockProbe probe(ports, Prefix());
  const int lowest_free = dup(0);  // Descriptors go to the lowest free one.
  ASSERT_GE(lowest_free, 0);
  close(lowest_free);
  probe.set_reserve_below(lowest_free + 3);
  std::vector<bool> reserved;
  for (uint16_t port = 20100; port < 20106; ++port) {
    reserved.push_back(probe.Reserve(port));
  }
  EXPECT_EQ(reserved,
            (std::vector<bool>{true, true, true, false, false, false}));
  EXPECT_EQ(probe.locks_held(), 3u);
  probe.Release(20101);
  EXPECT_TRUE(probe.Reserve(20104));
  EXPECT_FALSE(probe.Reserve(20105));
  EXPECT_EQ(probe.Check(20106), PortState::kFree);  // A grant is not held back.
  EXPECT_EQ(probe.locks_held(), 4u);
  probe.set_reserve_below(0);  // No limit.
  EXPECT_TRUE(probe.Reserve(20105));
}

// A grant's lock may sit above the line (grants are not held back): when
// its lease ends, a restored lease still without its lock gets that
// descriptor in its place, not the next grant (a reviewer: the retake was
// refused above the line, and the next grant took the descriptor).
TEST(LinuxPortLockProbe, ALockGivenBackAboveTheLineGoesToAReserve) {
  FakePortProbe ports;
  LinuxPortLockProbe probe(ports, Prefix());
  const int lowest_free = dup(0);
  ASSERT_GE(lowest_free, 0);
  close(lowest_free);
  probe.set_reserve_below(lowest_free + 1);
  ASSERT_TRUE(probe.Reserve(20110));                // Below the line.
  ASSERT_EQ(probe.Check(20111), PortState::kFree);  // A grant, above it.
  EXPECT_FALSE(probe.Reserve(20112));               // Waits.
  probe.Release(20111);                             // The grant's lease ends.
  EXPECT_TRUE(probe.Reserve(20112));                // In its place.
  EXPECT_FALSE(probe.Reserve(20113));               // One for one.
  ASSERT_EQ(probe.Check(20114), PortState::kFree);
  probe.Release(20114);
  ASSERT_EQ(probe.Check(20115), PortState::kFree);  // A grant came first.
  EXPECT_FALSE(probe.Reserve(20113));
  EXPECT_EQ(probe.locks_held(), 3u);
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

// ---------------------------------------------------------------- CheckMany

// Several ports at once, on 4 threads: each answer is the one Check() gives
// one port at a time, the locks of the leasable ports are held, and the
// others' are not (a held lock whose port became busy is given back).
TEST(LinuxPortLockProbeMany, AnswersAsCheckDoesAndHoldsExactlyTheLeasable) {
  FakePortProbe ports;
  LinuxPortLockProbe many(ports, Prefix(), /*threads=*/4);
  LinuxPortLockProbe other(ports, Prefix());
  ports.Occupy(20002);
  ports.LingerInTimeWait(20004);
  ASSERT_TRUE(other.IsFree(20006));                // Another server holds it.
  ASSERT_EQ(many.Check(20008), PortState::kFree);  // Held already...
  ports.Occupy(20008);                             // ...then busy.
  std::vector<uint16_t> asked;
  for (uint16_t port = 20000; port < 20010; ++port) asked.push_back(port);
  std::vector<PortState> states = many.CheckMany(asked);
  const std::vector<PortState> expected = {
      PortState::kFree, PortState::kFree,          PortState::kBusy,
      PortState::kFree, PortState::kReuseAddrOnly, PortState::kFree,
      PortState::kBusy, PortState::kFree,          PortState::kBusy,
      PortState::kFree};
  EXPECT_EQ(states, expected);
  EXPECT_EQ(many.locks_held(), 7u);
  for (size_t i = 0; i < asked.size(); ++i) {
    // A third server sees a lock held exactly where `many` or `other` holds
    // one: the leasable ports and 20006.
    LinuxPortLockProbe third(ports, Prefix());
    bool locked_elsewhere = third.Check(asked[i]) == PortState::kBusy &&
                            asked[i] != 20002 && asked[i] != 20008;
    EXPECT_EQ(locked_elsewhere, IsLeasable(states[i]) || asked[i] == 20006)
        << asked[i];
  }
  for (uint16_t port : asked) many.Release(port);
  EXPECT_EQ(many.locks_held(), 0u);
  ports.Vacate(20008);
  EXPECT_TRUE(other.IsFree(20008)) << "the lock of a busy port was kept";
}

// Many rounds of many ports on several threads: no port answered twice, no
// lock lost or leaked (ASan and the sanitizer run watch the rest).
TEST(LinuxPortLockProbeMany, RepeatedRoundsKeepLocksExact) {
  FakePortProbe ports;
  LinuxPortLockProbe many(ports, Prefix(), /*threads=*/3);
  LinuxPortLockProbe other(ports, Prefix());
  std::vector<uint16_t> asked;
  for (uint16_t port = 21000; port < 21064; ++port) asked.push_back(port);
  for (int round = 0; round < 50; ++round) {
    std::vector<PortState> states = many.CheckMany(asked);
    ASSERT_EQ(states.size(), asked.size());
    for (PortState state : states) ASSERT_EQ(state, PortState::kFree);
    ASSERT_EQ(many.locks_held(), asked.size());
    // Held ones are still checked (a second CheckMany keeps them).
    ASSERT_EQ(many.CheckMany(asked), states);
    ASSERT_EQ(many.locks_held(), asked.size());
    ASSERT_FALSE(other.IsFree(asked[static_cast<size_t>(round)]));
    for (uint16_t port : asked) many.Release(port);
    ASSERT_EQ(many.locks_held(), 0u);
  }
  EXPECT_TRUE(other.IsFree(21000));
}

// The workers run beside the caller, not in its place: each is kept off the
// CPU the caller is on. Left to the scheduler, a woken worker was placed on
// the caller's own CPU (2-CPU machine, the other idle), preempted it and
// checked all ports alone. An inner probe that records, for each port, the
// thread and that thread's allowed CPUs, and makes the caller's first port
// wait until a worker has checked one (so both surely took part).
class WhereCheckedProbe final : public PortProbe {
 public:
  PortState Check(uint16_t port) override {
    cpu_set_t mine;
    CPU_ZERO(&mine);
    sched_getaffinity(0, sizeof(mine), &mine);
    std::unique_lock<std::mutex> lock(mu_);
    const bool on_caller = std::this_thread::get_id() == caller_;
    if (!on_caller) {
      ++on_workers_;
      if (CPU_ISSET(caller_cpu_, &mine)) ++on_workers_allowed_callers_cpu_;
      worker_checked_.notify_all();
    } else if (!waited_) {
      waited_ = true;
      // Bounded only so that a broken build fails instead of hanging.
      worker_checked_.wait_for(lock, std::chrono::seconds(60),
                               [this] { return on_workers_ > 0; });
    }
    return PortState::kFree;
  }
  bool IsFree(uint16_t port) override { return IsLeasable(Check(port)); }

  void StartRound(int caller_cpu) {
    std::lock_guard<std::mutex> lock(mu_);
    caller_ = std::this_thread::get_id();
    caller_cpu_ = caller_cpu;
    waited_ = false;
    on_workers_ = 0;
    on_workers_allowed_callers_cpu_ = 0;
  }
  int on_workers() const {
    std::lock_guard<std::mutex> lock(mu_);
    return on_workers_;
  }
  int on_workers_allowed_callers_cpu() const {
    std::lock_guard<std::mutex> lock(mu_);
    return on_workers_allowed_callers_cpu_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable worker_checked_;
  std::thread::id caller_;
  int caller_cpu_ = -1;
  bool waited_ = false;
  int on_workers_ = 0;
  int on_workers_allowed_callers_cpu_ = 0;
};

// Restores the calling thread's CPUs when the test ends.
class ScopedAffinity final {
 public:
  ScopedAffinity() {
    CPU_ZERO(&saved_);
    sched_getaffinity(0, sizeof(saved_), &saved_);
  }
  ~ScopedAffinity() { sched_setaffinity(0, sizeof(saved_), &saved_); }
  const cpu_set_t& saved() const { return saved_; }

 private:
  cpu_set_t saved_;
};

TEST(LinuxPortLockProbeMany, WorkersRunOffTheCallersCpu) {
  ScopedAffinity restore;
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &restore.saved())) cpus.push_back(cpu);
  }
  if (cpus.size() < 2) GTEST_SKIP() << "needs 2 CPUs, has " << cpus.size();
  WhereCheckedProbe where;
  LinuxPortLockProbe many(where, Prefix(), /*threads=*/2);
  std::vector<uint16_t> asked;
  for (uint16_t port = 22000; port < 22020; ++port) asked.push_back(port);
  // The caller on one CPU, then on another: the worker follows.
  for (int caller_cpu : {cpus[0], cpus[1], cpus[0]}) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(caller_cpu, &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
    where.StartRound(caller_cpu);
    std::vector<PortState> states = many.CheckMany(asked);
    EXPECT_EQ(states, std::vector<PortState>(asked.size(), PortState::kFree));
    EXPECT_GT(where.on_workers(), 0) << "no port checked on a worker";
    EXPECT_EQ(where.on_workers_allowed_callers_cpu(), 0)
        << "a worker could run on the caller's CPU " << caller_cpu;
    for (uint16_t port : asked) many.Release(port);
  }
}

// Who holds a busy port's lock: another server (true), or nobody, the
// port being in use outside any server (false). Asking keeps no lock.
TEST(LinuxPortLockProbe, TellsALockAnotherServerHoldsFromOtherUse) {
  FakePortProbe ports;
  LinuxPortLockProbe mine(ports, Prefix());
  LinuxPortLockProbe other(ports, Prefix());
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

// ----------------------------------------------------------------- Prefetch

// A prefetch's answers are CheckMany()'s: the same states, the locks of
// the leasable ports asked about held, and those of ports prefetched but
// not asked about given back.
TEST(LinuxPortLockProbePrefetch, AnswersAsCheckManyAndKeepsOnlyAskedLocks) {
  FakePortProbe ports;
  LinuxPortLockProbe many(ports, Prefix(), /*threads=*/3);
  LinuxPortLockProbe other(ports, Prefix());
  ports.Occupy(23002);
  ports.LingerInTimeWait(23004);
  ASSERT_TRUE(other.IsFree(23006));                // Another server holds it.
  ASSERT_EQ(many.Check(23008), PortState::kFree);  // Held already.
  std::vector<uint16_t> prefetched;
  for (uint16_t port = 23000; port < 23012; ++port) prefetched.push_back(port);
  many.Prefetch(prefetched);
  std::vector<uint16_t> asked(prefetched.begin(), prefetched.begin() + 10);
  asked.push_back(23020);  // Not prefetched.
  std::vector<PortState> states = many.CheckMany(asked);
  const std::vector<PortState> expected = {
      PortState::kFree, PortState::kFree,          PortState::kBusy,
      PortState::kFree, PortState::kReuseAddrOnly, PortState::kFree,
      PortState::kBusy, PortState::kFree,          PortState::kFree,
      PortState::kFree, PortState::kFree};
  EXPECT_EQ(states, expected);
  EXPECT_EQ(many.locks_held(), 9u);
  for (uint16_t port : {23010, 23011}) {
    EXPECT_TRUE(other.IsFree(port)) << port << ": prefetched, not asked, "
                                    << "and its lock is still held";
  }
  for (size_t i = 0; i < asked.size(); ++i) {
    if (!IsLeasable(states[i])) continue;
    EXPECT_FALSE(other.IsFree(asked[i])) << asked[i] << ": lock not held";
  }
}

// An inner probe that counts its checks per port and lets the test wait
// until a worker has checked one.
class CountingProbe final : public PortProbe {
 public:
  PortState Check(uint16_t port) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++checks_[port];
    checked_.notify_all();
    return PortState::kFree;
  }
  bool IsFree(uint16_t port) override { return IsLeasable(Check(port)); }
  // Bounded only so that a broken build fails, within the test's timeout,
  // instead of hanging.
  bool WaitForChecks(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return checked_.wait_for(lock, std::chrono::seconds(10),
                             [&] { return Total() >= n; });
  }
  size_t total() {
    std::lock_guard<std::mutex> lock(mu_);
    return Total();
  }
  int checks(uint16_t port) {
    std::lock_guard<std::mutex> lock(mu_);
    return checks_[port];
  }

 private:
  size_t Total() const {
    size_t total = 0;
    for (const auto& [port, n] : checks_) total += static_cast<size_t>(n);
    return total;
  }
  std::mutex mu_;
  std::condition_variable checked_;
  std::map<uint16_t, int> checks_;
};

// The point of a prefetch: its ports are checked on the workers while the
// caller does something else, before CheckMany() is called; CheckMany()
// then checks no port a second time.
TEST(LinuxPortLockProbePrefetch, WorkersCheckBeforeCheckManyIsCalled) {
  CountingProbe counting;
  LinuxPortLockProbe many(counting, Prefix(), /*threads=*/2);
  std::vector<uint16_t> asked;
  for (uint16_t port = 24000; port < 24020; ++port) asked.push_back(port);
  many.Prefetch(asked);
  ASSERT_TRUE(counting.WaitForChecks(1)) << "no port checked after Prefetch";
  EXPECT_EQ(many.CheckMany(asked),
            std::vector<PortState>(asked.size(), PortState::kFree));
  for (uint16_t port : asked) EXPECT_EQ(counting.checks(port), 1) << port;
  EXPECT_EQ(many.locks_held(), asked.size());
  for (uint16_t port : asked) many.Release(port);
}

// An inner probe that cannot tell the first time each port is asked (the
// descriptors the prefetch needed were taken by the owner's checks), and
// says free afterwards.
class UnknownFirstProbe final : public PortProbe {
 public:
  PortState Check(uint16_t port) override {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_[port]++ == 0 ? PortState::kUnknown : PortState::kFree;
  }
  bool IsFree(uint16_t port) override { return IsLeasable(Check(port)); }

 private:
  std::mutex mu_;
  std::map<uint16_t, int> calls_;
};

// "Cannot tell" from a prefetch is not taken as CheckMany's answer: it
// stops a whole request (a reviewer: near the descriptor limit the
// prefetch competes with the owner's checks, which then free theirs).
TEST(LinuxPortLockProbePrefetch, UnknownIsCheckedAgain) {
  UnknownFirstProbe first_unknown;
  LinuxPortLockProbe many(first_unknown, Prefix(), /*threads=*/3);
  std::vector<uint16_t> asked;
  for (uint16_t port = 28000; port < 28008; ++port) asked.push_back(port);
  many.Prefetch(asked);
  EXPECT_EQ(many.CheckMany(asked),
            std::vector<PortState>(asked.size(), PortState::kFree));
  EXPECT_EQ(many.locks_held(), asked.size());
  for (uint16_t port : asked) many.Release(port);
}

// A request denied after its prefetch (its owner is gone): every lock the
// prefetch took is given back, and the workers stop taking ports. The
// same when something other than CheckMany() comes next (a Release() of
// another port, a Reserve()).
TEST(LinuxPortLockProbePrefetch, CancelAndOtherCallsGiveEveryLockBack) {
  FakePortProbe ports;
  LinuxPortLockProbe many(ports, Prefix(), /*threads=*/3);
  LinuxPortLockProbe other(ports, Prefix());
  ASSERT_EQ(many.Check(25100), PortState::kFree);  // A lease's lock.
  std::vector<uint16_t> asked;
  for (uint16_t port = 25000; port < 25040; ++port) asked.push_back(port);
  const std::vector<std::function<void()>> next = {
      [&] { many.CancelPrefetch(); },
      [&] { many.Release(25100); },
      [&] { many.Reserve(25101); },
  };
  for (size_t k = 0; k < next.size(); ++k) {
    SCOPED_TRACE(k);
    many.Prefetch(asked);
    next[k]();
    for (uint16_t port : asked) {
      ASSERT_TRUE(other.IsFree(port)) << port << ": lock kept";
      other.Release(port);
    }
  }
  EXPECT_EQ(many.locks_held(), 1u);  // 25101, reserved.
}

// ------------------------------------------------------------- lock names

TEST(LinuxPortLockProbeName, IsTheDocumentedName) {
  EXPECT_EQ(
      LinuxPortLockProbe::LockName(LinuxPortLockProbe::kDefaultPrefix, 15000),
      "portserver-port-lock-15000-wt");
  EXPECT_EQ(LinuxPortLockProbe::LockName("p-", 1), "p-1-10");
  EXPECT_EQ(LinuxPortLockProbe::LockName("p-", 65535), "p-65535-13");
}

// The kernel's bucket of an abstract name: unix_abstract_hash() in
// net/unix/af_unix.c (Linux 5.19 and later; older kernels fold the same
// checksum the same way): the Internet checksum (RFC 1071) of the whole
// sockaddr_un, folded to 8 bits. Bucket numbers here are 0-255.
int KernelBucket(const std::string& name) {
  std::string addr;
  addr.push_back(static_cast<char>(AF_UNIX & 0xff));  // sun_family, little
  addr.push_back(static_cast<char>(AF_UNIX >> 8));    // endian as on x86.
  addr.push_back('\0');                               // Abstract.
  addr += name;
  if (addr.size() % 2 != 0) addr.push_back('\0');
  uint32_t sum = 0;
  for (size_t i = 0; i < addr.size(); i += 2) {
    sum += static_cast<uint8_t>(addr[i]) |
           (static_cast<uint32_t>(static_cast<uint8_t>(addr[i + 1])) << 8);
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  uint32_t hash = ~sum & 0xffff;  // csum_fold()
  hash ^= hash >> 8;
  hash ^= SOCK_STREAM;
  return static_cast<int>(hash & 255);
}

// Names compared per bind() with every port of the pool locked: the mean
// over the pool's names of the size of their bucket.
double ComparesPerBind(uint16_t first, uint16_t last, bool spread) {
  std::vector<int> buckets(256, 0);
  for (uint32_t port = first; port <= last; ++port) {
    std::string name =
        spread ? LinuxPortLockProbe::LockName("portserver-port-lock-",
                                              static_cast<uint16_t>(port))
               : "portserver-port-lock-" + std::to_string(port);
    ++buckets[static_cast<size_t>(KernelBucket(name))];
  }
  double squares = 0;
  for (int n : buckets) squares += static_cast<double>(n) * n;
  return squares / (last - first + 1);
}

TEST(LinuxPortLockProbeName, SpreadsOverTheKernelsBuckets) {
  // The default pool: 10,000 names; an even spread compares about 40.
  EXPECT_GT(ComparesPerBind(15000, 24999, /*spread=*/false), 400);
  EXPECT_LT(ComparesPerBind(15000, 24999, /*spread=*/true), 80);
  // Every port: an even spread compares about 257.
  EXPECT_GT(ComparesPerBind(1, 65535, /*spread=*/false), 2000);
  EXPECT_LT(ComparesPerBind(1, 65535, /*spread=*/true), 450);
}

TEST(LinuxPortLockProbeName, LegacyLocksAreFoundInProcNetUnix) {
  const std::string text =
      "Num       RefCount Protocol Flags    Type St Inode Path\n"
      "0000000000000000: 00000002 00000000 00000000 0001 01 101 "
      "@portserver-port-lock-15000\n"
      "0000000000000000: 00000002 00000000 00000000 0001 01 102 "
      "@portserver-port-lock-15001-20\n"
      "0000000000000000: 00000002 00000000 00000000 0001 01 103 "
      "@portserver-port-lock-15000\n"
      "0000000000000000: 00000002 00000000 00000000 0001 01 104 "
      "@portserver-port-lock-99999\n"
      "0000000000000000: 00000002 00000000 00000000 0001 01 105 "
      "@portserver-port-lock-\n"
      "0000000000000000: 00000002 00000000 00010000 0001 01 106 "
      "/run/portserver.sock\n"
      "0000000000000000: 00000003 00000000 00000000 0001 03 107\n"
      "0000000000000000: 00000002 00000000 00000000 0001 01 108 "
      "@portserver-port-lock-80";
  EXPECT_EQ(LegacyLockedPorts(text), (std::vector<uint16_t>{15000, 80}));
  EXPECT_TRUE(LegacyLockedPorts("").empty());
}

// The warning is computed from the real /proc/net/unix: a lock bound under
// the old name is found there.
TEST(LinuxPortLockProbeName, LegacyLockBoundHereIsSeen) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string name = "portserver-port-lock-3";  // Port 3: unused here.
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  socklen_t length =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  ASSERT_EQ(bind(fd, reinterpret_cast<const sockaddr*>(&addr), length), 0);
  std::ifstream file("/proc/net/unix");
  std::stringstream text;
  text << file.rdbuf();
  std::vector<uint16_t> found = LegacyLockedPorts(text.str());
  close(fd);
  EXPECT_NE(std::find(found.begin(), found.end(), 3), found.end());
}

}  // namespace
}  // namespace portserver
