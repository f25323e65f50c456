#include "app/options.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace portserver {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<CommandLine> Parse(std::vector<std::string> args) {
  std::vector<const char*> argv = {"portserver"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  return ParseCommandLine(static_cast<int>(argv.size()), argv.data());
}

TEST(Options, DefaultsMatchTheReferenceServer) {
  absl::StatusOr<CommandLine> cl = Parse({});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_FALSE(cl->help);
  EXPECT_EQ(cl->options.pool_spec, "15000-24999");
  EXPECT_EQ(cl->options.pool.size(), 10000u);
  EXPECT_EQ(cl->options.address, "@unittest-portserver");
  EXPECT_FALSE(cl->options.verbose);
  EXPECT_FALSE(cl->options.debug);
}

TEST(Options, AcceptsEqualsAndSpaceForms) {
  absl::StatusOr<CommandLine> cl =
      Parse({"--portserver_static_pool=100-101,200", "--portserver_address",
             "/tmp/x.sock", "--verbose"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->options.pool, (std::vector<uint16_t>{100, 101, 200}));
  EXPECT_EQ(cl->options.address, "/tmp/x.sock");
  EXPECT_TRUE(cl->options.verbose);
}

TEST(Options, AliasSetsTheAddress) {
  absl::StatusOr<CommandLine> cl =
      Parse({"--portserver_unix_socket_address=@other"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->options.address, "@other");
}

// python's argparse takes any unambiguous prefix of a long option, so a
// command line or unit file that works with the reference server may
// abbreviate (a new user's trial: ours exited 2 on them).
TEST(Options, UnambiguousPrefixesAsPythonsArgparse) {
  absl::StatusOr<CommandLine> cl =
      Parse({"--portserver_static=100-101", "--portserver_addr=@abbrev",
             "--verb", "--deb"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->options.pool, (std::vector<uint16_t>{100, 101}));
  EXPECT_EQ(cl->options.address, "@abbrev");
  EXPECT_TRUE(cl->options.verbose);
  EXPECT_TRUE(cl->options.debug);
  cl = Parse({"--portserver_unix", "@spaced"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->options.address, "@spaced");
  cl = Parse({"--he"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_TRUE(cl->help);
  // The reference's flags first: what it takes means the same here, though
  // our own flags share the prefix (a reviewer: --v and --portserver_st
  // were "ambiguous" here, --verbose and the pool there).
  cl = Parse({"--v", "--portserver_st=102-103"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_TRUE(cl->options.verbose);
  EXPECT_EQ(cl->options.pool, (std::vector<uint16_t>{102, 103}));
  cl = Parse({"--version"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_TRUE(cl->version);
  cl = Parse({"--portserver_"});
  ASSERT_FALSE(cl.ok());
  EXPECT_THAT(std::string(cl.status().message()),
              HasSubstr("ambiguous flag '--portserver_'"));
  EXPECT_FALSE(Parse({"-portserver_static=100-101"}).ok());  // -- only.
  // This server's own flags are not abbreviated: a typo of one named
  // another (--portserver_e=x was --portserver_extra_addresses, and a
  // server started on the default address: a new user's trial).
  for (const char* own : {"--portserver_e=x", "--portserver_m=3", "--vers",
                          "--portserver_state=/tmp/x"}) {
    cl = Parse({own});
    EXPECT_FALSE(cl.ok()) << own;
  }
}

TEST(Options, ExtraAddressesAreACommaSeparatedList) {
  absl::StatusOr<CommandLine> cl = Parse({});
  ASSERT_TRUE(cl.ok());
  EXPECT_TRUE(cl->options.extra_addresses.empty());
  cl = Parse({"--portserver_address=@a",
              "--portserver_extra_addresses=/run/p/s.sock,@b"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->options.address, "@a");
  EXPECT_EQ(cl->options.extra_addresses,
            (std::vector<std::string>{"/run/p/s.sock", "@b"}));
}

TEST(Options, LimitsHaveDocumentedDefaults) {
  absl::StatusOr<CommandLine> cl = Parse({});
  ASSERT_TRUE(cl.ok());
  // No quota by default: the reference has none (issue 9).
  EXPECT_EQ(cl->options.max_ports_per_pid, 0u);
  EXPECT_EQ(cl->options.max_connections, 1024u);
  EXPECT_EQ(cl->options.read_timeout_ms, 5000);
  EXPECT_EQ(cl->options.state_file, "");
  cl = Parse({"--portserver_max_ports_per_pid=5",
              "--portserver_state_file=none", "--portserver_max_connections",
              "7", "--portserver_read_timeout_ms=250"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->options.max_ports_per_pid, 5u);
  EXPECT_EQ(cl->options.state_file, "none");
  EXPECT_EQ(cl->options.max_connections, 7u);
  EXPECT_EQ(cl->options.read_timeout_ms, 250);
}

// Accepted for portserver_test rules written before locks were always held.
TEST(Options, LockPortsIsStillAccepted) {
  EXPECT_FALSE(Parse({})->options.lock_ports);
  EXPECT_TRUE(Parse({"--portserver_lock_ports"})->options.lock_ports);
  EXPECT_TRUE(Parse({"--noportserver_lock_ports"}).ok());
}

TEST(Options, ReservePoolInKernelIsOptIn) {
  EXPECT_FALSE(Parse({})->options.reserve_pool_in_kernel);
  EXPECT_TRUE(Parse({"--portserver_reserve_pool_in_kernel"})
                  ->options.reserve_pool_in_kernel);
}

TEST(Options, DebugImpliesVerbose) {
  absl::StatusOr<CommandLine> cl = Parse({"--debug"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_TRUE(cl->options.debug);
  EXPECT_TRUE(cl->options.verbose);
}

TEST(Options, ParsingTwiceStartsFromDefaults) {
  ASSERT_TRUE(Parse({"--verbose", "--portserver_address=@a"}).ok());
  absl::StatusOr<CommandLine> cl = Parse({});
  ASSERT_TRUE(cl.ok());
  EXPECT_FALSE(cl->options.verbose);
  EXPECT_EQ(cl->options.address, "@unittest-portserver");
}

TEST(Options, BooleanForms) {
  EXPECT_FALSE(Parse({"--verbose", "--noverbose"})->options.verbose);
  EXPECT_TRUE(Parse({"--verbose=true"})->options.verbose);
  EXPECT_FALSE(Parse({"--verbose=false"})->options.verbose);
  EXPECT_TRUE(Parse({"-verbose"})->options.verbose);
}

TEST(Options, HelpFlags) {
  EXPECT_TRUE(Parse({"-h"})->help);
  EXPECT_TRUE(Parse({"--help"})->help);
  // Help wins over a bad pool, as with argparse.
  EXPECT_TRUE(Parse({"--portserver_static_pool=abc", "-h"})->help);
}

TEST(Options, VersionFlag) {
  EXPECT_TRUE(Parse({"--version"})->version);
  EXPECT_FALSE(Parse({})->version);
  // Like help, it wins over a bad pool.
  absl::StatusOr<CommandLine> cl =
      Parse({"--portserver_static_pool=abc", "--version"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_TRUE(cl->version);
  EXPECT_THAT(VersionText(), ::testing::StartsWith("portserver "));
}

TEST(Options, UsageNamesEveryFlagAndDefault) {
  std::string usage = UsageText();
  for (const char* text :
       {"-h, --help", "--portserver_static_pool PORTSERVER_STATIC_POOL",
        "--portserver_address PORTSERVER_ADDRESS",
        "--portserver_unix_socket_address", "--verbose", "--debug",
        "--portserver_lock_ports", "--portserver_reserve_pool_in_kernel",
        "ip_local_reserved_ports", "--portserver_state_file PATH",
        "--portserver_max_ports_per_pid N", "Default: 1024",
        "--portserver_read_timeout_ms MS", "Default: 15000-24999",
        "Default: @unittest-portserver", "--version"}) {
    EXPECT_THAT(usage, HasSubstr(text));
  }
  // Where each platform keeps the journal, and how it is stopped and asked
  // for its statistics.
#ifdef _WIN32
  for (const char* text : {"%LOCALAPPDATA%\\portserver\\", "Ctrl+C",
                           "Ctrl+Break", "Global\\portserver-stats-"}) {
#else
  for (const char* text : {"XDG_RUNTIME_DIR", "SIGUSR1", "SIGHUP"}) {
#endif
    EXPECT_THAT(usage, HasSubstr(text));
  }
}

struct BadArgs {
  std::vector<std::string> args;
  std::string mentions;
};

class OptionsBadTest : public ::testing::TestWithParam<BadArgs> {};

TEST_P(OptionsBadTest, OneLineErrorNamingTheProblem) {
  absl::StatusOr<CommandLine> cl = Parse(GetParam().args);
  ASSERT_FALSE(cl.ok());
  EXPECT_EQ(cl.status().code(), absl::StatusCode::kInvalidArgument);
  std::string message(cl.status().message());
  EXPECT_THAT(message, HasSubstr(GetParam().mentions));
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Bad, OptionsBadTest,
    ::testing::Values(
        BadArgs{{"--portserver_static_pool=1-"}, "'1-'"},
        BadArgs{{"--portserver_static_pool=5-3"}, "ends before it starts"},
        BadArgs{{"--portserver_static_pool=0-10"}, "outside 1-65535"},
        BadArgs{{"--portserver_static_pool=70000-70001"}, "70000-70001"},
        BadArgs{{"--portserver_static_pool=abc"}, "'abc'"},
        BadArgs{{"--portserver_static_pool=100-200,150-160"}, "overlaps"},
        BadArgs{{"--portserver_static_pool="}, "empty"},
        BadArgs{{"--portserver_static_pool"}, "needs a value"},
        BadArgs{{"--no_such_flag"}, "--no_such_flag"},
        BadArgs{{"--noportserver_address"}, "--noportserver_address"},
        BadArgs{{"--verbose=maybe"}, "maybe"}, BadArgs{{"stray"}, "'stray'"},
        BadArgs{{"--portserver_address="}, "empty --portserver_address"},
        BadArgs{{"--portserver_extra_addresses=@a,,@b"}, "empty address"},
        BadArgs{{"--portserver_extra_addresses=@"}, "empty address"},
        BadArgs{{"--portserver_extra_addresses=@a,@a"}, "@a is given twice"},
        BadArgs{{"--portserver_extra_addresses=@unittest-portserver"},
                "@unittest-portserver is given twice"},
        BadArgs{{"--portserver_max_ports_per_pid=-1"}, "max_ports_per_pid"},
        BadArgs{{"--portserver_max_connections=0"}, "max_connections"},
        BadArgs{{"--portserver_read_timeout_ms=0"}, "read_timeout_ms"},
        BadArgs{{"--portserver_read_timeout_ms=soon"}, "'soon'"}));

}  // namespace
}  // namespace portserver
