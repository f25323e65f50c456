#include "adapters/linux/linux_port_batch.h"

#include <liburing.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstring>
#include <utility>

namespace portserver {
namespace {

// Operations newer than the uapi headers Debian 12 has (Linux 6.1), numbered
// as in include/uapi/linux/io_uring.h.
constexpr int kOpFixedFdInstall = 54;             // Linux 6.8.
constexpr int kOpBind = 56;                       // Linux 6.11.
constexpr uint32_t kSocketUringOpSetsockopt = 3;  // Linux 6.7.

// The steps of a port's chain, in order; a completion's user_data is
// (index << 8) | step.
enum Step : uint8_t {
  kLockSocket,
  kLockBind,
  kLockInstall,
  kLockClose,
  kTcpSocket,
  kTcpOption,
  kTcpBind,
  kTcpClose,
  kUdpSocket,
  kUdpOption,
  kUdpBind,
  kUdpClose,
  kSteps,
};
constexpr int kNotRun = INT_MIN;
constexpr unsigned kEntries = 512;  // >= 12 steps x kMaxPorts.
constexpr unsigned kSlotsPerPort = 3;

const int kZero = 0;  // IPV6_V6ONLY's value: dual stack.

uint64_t Tag(size_t index, Step step) {
  return (static_cast<uint64_t>(index) << 8) | step;
}

std::string Errno(const char* what, int error) {
  return std::string(what) + ": " + std::strerror(error);
}

}  // namespace

struct LinuxPortBatch::Ring {
  io_uring ring{};
  bool ready = false;
  int submit_error = 0;  // errno of the last refused io_uring_enter.
  ~Ring() {
    if (ready) io_uring_queue_exit(&ring);
  }

  io_uring_sqe* Next(size_t index, Step step, uint8_t flags) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (sqe == nullptr) return nullptr;  // Not with kEntries >= 12 x 32.
    std::memset(sqe, 0, sizeof(*sqe));
    sqe->user_data = Tag(index, step);
    sqe->flags = flags;
    return sqe;
  }

  // Each Queue*() adds one step of a port's chain (`index`) and returns
  // false if the submission queue is full. socket(domain, type) into
  // direct descriptor `slot` (linked to the next step):
  bool QueueSocket(size_t index, Step first, int domain, int type,
                   unsigned slot) {
    io_uring_sqe* sqe = Next(index, first, IOSQE_IO_LINK);
    if (sqe == nullptr) return false;
    io_uring_prep_socket_direct(sqe, domain, type, 0, slot, 0);
    sqe->flags = IOSQE_IO_LINK;
    return true;
  }
  bool QueueOption(size_t index, Step step, unsigned slot) {
    io_uring_sqe* sqe = Next(index, step, IOSQE_FIXED_FILE | IOSQE_IO_LINK);
    if (sqe == nullptr) return false;
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = static_cast<int>(slot);
    sqe->cmd_op = kSocketUringOpSetsockopt;
    // level and optname share `addr`; optval is `addr3`, optlen
    // `file_index` (struct io_uring_sqe of Linux 6.7).
    sqe->addr = static_cast<uint64_t>(IPPROTO_IPV6) |
                (static_cast<uint64_t>(IPV6_V6ONLY) << 32);
    sqe->addr3 = reinterpret_cast<uintptr_t>(&kZero);
    sqe->file_index = sizeof(kZero);
    return true;
  }
  bool QueueBind(size_t index, Step step, unsigned slot, const void* addr,
                 socklen_t length, uint8_t link) {
    io_uring_sqe* sqe = Next(index, step, IOSQE_FIXED_FILE | link);
    if (sqe == nullptr) return false;
    sqe->opcode = kOpBind;
    sqe->fd = static_cast<int>(slot);
    sqe->addr = reinterpret_cast<uintptr_t>(addr);
    sqe->addr2 = length;
    return true;
  }
  bool QueueInstall(size_t index, Step step, unsigned slot) {
    // install_fd_flags 0: the new descriptor is close-on-exec.
    io_uring_sqe* sqe = Next(index, step, IOSQE_FIXED_FILE | IOSQE_IO_LINK);
    if (sqe == nullptr) return false;
    sqe->opcode = kOpFixedFdInstall;
    sqe->fd = static_cast<int>(slot);
    return true;
  }
  bool QueueClose(size_t index, Step step, unsigned slot, uint8_t link) {
    io_uring_sqe* sqe = Next(index, step, link);
    if (sqe == nullptr) return false;
    io_uring_prep_close_direct(sqe, slot);
    sqe->user_data = Tag(index, step);
    sqe->flags = link;
    return true;
  }

