#include "adapters/windows/windows_port_lock_probe.h"

#include "adapters/windows/windows_text.h"

namespace portserver {

constexpr char WindowsPortLockProbe::kDefaultPrefix[];

WindowsPortLockProbe::WindowsPortLockProbe(PortProbe& inner, std::string prefix)
    : inner_(inner), prefix_(std::move(prefix)) {}

ScopedHandle WindowsPortLockProbe::TryLock(uint16_t port,
                                           PortState* state) const {
  std::wstring name = Widen(prefix_ + std::to_string(port));
  SetLastError(ERROR_SUCCESS);
  ScopedHandle lock(CreateMutexW(nullptr, FALSE, name.c_str()));
  // Read at once: a successful CreateMutexW sets ERROR_ALREADY_EXISTS when
  // it opened an existing object rather than creating it.
  DWORD error = GetLastError();
  if (lock.valid() && error != ERROR_ALREADY_EXISTS) return lock;
  // Exists (ours to open, or another user's: access denied) -> another
  // server holds it. An object of another type (an event, a semaphore) of
  // that name: ERROR_INVALID_HANDLE (CreateMutexW's documentation) -> held
  // by some other program, busy like a lock: as kUnknown, which stops a
  // whole request, any local program could deny every request by making
  // one event. Anything else (out of memory or handles) -> unknown.
  *state = lock.valid() || error == ERROR_ACCESS_DENIED ||
                   error == ERROR_ALREADY_EXISTS ||
                   error == ERROR_INVALID_HANDLE
               ? PortState::kBusy
               : PortState::kUnknown;
  return ScopedHandle();
}

PortState WindowsPortLockProbe::Check(uint16_t port) {
  auto it = held_.find(port);
  ScopedHandle taken;
  if (it == held_.end()) {
    PortState state = PortState::kBusy;
    taken = TryLock(port, &state);
    if (!taken.valid()) return state;
  }
  PortState state = inner_.Check(port);
  if (!IsLeasable(state)) {
    held_.erase(port);  // `taken`, if any, closes on return.
    return state;
  }
  if (taken.valid()) held_.emplace(port, std::move(taken));
  return state;
}

bool WindowsPortLockProbe::IsFree(uint16_t port) {
  return IsLeasable(Check(port));
}

bool WindowsPortLockProbe::HeldByAnotherServer(uint16_t port) {
  if (held_.count(port) != 0) return false;
  PortState state = PortState::kUnknown;
  ScopedHandle taken = TryLock(port, &state);  // Closed on return.
  return !taken.valid() && state == PortState::kBusy;
}

bool WindowsPortLockProbe::Reserve(uint16_t port) {
  if (held_.count(port) != 0) return true;
  PortState state = PortState::kBusy;
  ScopedHandle taken = TryLock(port, &state);
  if (!taken.valid()) return false;
  held_.emplace(port, std::move(taken));
  return true;
}

void WindowsPortLockProbe::Release(uint16_t port) { held_.erase(port); }

}  // namespace portserver
