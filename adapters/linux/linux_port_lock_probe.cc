#include "adapters/linux/linux_port_lock_probe.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

namespace portserver {
namespace {

// Fewer ports than this are checked on the caller's thread alone: waking a
// worker costs about as much as a port.
constexpr size_t kMinPortsForWorkers = 4;

}  // namespace

// A fixed set of threads that, with the caller, run fn(i) for every i of a
// range, each index once, and return when all are done.
//
// Two things make the workers run beside the caller rather than instead of
// it (BENCHMARKS.md "Several ports in one request"):
// - The workers are kept off the CPU the caller is on (their affinity is
//   the process's CPUs but that one). Left to the scheduler, a woken worker
//   was placed on the waker's own CPU on the 2-CPU machine measured, the
//   other one idle: it preempted the caller and checked all 20 ports of a
//   request while the caller waited (perf sched timehist), so the ports
//   were checked one after the other.
// - A worker joins a range only while it is open. The caller closes it once
//   it has run out of indices and then waits only for the workers that
//   joined, each at most one port from done: a worker that has not yet had a
//   CPU (a busy one) no longer holds up the reply.
class LinuxPortLockProbe::Workers {
 public:
  explicit Workers(size_t count) {
    if (sched_getaffinity(0, sizeof(allowed_), &allowed_) != 0) {
      CPU_ZERO(&allowed_);
    }
    // Signals are for the server's own signal thread (sigwait): a
    // process-directed SIGTERM must never land on a worker and kill the
    // process before its clean stop. A thread starts with its creator's
    // mask, so the workers are created with every signal but the faults
    // blocked (blocking them in the worker itself would leave a window
    // before it first runs).
    // Faults stay unblocked: POSIX leaves a blocked SIGSEGV, SIGBUS, SIGFPE
    // or SIGILL undefined, and Linux then resets its handler and kills the
    // process, so a sanitizer's or crash handler's report would be lost.
    sigset_t all, before;
    sigfillset(&all);
    for (int fault : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS}) {
      sigdelset(&all, fault);
    }
    pthread_sigmask(SIG_BLOCK, &all, &before);
    for (size_t i = 0; i < count; ++i)
      threads_.emplace_back([this] { Loop(); });
    pthread_sigmask(SIG_SETMASK, &before, nullptr);
    // Until a new thread first runs, glibc keeps every signal blocked in it
    // (faults too: pthread_create blocks all around clone(2) and the thread
    // restores its mask when it starts). Waiting here for each worker to
    // have started means that once the server serves, no thread of it
    // blocks a fault, however late the scheduler runs a worker.
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [&] { return started_ == threads_.size(); });
  }
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;
  ~Workers() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& thread : threads_) thread.join();
  }

  // Runs fn(0) ... fn(n - 1) on the caller and the workers. One range at
  // a time (the probe is thread-compatible).
  void ForEach(size_t n, const std::function<void(size_t)>& fn) {
    Start(n, fn);
    Finish();
  }

  // Opens the range fn(0) ... fn(n - 1) to the workers and returns; `fn`
  // lives until Finish() or Abandon().
  void Start(size_t n, const std::function<void(size_t)>& fn) {
    PlaceWorkers();
    {
      std::lock_guard<std::mutex> lock(mu_);
      fn_ = &fn;
      n_ = n;
      next_.store(0);
      open_ = true;
      ++generation_;
    }
    wake_.notify_all();
  }

  // Runs what the workers have not taken on the caller, then waits for the
  // workers that joined.
  void Finish() {
    Run(*fn_, n_);
    Close();
  }

  // No index is taken any more: waits only for those the workers run.
  void Abandon() {
    next_.store(n_);
    Close();
  }

 private:
  void Close() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = false;  // Every index is taken: no worker joins any more.
    }
    // Each worker that joined is at most one port from done (about 30 us):
    // the caller waits for it awake, for a while, rather than asleep. Woken
    // from done_, it resumed 18 us (median) after the last worker was done
    // on the machine measured, a virtual one (BENCHMARKS.md "Several ports
    // in one request"); awake, 2 to 5 us. It has nothing else to do, and
    // the workers run on other CPUs.
    const auto give_up = std::chrono::steady_clock::now() + kAwakeAtMost;
    while (running_.load(std::memory_order_acquire) != 0 &&
           std::chrono::steady_clock::now() < give_up) {
      CpuRelax();
    }
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [this] { return joined_ == 0; });
    fn_ = nullptr;
  }

  // A hint to the CPU inside a wait loop (x86 PAUSE, Arm YIELD).
  static void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }

  void Run(const std::function<void(size_t)>& fn, size_t n) {
    for (size_t i = next_.fetch_add(1); i < n; i = next_.fetch_add(1)) fn(i);
  }

  // Keeps the workers off the caller's CPU: their affinity is the process's
  // CPUs but that one, and the scheduler places them among the others. Only
  // when the caller has moved to another CPU since the last call, so
  // usually no system call at all. A CPU set that changed since start-up
  // (cpuset(7)) is read again; if that fails too, a worker may run on any
  // of the process's CPUs.
  void PlaceWorkers() {
    const int caller = sched_getcpu();
    if (caller < 0 || caller == placed_for_ || CPU_COUNT(&allowed_) < 2) {
      return;
    }
    placed_for_ = caller;
    for (int attempt = 0; attempt < 2; ++attempt) {
      cpu_set_t others = allowed_;
      CPU_CLR(caller, &others);
      bool placed = CPU_COUNT(&others) > 0;
      for (std::thread& thread : threads_) {
        placed = placed && pthread_setaffinity_np(thread.native_handle(),
                                                  sizeof(others), &others) == 0;
      }
      if (placed) return;
      if (sched_getaffinity(0, sizeof(allowed_), &allowed_) != 0) break;
    }
    for (std::thread& thread : threads_) {
      pthread_setaffinity_np(thread.native_handle(), sizeof(allowed_),
                             &allowed_);
    }
    placed_for_ = -1;  // Try again next time.
  }

  void Loop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++started_;
    }
    done_.notify_one();
    uint64_t seen = 0;
    while (true) {
      const std::function<void(size_t)>* fn;
      size_t n;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        if (!open_) continue;  // Done without this worker.
        ++joined_;
        running_.fetch_add(1, std::memory_order_relaxed);
        fn = fn_;
        n = n_;
      }
      Run(*fn, n);
      bool last;
      {
        // Under mu_, so that the caller cannot miss it between testing
        // joined_ and sleeping on done_.
        std::lock_guard<std::mutex> lock(mu_);
        last = --joined_ == 0 && !open_;
        running_.fetch_sub(1, std::memory_order_release);
      }
      // Outside mu_: the caller wakes to a free mutex, not to wait for this
      // thread to let it go (a second wake-up).
      if (last) done_.notify_one();
    }
  }

  cpu_set_t allowed_;    // The process's CPUs (sched_getaffinity).
  int placed_for_ = -1;  // The caller's CPU the workers are kept off.
  std::mutex mu_;
  std::condition_variable wake_;  // A new range, or stop.
  // joined_ reached 0 after the range closed, or a worker started.
  std::condition_variable done_;
  size_t started_ = 0;  // Workers that have run (the constructor waits).

  const std::function<void(size_t)>* fn_ = nullptr;
  size_t n_ = 0;
  std::atomic<size_t> next_{0};     // The next index to run.
  bool open_ = false;               // Workers may still join this range.
  size_t joined_ = 0;               // Workers running this range.
  std::atomic<size_t> running_{0};  // joined_, for Close() to read awake.
  static constexpr std::chrono::microseconds kAwakeAtMost{200};
  uint64_t generation_ = 0;  // Ranges started.
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

