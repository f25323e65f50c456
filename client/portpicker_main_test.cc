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
  // The test process is the CLI's parent. The extended request first; a
  // server that closes on it (python's) then gets the plain one.
  EXPECT_THAT(fake.requests(),
              ElementsAre(HasSubstr(absl::StrCat("allocate pid=", getpid())),
                          absl::StrCat(getpid(), "\n")));
}

TEST(PortpickerCli, AsksForTheGivenPid) {
  FakePortServer fake(Reply(absl::StrCat(kFakePort, "\n")));
  ScopedEnv env(kPortServerAddressEnv, fake.address());
  ProcessResult result = RunCli({"4242"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(PrintedPort(result), kFakePort);
  EXPECT_THAT(result.err, IsEmpty());
  EXPECT_THAT(fake.requests(),
              ElementsAre(HasSubstr("allocate pid=4242 count=1"), "4242\n"));
}

TEST(PortpickerCli, BadArgumentsExitTwoWithOneLine) {
  FakePortServer fake(Reply(absl::StrCat(kFakePort, "\n")));
  ScopedEnv env(kPortServerAddressEnv, fake.address());
  const std::vector<std::vector<std::string>> bad = {
      {"abc"},    {"0"},       {"-3"},       {"12x"},        {""},
      {"1", "x"}, {"1", "-1"}, {"1", "nan"}, {"1", "inf"},   {"1", "2", "3"},
      {"-n"},     {"-n", "0"}, {"-n", "x"},  {"-n", "1025"}, {"--bogus"}};
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
  EXPECT_THAT(result.out,
              HasSubstr("usage: portpicker [-h] [-n N] [--no-fallback] "
                        "[pid] [bind_timeout]"));
  // -n is all or none only with the extended protocol: python's server
  // keeps the ports it leased before a refusal.
  EXPECT_THAT(result.out, HasSubstr("all or none from a server with\n"
                                    "                 the extended protocol"));
  EXPECT_THAT(result.out, HasSubstr("ports taken before a refusal stay\n"
                                    "                 leased to pid until it "
                                    "exits"));
}

TEST(PortpickerCli, ManyPortsInOneRequestWithTheTestTargetAsLabel) {
  FakePortServer fake([](const std::string& request) -> std::string {
    if (!testing::IsExtended(request)) return "";
    return "portserver/1 ok ports=20001,20002,20003\nend\n";
  });
  ScopedEnv env(kPortServerAddressEnv, fake.address());
  ScopedEnv label("TEST_TARGET", "//leaky:test");
  ProcessResult result = RunCli({"-n", "3", "4242"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "20001\n20002\n20003\n");
  EXPECT_THAT(fake.requests(),
              ElementsAre("portserver/1 allocate pid=4242 count=3 "
                          "label=//leaky:test\n"));
}

TEST(PortpickerCli, RefusalIsExplainedAndNoFallbackExitsOne) {
  FakePortServer fake([](const std::string&) -> std::string {
    return "portserver/1 error code=pool-exhausted "
           "message=pool%20exhausted%20(10%20of%2010%20leased)\nend\n";
  });
  ScopedEnv env(kPortServerAddressEnv, fake.address());
  ProcessResult result = RunCli({"--no-fallback", "-n", "2", "4242"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.out, IsEmpty());
  EXPECT_EQ(result.err, "portpicker: pool exhausted (10 of 10 leased)\n");
  // Without --no-fallback: the same explanation, then ports picked anyway.
  result = RunCli({"-n", "2", "4242"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_THAT(result.err, HasSubstr("pool exhausted (10 of 10 leased); "
                                    "picking without the server"));
  EXPECT_EQ(std::count(result.out.begin(), result.out.end(), '\n'), 2);
}

// A server that cannot translate the pid from this pid namespace leases to
// the caller, the CLI itself, which exits at once: it warns (a helper's
// `port=$(portpicker $$)` in a container got a port free a moment later,
// silently).
TEST(PortpickerCli, WarnsWhenTheServerLeasedToTheCommandItself) {
  FakePortServer fake([](const std::string&) -> std::string {
    return "portserver/1 ok pid=31337 ports=20001 leased_to_caller=1\nend\n";
  });
  ScopedEnv env(kPortServerAddressEnv, fake.address());
  ProcessResult result = RunCli({"1"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.out, "20001\n");
  EXPECT_THAT(result.err, HasSubstr("warning: the server could not translate "
                                    "pid 1 from this pid namespace"));
  EXPECT_THAT(result.err, HasSubstr("to pid 31337, this command, instead: it "
                                    "is free again when it exits"));
  // --no-fallback: such a port is as good as unreserved: exit 1.
  result = RunCli({"--no-fallback", "1"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.out, IsEmpty());
  EXPECT_THAT(result.err, HasSubstr("(--no-fallback)"));
  // An ordinary grant: no warning.
  FakePortServer plain([](const std::string&) -> std::string {
    return "portserver/1 ok pid=1 ports=20001\nend\n";
  });
  ScopedEnv env2(kPortServerAddressEnv, plain.address());
  result = RunCli({"1"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_THAT(result.err, IsEmpty());
}

TEST(PortpickerCli, NoFallbackWithoutAServerExitsOne) {
  ScopedEnv env(kPortServerAddressEnv, std::nullopt);
  ProcessResult result = RunCli({"--no-fallback"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.out, IsEmpty());
  EXPECT_THAT(result.err, HasSubstr("PORTSERVER_ADDRESS is not set"));
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

// A port the server leased is not held (python 1.6 holds only ports picked
// without a server): a program that binds without SO_REUSEADDR, python's
// socketserver.TCPServer for one, takes it at once (a tester's failed with
// EADDRINUSE).
TEST(PortpickerCli, BindTimeoutDoesNotHoldAPortTheServerLeased) {
  absl::StatusOr<int> port = PickUnusedPortWithoutServer();
  ASSERT_TRUE(port.ok()) << port.status();
  FakePortServer fake(Reply(absl::StrCat(*port, "\n")));
  ScopedEnv env(kPortServerAddressEnv, fake.address());
  ProcessResult result = RunCli({absl::StrCat(getpid()), "30"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(PrintedPort(result), *port);
  EXPECT_TRUE(testing::CanBindTcp(*port));
}

// ...but one leased to portpicker itself (the server could not translate
// the pid) ends as it exits: that one is held, as a port picked without a
// server is (a reviewer found it neither leased nor held).
TEST(PortpickerCli, BindTimeoutHoldsAPortLeasedToTheCommandItself) {
  absl::StatusOr<int> port = PickUnusedPortWithoutServer();
  ASSERT_TRUE(port.ok()) << port.status();
  const std::string reply = absl::StrCat(
      "portserver/1 ok pid=31337 ports=", *port, " leased_to_caller=1\nend\n");
  FakePortServer fake([reply](const std::string&) { return reply; });
  ScopedEnv env(kPortServerAddressEnv, fake.address());
  ProcessResult result = RunCli({"1", "3"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(PrintedPort(result), *port);
  EXPECT_FALSE(testing::CanBindTcp(*port));
  EXPECT_TRUE(testing::WaitUntilBindable(*port, absl::Seconds(30)));
}

}  // namespace
}  // namespace portpicker
