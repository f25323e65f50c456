// cli_platform: what the command-line programs (portpicker, portserverctl)
// need to read their arguments and environment, and write to a console, as
// UTF-8 on every platform. Implemented in portpicker_posix.cc and
// portpicker_windows.cc.
//
// Example:
//   std::vector<std::string> args = portpicker::ArgumentsUtf8(argc, argv);
//   std::string label = portpicker::EnvironmentUtf8("TEST_TARGET")
//                           .value_or("");
//   portpicker::UseUtf8Console();
//
// Thread-safe, except UseUtf8Console and Utf8Main (first thing in main).
#ifndef PORTSERVER_CLIENT_CLI_PLATFORM_H_
#define PORTSERVER_CLIENT_CLI_PLATFORM_H_

#include <optional>
#include <string>
#include <vector>

namespace portpicker {
// The environment variable `name` as UTF-8; nullopt if unset. On Windows
// read as UTF-16 (GetEnvironmentVariableW): getenv() would give it in the
// ANSI code page, which loses or garbles non-ASCII characters (a
// TEST_TARGET label). On POSIX, getenv().
std::optional<std::string> EnvironmentUtf8(const char* name);

// The program's arguments (argv[1...]) as UTF-8: on Windows from the UTF-16
// command line (CommandLineToArgvW), for the same reason; on POSIX, argv.
std::vector<std::string> ArgumentsUtf8(int argc, char** argv);

// Makes a Windows console show the UTF-8 this program writes
// (SetConsoleOutputCP(CP_UTF8)), until it exits (the console's own code
// page is set back then); nothing on POSIX, where terminals take
// UTF-8 already.
void UseUtf8Console();

// What a CLI's main() does first: replaces `argc`/`argv` with the UTF-8
// arguments (ArgumentsUtf8; argv[0] kept), which this object keeps alive,
// and calls UseUtf8Console().
//   int main(int argc, char** argv) {
//     portpicker::Utf8Main utf8(argc, argv);
class Utf8Main {
 public:
  Utf8Main(int& argc, char**& argv);
  Utf8Main(const Utf8Main&) = delete;
  Utf8Main& operator=(const Utf8Main&) = delete;

 private:
  std::vector<std::string> args_;
  std::vector<char*> argv_;
};

}  // namespace portpicker

#endif  // PORTSERVER_CLIENT_CLI_PLATFORM_H_