constexpr char LinuxPortLockProbe::kDefaultPrefix[];
constexpr char LinuxPortLockProbe::kSpreadAlphabet[];

std::string LinuxPortLockProbe::LockName(std::string_view prefix,
                                         uint16_t port) {
  constexpr size_t kLetters = sizeof(kSpreadAlphabet) - 1;  // 62
  std::string name(prefix);
  name += std::to_string(port);
  name += '-';
  name += kSpreadAlphabet[port % kLetters];
  name += kSpreadAlphabet[(port / kLetters) % kLetters];
  return name;
}

std::vector<uint16_t> LegacyLockedPorts(std::string_view proc_net_unix) {
  constexpr std::string_view kLegacy = "@portserver-port-lock-";
  std::vector<uint16_t> ports;
  std::vector<bool> seen(65536, false);
  size_t start = 0;
  while (start < proc_net_unix.size()) {
    size_t end = proc_net_unix.find('\n', start);
    if (end == std::string_view::npos) end = proc_net_unix.size();
    std::string_view line = proc_net_unix.substr(start, end - start);
    start = end + 1;
    size_t space = line.find_last_of(' ');
    std::string_view path =
        space == std::string_view::npos ? line : line.substr(space + 1);
    if (path.substr(0, kLegacy.size()) != kLegacy) continue;
    std::string_view digits = path.substr(kLegacy.size());
    if (digits.empty() || digits.size() > 5) continue;
    uint32_t port = 0;
    bool all_digits = true;
    for (char c : digits) {
      if (c < '0' || c > '9') all_digits = false;
      port = port * 10 + static_cast<uint32_t>(c - '0');
    }
    if (!all_digits || port == 0 || port > 65535 || seen[port]) continue;
    seen[port] = true;
    ports.push_back(static_cast<uint16_t>(port));
  }
  return ports;
}

