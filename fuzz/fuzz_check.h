// FUZZ_CHECK(cond, what): the property checks of the fuzz targets. A failed
// check prints what broke and aborts, which libFuzzer reports as a crash (and
// saves the input as crash-<sha1>); the regression driver
// (fuzz_regression_main.cc) reports it the same way.
//
// Example:
//   FUZZ_CHECK(r.error.find('\n') == std::string::npos, "error is one line");
//
// Thread-compatible. Standard library only, so that the targets build with
// gcc (regression tests) as well as with clang -fsanitize=fuzzer.
#ifndef PORTSERVER_FUZZ_FUZZ_CHECK_H_
#define PORTSERVER_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace portserver::fuzz {

// A printable form of `s` for failure messages: control bytes as \xNN.
inline std::string Printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[5];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

// True if `s` is non-empty and holds no line break.
inline bool IsOneLine(std::string_view s) {
  return !s.empty() && s.find('\n') == std::string_view::npos &&
         s.find('\r') == std::string_view::npos;
}

[[noreturn]] inline void CheckFailed(const char* file, int line,
                                     const char* condition,
                                     const std::string& what) {
  std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: %s\n", file, line,
               condition, what.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace portserver::fuzz

#define FUZZ_CHECK(cond, what)                                            \
  do {                                                                    \
    if (!(cond)) {                                                        \
      ::portserver::fuzz::CheckFailed(__FILE__, __LINE__, #cond, (what)); \
    }                                                                     \
  } while (0)

#endif  // PORTSERVER_FUZZ_FUZZ_CHECK_H_
