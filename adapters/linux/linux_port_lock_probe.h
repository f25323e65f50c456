// LinuxPortLockProbe: a PortProbe decorator that makes several port servers
// in one network namespace share ports safely. Before a port can be called
// free, the server must hold the port's host-wide lock: the abstract AF_UNIX
// name LockName(port), "@portserver-port-lock-<port>-<c1><c2>". Only one
// process can bind a name; the kernel drops it when the holder exits, even
// by kill -9, so no stale lock outlives a server; and abstract names live in
// the network namespace, the same scope as the ports they guard.
//
// The lock is held exactly while the port is leased: from Check() saying
// the port is leasable until the domain calls Release() (the owner died, or
// the port was not taken), or until this object is destroyed (the server
// exits). A port whose lock another server holds is kBusy. Every server
// takes the locks (whatever its flags), so two servers never lease the same
// port, in either direction.
//
// Why the two characters after the port: the kernel keeps abstract names in
// 256 hash buckets chosen by a 16-bit one's-complement checksum of the name
// (unix_abstract_hash() in net/unix/af_unix.c), and every bind() compares
// the name with each name of its bucket. Decimal ports alone differ too
// little in that checksum: the ports 15000-24999 fall into 66 buckets (474
// names compared per bind with all of them locked), 1-65535 into 135. With
// the two characters they fall into 224 buckets (65 compared; 428 instead
// of 2,139 for 1-65535). Servers before 0.3.0 named the lock
// "@portserver-port-lock-<port>" and do not see these names
// (LegacyLockedPorts() finds theirs).
//
// Example:
//   LinuxPortProbe binds;
//   LinuxPortLockProbe probe(binds, LinuxPortLockProbe::kDefaultPrefix,
//                            /*threads=*/2);
//   probe.Check(20000);    // takes @portserver-port-lock-20000-aC if it can
//   probe.CheckMany({20001, 20002, 20003, 20004});  // on 2 threads
//   probe.Release(20000);  // the lease ended: lets go of it
//
// Several ports at once: CheckMany() takes the locks and runs the inner
// probe for its ports on `threads` threads (the caller and threads - 1
// workers of its own, started with the object), since each port costs a few
// socket(), bind() and close() calls whose time is almost all the kernel's
// and which do not wait on one another. The workers are kept off the CPU
// the caller is on (their affinity, pthread_setaffinity_np(3), is the
// process's CPUs but that one, set again when the caller has moved), and
// the caller waits only for workers that took part. The answers are the
// ones Check() would give, one port at a time. With UseKernelBatches()
// (what the server does where the kernel allows it), the locks and bind
// tests of a call go to the kernel in one io_uring submission instead
// (LinuxPortBatch), or two (the caller's half and a worker's).
//
// Cost: one descriptor and one AF_UNIX socket (its inode and name, about
// 2.5 KB of kernel memory; README "Guarantees") per leased port. Out of
// descriptors (EMFILE, ENFILE) or memory, Check() says kUnknown: the port is
// not leased without its lock.
//
// Thread-compatible. `inner` must outlive this object; with threads > 1 its
// Check() is called from several threads at once (LinuxPortProbe keeps no
// state: it may be).
#ifndef PORTSERVER_ADAPTERS_LINUX_LINUX_PORT_LOCK_PROBE_H_
#define PORTSERVER_ADAPTERS_LINUX_LINUX_PORT_LOCK_PROBE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "adapters/linux/linux_port_batch.h"
#include "domain/port_probe.h"

namespace portserver {

class LinuxPortLockProbe final : public PortProbe {
 public:
  static constexpr char kDefaultPrefix[] = "portserver-port-lock-";

