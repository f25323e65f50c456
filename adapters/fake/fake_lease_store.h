// FakeLeaseStore: the journal in memory, with a switch to make writes fail.
//
// Example:
//   FakeLeaseStore store;
//   service.AttachStore(&store);
//   ParseJournal(store.contents());   // what a restart would read
//
// Thread-safe.
#ifndef PORTSERVER_ADAPTERS_FAKE_FAKE_LEASE_STORE_H_
#define PORTSERVER_ADAPTERS_FAKE_FAKE_LEASE_STORE_H_

#include <mutex>
#include <string>

#include "domain/lease_store.h"

namespace portserver {

class FakeLeaseStore final : public LeaseStore {
 public:
  std::string contents() const;
  int replaces() const;
  // While set, Append and Replace fail and change nothing.
  void FailWrites(bool fail);
  // As if someone deleted the file: contents gone, Intact() false until the
  // next successful Replace().
  void Delete();
  bool removed() const;  // Remove() was called.

  StoreResult Append(std::string_view record) override;
  StoreResult Replace(std::string_view contents) override;
  bool Intact() override;
  bool Remove() override;

 private:
  mutable std::mutex mu_;
  std::string contents_;
  int replaces_ = 0;
  bool fail_ = false;
  bool deleted_ = false;
  bool removed_ = false;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_FAKE_FAKE_LEASE_STORE_H_
