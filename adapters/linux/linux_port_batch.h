// LinuxPortBatch: the lock and the bind tests of many ports in one
// io_uring(7) submission: what LinuxPortLockProbe::TryLock() and
// LinuxPortProbe::Check() do for a free port with system calls, without a
// system call per step (each costs about 1 µs to enter and leave on a
// virtual machine with page-table isolation, and a free port takes 10).
//
// For each port, one linked chain (io_uring_enter(2) runs it in order and
// stops at a failure):
//   lock: socket(AF_UNIX) into a direct descriptor, bind() of the lock's
//         abstract name, install as a regular descriptor (kept: the lock),
//         close the direct one;
//   then TCP and UDP: socket(AF_INET6) into a direct descriptor,
//         setsockopt(IPV6_V6ONLY, 0), bind() of [::]:port (dual stack: it
//         conflicts with every IPv4 and IPv6 binding of the port, ipv6(7)),
//         close (hard-linked: it runs even when the bind fails).
// No bind test runs unless the lock was taken (as with system calls).
//
// The batch only finds ports free: a port is free here when both binds
// succeeded without SO_REUSEADDR, which is what LinuxPortProbe calls kFree
// on a host with dual-stack sockets. Any other outcome (a bind refused,
// TIME_WAIT, no IPv6, an error) is left to the caller, who asks the system
// call probe, whose answers stay the reference
// (//adapters/linux:linux_port_batch_test holds both to the same answers).
//
// Needs Linux 6.11 (IORING_OP_BIND; also IORING_OP_FIXED_FD_INSTALL, 6.8,
// and socket options by IORING_OP_URING_CMD, 6.7) and io_uring allowed
// (container runtimes' seccomp profiles and kernel.io_uring_disabled may
// refuse it): Create() tries every operation once and returns null, with
// the reason, where any is missing. Uses liburing (Debian liburing-dev).
//
// Example:
//   std::string why;
//   std::unique_ptr<LinuxPortBatch> batch =
//       LinuxPortBatch::Create("portserver-batch-test-42", &why);
//   if (batch) {
//     std::vector<LinuxPortBatch::Outcome> out = batch->Run(
//         {{15000, LinuxPortLockProbe::LockName(prefix, 15000)}});
//     // out[i].free: both binds took; out[i].lock_fd: the lock held
//   }
//
// Linux only: Windows has no counterpart (WindowsPortLockProbe binds with
// Winsock calls).
//
// Thread-compatible: one thread at a time (LinuxPortLockProbe calls it
// under the domain's lock; with two threads, each has a batch of its own).
// Costs one descriptor (the ring) and up to 3 x kMaxPorts direct descriptors,
// which hold nothing between runs.
#ifndef PORTSERVER_ADAPTERS_LINUX_LINUX_PORT_BATCH_H_
#define PORTSERVER_ADAPTERS_LINUX_LINUX_PORT_BATCH_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace portserver {

class LinuxPortBatch {
 public:
  // Ports per submission; Run() splits longer lists.
  static constexpr size_t kMaxPorts = 32;

  struct Item {
    uint16_t port = 0;
    // The lock's abstract name, without its leading NUL byte (at most 107
    // bytes); empty: the caller holds the lock already.
    std::string lock_name;
  };
  struct Outcome {
    // False: the batch did not run this port (its ring broke in this run or
    // an earlier one: the kernel took fewer entries than given, or refused
    // them); nothing of it is held, and the caller checks it with system
    // calls. The fields below are then unset.
    bool ran = false;
    // The lock's regular descriptor (close-on-exec) if it was taken here,
    // else -1.
    int lock_fd = -1;
    // The lock's bind() failed with EADDRINUSE: another process holds it.
    bool lock_held_elsewhere = false;
    // No lock could be made for want of a resource (socket(), or no
    // descriptor to install it: EMFILE under RLIMIT_NOFILE), or another
    // error of its bind().
    bool lock_failed = false;
    // With the lock held (taken here or before): the TCP and the UDP bind
    // of [::]:port both succeeded. Never for port 0 (the kernel would pick
    // a port).
    bool free = false;
  };

  // A ring ready for Run(), after trying each operation once: a lock chain
  // on the abstract name `test_name` (bound, then let go) and the test
  // sockets' steps but their bind (no port is bound). Null where one is
  // missing, with `*why` (e.g. "io_uring_setup: Operation not permitted").
  static std::unique_ptr<LinuxPortBatch> Create(const std::string& test_name,
                                                std::string* why);
  ~LinuxPortBatch();
  LinuxPortBatch(const LinuxPortBatch&) = delete;
  LinuxPortBatch& operator=(const LinuxPortBatch&) = delete;

  // One outcome per item, in order. Every test socket is closed on return;
  // only the locks of lock_fd stay open. A port's lock that was taken is in
  // lock_fd even when the port is not free (the caller decides). If the
  // kernel takes fewer entries than given (or none: out of memory), the
  // entries left would run at the next submission, with their results
  // lost: the ring is destroyed instead (which drops them and closes its
  // direct descriptors), the locks this run installed are closed, and the
  // ports of the run and of every later one come back with ran == false.
  std::vector<Outcome> Run(const std::vector<Item>& items);
  // False once the ring broke (above): Run() runs nothing any more.
  bool usable() const { return ring_ != nullptr; }

  // Submissions made so far (one per kMaxPorts ports, and one more in a
  // run that had to close what a broken chain left).
  uint64_t submissions() const { return submissions_; }

 private:
  struct Ring;
  explicit LinuxPortBatch(std::unique_ptr<Ring> ring);
  void RunChunk(const Item* items, size_t n, Outcome* out);

  std::unique_ptr<Ring> ring_;
  uint64_t submissions_ = 0;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_LINUX_LINUX_PORT_BATCH_H_