  // The abstract name (without its leading NUL byte) of `port`'s lock:
  // `prefix`, the port in decimal, '-', then kSpreadAlphabet[port % 62] and
  // kSpreadAlphabet[(port / 62) % 62]. E.g. port 15000 ->
  // "portserver-port-lock-15000-wt". Other tools that want to keep off
  // leased ports can bind the same name (and hold it while they use the
  // port). Thread-safe.
  static std::string LockName(std::string_view prefix, uint16_t port);
  static constexpr char kSpreadAlphabet[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

  // `threads`: how many threads CheckMany() uses (1: the caller alone; 0
  // counts as 1). With fewer than 2 CPUs to run on (sched_getaffinity(2) at
  // construction), the workers' affinity is left as it is.
  explicit LinuxPortLockProbe(PortProbe& inner,
                              std::string prefix = kDefaultPrefix,
                              size_t threads = 1);
  LinuxPortLockProbe(const LinuxPortLockProbe&) = delete;
  LinuxPortLockProbe& operator=(const LinuxPortLockProbe&) = delete;
  ~LinuxPortLockProbe() override;

  // inner.Check(port) once this server holds (or just took) the port's
  // lock; kBusy if another process holds it, kUnknown if no lock socket
  // could be made. When the answer is not leasable no lock is held for it.
  PortState Check(uint16_t port) override;
  // Check() of each port, the ports spread over the threads; the locks of
  // the leasable ones are held on return, as Check() holds them. Fewer
  // than 4 ports run on the caller alone.
  std::vector<PortState> CheckMany(const std::vector<uint16_t>& ports) override;
  // Starts Check() of `ports` on the worker threads alone and returns: the
  // next CheckMany() or Check() takes their answers (and locks) and checks
  // only the rest, on the caller too. Ports whose locks this probe already
  // holds are left to that call. Nothing with one thread, or for fewer
  // than 4 ports.
  void Prefetch(const std::vector<uint16_t>& ports) override;
  // The workers take no more ports of the Prefetch() (each finishes the
  // one it checks) and the locks it took are given back.
  void CancelPrefetch() override;
  // IsLeasable(Check(port)).
  bool IsFree(uint16_t port) override;
  // True if another process binds the port's lock name: another port
  // server (or a tool that keeps off leased ports by the same name). False
  // if this probe holds it or it is free (a free one is not kept). After
  // CancelPrefetch().
  bool HeldByAnotherServer(uint16_t port) override;
  // Gives the port's lock back (after CancelPrefetch()).
  void Release(uint16_t port) override;
  // Takes the port's lock without a bind test (a restored lease, whose
  // owner may have bound it); false if another process holds it, no lock
  // socket could be made, or its descriptor would be set_reserve_below()'s
  // limit or more. After CancelPrefetch().
  bool Reserve(uint16_t port) override;

  // Reserve() takes no lock whose descriptor number is `fd_limit` or more
  // (descriptors are numbered from the lowest free one: about the number
  // in use), so that the locks of a journal's leases, restored before the
  // server serves, leave descriptors to serve with: a server restarted
  // under a limit its journal's leases outnumber took every descriptor for
  // them and closed every connection unanswered (a new user's trial). Such
  // a lease is kept without its lock, as one a neighbour holds. After a
  // Reserve() refused so, the next ones fail without a system call until a
  // lock is given back. A lock given back by Release() since the last
  // Check() or CheckMany() may be taken again by a Reserve() whatever its
  // number (one descriptor in place of another: a new grant's, above the
  // limit, would otherwise go to the next grant rather than to a restored
  // lease still without its lock). 0 (the default): no limit. Check() and
  // CheckMany() are not limited: a request runs out on its own (kUnknown).
  void set_reserve_below(int fd_limit);

  size_t locks_held() const { return held_.size(); }

  // From now on, Check() and CheckMany() take the locks and bind-test the
  // ports through one io_uring submission per call (LinuxPortBatch) rather
  // than with a dozen system calls a port, and Prefetch() does nothing: one
  // submission of 20 ports took 5.3 µs a port against 20.5 with system
  // calls (BENCHMARKS.md). With threads, 8 ports or more are split in two
  // halves, one submission on the caller and one on a worker, each thread
  // with a ring of its own. Only for
  // an `inner` that is a LinuxPortProbe with dual-stack sockets (the
  // batch's binds are its binds): the batch answers kFree where both
  // succeeded, and every other port is asked of `inner` (with its lock
  // held), whose answers stay the reference. False, with `*why`, where
  // io_uring or one of its operations is missing (kernels before 6.11,
  // seccomp, kernel.io_uring_disabled): nothing changes then.
  bool UseKernelBatches(std::string* why);
  // True while they are in use: after UseKernelBatches() succeeded, until
  // a ring broke (LinuxPortBatch::Run(); then system calls, as without).
  bool kernel_batches() const { return batch_ != nullptr && batch_->usable(); }
  // io_uring submissions made so far, on the caller's ring and the
  // worker's (0 without kernel batches).
  uint64_t kernel_submissions() const;

 private:
  class Workers;

  // CheckMany()'s ports at `todo` through batch_: fills fds (the locks
  // taken) and states; the ports the batch does not find free go to
  // inner_.Check() with their locks held.
  void CheckByBatch(LinuxPortBatch& batch, const std::vector<uint16_t>& ports,
                    const std::vector<size_t>& todo, std::vector<int>& fds,
                    std::vector<PortState>& states) const;

  // Binds the lock name; returns the descriptor, or -1 with `*state` set:
  // kBusy if another process holds it, kUnknown if no socket could be made.
  int TryLock(uint16_t port, PortState* state) const;

  // One port with system calls, on the calling thread: its lock taken into
  // `*fd` unless held already (*fd >= 0), then inner_.Check() into
  // `*state`; without a lock, `*state` is TryLock()'s. The path of every
  // port without kernel batches, and of those a broken ring left.
  void CheckWithSystemCalls(uint16_t port, int* fd, PortState* state) const;

  // Waits for the Prefetch() running on the workers, the caller checking
  // the ports they have not taken yet.
  void FinishPrefetch();

  PortProbe& inner_;
  const std::string prefix_;
  std::unordered_map<uint16_t, int> held_;        // port -> lock descriptor
  std::unique_ptr<Workers> workers_;              // Null with one thread.
  std::unique_ptr<LinuxPortBatch> batch_;         // UseKernelBatches().
  std::unique_ptr<LinuxPortBatch> worker_batch_;  // A worker's.

  // The Prefetch() not yet taken by CheckMany() nor cancelled. Index i is
  // written by the one thread that checks ports_[i] (checked_ is char, not
  // bool, so that no two indices share a word).
  struct Prefetched {
    std::vector<uint16_t> ports;
    std::vector<PortState> states;
    std::vector<int> fds;       // -1: no lock taken.
    std::vector<char> checked;  // 1 once ports[i] was checked.
    std::vector<char> skip;     // 1: its lock was held before.
    std::function<void(size_t)> check;
    bool running = false;  // Open to the workers.
  };
  std::unique_ptr<Prefetched> prefetched_;

  int reserve_below_ = 0;              // set_reserve_below().
  size_t reserve_full_at_ = SIZE_MAX;  // held_.size() at the last refusal.
  size_t released_since_check_ = 0;    // Release()s since CheckMany().
};

// The ports whose locks are held under the names of servers before 0.3.0
// ("@portserver-port-lock-<port>", nothing after the port) in the text of
// /proc/net/unix (proc(5): the last field of a line is the socket's path,
// "@" for the leading NUL of an abstract name). Such a server does not see
// this one's locks, nor this one its: the server warns at start-up. Ports in
// the order listed, each once.
std::vector<uint16_t> LegacyLockedPorts(std::string_view proc_net_unix);

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_LINUX_LINUX_PORT_LOCK_PROBE_H_
