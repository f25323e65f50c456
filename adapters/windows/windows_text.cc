#include "adapters/windows/windows_text.h"

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
// clang-format off
#include <windows.h>
#include <shellapi.h>
// clang-format on

#include <cstdlib>
#include <cwchar>

namespace portserver {

std::wstring Widen(std::string_view text) {
  if (text.empty()) return std::wstring();
  const int length = static_cast<int>(text.size());
  int size = MultiByteToWideChar(CP_UTF8, 0, text.data(), length, nullptr, 0);
  if (size <= 0) return std::wstring();
  std::wstring wide(static_cast<size_t>(size), L'\0');
  MultiByteToWideChar(CP_UTF8, 0, text.data(), length, &wide[0], size);
  return wide;
}

std::string Narrow(std::wstring_view text) {
  if (text.empty()) return std::string();
  const int length = static_cast<int>(text.size());
  int size = WideCharToMultiByte(CP_UTF8, 0, text.data(), length, nullptr, 0,
                                 nullptr, nullptr);
  if (size <= 0) return std::string();
  std::string narrow(static_cast<size_t>(size), '\0');
  WideCharToMultiByte(CP_UTF8, 0, text.data(), length, &narrow[0], size,
                      nullptr, nullptr);
  return narrow;
}

std::optional<std::string> EnvironmentUtf8(const char* name) {
  const std::wstring wide_name = Widen(name);
  DWORD size = GetEnvironmentVariableW(wide_name.c_str(), nullptr, 0);
  if (size == 0) {
    if (GetLastError() == ERROR_ENVVAR_NOT_FOUND) return std::nullopt;
    return std::string();
  }
  std::wstring value(size, L'\0');
  DWORD got = GetEnvironmentVariableW(wide_name.c_str(), &value[0], size);
  if (got == 0 || got >= size) return std::string();
  value.resize(got);
  return Narrow(value);
}

void UseUtf8Console() {
  static UINT saved = 0;
  if (saved != 0) return;
  saved = GetConsoleOutputCP();  // 0 without a console: nothing to do.
  if (saved == 0 || saved == CP_UTF8) return;
  SetConsoleOutputCP(CP_UTF8);
  std::atexit([] { SetConsoleOutputCP(saved); });
}

std::vector<std::string> ArgumentsUtf8(int argc, char** argv) {
  int count = 0;
  wchar_t** wide = CommandLineToArgvW(GetCommandLineW(), &count);
  if (wide == nullptr) {
    return std::vector<std::string>(argv + (argc > 0 ? 1 : 0), argv + argc);
  }
  std::vector<std::string> args;
  for (int i = 1; i < count; ++i) {
    args.push_back(Narrow(std::wstring_view(wide[i], std::wcslen(wide[i]))));
  }
  LocalFree(wide);
  return args;
}

}  // namespace portserver
