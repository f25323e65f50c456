#include "adapters/linux/linux_socket_activation.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace portserver {
namespace {

using ::testing::HasSubstr;

constexpr pid_t kPid = 4242;

std::vector<int> Fds(const std::vector<ActivatedSocket>& sockets) {
  std::vector<int> fds;
  for (const ActivatedSocket& s : sockets) fds.push_back(s.fd);
  return fds;
}

TEST(ParseListenEnvironment, NothingPassedWithoutTheVariables) {
  auto none = ParseListenEnvironment({}, kPid);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  ListenEnvironment only_fds;
  only_fds.listen_fds = "2";
  ASSERT_TRUE(ParseListenEnvironment(only_fds, kPid).ok());
  EXPECT_TRUE(ParseListenEnvironment(only_fds, kPid)->empty());
}

TEST(ParseListenEnvironment, SocketsStartAtThreeInOrderWithNames) {
  ListenEnvironment env{"4242", "3", "abstract:path:third"};
  auto sockets = ParseListenEnvironment(env, kPid);
  ASSERT_TRUE(sockets.ok()) << sockets.status();
  EXPECT_EQ(Fds(*sockets), (std::vector<int>{3, 4, 5}));
  EXPECT_EQ((*sockets)[0].name, "abstract");
  EXPECT_EQ((*sockets)[2].name, "third");
}

TEST(ParseListenEnvironment, NamesAreOptional) {
  ListenEnvironment env{"4242", "2", nullptr};
  auto sockets = ParseListenEnvironment(env, kPid);
  ASSERT_TRUE(sockets.ok());
  EXPECT_EQ(Fds(*sockets), (std::vector<int>{3, 4}));
  EXPECT_EQ((*sockets)[1].name, "");
}

TEST(ParseListenEnvironment, VariablesForAnotherProcessAreIgnored) {
  ListenEnvironment env{"4243", "1", "x"};
  auto sockets = ParseListenEnvironment(env, kPid);
  ASSERT_TRUE(sockets.ok());
  EXPECT_TRUE(sockets->empty());
}

TEST(ParseListenEnvironment, ZeroSocketsIsNone) {
  auto sockets = ParseListenEnvironment({"4242", "0", nullptr}, kPid);
  ASSERT_TRUE(sockets.ok());
  EXPECT_TRUE(sockets->empty());
}

TEST(ParseListenEnvironment, MalformedValuesAreErrorsNamingTheVariable) {
  struct Case {
    ListenEnvironment env;
    const char* variable;
  };
  std::vector<Case> cases = {
      {{"", "1", nullptr}, "LISTEN_PID"},
      {{"42x", "1", nullptr}, "LISTEN_PID"},
      {{"-4242", "1", nullptr}, "LISTEN_PID"},
      {{"0", "1", nullptr}, "LISTEN_PID"},
      {{"4242", "", nullptr}, "LISTEN_FDS"},
      {{"4242", "one", nullptr}, "LISTEN_FDS"},
      {{"4242", "-1", nullptr}, "LISTEN_FDS"},
      {{"4242", " 1", nullptr}, "LISTEN_FDS"},
      {{"4242", "99999999999999999999", nullptr}, "LISTEN_FDS"},
      {{"4242", "2147483647", nullptr}, "LISTEN_FDS"},
      {{"4242", "2", "only-one"}, "LISTEN_FDNAMES"},
      {{"4242", "1", "a:b"}, "LISTEN_FDNAMES"},
  };
  for (const Case& c : cases) {
    auto sockets = ParseListenEnvironment(c.env, kPid);
    ASSERT_FALSE(sockets.ok()) << c.env.listen_pid << " " << c.env.listen_fds;
    EXPECT_EQ(sockets.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(sockets.status().message(), HasSubstr(c.variable));
  }
}

// Descriptors 3 and 4 of this test process, as a service manager leaves
// them: made here with dup2, restored afterwards.
class TakeActivatedSocketsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int fd : {3, 4}) saved_[fd - 3] = fcntl(fd, F_DUPFD_CLOEXEC, 100);
  }
  void TearDown() override {
    for (int fd : {3, 4}) {
      if (saved_[fd - 3] >= 0) {
        dup2(saved_[fd - 3], fd);
        close(saved_[fd - 3]);
      } else {
        close(fd);
      }
    }
  }
  // Puts `fd` at `target`, without close-on-exec, as a service manager
  // would; `fd` itself is moved out of the way first.
  static void Place(int fd, int target) {
    int high = fcntl(fd, F_DUPFD, 50);
    close(fd);
    ASSERT_EQ(dup2(high, target), target);
    close(high);
  }
  int saved_[2];
};

