#include "adapters/linux/linux_port_batch.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gtest/gtest.h"

// LinuxPortBatch on the real kernel: what its ring did is checked with
// plain system calls afterwards (a lock name still bound, a port free
// again), and what it must not call free (a port held on TCP or UDP) is
// held by real sockets. LinuxPortProbeEquivalence holds the lock probe
// with batches to the system-call probe's answers, holder by holder.
namespace portserver {
namespace {

std::string Prefix() {
  return "portserver-batch-test-" + std::to_string(getpid()) + "-";
}

std::string Name(uint16_t port) { return Prefix() + std::to_string(port); }

// True if Linux is at least major.minor.
bool KernelAtLeast(int major, int minor) {
  utsname u{};
  if (uname(&u) != 0) return false;
  int a = 0, b = 0;
  if (std::sscanf(u.release, "%d.%d", &a, &b) != 2) return false;
  return a > major || (a == major && b >= minor);
}

bool IoUringDisabled() {
  std::ifstream in("/proc/sys/kernel/io_uring_disabled");
  int value = 0;
  return in >> value && value != 0;
}

// Binds the abstract name `name`; the descriptor, or -errno.
int BindName(const std::string& name) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  socklen_t length =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), length) != 0) {
    int error = errno;
    close(fd);
    return -error;
  }
  return fd;
}

// A plain bind of [::]:port (dual stack), TCP or UDP: 0 or errno.
int BindPort(int type, uint16_t port) {
  int fd = socket(AF_INET6, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int zero = 0;
  setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_any;
  addr.sin6_port = htons(port);
  int error = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0
                  ? 0
                  : errno;
  close(fd);
  return error;
}

// A socket of `type` bound to 127.0.0.1 on a port the kernel picks.
class Holder {
 public:
  explicit Holder(int type) {
    fd_ = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(addr);
    if (fd_ >= 0 &&
        bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &length) == 0) {
      port_ = ntohs(addr.sin_port);
    }
  }
  ~Holder() { Close(); }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// A port no one holds now: one the kernel gave a socket, let go of.
uint16_t FreePort() {
  Holder h(SOCK_DGRAM);
  return h.port();
}

class LinuxPortBatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    batch_ = LinuxPortBatch::Create(Prefix() + "trial", &why);
    if (batch_ == nullptr) {
      if (!KernelAtLeast(6, 11) || IoUringDisabled()) {
        GTEST_SKIP() << "no io_uring batches on this kernel: " << why;
      }
      FAIL() << "Linux 6.11 or later with io_uring allowed, yet: " << why;
    }
  }
  void TearDown() override {
    for (int fd : locks_) close(fd);
  }
  // Keeps the lock descriptors of `out` for TearDown().
  void Keep(const std::vector<LinuxPortBatch::Outcome>& out) {
    for (const auto& o : out) {
      if (o.lock_fd >= 0) locks_.push_back(o.lock_fd);
    }
  }

  std::unique_ptr<LinuxPortBatch> batch_;
  std::vector<int> locks_;
};

TEST_F(LinuxPortBatchTest, WorksWhereTheKernelHasEveryOperation) {
  EXPECT_EQ(batch_->submissions(), 0u);  // Create()'s trial is not counted.
}

// Free ports: each lock taken and kept (its name stays bound, close-on-
// exec), each port found free and not left bound; two submissions for
// more than kMaxPorts ports.
TEST_F(LinuxPortBatchTest, FreePortsAreLockedAndLeftUnbound) {
  std::vector<Holder> holders;
  std::vector<uint16_t> ports;
  for (size_t i = 0; i < LinuxPortBatch::kMaxPorts + 8; ++i) {
    holders.emplace_back(SOCK_STREAM);
    ports.push_back(holders.back().port());
  }
  holders.clear();  // Their ports are free now.
  std::vector<LinuxPortBatch::Item> items;
  for (uint16_t port : ports) items.push_back({port, Name(port)});
  const std::vector<LinuxPortBatch::Outcome> out = batch_->Run(items);
  Keep(out);
  ASSERT_EQ(out.size(), ports.size());
  EXPECT_EQ(batch_->submissions(), 2u);
  for (size_t i = 0; i < ports.size(); ++i) {
    SCOPED_TRACE(ports[i]);
    EXPECT_TRUE(out[i].free);
    ASSERT_GE(out[i].lock_fd, 0);
    EXPECT_NE(fcntl(out[i].lock_fd, F_GETFD) & FD_CLOEXEC, 0);
    EXPECT_EQ(BindName(Name(ports[i])), -EADDRINUSE);  // The lock holds.
    EXPECT_EQ(BindPort(SOCK_STREAM, ports[i]), 0);     // Closed again.
    EXPECT_EQ(BindPort(SOCK_DGRAM, ports[i]), 0);
  }
  close(out[0].lock_fd);
  locks_.erase(locks_.begin());
  const int again = BindName(Name(ports[0]));  // Let go with its descriptor.
  EXPECT_GE(again, 0);
  if (again >= 0) close(again);
}

