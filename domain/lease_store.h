// LeaseStore: where the lease journal (domain/lease_journal.h) is kept, so
// that leases survive a restart. A file on Linux; memory in tests.
//
// Example:
//   store.Append(JournalLease(port, owner));     // as each lease is granted
//   store.Replace(JournalSnapshot(leases));      // compaction
//
// Thread-compatible: the domain calls it under its own lock.
#ifndef PORTSERVER_DOMAIN_LEASE_STORE_H_
#define PORTSERVER_DOMAIN_LEASE_STORE_H_

#include <string>
#include <string_view>

namespace portserver {

struct StoreResult {
  bool ok = true;
  std::string error;  // Set when !ok.
};

class LeaseStore {
 public:
  LeaseStore() = default;
  LeaseStore(const LeaseStore&) = delete;
  LeaseStore& operator=(const LeaseStore&) = delete;
  virtual ~LeaseStore() = default;

  // Appends `record` (whole lines). After a crash of the server the record
  // is either there whole or, at worst, torn at the end of the store.
  virtual StoreResult Append(std::string_view record) = 0;

  // Replaces the whole store with `contents`: after a crash, the store holds
  // either the old contents or the new, never a mix.
  virtual StoreResult Replace(std::string_view contents) = 0;

  // False if the store no longer holds what was written to it (a file
  // deleted or replaced by someone else while we run); the caller then
  // Replace()s it with a snapshot of every live lease. Called on every
  // request: must be cheap (a stat or two) and never block for long.
  virtual bool Intact() { return true; }

  // Removes the store and whatever it keeps beside it (a lock): called at a
  // clean stop with no live lease to keep. Best effort; the object must not
  // be used afterwards. False if this store keeps its files (the default:
  // the Windows journal stays), true if it removed them.
  virtual bool Remove() { return false; }

  // Where the store is now (a file's path), for messages; "" if it does not
  // say. May change while serving: a default journal whose directory went
  // with its parent moves where a restart looks (LinuxLeaseStore).
  virtual std::string Location() const { return ""; }
};

}  // namespace portserver

#endif  // PORTSERVER_DOMAIN_LEASE_STORE_H_
