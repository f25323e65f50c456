#include "adapters/windows/windows_port_lock_probe.h"

namespace portserver {

constexpr char WindowsPortLockProbe::kDefaultPrefix[];

WindowsPortLockProbe::WindowsPortLockProbe(PortProbe& inner,
                                           std::string prefix)
    : inner_(inner), prefix_(std::move(prefix)) {}

ScopedHandle WindowsPortLockProbe::TryLock(uint16_t port) const {
  std::wstring name = Widen(prefix_ + std::to_string(port));
  SetLastError(ERROR_SUCCESS);
  ScopedHandle lock(CreateMutexW(nullptr, FALSE, name.c_str()));
  // Read at once: a successful CreateMutexW sets ERROR_ALREADY_EXISTS when
  // it opened an existing object rather than creating it.
  DWORD error = GetLastError();
  if (!lock.valid() || error == ERROR_ALREADY_EXISTS) return ScopedHandle();
  return lock;
}

bool WindowsPortLockProbe::IsFree(uint16_t port) {
  auto it = held_.find(port);
  ScopedHandle taken;
  if (it == held_.end()) {
    taken = TryLock(port);
    if (!taken.valid()) return false;
  }
  if (!inner_.IsFree(port)) {
    held_.erase(port);  // `taken`, if any, closes on return.
    return false;
  }
  if (taken.valid()) held_.emplace(port, std::move(taken));
  return true;
}

void WindowsPortLockProbe::Release(uint16_t port) { held_.erase(port); }

}  // namespace portserver
