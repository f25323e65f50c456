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
  contents_.append(record);
  return {};
}

StoreResult FakeLeaseStore::Replace(std::string_view contents) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fail_) return StoreResult{false, "disk full (fake)"};
  contents_.assign(contents);
  ++replaces_;
  return {};
}

}  // namespace portserver
