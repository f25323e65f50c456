#include "adapters/windows/windows_process_probe.h"

#include "adapters/windows/windows_error.h"
#include "adapters/windows/windows_user.h"

namespace portserver {

ProcessProbe::Result WindowsProcessProbe::Probe(int64_t pid) {
  Result result;
  if (pid <= 0 || pid > 0xFFFFFFFFll) {
    result.state = State::kGone;
    return result;
  }
  const DWORD id = static_cast<DWORD>(pid);
  bool can_wait = true;
  ScopedHandle process(
      OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, FALSE, id));
  if (!process.valid()) {
    DWORD error = GetLastError();
    if (error == ERROR_ACCESS_DENIED) {
      can_wait = false;
      process.Reset(OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, id));
      if (!process.valid()) error = GetLastError();
    }
    if (!process.valid()) {
      // ERROR_INVALID_PARAMETER: no process has this id.
      result.state =
          error == ERROR_INVALID_PARAMETER ? State::kGone : State::kError;
      return result;
    }
  }
  // Windows ignores the two low bits of a process id (an index into a
  // handle table): OpenProcess(pid + 1) opens process pid. Such an alias
  // names no process; taken as one, it would be an owner of its own (four
  // quotas for one process, leases under pids that no tool shows).
  if (GetProcessId(process.get()) != id) {
    result.state = State::kGone;
    return result;
  }
  if (can_wait) {
    DWORD waited = WaitForSingleObject(process.get(), 0);
    if (waited == WAIT_OBJECT_0) {
      result.state = State::kGone;
      return result;
    }
    if (waited != WAIT_TIMEOUT) return result;  // kError
  } else {
    DWORD code = 0;
    if (!GetExitCodeProcess(process.get(), &code)) return result;
    // A process may exit with 259 itself; then it counts as alive until a
    // probe that may wait on it says otherwise.
    if (code != STILL_ACTIVE) {
      result.state = State::kGone;
      return result;
    }
  }
  FILETIME created, exited, kernel, user;
  if (!GetProcessTimes(process.get(), &created, &exited, &kernel, &user)) {
    return result;  // kError
  }
  result.state = State::kAlive;
  result.incarnation =
      (uint64_t{created.dwHighDateTime} << 32) | created.dwLowDateTime;
  HANDLE raw_token = nullptr;
  if (OpenProcessToken(process.get(), TOKEN_QUERY, &raw_token)) {
    ScopedHandle token(raw_token);
    std::optional<uint32_t> uid = TokenUserId(token.get());
    if (uid.has_value()) {
      result.uid_known = true;
      result.uid = *uid;
    }
  }
  return result;
}

}  // namespace portserver