  // Submits what is queued and waits for `count` completions, giving each
  // to `done(user_data, res)`. False if the kernel took fewer entries.
  template <typename Done>
  bool SubmitAndReap(unsigned count, Done done) {
    int submitted;
    do {
      submitted = io_uring_submit_and_wait(&ring, count);
    } while (submitted == -EINTR);
    if (submitted < 0) {
      submit_error = -submitted;
      return false;
    }
    unsigned seen = 0;
    while (seen < static_cast<unsigned>(submitted)) {
      io_uring_cqe* cqe = nullptr;
      int waited = io_uring_wait_cqe(&ring, &cqe);
      if (waited == -EINTR) continue;
      if (waited < 0) return false;
      unsigned head;
      unsigned n = 0;
      io_uring_for_each_cqe(&ring, head, cqe) {
        done(cqe->user_data, cqe->res);
        ++n;
      }
      io_uring_cq_advance(&ring, n);
      seen += n;
    }
    return static_cast<unsigned>(submitted) == count;
  }
};

LinuxPortBatch::LinuxPortBatch(std::unique_ptr<Ring> ring)
    : ring_(std::move(ring)) {}

LinuxPortBatch::~LinuxPortBatch() = default;

std::unique_ptr<LinuxPortBatch> LinuxPortBatch::Create(
    const std::string& test_name, std::string* why) {
  auto ring = std::make_unique<Ring>();
  io_uring_params params{};
  params.flags = IORING_SETUP_SUBMIT_ALL;  // Past a failed entry too.
  int error = io_uring_queue_init_params(kEntries, &ring->ring, &params);
  if (error < 0) {
    *why = Errno("io_uring_setup", -error);
    return nullptr;
  }
  ring->ready = true;
  error =
      io_uring_register_files_sparse(&ring->ring, kSlotsPerPort * kMaxPorts);
  if (error < 0) {
    *why = Errno("io_uring_register (direct descriptors)", -error);
    return nullptr;
  }
  // Each operation once: the lock chain on `test_name`, and an IPv6
  // socket's option set and closed (no port is bound).
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (test_name.empty() || test_name.size() + 1 > sizeof(addr.sun_path)) {
    *why = "bad test name";
    return nullptr;
  }
  std::memcpy(addr.sun_path + 1, test_name.data(), test_name.size());
  const socklen_t length = static_cast<socklen_t>(
      offsetof(sockaddr_un, sun_path) + 1 + test_name.size());
  Ring& r = *ring;
  r.QueueSocket(0, kLockSocket, AF_UNIX, SOCK_STREAM, 0);
  r.QueueBind(0, kLockBind, 0, &addr, length, IOSQE_IO_LINK);
  r.QueueInstall(0, kLockInstall, 0);
  r.QueueClose(0, kLockClose, 0, IOSQE_IO_LINK);
  r.QueueSocket(0, kTcpSocket, AF_INET6, SOCK_STREAM, 1);
  r.QueueOption(0, kTcpOption, 1);
  r.QueueClose(0, kTcpClose, 1, 0);
  std::array<int, kSteps> res;
  res.fill(kNotRun);
  const bool all = r.SubmitAndReap(
      7, [&](uint64_t tag, int value) { res[tag & 0xff] = value; });
  if (res[kLockInstall] >= 0) close(res[kLockInstall]);
  static constexpr std::pair<Step, const char*> kNames[] = {
      {kLockSocket, "IORING_OP_SOCKET"},
      {kLockBind, "IORING_OP_BIND"},
      {kLockInstall, "IORING_OP_FIXED_FD_INSTALL"},
      {kLockClose, "IORING_OP_CLOSE"},
      {kTcpSocket, "IORING_OP_SOCKET (AF_INET6)"},
      {kTcpOption, "setsockopt by IORING_OP_URING_CMD"},
      {kTcpClose, "IORING_OP_CLOSE"},
  };
  if (!all) {
    // Refused (a seccomp filter: EPERM), or out of memory.
    *why = r.submit_error != 0 ? Errno("io_uring_enter", r.submit_error)
                               : "io_uring_enter took fewer entries than given";
    return nullptr;
  }
  for (const auto& [step, name] : kNames) {
    if (res[step] < 0) {
      *why = Errno(name, res[step] == kNotRun ? EPROTO : -res[step]);
      return nullptr;
    }
  }
  return std::unique_ptr<LinuxPortBatch>(new LinuxPortBatch(std::move(ring)));
}

