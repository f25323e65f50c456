// Win32 error codes and handles at the edge of the Windows adapters: one
// function that turns a GetLastError() code into an absl::Status with the
// most specific code, and move-only owners for a HANDLE and a SOCKET (the
// Windows counterparts of the Linux adapters' ErrnoError and ScopedFd).
//
// Example:
//   ScopedHandle file(CreateFileW(path, ...));
//   if (!file.valid()) {
//     DWORD error = GetLastError();  // Read once, right after the call.
//     return WindowsError("cannot open journal", error);
//   }
//
// Thread-safety: the functions are thread-safe; an owner object is
// thread-compatible.
#ifndef PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_ERROR_H_
#define PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_ERROR_H_

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
// Winsock 2 must come before <windows.h>, which would otherwise pull in
// the old winsock.h: keep clang-format from sorting them.
// clang-format off
#include <winsock2.h>
#include <windows.h>
// clang-format on

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace portserver {

// The system's text for `code` (FormatMessageW, as UTF-8, no trailing
// newline), e.g.
// "All pipe instances are busy." Never empty: unknown codes read
// "Windows error <code>".
std::string GetWindowsErrorMessage(DWORD code);

// "<context>: <message> (<code>)" as a status: NotFound for
// ERROR_FILE_NOT_FOUND / ERROR_PATH_NOT_FOUND, PermissionDenied for
// ERROR_ACCESS_DENIED, AlreadyExists for ERROR_ALREADY_EXISTS /
// ERROR_FILE_EXISTS / ERROR_PIPE_BUSY, Unavailable for sharing and lock
// violations, Internal otherwise. Also takes Winsock codes (WSAGetLastError).
absl::Status WindowsError(absl::string_view context, DWORD code);

// The same text as WindowsError's message, for results that carry a string.
std::string WindowsErrorText(absl::string_view context, DWORD code);

// Owns a HANDLE; closes it on destruction. Both nullptr and
// INVALID_HANDLE_VALUE mean "none" (Win32 uses both).
class ScopedHandle final {
 public:
  ScopedHandle() = default;
  explicit ScopedHandle(HANDLE handle) : handle_(handle) {}
  ScopedHandle(ScopedHandle&& other) noexcept : handle_(other.Release()) {}
  ScopedHandle& operator=(ScopedHandle&& other) noexcept {
    if (this != &other) Reset(other.Release());
    return *this;
  }
  ScopedHandle(const ScopedHandle&) = delete;
  ScopedHandle& operator=(const ScopedHandle&) = delete;
  ~ScopedHandle() { Reset(); }

  bool valid() const {
    return handle_ != nullptr && handle_ != INVALID_HANDLE_VALUE;
  }
  HANDLE get() const { return handle_; }
  // Gives up ownership.
  HANDLE Release() { return std::exchange(handle_, nullptr); }
  void Reset(HANDLE handle = nullptr) {
    if (valid()) CloseHandle(handle_);
    handle_ = handle;
  }

 private:
  HANDLE handle_ = nullptr;
};

// Owns a SOCKET (not a HANDLE: closed with closesocket).
class ScopedSocket final {
 public:
  ScopedSocket() = default;
  explicit ScopedSocket(SOCKET socket) : socket_(socket) {}
  ScopedSocket(ScopedSocket&& other) noexcept : socket_(other.Release()) {}
  ScopedSocket& operator=(ScopedSocket&& other) noexcept {
    if (this != &other) Reset(other.Release());
    return *this;
  }
  ScopedSocket(const ScopedSocket&) = delete;
  ScopedSocket& operator=(const ScopedSocket&) = delete;
  ~ScopedSocket() { Reset(); }

  bool valid() const { return socket_ != INVALID_SOCKET; }
  SOCKET get() const { return socket_; }
  SOCKET Release() { return std::exchange(socket_, INVALID_SOCKET); }
  void Reset(SOCKET socket = INVALID_SOCKET) {
    if (valid()) closesocket(socket_);
    socket_ = socket;
  }

 private:
  SOCKET socket_ = INVALID_SOCKET;
};

// Initializes Winsock 2.2 once per process (WSAStartup; never cleaned up, as
// sockets may be used until exit). Returns the WSAStartup error, 0 if ready.
int EnsureWinsock();

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_ERROR_H_
