// Text at the edge of the Windows code: the Win32 W functions take UTF-16,
// and everything else here (flags, paths, pipe names, logs, the protocol)
// is UTF-8. The ANSI code page of the A functions, of argv and of getenv()
// cannot hold every character a user's name or a pipe name may have (a
// profile folder "C:\Users\张伟" on a machine whose code page is 1252), so
// nothing here goes through it.
//
// Example:
//   std::vector<std::string> args = ArgumentsUtf8(argc, argv);
//   std::optional<std::string> local = EnvironmentUtf8("LOCALAPPDATA");
//   HANDLE file = CreateFileW(Widen(path).c_str(), ...);
//   std::string shown = Narrow(wide_command_line);
//
// Thread-safe.
#ifndef PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_TEXT_H_
#define PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_TEXT_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portserver {

// UTF-8 to UTF-16 (MultiByteToWideChar(CP_UTF8)); a byte that starts no
// well-formed character becomes U+FFFD.
std::wstring Widen(std::string_view text);

// UTF-16 to UTF-8 (WideCharToMultiByte(CP_UTF8)); an unpaired surrogate
// becomes U+FFFD.
std::string Narrow(std::wstring_view text);

// The environment variable `name` (ASCII) as UTF-8, read as UTF-16
// (GetEnvironmentVariableW); nullopt if it is not set.
std::optional<std::string> EnvironmentUtf8(const char* name);

// The program's arguments after argv[0] as UTF-8, from the UTF-16 command
// line (GetCommandLineW, split by CommandLineToArgvW, the rules argv
// follows). `argc`/`argv` are the fallback should that fail (it cannot
// short of memory): then argv in the ANSI code page.
std::vector<std::string> ArgumentsUtf8(int argc, char** argv);

// Makes the console show the UTF-8 this program writes
// (SetConsoleOutputCP(CP_UTF8)) until it exits: the code page belongs to the
// console, which the shell shares, so the one it had is set back at exit.
// Not thread-safe: call first thing in main().
void UseUtf8Console();

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_TEXT_H_