std::vector<LinuxPortBatch::Outcome> LinuxPortBatch::Run(
    const std::vector<Item>& items) {
  std::vector<Outcome> out(items.size());
  for (size_t at = 0; at < items.size() && ring_ != nullptr; at += kMaxPorts) {
    const size_t n = std::min(kMaxPorts, items.size() - at);
    RunChunk(items.data() + at, n, out.data() + at);
  }
  return out;
}

void LinuxPortBatch::RunChunk(const Item* items, size_t n, Outcome* out) {
  std::array<sockaddr_un, kMaxPorts> lock_addr;
  std::array<socklen_t, kMaxPorts> lock_length;
  std::array<sockaddr_in6, kMaxPorts> port_addr;
  std::array<std::array<int, kSteps>, kMaxPorts> res;
  std::array<bool, kMaxPorts> queued{};
  Ring& r = *ring_;
  unsigned count = 0;
  bool queue_full = false;
  for (size_t k = 0; k < n && !queue_full; ++k) {
    res[k].fill(kNotRun);
    const unsigned slot = kSlotsPerPort * static_cast<unsigned>(k);
    const std::string& name = items[k].lock_name;
    if (!name.empty()) {
      sockaddr_un& addr = lock_addr[k];
      std::memset(&addr, 0, sizeof(addr));
      addr.sun_family = AF_UNIX;
      if (name.size() + 1 > sizeof(addr.sun_path)) {
        out[k].lock_failed = true;  // As TryLock(): no such name.
        continue;
      }
      std::memcpy(addr.sun_path + 1, name.data(), name.size());
      lock_length[k] = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) +
                                              1 + name.size());
    }
    sockaddr_in6& addr = port_addr[k];
    std::memset(&addr, 0, sizeof(addr));
    addr.sin6_family = AF_INET6;
    addr.sin6_addr = in6addr_any;
    addr.sin6_port = htons(items[k].port);
    bool ok = true;
    unsigned steps = 0;
    if (!name.empty()) {
      ok = ok && r.QueueSocket(k, kLockSocket, AF_UNIX, SOCK_STREAM, slot);
      ok = ok && r.QueueBind(k, kLockBind, slot, &lock_addr[k], lock_length[k],
                             IOSQE_IO_LINK);
      ok = ok && r.QueueInstall(k, kLockInstall, slot);
      ok = ok && r.QueueClose(k, kLockClose, slot, IOSQE_IO_LINK);
      steps += 4;
    }
    ok = ok && r.QueueSocket(k, kTcpSocket, AF_INET6, SOCK_STREAM, slot + 1);
    ok = ok && r.QueueOption(k, kTcpOption, slot + 1);
    ok = ok && r.QueueBind(k, kTcpBind, slot + 1, &addr, sizeof(addr),
                           IOSQE_IO_HARDLINK);
    ok = ok && r.QueueClose(k, kTcpClose, slot + 1, IOSQE_IO_LINK);
    ok = ok && r.QueueSocket(k, kUdpSocket, AF_INET6, SOCK_DGRAM, slot + 2);
    ok = ok && r.QueueOption(k, kUdpOption, slot + 2);
    ok = ok && r.QueueBind(k, kUdpBind, slot + 2, &addr, sizeof(addr),
                           IOSQE_IO_HARDLINK);
    ok = ok && r.QueueClose(k, kUdpClose, slot + 2, 0);
    steps += 8;
    if (!ok) {
      queue_full = true;  // Not with kEntries: counted as never queued.
      break;
    }
    queued[k] = true;
    count += steps;
  }
  // The kernel took fewer entries than given (or refused them): those left
  // would run at the next submission. Destroying the ring drops them and
  // closes whatever its direct descriptors hold (a bound test socket, a
  // lock name); the locks installed so far are closed here; the ports of
  // this run keep ran == false.
  auto broke = [&] {
    for (size_t k = 0; k < n; ++k) {
      if (queued[k] && !items[k].lock_name.empty() &&
          res[k][kLockInstall] >= 0) {
        close(res[k][kLockInstall]);
      }
    }
    ring_.reset();
  };
  if (count > 0) {
    const bool all = r.SubmitAndReap(count, [&](uint64_t tag, int value) {
      const size_t k = static_cast<size_t>(tag >> 8);
      if (k < n) res[k][tag & 0xff] = value;
    });
    ++submissions_;
    if (!all) {
      broke();
      return;
    }
  }
  // What a broken chain left in its direct descriptors is closed now: a
  // lock whose install failed still holds its name there, a test socket
  // whose close did not run still holds the port.
  bool leftovers = false;
  for (size_t k = 0; k < n; ++k) {
    if (!queued[k]) continue;
    const std::array<int, kSteps>& s = res[k];
    if (!items[k].lock_name.empty() && s[kLockSocket] >= 0 &&
        s[kLockClose] != 0) {
      leftovers = true;
    }
    if (s[kTcpSocket] >= 0 && s[kTcpClose] != 0) leftovers = true;
    if (s[kUdpSocket] >= 0 && s[kUdpClose] != 0) leftovers = true;
  }
  if (leftovers) {
    unsigned closes = 0;
    for (unsigned slot = 0; slot < kSlotsPerPort * n; ++slot) {
      if (r.QueueClose(SIZE_MAX >> 8, kLockClose, slot, 0)) ++closes;
    }
    // -EBADF for a slot that was empty. If this one breaks too, the
    // ring's teardown closes the slots (the outcomes below stand: their
    // locks are descriptors of their own).
    if (!r.SubmitAndReap(closes, [](uint64_t, int) {})) ring_.reset();
    ++submissions_;
  }
  for (size_t k = 0; k < n; ++k) {
    out[k].ran = true;
    if (!queued[k]) {
      out[k].lock_failed = true;
      continue;
    }
    const std::array<int, kSteps>& s = res[k];
    if (!items[k].lock_name.empty()) {
      if (s[kLockSocket] < 0) {
        out[k].lock_failed = true;
        continue;
      }
      if (s[kLockBind] == -EADDRINUSE) {
        out[k].lock_held_elsewhere = true;
        continue;
      }
      if (s[kLockBind] != 0 || s[kLockInstall] < 0) {
        out[k].lock_failed = true;
        continue;
      }
      out[k].lock_fd = s[kLockInstall];
    }
    out[k].free = items[k].port != 0 && s[kTcpBind] == 0 && s[kUdpBind] == 0;
  }
}

}  // namespace portserver
