#include "adapters/windows/windows_process_info.h"

#include <memory>
#include <string>

#include "adapters/windows/windows_error.h"
#include "adapters/windows/windows_test_util.h"
#include "adapters/windows/windows_text.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace portserver {
namespace {

using ::testing::EndsWith;
using ::testing::StartsWith;

uint64_t CreationTime(HANDLE process) {
  FILETIME created, exited, kernel, user;
  EXPECT_TRUE(GetProcessTimes(process, &created, &exited, &kernel, &user));
  return (uint64_t{created.dwHighDateTime} << 32) | created.dwLowDateTime;
}

// A child that never runs, with `args` in its command line (ChildProcess
// widens the line from the ANSI code page for CreateProcessW).
std::unique_ptr<ChildProcess> StartSuspendedChild(const std::string& args) {
  return ChildProcess::Start(
      Quote(ExePath("adapters/windows/python_style_client.exe")) + " " + args,
      /*capture=*/false, CREATE_SUSPENDED);
}

TEST(WindowsProcessInfo, OwnCommandLineIsTheOneWindowsGaveUs) {
  WindowsProcessInfo info;
  EXPECT_EQ(info.CommandLine(GetCurrentProcessId(), 65536),
            Narrow(GetCommandLineW()));
}

TEST(WindowsProcessInfo, ChildCommandLineIsReadAsUtf8) {
  const std::string args = "@none \"two words\" caf\xC3\xA9 \xE2\x82\xAC";
  std::unique_ptr<ChildProcess> child = StartSuspendedChild(args);
  ASSERT_NE(child, nullptr);
  WindowsProcessInfo info;
  std::string line = info.CommandLine(child->pid(), 4096);
  EXPECT_THAT(line, StartsWith("\""));
  // What the child got, as UTF-8: non-ASCII whatever the code page.
  EXPECT_THAT(line,
              EndsWith("python_style_client.exe\" " + Narrow(Widen(args))));
}

TEST(WindowsProcessInfo, LongCommandLineIsCutBetweenCharactersAndMarked) {
  // Non-ASCII characters are two bytes or more in UTF-8: a cut at any
  // length must not split one.
  std::string args = "@none ";
  for (int i = 0; i < 200; ++i) args += "\xC3\xA9";
  std::unique_ptr<ChildProcess> child = StartSuspendedChild(args);
  ASSERT_NE(child, nullptr);
  WindowsProcessInfo info;
  std::string whole = info.CommandLine(child->pid(), 4096);
  ASSERT_THAT(whole, EndsWith(Narrow(Widen(args))));
  for (size_t max : {size_t{256}, size_t{255}, size_t{20}, size_t{3}}) {
    std::string cut = info.CommandLine(child->pid(), max);
    EXPECT_LE(cut.size(), max);
    EXPECT_THAT(cut, EndsWith("...")) << max;
    std::string kept = cut.substr(0, cut.size() - 3);
    EXPECT_EQ(whole.compare(0, kept.size(), kept), 0) << max;
    // No partial character before the mark: a continuation byte is only
    // ever preceded by its lead byte or another continuation byte.
    if (!kept.empty() && (kept.back() & 0xC0) == 0xC0) {
      ADD_FAILURE() << "cut after a lead byte at " << max;
    }
  }
}

TEST(WindowsProcessInfo, ProcessThatEndedHasNoCommandLine) {
  std::unique_ptr<ChildProcess> child = StartSuspendedChild("@none");
  ASSERT_NE(child, nullptr);
  WindowsProcessInfo info;
  ASSERT_NE(info.CommandLine(child->pid(), 256), "");
  child->Kill(3);
  ASSERT_TRUE(child->Wait(10000).has_value());
  // The handle keeps the process object (and its pid), not its memory.
  EXPECT_EQ(info.CommandLine(child->pid(), 256), "");
  EXPECT_EQ(info.CommandLine(0, 256), "");
}

TEST(WindowsProcessInfo, StartTimeIsTheCreationTimeInUnixMs) {
  WindowsProcessInfo info;
  // FILETIME counts 100 ns since 1601; 1970 is 11,644,473,600 s later.
  EXPECT_EQ(info.StartTimeUnixMs(116444736000000000ULL), 0);
  EXPECT_EQ(info.StartTimeUnixMs(116444736000000000ULL + 12345 * 10000), 12345);
  EXPECT_EQ(info.StartTimeUnixMs(1), -1);
  int64_t start = info.StartTimeUnixMs(CreationTime(GetCurrentProcess()));
  int64_t now = info.NowUnixMs();
  EXPECT_LE(start, now);
  EXPECT_GT(start, now - 3600 * 1000);  // This test started within the hour.
}

TEST(WindowsProcessInfo, AdministratorsSeeEveryCommandLineOthersTheirOwn) {
  WindowsProcessInfo info;
  EXPECT_EQ(info.AccessFor(PeerCredentials{}), ProcessInfo::Access::kNone);
  EXPECT_EQ(info.AccessFor(PeerCredentials{true, 1234, 0}),
            ProcessInfo::Access::kAll);
  EXPECT_EQ(info.AccessFor(PeerCredentials{true, 1234, 77}),
            ProcessInfo::Access::kOwnOnly);
}

}  // namespace
}  // namespace portserver