TEST_F(TakeActivatedSocketsTest, TakesOwnSocketsAndClearsTheEnvironment) {
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  int a = fcntl(pair[0], F_DUPFD, 60), b = fcntl(pair[1], F_DUPFD, 60);
  close(pair[0]);
  close(pair[1]);
  Place(a, 3);
  Place(b, 4);
  setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
  setenv("LISTEN_FDS", "2", 1);
  setenv("LISTEN_FDNAMES", "a:b", 1);

  auto sockets = TakeActivatedSockets();
  ASSERT_TRUE(sockets.ok()) << sockets.status();
  EXPECT_EQ(Fds(*sockets), (std::vector<int>{3, 4}));
  EXPECT_EQ((*sockets)[1].name, "b");
  EXPECT_NE(fcntl(3, F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_NE(fcntl(4, F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_EQ(getenv("LISTEN_PID"), nullptr);
  EXPECT_EQ(getenv("LISTEN_FDS"), nullptr);
  EXPECT_EQ(getenv("LISTEN_FDNAMES"), nullptr);
}

TEST_F(TakeActivatedSocketsTest, PassedDescriptorThatIsNotOpenIsAnError) {
  close(3);
  close(4);
  setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
  setenv("LISTEN_FDS", "1", 1);
  auto sockets = TakeActivatedSockets();
  ASSERT_FALSE(sockets.ok());
  EXPECT_EQ(sockets.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(sockets.status().message(), HasSubstr("descriptor 3"));
  EXPECT_EQ(getenv("LISTEN_FDS"), nullptr);
}

TEST_F(TakeActivatedSocketsTest, AnotherProcesssSocketsAreLeftAlone) {
  Place(open("/dev/null", O_RDONLY), 3);
  setenv("LISTEN_PID", std::to_string(getpid() + 1).c_str(), 1);
  setenv("LISTEN_FDS", "1", 1);
  auto sockets = TakeActivatedSockets();
  ASSERT_TRUE(sockets.ok());
  EXPECT_TRUE(sockets->empty());
  EXPECT_EQ(fcntl(3, F_GETFD) & FD_CLOEXEC, 0);
}

TEST(LocalSocketName, NamesAbstractPathAndOtherSockets) {
  const std::string abstract =
      absl::StrCat("portserver-activation-test-", getpid());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path + 1, abstract.data(), abstract.size());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr),
                 offsetof(sockaddr_un, sun_path) + 1 + abstract.size()),
            0);
  EXPECT_EQ(LocalSocketName(fd), "@" + abstract);
  close(fd);

  // TEST_TMPDIR is too long for sun_path.
  char dir[] = "/tmp/portserver-activation.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = absl::StrCat(dir, "/s");
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un path_addr{};
  path_addr.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof(path_addr.sun_path));
  std::memcpy(path_addr.sun_path, path.data(), path.size());
  ASSERT_EQ(
      bind(fd, reinterpret_cast<sockaddr*>(&path_addr), sizeof(path_addr)), 0);
  EXPECT_EQ(LocalSocketName(fd), path);
  close(fd);
  unlink(path.c_str());
  rmdir(dir);

  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_EQ(LocalSocketName(fd), "(unnamed)");
  close(fd);
  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_EQ(LocalSocketName(fd), "(not an AF_UNIX socket)");
  close(fd);
}

}  // namespace
}  // namespace portserver