// A port held on TCP or UDP (127.0.0.1: the dual-stack bind conflicts) is
// not free; its lock is still taken for the caller, who asks the system
// call probe; the holder keeps the port.
TEST_F(LinuxPortBatchTest, HeldPortsAreNotFree) {
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    SCOPED_TRACE(type == SOCK_STREAM ? "tcp" : "udp");
    Holder held(type);
    ASSERT_NE(held.port(), 0);
    const uint16_t free_port = FreePort();
    const std::vector<LinuxPortBatch::Outcome> out = batch_->Run(
        {{held.port(), Name(held.port())}, {free_port, Name(free_port)}});
    Keep(out);
    EXPECT_FALSE(out[0].free);
    EXPECT_GE(out[0].lock_fd, 0);
    EXPECT_TRUE(out[1].free);  // The next chain is not cut short.
    EXPECT_EQ(BindPort(type, held.port()), EADDRINUSE);
    held.Close();
    EXPECT_EQ(BindPort(SOCK_STREAM, held.port()), 0);  // Nothing left bound.
    EXPECT_EQ(BindPort(SOCK_DGRAM, held.port()), 0);
  }
}

// A lock another process holds: said so, no descriptor, and the test
// sockets of that chain never ran (nothing left bound: the slot's unbound
// lock socket is closed by a second submission); the batch works on.
TEST_F(LinuxPortBatchTest, ALockHeldElsewhereStopsItsChain) {
  const uint16_t port = FreePort();
  const int other = BindName(Name(port));
  ASSERT_GE(other, 0);
  const std::vector<LinuxPortBatch::Outcome> out =
      batch_->Run({{port, Name(port)}});
  EXPECT_TRUE(out[0].lock_held_elsewhere);
  EXPECT_FALSE(out[0].lock_failed);
  EXPECT_EQ(out[0].lock_fd, -1);
  EXPECT_FALSE(out[0].free);
  EXPECT_EQ(batch_->submissions(), 2u);  // The run, then its clean-up.
  EXPECT_EQ(BindPort(SOCK_STREAM, port), 0);
  close(other);
  const std::vector<LinuxPortBatch::Outcome> again =
      batch_->Run({{port, Name(port)}});
  Keep(again);
  EXPECT_TRUE(again[0].free);
  EXPECT_GE(again[0].lock_fd, 0);
}

// No descriptor to install a lock in (RLIMIT_NOFILE reached): the lock
// fails for want of a resource, and its name does not stay bound in the
// ring's direct descriptor (it would keep the port's lock from every
// server until this one exits; a reviewer).
TEST_F(LinuxPortBatchTest, ALockWithoutADescriptorLeavesNothingBound) {
  const uint16_t port = FreePort();
  rlimit before{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &before), 0);
  const int lowest_free = dup(0);
  ASSERT_GE(lowest_free, 0);
  close(lowest_free);
  rlimit none = before;
  none.rlim_cur = static_cast<rlim_t>(lowest_free);  // No descriptor left.
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &none), 0);
  const std::vector<LinuxPortBatch::Outcome> out =
      batch_->Run({{port, Name(port)}});
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &before), 0);
  ASSERT_TRUE(out[0].ran);
  EXPECT_TRUE(out[0].lock_failed);
  EXPECT_EQ(out[0].lock_fd, -1);
  EXPECT_FALSE(out[0].free);
  const int lock = BindName(Name(port));
  EXPECT_GE(lock, 0) << "the lock name stayed bound";
  if (lock >= 0) close(lock);
  EXPECT_EQ(BindPort(SOCK_STREAM, port), 0);
  EXPECT_TRUE(batch_->usable());
}

// A seccomp filter that refuses io_uring_enter (as container runtimes'
// profiles may, after io_uring_setup was allowed): Create() says so, and
// the server falls back to system calls (a new user's trial: it read
// "took fewer entries than given"). In a child: a filter stays for life.
TEST(LinuxPortBatchSeccomp, ARefusedEnterIsNamed) {
  if (!KernelAtLeast(6, 11) || IoUringDisabled()) {
    GTEST_SKIP() << "no io_uring batches on this kernel";
  }
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipe_fds[0]);
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog program{static_cast<unsigned short>(std::size(filter)), filter};
    std::string why = "no filter";
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0) {
      why.clear();
      if (LinuxPortBatch::Create(Prefix() + "seccomp", &why) != nullptr) {
        why = "created";
      }
    }
    ssize_t ignored = write(pipe_fds[1], why.data(), why.size());
    (void)ignored;
    _exit(0);
  }
  close(pipe_fds[1]);
  std::string why;
  char buffer[256];
  ssize_t n;
  while ((n = read(pipe_fds[0], buffer, sizeof(buffer))) > 0) {
    why.append(buffer, static_cast<size_t>(n));
  }
  close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_EQ(why, "io_uring_enter: Operation not permitted");
}

// The caller holds the lock already (empty name): only the bind tests.
TEST_F(LinuxPortBatchTest, NoLockAskedOnlyTests) {
  const uint16_t port = FreePort();
  const std::vector<LinuxPortBatch::Outcome> out = batch_->Run({{port, ""}});
  EXPECT_TRUE(out[0].free);
  EXPECT_EQ(out[0].lock_fd, -1);
  EXPECT_FALSE(out[0].lock_failed);
  const int lock = BindName(Name(port));  // No lock was taken.
  EXPECT_GE(lock, 0);
  if (lock >= 0) close(lock);
}

// A name too long for sockaddr_un fails as TryLock() does, alone.
TEST_F(LinuxPortBatchTest, ANameTooLongFailsAlone) {
  const uint16_t port = FreePort();
  const uint16_t other = FreePort();
  const std::vector<LinuxPortBatch::Outcome> out =
      batch_->Run({{port, std::string(200, 'x')}, {other, Name(other)}});
  Keep(out);
  EXPECT_TRUE(out[0].lock_failed);
  EXPECT_EQ(out[0].lock_fd, -1);
  EXPECT_TRUE(out[1].free);
}

}  // namespace
}  // namespace portserver
