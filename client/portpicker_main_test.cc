// Tests of the portpicker command line tool against a fake port server, and
// without a server.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/portpicker.h"
#include "client/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace portpicker {
namespace {

using ::portpicker::testing::FakePortServer;
using ::portpicker::testing::PrintedPort;
using ::portpicker::testing::ProcessResult;
using ::portpicker::testing::Reply;
using ::portpicker::testing::RunCli;
using ::portpicker::testing::ScopedEnv;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Protocol data only: nothing binds it.
constexpr int kFakePort = 20001;

TEST(PortpickerCli, AsksForTheParentPidByDefault) {
  FakePortServer fake(Reply(absl::StrCat(kFakePort, "\n")));
  ScopedEnv env(kPortServerAddressEnv, fake.address());
  ProcessResult result = RunCli({});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, absl::StrCat(kFakePort, "\n"));
  // The test process is the CLI's parent.
  EXPECT_THAT(fake.requests(), ElementsAre(absl::StrCat(getpid(), "\n")));
}

TEST(PortpickerCli, AsksForTheGivenPid) {
  FakePortServer fake(Reply(absl::StrCat(kFakePort, "\n")));
  ScopedEnv env(kPortServerAddressEnv, fake.address());
  ProcessResult result = RunCli({"4242"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(PrintedPort(result), kFakePort);
  EXPECT_THAT(result.err, IsEmpty());
  EXPECT_THAT(fake.requests(), ElementsAre("4242\n"));
}

TEST(PortpickerCli, BadArgumentsExitTwoWithOneLine) {
  FakePortServer fake(Reply(absl::StrCat(kFakePort, "\n")));
  ScopedEnv env(kPortServerAddressEnv, fake.address());
  const std::vector<std::vector<std::string>> bad = {
      {"abc"},    {"0"},       {"-3"},       {"12x"},      {""},
      {"1", "x"}, {"1", "-1"}, {"1", "nan"}, {"1", "inf"}, {"1", "2", "3"}};
  for (const std::vector<std::string>& args : bad) {
    ProcessResult result = RunCli(args);
    const std::string shown = absl::StrJoin(args, " ");
    EXPECT_EQ(result.exit_code, 2) << shown;
    EXPECT_THAT(result.out, IsEmpty()) << shown;
    EXPECT_THAT(result.err, HasSubstr("portpicker: ")) << shown;
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1)
        << shown << ": " << result.err;
  }
  EXPECT_THAT(fake.requests(), IsEmpty());
}

TEST(PortpickerCli, HelpExitsZero) {
  ProcessResult result = RunCli({"--help"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_THAT(result.out, HasSubstr("usage: portpicker [-h] [pid] [bind_timeout]"));
}

TEST(PortpickerCli, WarnsAndFallsBackWhenTheServerDenies) {
  FakePortServer fake(Reply(""));
  ScopedEnv env(kPortServerAddressEnv, fake.address());
  ProcessResult result = RunCli({"4242"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.err, HasSubstr("denied"));
  const int port = PrintedPort(result);
  EXPECT_GT(port, 0) << result.out;
  EXPECT_TRUE(IsPortFree(port));
}

TEST(PortpickerCli, PicksAFreePortWithoutAServer) {
  ScopedEnv env(kPortServerAddressEnv, std::nullopt);
  ProcessResult result = RunCli({});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.err, IsEmpty());
  const int port = PrintedPort(result);
  EXPECT_GT(port, 0) << result.out;
  EXPECT_TRUE(IsPortFree(port));
}

TEST(PortpickerCli, BindTimeoutKeepsThePortBoundAfterExiting) {
  ScopedEnv env(kPortServerAddressEnv, std::nullopt);
  constexpr double kHoldSeconds = 3;
  const absl::Time start = absl::Now();
  ProcessResult result = RunCli({absl::StrCat(getpid()), "3"});
  // The holder closed its copies of stdout and stderr: we did not wait.
  EXPECT_LT(absl::Now() - start, absl::Seconds(kHoldSeconds));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const int port = PrintedPort(result);
  ASSERT_GT(port, 0) << result.out;
  EXPECT_FALSE(testing::CanBindTcp(port));
  // A server that sets SO_REUSEADDR can take the port over meanwhile.
  const int server = testing::BindTcp(AF_INET, port, /*reuse_addr=*/true,
                                      /*listen=*/true);
  EXPECT_GE(server, 0);
  close(server);
  EXPECT_TRUE(testing::WaitUntilBindable(port, absl::Seconds(30)));
  EXPECT_GE(absl::Now() - start,
            absl::Seconds(kHoldSeconds) - absl::Milliseconds(100));
}

}  // namespace
}  // namespace portpicker
