#include "adapters/windows/windows_process_info.h"

#include <winternl.h>

#include <algorithm>
#include <chrono>

#include "adapters/windows/windows_error.h"
#include "adapters/windows/windows_text.h"
#include "domain/control_protocol.h"

namespace portserver {
namespace {

// FILETIME of 1970-01-01 00:00:00 UTC, in 100 ns units since 1601.
constexpr uint64_t kUnixEpochFileTime = 116444736000000000ULL;

using QueryInformationProcess = NTSTATUS(NTAPI*)(HANDLE, PROCESSINFOCLASS,
                                                 PVOID, ULONG, PULONG);

// NtQueryInformationProcess from ntdll (always loaded), found once.
QueryInformationProcess NtQuery() {
  static const QueryInformationProcess query =
      reinterpret_cast<QueryInformationProcess>(
          reinterpret_cast<void*>(GetProcAddress(GetModuleHandleW(L"ntdll.dll"),
                                                 "NtQueryInformationProcess")));
  return query;
}

// Reads exactly `size` bytes at `address` of `process` into `out`.
bool ReadExactly(HANDLE process, const void* address, void* out, size_t size) {
  SIZE_T read = 0;
  return ReadProcessMemory(process, address, out, size, &read) && read == size;
}

}  // namespace

std::string WindowsProcessInfo::CommandLine(int64_t pid, size_t max_bytes) {
  QueryInformationProcess query = NtQuery();
  if (pid <= 0 || pid > 0xffffffffLL || query == nullptr) return "";
  ScopedHandle process(OpenProcess(PROCESS_QUERY_INFORMATION | PROCESS_VM_READ,
                                   FALSE, static_cast<DWORD>(pid)));
  if (!process.valid()) return "";
  PROCESS_BASIC_INFORMATION basic{};
  ULONG length = 0;
  if (query(process.get(), ProcessBasicInformation, &basic, sizeof(basic),
            &length) != 0 ||
      basic.PebBaseAddress == nullptr) {
    return "";
  }
  PEB peb{};
  RTL_USER_PROCESS_PARAMETERS parameters{};
  if (!ReadExactly(process.get(), basic.PebBaseAddress, &peb, sizeof(peb)) ||
      peb.ProcessParameters == nullptr ||
      !ReadExactly(process.get(), peb.ProcessParameters, &parameters,
                   sizeof(parameters))) {
    return "";
  }
  // Each UTF-16 unit is at least one UTF-8 byte: max_bytes + 1 units tell
  // whether the text must be cut.
  const size_t units =
      std::min<size_t>(parameters.CommandLine.Length / 2, max_bytes + 1);
  std::wstring wide(units, L'\0');
  if (units == 0 || !ReadExactly(process.get(), parameters.CommandLine.Buffer,
                                 &wide[0], units * 2)) {
    return "";
  }
  // A unit cut from its surrogate pair becomes U+FFFD: still UTF-8.
  return DisplayCommandLine(Narrow(wide), max_bytes);
}

int64_t WindowsProcessInfo::StartTimeUnixMs(uint64_t incarnation) {
  if (incarnation < kUnixEpochFileTime) return -1;
  return static_cast<int64_t>((incarnation - kUnixEpochFileTime) / 10000);
}

ProcessInfo::Access WindowsProcessInfo::AccessFor(
    const PeerCredentials& caller) {
  if (!caller.known) return Access::kNone;
  return caller.uid == 0 ? Access::kAll : Access::kOwnOnly;
}

int64_t WindowsProcessInfo::NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace portserver
