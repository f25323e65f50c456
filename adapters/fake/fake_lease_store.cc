#include "adapters/fake/fake_lease_store.h"

namespace portserver {

std::string FakeLeaseStore::contents() const {
  std::lock_guard<std::mutex> lock(mu_);
  return contents_;
}

int FakeLeaseStore::replaces() const {
  std::lock_guard<std::mutex> lock(mu_);
  return replaces_;
}

void FakeLeaseStore::FailWrites(bool fail) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_ = fail;
}

StoreResult FakeLeaseStore::Append(std::string_view record) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fail_) return StoreResult{false, "disk full (fake)"};
  if (deleted_) return {};  // Into an unlinked file: lost.
  contents_.append(record);
  return {};
}

StoreResult FakeLeaseStore::Replace(std::string_view contents) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fail_) return StoreResult{false, "disk full (fake)"};
  contents_.assign(contents);
  ++replaces_;
  deleted_ = false;
  return {};
}

void FakeLeaseStore::Delete() {
  std::lock_guard<std::mutex> lock(mu_);
  contents_.clear();
  deleted_ = true;
}

bool FakeLeaseStore::removed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return removed_;
}

bool FakeLeaseStore::Intact() {
  std::lock_guard<std::mutex> lock(mu_);
  return !deleted_;
}

bool FakeLeaseStore::Remove() {
  std::lock_guard<std::mutex> lock(mu_);
  contents_.clear();
  removed_ = true;
  return true;
}

}  // namespace portserver
