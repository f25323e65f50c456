// ProcessInfo: what the extended protocol reports about an owner beyond
// "alive or not": its command line, its start time as a wall-clock time, and
// whether a caller may see another user's command line (as /proc would let
// it). Optional: a service without one records no command lines.
//
// Example:
//   std::string cmd = info.CommandLine(pid, kMaxCommandLineBytes);
//   if (info.AccessFor(caller) == ProcessInfo::Access::kAll) Show(cmd);
//
// Thread-compatible: the domain calls it under its own lock.
#ifndef PORTSERVER_DOMAIN_PROCESS_INFO_H_
#define PORTSERVER_DOMAIN_PROCESS_INFO_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "domain/transport.h"

namespace portserver {

class ProcessInfo {
 public:
  // Whose command lines a caller may see.
  enum class Access {
    kAll,      // Everyone's (root, or /proc shows every process to it).
    kOwnOnly,  // Only its own user's (hidepid=1/2 on Linux).
    kNone,     // None: the caller is not known.
  };

  ProcessInfo() = default;
  ProcessInfo(const ProcessInfo&) = delete;
  ProcessInfo& operator=(const ProcessInfo&) = delete;
  virtual ~ProcessInfo() = default;

  // The command line of `pid` (> 0), arguments joined by single spaces, cut
  // to at most `max_bytes` bytes (the cut marked with "..."). "" if it
  // cannot be read (gone, a kernel thread, no permission). Never blocks for
  // long.
  virtual std::string CommandLine(int64_t pid, size_t max_bytes) = 0;

  // The wall-clock start time, in ms since the Unix epoch, of the process
  // whose ProcessProbe incarnation is `incarnation`; -1 if unknown.
  virtual int64_t StartTimeUnixMs(uint64_t incarnation) = 0;

  // Whose command lines `caller` may see. On Linux this follows the
  // hidepid= and gid= options of /proc (proc(5)).
  virtual Access AccessFor(const PeerCredentials& caller) = 0;

  // Now, in ms since the Unix epoch: when a lease is taken.
  virtual int64_t NowUnixMs() = 0;
};

}  // namespace portserver

#endif  // PORTSERVER_DOMAIN_PROCESS_INFO_H_
