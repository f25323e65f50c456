// FakePortProbe: in-memory ports for tests. Every port is free until
// Occupy()'d by "someone outside the server".
//
// Example:
//   FakePortProbe ports;
//   ports.Occupy(15000);        // IsFree(15000) == false
//   ports.FailAll(true);        // every IsFree() == false
//
// Thread-safe.
#ifndef PORTSERVER_ADAPTERS_FAKE_FAKE_PORT_PROBE_H_
#define PORTSERVER_ADAPTERS_FAKE_FAKE_PORT_PROBE_H_

#include <cstdint>
#include <mutex>
#include <set>

#include "domain/port_probe.h"

namespace portserver {

class FakePortProbe final : public PortProbe {
 public:
  void Occupy(uint16_t port);
  void Vacate(uint16_t port);
  void FailAll(bool fail);
  int probe_count() const;
  // Ports IsFree() said were free and that were not Release()d since: what
  // a reserving probe would hold.
  std::set<uint16_t> reserved() const;

  bool IsFree(uint16_t port) override;
  void Release(uint16_t port) override;

 private:
  mutable std::mutex mu_;
  std::set<uint16_t> occupied_;
  std::set<uint16_t> reserved_;
  bool fail_all_ = false;
  int probe_count_ = 0;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_FAKE_FAKE_PORT_PROBE_H_