LinuxPortLockProbe::LinuxPortLockProbe(PortProbe& inner, std::string prefix,
                                       size_t threads)
    : inner_(inner),
      prefix_(std::move(prefix)),
      workers_(threads > 1 ? std::make_unique<Workers>(threads - 1) : nullptr) {
}

LinuxPortLockProbe::~LinuxPortLockProbe() {
  CancelPrefetch();
  for (const auto& [port, fd] : held_) close(fd);
}

bool LinuxPortLockProbe::UseKernelBatches(std::string* why) {
  CancelPrefetch();
  // A name of its own for the batch's trial of its operations: random, as
  // processes of other pid namespaces may share this network namespace
  // (and its abstract names) with the same pid.
  std::random_device random;
  const std::string trial = prefix_ + "batch-trial-" +
                            std::to_string(random()) + "-" +
                            std::to_string(random());
  batch_ = LinuxPortBatch::Create(trial, why);
  worker_batch_.reset();
  if (batch_ != nullptr && workers_ != nullptr) {
    std::string ignored;
    worker_batch_ = LinuxPortBatch::Create(trial, &ignored);
  }
  return batch_ != nullptr;
}

uint64_t LinuxPortLockProbe::kernel_submissions() const {
  return (batch_ == nullptr ? 0 : batch_->submissions()) +
         (worker_batch_ == nullptr ? 0 : worker_batch_->submissions());
}

void LinuxPortLockProbe::CheckByBatch(LinuxPortBatch& batch,
                                      const std::vector<uint16_t>& ports,
                                      const std::vector<size_t>& todo,
                                      std::vector<int>& fds,
                                      std::vector<PortState>& states) const {
  std::vector<LinuxPortBatch::Item> items(todo.size());
  for (size_t k = 0; k < todo.size(); ++k) {
    const size_t i = todo[k];
    items[k].port = ports[i];
    if (fds[i] < 0) items[k].lock_name = LockName(prefix_, ports[i]);
  }
  const std::vector<LinuxPortBatch::Outcome> out = batch.Run(items);
  for (size_t k = 0; k < todo.size(); ++k) {
    const size_t i = todo[k];
    const LinuxPortBatch::Outcome& o = out[k];
    if (!o.ran) {  // The ring broke: as without batches.
      CheckWithSystemCalls(ports[i], &fds[i], &states[i]);
      continue;
    }
    if (fds[i] < 0) {  // Its lock was asked for, as TryLock() takes it.
      if (o.lock_fd < 0) {
        states[i] =
            o.lock_held_elsewhere ? PortState::kBusy : PortState::kUnknown;
        continue;
      }
      fds[i] = o.lock_fd;
    }
    // Bound on TCP and UDP without SO_REUSEADDR: what inner_ calls kFree.
    // Anything else is inner_'s to tell (refused binds, TIME_WAIT, hosts
    // without IPv6), with the lock held as for any port.
    states[i] = o.free ? PortState::kFree : inner_.Check(ports[i]);
  }
}

