// The compatibility scenarios of compat_test.py, run against the same
// app::Server wiring with the in-memory adapters instead of Linux ones.
#include <set>
#include <string>
#include <thread>

#include "adapters/fake/fake_port_probe.h"
#include "adapters/fake/fake_process_probe.h"
#include "adapters/fake/fake_transport.h"
#include "app/options.h"
#include "app/server.h"
#include "gtest/gtest.h"

namespace portserver {
namespace {

class InMemoryServerTest : public ::testing::Test {
 protected:
  void Start(const std::string& pool) {
    const char* argv[] = {"portserver", "--portserver_address=@in-memory",
                          nullptr};
    std::string pool_flag = "--portserver_static_pool=" + pool;
    argv[2] = pool_flag.c_str();
    absl::StatusOr<CommandLine> cl = ParseCommandLine(3, argv);
    ASSERT_TRUE(cl.ok()) << cl.status();
    server_ = std::make_unique<Server>(
        cl->options, Adapters{&processes_, &ports_, &transport_});
    thread_ = std::thread([this] { served_ = server_->Serve(); });
    transport_.WaitUntilServing();
    processes_.Spawn(kSelf);
  }
  void TearDown() override {
    if (!server_) return;
    server_->Shutdown();
    thread_.join();
    EXPECT_TRUE(served_.ok()) << served_;
  }
  // What a python portpicker client would get: a port, or 0 for a denial.
  int Ask(int64_t pid) { return AskRaw(std::to_string(pid) + "\n"); }
  int AskRaw(const std::string& bytes,
             Request::End end = Request::End::kNewline) {
    std::optional<std::string> reply = transport_.Call(bytes, end);
    EXPECT_TRUE(reply.has_value());
    if (!reply || reply->empty()) return 0;
    EXPECT_EQ(reply->back(), '\n');
    return std::stoi(*reply);
  }

  static constexpr int64_t kSelf = 4242;
  FakeProcessProbe processes_;
  FakePortProbe ports_;
  FakeTransport transport_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  absl::Status served_;
};

TEST_F(InMemoryServerTest, GivesAFreePortInsideThePool) {
  Start("20000-20009");
  ports_.Occupy(20000);
  int port = Ask(kSelf);
  EXPECT_GE(port, 20001);
  EXPECT_LE(port, 20009);
}

TEST_F(InMemoryServerTest, OneProcessGetsDistinctPortsUntilThePoolRunsOut) {
  Start("20000-20009");
  std::set<int> got;
  for (int i = 0; i < 10; ++i) got.insert(Ask(kSelf));
  EXPECT_EQ(got.size(), 10u);
  EXPECT_EQ(*got.begin(), 20000);
  EXPECT_EQ(*got.rbegin(), 20009);
  EXPECT_EQ(Ask(kSelf), 0);
}

TEST_F(InMemoryServerTest, PortsOfADeadProcessComeBack) {
  Start("20000-20004");
  processes_.Spawn(777);
  std::set<int> child_ports;
  for (int i = 0; i < 5; ++i) child_ports.insert(Ask(777));
  ASSERT_EQ(child_ports.size(), 5u);
  EXPECT_EQ(Ask(kSelf), 0);
  processes_.Kill(777);
  std::set<int> again;
  for (int i = 0; i < 5; ++i) again.insert(Ask(kSelf));
  EXPECT_EQ(again, child_ports);
}

TEST_F(InMemoryServerTest, DeniesInitInvalidAndMissingPids) {
  Start("20000-20009");
  for (int64_t pid : {int64_t{1}, int64_t{0}, int64_t{-5}, int64_t{99999},
                      int64_t{2147483648}}) {
    EXPECT_EQ(Ask(pid), 0) << pid;
  }
  EXPECT_EQ(server_->stats().denied_allocations, 5u);
  EXPECT_NE(Ask(kSelf), 0);
}

TEST_F(InMemoryServerTest, GarbageLeavesTheServerServing) {
  Start("20000-20009");
  const std::string garbage[] = {"abc\n", std::string("\0\xff\n", 3), "-\n",
                                 "1 2\n", "+5\n"};
  for (const std::string& g : garbage) EXPECT_EQ(AskRaw(g), 0);
  EXPECT_EQ(AskRaw("", Request::End::kEof), 0);
  EXPECT_EQ(AskRaw("12345678901234567890", Request::End::kTooLong), 0);
  EXPECT_EQ(AskRaw("", Request::End::kTimedOut), 0);
  EXPECT_NE(Ask(kSelf), 0);
  Stats s = server_->stats();
  EXPECT_EQ(s.client_request_errors, 8u);
  EXPECT_EQ(s.total_allocations, 1u);
  EXPECT_EQ(s.denied_allocations, 0u);
  EXPECT_EQ(s.num_ports_managed, 10u);
}

// A grant to the caller instead of the pid it named (which could not be
// translated from its pid namespace) is logged at default verbosity, as the
// README says: it may be a mistake. A plain grant is not.
TEST_F(InMemoryServerTest, GrantToTheCallerInsteadOfTheNamedPidIsLogged) {
  Start("20000-20009");
  processes_.Spawn(5000);
  using Kind = ProcessProbe::Mapping::Kind;
  processes_.SetMapping(5000, 77, {Kind::kCaller, 5000});
  PeerCredentials caller;
  caller.known = true;
  caller.pid = 5000;
  testing::internal::CaptureStderr();
  std::optional<std::string> plain = transport_.Call(
      "5000\n", Request::End::kNewline, caller);  // Itself: kSame.
  std::optional<std::string> replaced =
      transport_.Call("77\n", Request::End::kNewline, caller);
  std::string log = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(plain && !plain->empty());
  ASSERT_TRUE(replaced && !replaced->empty());
  EXPECT_NE(log.find("leased to the caller, pid 5000"), std::string::npos)
      << log;
  EXPECT_EQ(log.find("Request on behalf of pid 5000: port " +
                     plain->substr(0, plain->size() - 1)),
            std::string::npos)
      << log;
}

TEST(InMemoryServer, TransportFailureIsReported) {
  FakeProcessProbe processes;
  FakePortProbe ports;
  FakeTransport transport;
  transport.FailServe("listening socket vanished");
  Options options;
  options.pool = {20000};
  Server server(options, Adapters{&processes, &ports, &transport});
  absl::Status s = server.Serve();
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(std::string(s.message()).find("vanished"), std::string::npos);
}

}  // namespace
}  // namespace portserver
