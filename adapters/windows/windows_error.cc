#include "adapters/windows/windows_error.h"

#include "absl/strings/str_cat.h"
#include "adapters/windows/windows_text.h"

namespace portserver {

std::string GetWindowsErrorMessage(DWORD code) {
  wchar_t* buffer = nullptr;
  DWORD size = FormatMessageW(
      FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM |
          FORMAT_MESSAGE_IGNORE_INSERTS,
      nullptr, code, MAKELANGID(LANG_NEUTRAL, SUBLANG_DEFAULT),
      reinterpret_cast<wchar_t*>(&buffer), 0, nullptr);
  std::string message;
  if (size > 0 && buffer != nullptr) {
    message = Narrow(std::wstring_view(buffer, size));
  }
  if (buffer != nullptr) LocalFree(buffer);
  while (!message.empty() &&
         (message.back() == '\n' || message.back() == '\r' ||
          message.back() == ' ' || message.back() == '.')) {
    message.pop_back();
  }
  if (message.empty()) message = absl::StrCat("Windows error ", code);
  return message;
}

std::string WindowsErrorText(absl::string_view context, DWORD code) {
  return absl::StrCat(context, ": ", GetWindowsErrorMessage(code), " (", code,
                      ")");
}

absl::Status WindowsError(absl::string_view context, DWORD code) {
  std::string message = WindowsErrorText(context, code);
  switch (code) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
      return absl::NotFoundError(message);
    case ERROR_ACCESS_DENIED:
    case WSAEACCES:
      return absl::PermissionDeniedError(message);
    case ERROR_ALREADY_EXISTS:
    case ERROR_FILE_EXISTS:
    case ERROR_PIPE_BUSY:
    case WSAEADDRINUSE:
      return absl::AlreadyExistsError(message);
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION:
      return absl::UnavailableError(message);
    case ERROR_INVALID_PARAMETER:
    case ERROR_INVALID_NAME:
    case ERROR_BAD_PATHNAME:
    case ERROR_FILENAME_EXCED_RANGE:
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

int EnsureWinsock() {
  static const int error = [] {
    WSADATA data;
    return WSAStartup(MAKEWORD(2, 2), &data);
  }();
  return error;
}

}  // namespace portserver