void LinuxPortLockProbe::Prefetch(const std::vector<uint16_t>& ports) {
  CancelPrefetch();
  if (kernel_batches()) return;  // The batch is faster than the overlap.
  if (workers_ == nullptr || ports.size() < kMinPortsForWorkers) return;
  auto p = std::make_unique<Prefetched>();
  const size_t n = ports.size();
  p->ports = ports;
  p->states.assign(n, PortState::kUnknown);
  p->fds.assign(n, -1);
  p->checked.assign(n, 0);
  p->skip.assign(n, 0);
  for (size_t i = 0; i < n; ++i) p->skip[i] = held_.count(ports[i]) != 0;
  Prefetched* raw = p.get();
  p->check = [this, raw](size_t i) {
    if (raw->skip[i]) return;
    CheckWithSystemCalls(raw->ports[i], &raw->fds[i], &raw->states[i]);
    raw->checked[i] = 1;
  };
  p->running = true;
  prefetched_ = std::move(p);
  workers_->Start(n, prefetched_->check);
}

void LinuxPortLockProbe::FinishPrefetch() {
  if (prefetched_ != nullptr && prefetched_->running) {
    workers_->Finish();
    prefetched_->running = false;
  }
}

void LinuxPortLockProbe::CancelPrefetch() {
  if (prefetched_ == nullptr) return;
  if (prefetched_->running) workers_->Abandon();
  for (int fd : prefetched_->fds) {
    if (fd >= 0) close(fd);
  }
  prefetched_.reset();
}

int LinuxPortLockProbe::TryLock(uint16_t port, PortState* state) const {
  *state = PortState::kUnknown;
  std::string name = LockName(prefix_, port);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (name.size() + 1 > sizeof(addr.sun_path)) return -1;
  addr.sun_path[0] = '\0';  // Abstract namespace.
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  socklen_t length =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), length) != 0) {
    if (errno == EADDRINUSE) *state = PortState::kBusy;
    close(fd);
    return -1;
  }
  return fd;
}

void LinuxPortLockProbe::CheckWithSystemCalls(uint16_t port, int* fd,
                                              PortState* state) const {
  if (*fd < 0 && (*fd = TryLock(port, state)) < 0) return;
  *state = inner_.Check(port);
}

PortState LinuxPortLockProbe::Check(uint16_t port) {
  return CheckMany({port}).front();  // One port: on this thread.
}

