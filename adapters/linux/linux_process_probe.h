// LinuxProcessProbe: a ProcessProbe that reads /proc/<pid>/stat. The
// incarnation is the process start time (field 22, clock ticks since boot),
// so a pid that is reused by a new process gets a new incarnation.
//
// Example:
//   LinuxProcessProbe probe;  // or LinuxProcessProbe probe("/fixture/proc");
//   ProcessProbe::Result r = probe.Probe(getpid());  // kAlive
//
// Thread-compatible: Probe() remembers live processes (see below), so calls
// on one object need outside synchronization.
#ifndef PORTSERVER_ADAPTERS_LINUX_LINUX_PROCESS_PROBE_H_
#define PORTSERVER_ADAPTERS_LINUX_LINUX_PROCESS_PROBE_H_

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "domain/process_probe.h"

namespace portserver {

class LinuxProcessProbe final : public ProcessProbe {
  // Thread-compatible.
 public:
  // `proc_root` is where procfs is mounted; tests point it at a fixture
  // directory that holds <pid>/stat files.
  explicit LinuxProcessProbe(std::string proc_root = "/proc");

  // kAlive with the start time as incarnation; kGone if <proc_root>/<pid>
  // does not exist or the process is a zombie ('Z') or dead ('X', 'x'):
  // such a process has closed its ports. But a zombie thread-group leader
  // whose other threads still run (pthread_exit() in main; status: State Z,
  // Threads > 1) is kAlive, as kill(pid, 0) and the reference's
  // psutil.pid_exists() say: its process lives until its last thread ends.
  // kError if the stat file cannot be read or parsed. A thread id that is
  // not its process's main thread is not a process: /proc/<tid>/stat
  // exists for every thread, so Tgid in /proc/<tid>/status is checked
  // (whenever no pidfd could be opened: the kernel gives pidfds to
  // thread-group leaders only) and such an id is kGone with thread_of set,
  // as psutil.pid_exists (the reference) says.
  //
  // A process confirmed alive is remembered with a pidfd (when proc_root is
  // "/proc"): while poll() says that very process has not exited, later
  // probes answer from memory with one syscall instead of reading /proc. Its
  // uid is therefore the one it had when first seen.
  Result Probe(int64_t pid) override;

  // Through NSpid in <proc_root>/<caller>/status: a caller in our pid
  // namespace names our pids (kSame); one in a nested namespace that names
  // itself is translated to `caller`; another process of that namespace is
  // found by scanning <proc_root> for the same namespace and innermost pid.
  // Otherwise the caller itself (kCaller): never an unrelated process.
  Mapping MapNamedPid(int64_t caller, int64_t named) override;

  const std::string& proc_root() const { return proc_root_; }

  // Probes answered from the pidfd cache so far.
  size_t cache_hits_for_test() const { return cache_hits_; }
  ~LinuxProcessProbe() override;

  // Forgets every remembered process but `keep` (the owner of the request
  // at hand, which would need a descriptor again to be probed), closing
  // their pidfds. True if any was forgotten.
  bool ReleaseCaches(int64_t keep) override;

 private:
  // The pids of `pid` from our namespace inward (NSpid); empty if unknown.
  std::vector<int64_t> NamespacePids(int64_t pid) const;
  // The same for the process or task whose /proc directory is `dir`.
  std::vector<int64_t> NamespacePidsIn(const std::string& dir) const;
  // The target of <proc_root>/<pid>/ns/pid, e.g. "pid:[4026531836]".
  std::string PidNamespaceOf(int64_t pid) const;

  // Probe() without the cache.
  // `check_thread`: also read Tgid from status (see Probe).
  Result ReadProc(int64_t pid, bool check_thread = true) const;
  // Tgid from <proc_root>/<pid>/status; 0 if unknown.
  int64_t ThreadGroupOf(int64_t pid) const;
  // True if `pid` is a thread-group leader that exited while other threads
  // of its process still run (/proc/<pid>/status: State Z, Threads > 1).
  bool LeaderExitedThreadsRun(int64_t pid) const;

  struct Known {
    int pidfd;
    Result result;
  };
  // Forgets one remembered process: out of the epoll set, pidfd closed.
  void Forget(std::unordered_map<int64_t, Known>::iterator it);
  // Forgets (and closes the pidfds of) remembered processes that exited, or
  // all of them if epoll_wait() fails: a miss in Probe() calls it, so no
  // pidfd outlives its process for longer than until the next new pid is
  // probed. One epoll_wait() when none exited.
  void ForgetExited();
  // Forgets every remembered process (closing its pidfd): out of
  // descriptors, the cache gives way. False if none was remembered.
  bool ForgetAll();
  // At most 64 pidfds (the processes asking now), and a quarter of the
  // descriptor limit.
  const size_t max_known_;

  const std::string proc_root_;
  const bool use_pidfds_;
  // The remembered pidfds, each with its pid as data: readable ones are
  // processes that exited. -1 if pidfds are not used (then none is kept).
  const int known_epoll_;
  std::unordered_map<int64_t, Known> known_;  // Live processes seen.
  size_t cache_hits_ = 0;
  // Our own pid namespace ("pid:[...]"), read once; empty if unknown (e.g.
  // a fixture proc root).
  std::string own_namespace_;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_LINUX_LINUX_PROCESS_PROBE_H_
