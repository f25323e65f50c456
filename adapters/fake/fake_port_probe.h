// FakePortProbe: in-memory ports for tests. Every port is free until
// Occupy()'d by "someone outside the server", or left in TIME_WAIT.
//
// Example:
//   FakePortProbe ports;
//   ports.Occupy(15000);        // Check(15000) == kBusy
//   ports.LingerInTimeWait(15001);  // Check(15001) == kReuseAddrOnly
//   ports.LockElsewhere(15002); // kBusy, and HeldByAnotherServer(15002)
//   ports.FailAll(true);        // every Check() == kBusy
//   ports.RunOutOfDescriptors(true);  // every Check() == kUnknown
//   ports.LimitReservations(2);  // a third reservation fails, as a lock
//                                // under a descriptor limit
//
// Thread-safe.
#ifndef PORTSERVER_ADAPTERS_FAKE_FAKE_PORT_PROBE_H_
#define PORTSERVER_ADAPTERS_FAKE_FAKE_PORT_PROBE_H_

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <set>

#include "domain/port_probe.h"

namespace portserver {

class FakePortProbe final : public PortProbe {
 public:
  void Occupy(uint16_t port);
  // Only a bind with SO_REUSEADDR would take `port` (until Vacate()).
  void LingerInTimeWait(uint16_t port);
  // Another port server holds `port`'s lock (until Vacate()): Check() says
  // kBusy and HeldByAnotherServer() true.
  void LockElsewhere(uint16_t port);
  // Frees the port of Occupy(), LingerInTimeWait() and LockElsewhere().
  void Vacate(uint16_t port);
  void FailAll(bool fail);
  void RunOutOfDescriptors(bool out);
  // At most `most` ports reserved at once, as a lock per port under a
  // descriptor limit: past it, Check() of a leasable port says kUnknown and
  // Reserve() fails, until a Release().
  void LimitReservations(size_t most);
  int probe_count() const;
  // Ports IsFree() said were free and that were not Release()d since: what
  // a reserving probe would hold.
  std::set<uint16_t> reserved() const;

  PortState Check(uint16_t port) override;
  bool IsFree(uint16_t port) override;
  // Fails for an Occupy()'d port, as a lock another server holds.
  bool Reserve(uint16_t port) override;
  void Release(uint16_t port) override;
  // True for a port of LockElsewhere().
  bool HeldByAnotherServer(uint16_t port) override;

 private:
  // REQUIRES: mu_ held. LimitReservations() leaves no room for `port`.
  bool NoRoomFor(uint16_t port) const;

  mutable std::mutex mu_;
  std::set<uint16_t> occupied_;
  std::set<uint16_t> time_wait_;
  std::set<uint16_t> locked_elsewhere_;
  std::set<uint16_t> reserved_;
  bool fail_all_ = false;
  bool out_of_descriptors_ = false;
  size_t most_reserved_ = SIZE_MAX;
  int probe_count_ = 0;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_FAKE_FAKE_PORT_PROBE_H_