std::vector<PortState> LinuxPortLockProbe::CheckMany(
    const std::vector<uint16_t>& ports) {
  released_since_check_ = 0;  // A grant may take them now.
  const size_t n = ports.size();
  std::vector<PortState> states(n, PortState::kFree);
  std::vector<int> fds(n, -1);
  std::vector<bool> held_before(n, false);
  // The answers of a Prefetch() of these ports, checked while the caller
  // did other work (its locks held since); the locks of ports not asked
  // about now are given back.
  std::vector<size_t> todo;  // Indices still to check.
  todo.reserve(n);
  if (prefetched_ != nullptr) {
    FinishPrefetch();
    Prefetched& p = *prefetched_;
    std::unordered_map<uint16_t, size_t> at;
    for (size_t j = 0; j < p.ports.size(); ++j) {
      // "Cannot tell" is not kept: it stops a whole request, and the
      // descriptors the prefetch lacked may be free again now (a reviewer:
      // the owner's checks competed for them).
      if (p.checked[j] && p.states[j] != PortState::kUnknown) {
        at[p.ports[j]] = j;
      }
    }
    for (size_t i = 0; i < n; ++i) {
      auto it = at.find(ports[i]);
      if (it == at.end()) {
        todo.push_back(i);
        continue;
      }
      states[i] = p.states[it->second];
      fds[i] = p.fds[it->second];
      p.fds[it->second] = -1;  // Taken: CancelPrefetch() leaves it.
    }
    CancelPrefetch();
  } else {
    for (size_t i = 0; i < n; ++i) todo.push_back(i);
  }
  for (size_t i : todo) {
    auto it = held_.find(ports[i]);
    if (it == held_.end()) continue;
    fds[i] = it->second;
    held_before[i] = true;
  }
  // Run on several threads: index i touches only fds[i] and states[i]
  // (held_before, a std::vector<bool> whose elements share words, is not
  // touched), TryLock() and inner_.Check() keep no state of this object.
  std::function<void(size_t)> check = [&](size_t k) {
    const size_t i = todo[k];
    CheckWithSystemCalls(ports[i], &fds[i], &states[i]);
  };
  if (kernel_batches() && worker_batch_ != nullptr && worker_batch_->usable() &&
      todo.size() >= 2 * kMinPortsForWorkers) {
    // Half on a worker, with a ring of its own; half on the caller.
    const size_t half = todo.size() / 2;
    std::vector<size_t> theirs(todo.begin(), todo.begin() + half);
    std::vector<size_t> ours(todo.begin() + half, todo.end());
    std::function<void(size_t)> run = [&](size_t) {
      CheckByBatch(*worker_batch_, ports, theirs, fds, states);
    };
    workers_->Start(1, run);
    CheckByBatch(*batch_, ports, ours, fds, states);
    workers_->Finish();
  } else if (kernel_batches() && !todo.empty()) {
    CheckByBatch(*batch_, ports, todo, fds, states);
  } else if (workers_ != nullptr && todo.size() >= kMinPortsForWorkers) {
    workers_->ForEach(todo.size(), check);
  } else {
    for (size_t k = 0; k < todo.size(); ++k) check(k);
  }
  for (size_t i = 0; i < n; ++i) {
    if (fds[i] < 0) continue;
    if (IsLeasable(states[i])) {
      held_[ports[i]] = fds[i];
    } else if (held_before[i]) {
      Release(ports[i]);
    } else {
      close(fds[i]);
    }
  }
  return states;
}

bool LinuxPortLockProbe::IsFree(uint16_t port) {
  return IsLeasable(Check(port));
}

bool LinuxPortLockProbe::HeldByAnotherServer(uint16_t port) {
  CancelPrefetch();  // Its locks are this server's, not another's.
  if (held_.count(port) != 0) return false;
  PortState state;
  int fd = TryLock(port, &state);
  if (fd >= 0) close(fd);
  return fd < 0 && state == PortState::kBusy;
}

bool LinuxPortLockProbe::Reserve(uint16_t port) {
  CancelPrefetch();
  if (held_.count(port) != 0) return true;
  // Full, and no lock given back since: no system call (the server retries
  // such leases every 20 ms).
  if (held_.size() >= reserve_full_at_) return false;
  PortState state;
  int fd = TryLock(port, &state);
  if (fd < 0) return false;
  if (reserve_below_ > 0 && fd >= reserve_below_ &&
      released_since_check_ == 0) {
    close(fd);
    reserve_full_at_ = held_.size();
    return false;
  }
  // In place of a lock just given back, wherever its descriptor was.
  if (released_since_check_ > 0) --released_since_check_;
  held_[port] = fd;
  return true;
}

void LinuxPortLockProbe::set_reserve_below(int fd_limit) {
  reserve_below_ = fd_limit;
  reserve_full_at_ = SIZE_MAX;
}

void LinuxPortLockProbe::Release(uint16_t port) {
  CancelPrefetch();
  auto it = held_.find(port);
  if (it == held_.end()) return;
  close(it->second);
  held_.erase(it);
  reserve_full_at_ = SIZE_MAX;  // A descriptor is free again.
  ++released_since_check_;
}

}  // namespace portserver
