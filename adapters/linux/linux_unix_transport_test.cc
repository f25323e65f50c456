#include "adapters/linux/linux_unix_transport.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "adapters/fake/after_reply_handler.h"
#include "domain/request_codec.h"
#include "domain/transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace portserver {
namespace {

using ::testing::HasSubstr;
using End = Request::End;
using Options = LinuxUnixTransport::Options;

// A safety net so that a broken server fails a test instead of hanging it;
// never used to wait for something to happen.
constexpr int kClientTimeoutSeconds = 20;

std::string UniqueAbstractAddress() {
  static std::atomic<int> counter{0};
  return absl::StrCat("@portserver-test-", getpid(), "-", counter++);
}

// A directory for path sockets, short enough for sun_path: TEST_TMPDIR,
// or else a fresh directory in /tmp that is removed at exit.
std::string SocketDir() {
  static const std::string* dir = [] {
    const char* tmp = std::getenv("TEST_TMPDIR");
    if (tmp != nullptr && std::strlen(tmp) <= 90) return new std::string(tmp);
    static char pattern[] = "/tmp/portserver-test.XXXXXX";
    if (mkdtemp(pattern) == nullptr) return new std::string("/tmp");
    std::atexit([] { std::filesystem::remove_all(pattern); });
    return new std::string(pattern);
  }();
  return *dir;
}

std::string UniqueSocketPath() {
  static std::atomic<int> counter{0};
  return absl::StrCat(SocketDir(), "/s", counter++);
}

// Built here, independently of the transport: "@x" is "\0x", no NUL after.
std::pair<sockaddr_un, socklen_t> ClientAddress(const std::string& address) {
  sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, address.data(), address.size());
  socklen_t length = offsetof(sockaddr_un, sun_path) + address.size();
  if (address[0] == '@') {
    addr.sun_path[0] = '\0';
  } else {
    ++length;  // The path's NUL.
  }
  return {addr, length};
}

int NewClientSocket() {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval timeout{kClientTimeoutSeconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  return fd;
}

bool ConnectSocket(int fd, const std::string& address) {
  auto [addr, length] = ClientAddress(address);
  return connect(fd, reinterpret_cast<sockaddr*>(&addr), length) == 0;
}

// A connected client socket, or -1.
int Connect(const std::string& address) {
  int fd = NewClientSocket();
  if (fd >= 0 && !ConnectSocket(fd, address)) {
    close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

// Everything the server sends until it closes; nullopt if it never does.
// ECONNRESET counts as a close: the server closed with our extra bytes
// unread.
std::optional<std::string> ReadUntilEof(int fd) {
  std::string reply;
  char buffer[256];
  while (true) {
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n > 0) {
      reply.append(buffer, static_cast<size_t>(n));
    } else if (n == 0 || errno == ECONNRESET) {
      return reply;
    } else if (errno != EINTR) {
      return std::nullopt;
    }
  }
}

// Connects, sends `data`, reads the reply until EOF. nullopt on failure.
std::optional<std::string> Call(const std::string& address,
                                const std::string& data) {
  int fd = Connect(address);
  if (fd < 0) return std::nullopt;
  std::optional<std::string> reply;
  if (SendAll(fd, data)) reply = ReadUntilEof(fd);
  close(fd);
  return reply;
}

// True if the server has neither sent anything nor closed `fd`.
bool StillOpenAndSilent(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 0;
}

struct Seen {
  std::string data;
  End end;
  PeerCredentials peer;
};

class RecordingHandler final : public RequestHandler {
 public:
  explicit RecordingHandler(std::function<std::string(const Request&)> reply =
                                [](const Request&) {
                                  return std::string("ok\n");
                                })
      : reply_(std::move(reply)) {}

  std::string HandleRequest(const Request& request) override {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.push_back(Seen{std::string(request.data), request.end, request.peer});
    return reply_(request);
  }

  std::vector<Seen> seen() const {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

  // A descriptor kept only to save work: ReleaseDescriptors() closes it.
  void KeepSpare(int fd) { spare_.store(fd); }
  bool ReleaseDescriptors() override {
    ++releases_;
    int fd = spare_.exchange(-1);
    if (fd < 0) return false;
    close(fd);
    return true;
  }
  void RefusedForDescriptors(bool process_limit) override {
    ++refused_;
    if (process_limit) ++refused_at_limit_;
  }
  int releases() const { return releases_.load(); }
  int refused() const { return refused_.load(); }
  int refused_at_limit() const { return refused_at_limit_.load(); }

 private:
  const std::function<std::string(const Request&)> reply_;
  mutable std::mutex mu_;
  std::vector<Seen> seen_;
  std::atomic<int> spare_{-1};
  std::atomic<int> releases_{0};
  std::atomic<int> refused_{0};
  std::atomic<int> refused_at_limit_{0};
};

// Runs Serve() on a thread until Stop() or destruction.
class ServingThread {
 public:
  ServingThread(LinuxUnixTransport& transport, RequestHandler& handler)
      : transport_(transport),
        thread_([this, &handler] { result_ = transport_.Serve(handler); }) {}
  ~ServingThread() {
    if (thread_.joinable()) Stop();
  }
  ServeResult Stop() {
    transport_.Shutdown();
    thread_.join();
    return result_;
  }

 private:
  LinuxUnixTransport& transport_;
  ServeResult result_;
  std::thread thread_;
};

Options AbstractOptions() {
  Options options;
  options.address = UniqueAbstractAddress();
  return options;
}

std::unique_ptr<LinuxUnixTransport> MustCreate(const Options& options) {
  absl::StatusOr<std::unique_ptr<LinuxUnixTransport>> transport =
      LinuxUnixTransport::Create(options);
  EXPECT_TRUE(transport.ok()) << transport.status();
  return transport.ok() ? std::move(*transport) : nullptr;
}

TEST(LinuxUnixTransport, NewlineRequestGetsTheReplyWithPeerCredentials) {
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(AbstractOptions());
  ASSERT_NE(transport, nullptr);
  RecordingHandler handler([](const Request&) { return "15000\n"; });
  ServingThread server(*transport, handler);

  EXPECT_EQ(Call(transport->address(), "1234\n"), "15000\n");

  std::vector<Seen> seen = handler.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].data, "1234\n");
  EXPECT_EQ(seen[0].end, End::kNewline);
  EXPECT_TRUE(seen[0].peer.known);
  EXPECT_EQ(seen[0].peer.pid, getpid());
  EXPECT_EQ(seen[0].peer.uid, getuid());
  EXPECT_TRUE(server.Stop().ok);
}

// AfterReply runs once the client has its whole reply, once per request,
// denials too (adapters/fake/after_reply_handler.h).
TEST(LinuxUnixTransport, AfterReplyRunsOnceTheClientHasItsReply) {
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(AbstractOptions());
  ASSERT_NE(transport, nullptr);
  AfterReplyHandler handler("deny\n");
  ServingThread server(*transport, handler);
  EXPECT_EQ(Call(transport->address(), "1234\n"), "15000\n");
  handler.ClientDone();
  EXPECT_EQ(Call(transport->address(), "deny\n"), "");
  handler.ClientDone();
  EXPECT_TRUE(server.Stop().ok);
  EXPECT_EQ(handler.calls(), 2);
  EXPECT_EQ(handler.too_early(), 0);
}

TEST(LinuxUnixTransport, DeliversUpToTheFirstNewlineOnly) {
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(AbstractOptions());
  ASSERT_NE(transport, nullptr);
  RecordingHandler handler;
  ServingThread server(*transport, handler);

  EXPECT_EQ(Call(transport->address(), "12\n34\n"), "ok\n");

  std::vector<Seen> seen = handler.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].data, "12\n");
  EXPECT_EQ(seen[0].end, End::kNewline);
}

TEST(LinuxUnixTransport, RequestSentInPiecesIsAssembled) {
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(AbstractOptions());
  ASSERT_NE(transport, nullptr);
  RecordingHandler handler;
  ServingThread server(*transport, handler);

  int fd = Connect(transport->address());
  ASSERT_GE(fd, 0);
  for (const char* piece : {"1", "23", "4", "\n"}) {
    ASSERT_TRUE(SendAll(fd, piece));
  }
  EXPECT_EQ(ReadUntilEof(fd), "ok\n");
  close(fd);

  std::vector<Seen> seen = handler.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].data, "1234\n");
  EXPECT_EQ(seen[0].end, End::kNewline);
}

TEST(LinuxUnixTransport, EndOfStreamWithoutNewlineDeliversWhatArrived) {
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(AbstractOptions());
  ASSERT_NE(transport, nullptr);
  RecordingHandler handler;
  ServingThread server(*transport, handler);

  for (const std::string& data : {std::string("77"), std::string()}) {
    int fd = Connect(transport->address());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, data));
    ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
    EXPECT_EQ(ReadUntilEof(fd), "ok\n");
    close(fd);
  }

  std::vector<Seen> seen = handler.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].data, "77");
  EXPECT_EQ(seen[0].end, End::kEof);
  EXPECT_EQ(seen[1].data, "");
  EXPECT_EQ(seen[1].end, End::kEof);
}

TEST(LinuxUnixTransport, StopsReadingAtTheSizeLimit) {
  Options options = AbstractOptions();
  ASSERT_EQ(options.max_request_bytes, kMaxRequestBytes);
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(options);
  ASSERT_NE(transport, nullptr);
  RecordingHandler handler;
  ServingThread server(*transport, handler);

  const std::string data(kMaxRequestBytes + 1, '7');
  EXPECT_EQ(Call(transport->address(), data), "ok\n");

  std::vector<Seen> seen = handler.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].data, std::string(kMaxRequestBytes, '7'));
  EXPECT_EQ(seen[0].end, End::kTooLong);
}

TEST(LinuxUnixTransport, ExtendedRequestMayBeLongerThanAPlainOne) {
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(AbstractOptions());
  ASSERT_NE(transport, nullptr);
  RecordingHandler handler;
  ServingThread server(*transport, handler);

  // Sent in pieces: the limit follows the first bytes as they arrive.
  const std::string line =
      "portserver/1 allocate pid=1234 count=20 label=" + std::string(200, 'x') +
      "\n";
  int fd = Connect(transport->address());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, line.substr(0, 3)));
  ASSERT_TRUE(SendAll(fd, line.substr(3)));
  EXPECT_EQ(ReadUntilEof(fd), "ok\n");
  close(fd);
  const std::string too_long =
      "portserver/" + std::string(kMaxExtendedRequestBytes, 'p');
  EXPECT_EQ(Call(transport->address(), too_long), "ok\n");
  // Other letters start a plain (malformed) request: 20 bytes at most.
  const std::string junk(kMaxRequestBytes + 10, 'j');
  EXPECT_EQ(Call(transport->address(), junk), "ok\n");

  std::vector<Seen> seen = handler.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].data, line);
  EXPECT_EQ(seen[0].end, End::kNewline);
  EXPECT_EQ(seen[1].data, too_long.substr(0, kMaxExtendedRequestBytes));
  EXPECT_EQ(seen[1].end, End::kTooLong);
  EXPECT_EQ(seen[2].data, std::string(kMaxRequestBytes, 'j'));
  EXPECT_EQ(seen[2].end, End::kTooLong);
}

TEST(LinuxUnixTransport, NewlineAtTheSizeLimitIsARequest) {
  Options options = AbstractOptions();
  options.max_request_bytes = 5;
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(options);
  ASSERT_NE(transport, nullptr);
  RecordingHandler handler;
  ServingThread server(*transport, handler);

  EXPECT_EQ(Call(transport->address(), "1234\n"), "ok\n");

  std::vector<Seen> seen = handler.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].data, "1234\n");
  EXPECT_EQ(seen[0].end, End::kNewline);
}

TEST(LinuxUnixTransport, IdleClientDoesNotStallOthersAndTimesOut) {
  Options options = AbstractOptions();
  options.read_timeout = absl::Seconds(1);
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(options);
  ASSERT_NE(transport, nullptr);
  RecordingHandler handler;
  ServingThread server(*transport, handler);

  auto connected = std::chrono::steady_clock::now();
  int idle = Connect(transport->address());
  ASSERT_GE(idle, 0);
  // Accepted after `idle` (the backlog is FIFO), answered before it.
  EXPECT_EQ(Call(transport->address(), "2\n"), "ok\n");
  EXPECT_TRUE(StillOpenAndSilent(idle));
  std::vector<Seen> seen = handler.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].data, "2\n");

  EXPECT_EQ(ReadUntilEof(idle), "ok\n");
  auto waited = std::chrono::steady_clock::now() - connected;
  close(idle);
  EXPECT_GE(waited, std::chrono::seconds(1));
  seen = handler.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].data, "");
  EXPECT_EQ(seen[1].end, End::kTimedOut);
  EXPECT_EQ(seen[1].peer.pid, getpid());
}

TEST(LinuxUnixTransport, TimeoutDeliversThePartialRequest) {
  Options options = AbstractOptions();
  options.read_timeout = absl::Milliseconds(200);
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(options);
  ASSERT_NE(transport, nullptr);
  RecordingHandler handler([](const Request&) { return ""; });
  ServingThread server(*transport, handler);

  auto connected = std::chrono::steady_clock::now();
  EXPECT_EQ(Call(transport->address(), "12"), "");
  EXPECT_GE(std::chrono::steady_clock::now() - connected,
            std::chrono::milliseconds(200));

  std::vector<Seen> seen = handler.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].data, "12");
  EXPECT_EQ(seen[0].end, End::kTimedOut);
}

TEST(LinuxUnixTransport, ServesFiftyConcurrentClients) {
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(AbstractOptions());
  ASSERT_NE(transport, nullptr);
  RecordingHandler handler(
      [](const Request& request) { return "re:" + std::string(request.data); });
  ServingThread server(*transport, handler);

  constexpr int kClients = 50;
  std::vector<std::optional<std::string>> replies(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      replies[i] = Call(transport->address(), absl::StrCat(i, "\n"));
    });
  }
  for (std::thread& client : clients) client.join();

  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(replies[i], absl::StrCat("re:", i, "\n")) << "client " << i;
  }
  EXPECT_EQ(handler.seen().size(), static_cast<size_t>(kClients));
}

TEST(LinuxUnixTransport, EmptyReplyClosesWithoutBytes) {
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(AbstractOptions());
  ASSERT_NE(transport, nullptr);
  RecordingHandler handler([](const Request&) { return ""; });
  ServingThread server(*transport, handler);

  EXPECT_EQ(Call(transport->address(), "1\n"), "");
  EXPECT_EQ(handler.seen().size(), 1u);
}

TEST(LinuxUnixTransport, AtTheCapTheOldestConnectionMakesRoom) {
  Options options = AbstractOptions();
  options.max_connections = 2;
  options.read_timeout = absl::Seconds(60);
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(options);
  ASSERT_NE(transport, nullptr);
  RecordingHandler handler;
  ServingThread server(*transport, handler);

  int idle = Connect(transport->address());
  ASSERT_GE(idle, 0);
  ASSERT_TRUE(SendAll(idle, "12"));  // Never completes its request.
  int slow = Connect(transport->address());
  ASSERT_GE(slow, 0);
  // At the cap: the next client evicts `idle`, the oldest.
  int prompt = Connect(transport->address());
  ASSERT_GE(prompt, 0);
  EXPECT_EQ(ReadUntilEof(idle), "") << "evicted without a reply";
  close(idle);
  ASSERT_TRUE(SendAll(prompt, "1\n"));
  EXPECT_EQ(ReadUntilEof(prompt), "ok\n");
  close(prompt);
  ASSERT_TRUE(SendAll(slow, "2\n"));
  EXPECT_EQ(ReadUntilEof(slow), "ok\n");
  close(slow);

  std::vector<Seen> seen = handler.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].end, End::kOverCapacity);
  EXPECT_EQ(seen[0].data, "12");
  EXPECT_EQ(seen[1].data, "1\n");
  EXPECT_EQ(seen[2].data, "2\n");
}

TEST(LinuxUnixTransport, IdleFloodNeverLocksOutAPromptClient) {
  Options options = AbstractOptions();
  options.max_connections = 8;
  options.read_timeout = absl::Seconds(60);
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(options);
  ASSERT_NE(transport, nullptr);
  RecordingHandler handler;
  ServingThread server(*transport, handler);
  std::vector<int> idle;
  for (int i = 0; i < 100; ++i) {
    int fd = Connect(transport->address());
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  // The first try gets through, although 100 idle clients are connected.
  int prompt = Connect(transport->address());
  ASSERT_GE(prompt, 0);
  ASSERT_TRUE(SendAll(prompt, "1\n"));
  EXPECT_EQ(ReadUntilEof(prompt), "ok\n");
  close(prompt);
  for (int fd : idle) close(fd);
}

TEST(LinuxUnixTransport, ShutdownFromAnotherThreadClosesConnections) {
  Options options = AbstractOptions();
  options.read_timeout = absl::Seconds(60);
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(options);
  ASSERT_NE(transport, nullptr);
  RecordingHandler handler;
  ServingThread server(*transport, handler);

  int idle = Connect(transport->address());
  ASSERT_GE(idle, 0);
  // Served after `idle` was accepted.
  EXPECT_EQ(Call(transport->address(), "1\n"), "ok\n");

  ServeResult result = server.Stop();
  EXPECT_TRUE(result.ok) << result.error;
  // Closed by Serve() itself: the transport still exists.
  EXPECT_EQ(ReadUntilEof(idle), "");
  close(idle);
  EXPECT_EQ(handler.seen().size(), 1u);
}

TEST(LinuxUnixTransport, ShutdownBeforeServeMakesServeReturnAtOnce) {
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(AbstractOptions());
  ASSERT_NE(transport, nullptr);
  RecordingHandler handler;
  transport->Shutdown();
  EXPECT_TRUE(transport->Serve(handler).ok);
  EXPECT_TRUE(transport->Serve(handler).ok);  // Stays shut down.
}

// Connects a client made beforehand while every descriptor below the limit
// is taken (the limit lowered to the lowest free one: accept4() gets
// EMFILE), sends `request` if not empty and reads until the end of the
// stream; the limit is restored before returning. Nullopt if the client
// could not connect or send.
std::optional<std::string> AskWithEveryDescriptorTaken(
    const std::string& address, std::string_view request) {
  int client = NewClientSocket();
  if (client < 0) return std::nullopt;
  rlimit saved;
  int lowest_free = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (getrlimit(RLIMIT_NOFILE, &saved) != 0 || lowest_free < 0) {
    if (lowest_free >= 0) close(lowest_free);
    close(client);
    return std::nullopt;
  }
  close(lowest_free);
  rlimit lowered = saved;
  lowered.rlim_cur = static_cast<rlim_t>(lowest_free);
  std::optional<std::string> reply;
  if (setrlimit(RLIMIT_NOFILE, &lowered) == 0) {
    bool sent = ConnectSocket(client, address) &&
                (request.empty() ||
                 send(client, request.data(), request.size(), MSG_NOSIGNAL) ==
                     static_cast<ssize_t>(request.size()));
    if (sent) reply = ReadUntilEof(client);
    EXPECT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  }
  close(client);
  return reply;
}

TEST(LinuxUnixTransport, OutOfDescriptorsTurnsClientsAwayAndRecovers) {
  Options options = AbstractOptions();
  options.read_timeout = absl::Seconds(60);
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(options);
  ASSERT_NE(transport, nullptr);
  RecordingHandler handler;
  ServingThread server(*transport, handler);
  ASSERT_EQ(Call(transport->address(), "1\n"), "ok\n");

  EXPECT_EQ(AskWithEveryDescriptorTaken(transport->address(), ""), "");
  // The handler was asked for descriptors (it kept none) and told of the
  // client turned away, to count and log it.
  EXPECT_GE(handler.releases(), 1);
  EXPECT_EQ(handler.refused(), 1);
  EXPECT_EQ(handler.refused_at_limit(), 1);  // EMFILE: the process's limit.

  EXPECT_EQ(Call(transport->address(), "2\n"), "ok\n");
  std::vector<Seen> seen = handler.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].data, "2\n");
  EXPECT_TRUE(server.Stop().ok);
}

// Out of descriptors, what the handler keeps only to save work (the
// process probe's remembered pidfds) gives way, and the client is served
// rather than turned away (a new user's trial: under a low limit every
// client was reset while pidfds sat in that cache).
TEST(LinuxUnixTransport, OutOfDescriptorsTheHandlersSpareOnesGiveWay) {
  Options options = AbstractOptions();
  options.read_timeout = absl::Seconds(60);
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(options);
  ASSERT_NE(transport, nullptr);
  RecordingHandler handler;
  ServingThread server(*transport, handler);
  ASSERT_EQ(Call(transport->address(), "1\n"), "ok\n");

  int spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(spare, 0);
  handler.KeepSpare(spare);
  EXPECT_EQ(AskWithEveryDescriptorTaken(transport->address(), "2\n"), "ok\n");
  EXPECT_EQ(handler.releases(), 1);
  EXPECT_EQ(handler.refused(), 0);
  EXPECT_TRUE(server.Stop().ok);
}

TEST(LinuxUnixTransport, AbstractAddressInUseIsAnError) {
  Options options = AbstractOptions();
  std::unique_ptr<LinuxUnixTransport> first = MustCreate(options);
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<LinuxUnixTransport>> second =
      LinuxUnixTransport::Create(options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(second.status().message(), HasSubstr("in use"));
  EXPECT_THAT(second.status().message(), HasSubstr(options.address));
}

TEST(LinuxUnixTransport, LongestAbstractNameHasNoTrailingNul) {
  Options options;
  // sun_path is 108 bytes: the leading NUL and 107 more.
  options.address = UniqueAbstractAddress();
  options.address +=
      std::string(sizeof(sockaddr_un::sun_path) - options.address.size(), 'x');
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(options);
  ASSERT_NE(transport, nullptr);
  RecordingHandler handler;
  ServingThread server(*transport, handler);
  // The client's address is exactly offsetof(sun_path) + size() long.
  EXPECT_EQ(Call(options.address, "1\n"), "ok\n");
}

TEST(LinuxUnixTransport, InvalidOptionsAreRejected) {
  struct Case {
    std::string address;
    absl::Duration read_timeout = absl::Seconds(5);
    size_t max_request_bytes = kMaxRequestBytes;
    size_t max_connections = 1024;
  };
  const std::string too_long_abstract =
      "@" + std::string(sizeof(sockaddr_un::sun_path), 'a');
  const std::string too_long_path =
      "/tmp/" + std::string(sizeof(sockaddr_un::sun_path), 'p');
  std::vector<Case> cases = {
      {""},
      {"@"},
      {too_long_abstract},
      {too_long_path},
      {std::string("@a\0b", 4)},
      {UniqueAbstractAddress(), absl::ZeroDuration()},
      {UniqueAbstractAddress(), absl::Seconds(5), 0},
      {UniqueAbstractAddress(), absl::Seconds(5), kMaxRequestBytes, 0},
  };
  for (const Case& c : cases) {
    Options options;
    options.address = c.address;
    options.read_timeout = c.read_timeout;
    options.max_request_bytes = c.max_request_bytes;
    options.max_connections = c.max_connections;
    absl::StatusOr<std::unique_ptr<LinuxUnixTransport>> transport =
        LinuxUnixTransport::Create(options);
    ASSERT_FALSE(transport.ok()) << c.address;
    EXPECT_EQ(transport.status().code(), absl::StatusCode::kInvalidArgument)
        << transport.status();
  }
  for (const std::string& address : {too_long_abstract, too_long_path}) {
    Options options;
    options.address = address;
    EXPECT_THAT(LinuxUnixTransport::Create(options).status().message(),
                HasSubstr(address));
  }
}

TEST(LinuxUnixTransport, PathSocketIsOpenToAllAndRemovedAfterward) {
  Options options;
  options.address = UniqueSocketPath();
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(options);
  ASSERT_NE(transport, nullptr);
  struct stat st;
  ASSERT_EQ(lstat(options.address.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0666u);
  {
    RecordingHandler handler;
    ServingThread server(*transport, handler);
    EXPECT_EQ(Call(options.address, "1\n"), "ok\n");
  }
  transport.reset();
  EXPECT_NE(lstat(options.address.c_str(), &st), 0);
  EXPECT_EQ(errno, ENOENT);
}

// A path socket whose file is removed while serving (systemd-tmpfiles ages
// files in /tmp out; a stray rm) is bound again: before, the server ran on,
// unreachable there, and said nothing (a scenario tester).
TEST(LinuxUnixTransport, RemovedPathSocketIsBoundAgain) {
  Options options;
  options.address = UniqueSocketPath();
  options.path_check_interval = absl::Milliseconds(20);
  std::mutex mu;
  std::vector<std::string> notices;
  options.notice = [&](const std::string& line) {
    std::lock_guard<std::mutex> lock(mu);
    notices.push_back(line);
  };
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(options);
  ASSERT_NE(transport, nullptr);
  RecordingHandler handler;
  ServingThread server(*transport, handler);
  ASSERT_EQ(Call(options.address, "1\n"), "ok\n");
  ASSERT_EQ(unlink(options.address.c_str()), 0);
  EXPECT_EQ(Call(options.address, "2\n"), std::nullopt);  // ENOENT.
  // Until the server has bound it again (a condition, polled).
  struct stat st;
  for (int i = 0; i < 500 && lstat(options.address.c_str(), &st) != 0; ++i) {
    usleep(10000);
  }
  ASSERT_EQ(lstat(options.address.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(Call(options.address, "3\n"), "ok\n");
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(notices.size(), 1u);
    EXPECT_THAT(notices[0], ::testing::HasSubstr("was removed"));
  }
  // Something else at the path now: left alone, and told once.
  ASSERT_EQ(unlink(options.address.c_str()), 0);
  int other = open(options.address.c_str(), O_CREAT | O_WRONLY, 0600);
  ASSERT_GE(other, 0);
  close(other);
  for (int i = 0; i < 500; ++i) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (notices.size() > 1) break;
    }
    usleep(10000);
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(notices.size(), 2u);
    EXPECT_THAT(notices[1], ::testing::HasSubstr("names something else"));
  }
  ASSERT_EQ(lstat(options.address.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  server.Stop();
  transport.reset();
  ASSERT_EQ(lstat(options.address.c_str(), &st), 0);  // Not ours: kept.
  unlink(options.address.c_str());
}

TEST(LinuxUnixTransport, StaleSocketFileIsReplaced) {
  Options options;
  options.address = UniqueSocketPath();
  {
    int stale = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto [addr, length] = ClientAddress(options.address);
    ASSERT_EQ(bind(stale, reinterpret_cast<sockaddr*>(&addr), length), 0);
    close(stale);  // Leaves the file behind, as a crashed server does.
  }
  struct stat before;
  ASSERT_EQ(lstat(options.address.c_str(), &before), 0);
  ASSERT_TRUE(S_ISSOCK(before.st_mode));

  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(options);
  ASSERT_NE(transport, nullptr);
  RecordingHandler handler;
  ServingThread server(*transport, handler);
  EXPECT_EQ(Call(options.address, "1\n"), "ok\n");
}

TEST(LinuxUnixTransport, LiveServerAtPathIsNotClobbered) {
  Options options;
  options.address = UniqueSocketPath();
  std::unique_ptr<LinuxUnixTransport> first = MustCreate(options);
  ASSERT_NE(first, nullptr);
  RecordingHandler handler;
  ServingThread server(*first, handler);
  struct stat before;
  ASSERT_EQ(lstat(options.address.c_str(), &before), 0);

  absl::StatusOr<std::unique_ptr<LinuxUnixTransport>> second =
      LinuxUnixTransport::Create(options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(second.status().message(), HasSubstr("in use"));

  struct stat after;
  ASSERT_EQ(lstat(options.address.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_EQ(Call(options.address, "1\n"), "ok\n");
}

TEST(LinuxUnixTransport, RegularFileAtPathIsKeptAndCreateFails) {
  Options options;
  options.address = UniqueSocketPath();
  {
    std::ofstream file(options.address);
    file << "precious";
  }
  absl::StatusOr<std::unique_ptr<LinuxUnixTransport>> transport =
      LinuxUnixTransport::Create(options);
  ASSERT_FALSE(transport.ok());
  EXPECT_EQ(transport.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(transport.status().message(), HasSubstr(options.address));
  std::ifstream file(options.address);
  std::string contents;
  file >> contents;
  EXPECT_EQ(contents, "precious");
}

TEST(LinuxUnixTransport, DestructorLeavesAnotherServersSocketAlone) {
  Options options;
  options.address = UniqueSocketPath();
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(options);
  ASSERT_NE(transport, nullptr);
  // Someone removes our file and binds a socket of their own there.
  ASSERT_EQ(unlink(options.address.c_str()), 0);
  int other = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto [addr, length] = ClientAddress(options.address);
  ASSERT_EQ(bind(other, reinterpret_cast<sockaddr*>(&addr), length), 0);

  transport.reset();
  struct stat st;
  EXPECT_EQ(lstat(options.address.c_str(), &st), 0);
  close(other);
}

TEST(LinuxUnixTransport, MissingDirectoryIsAnError) {
  Options options;
  options.address = SocketDir() + "/no/s";
  absl::StatusOr<std::unique_ptr<LinuxUnixTransport>> transport =
      LinuxUnixTransport::Create(options);
  ASSERT_FALSE(transport.ok());
  EXPECT_EQ(transport.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(transport.status().message(), HasSubstr(options.address));
}

// --- Several listeners and sockets passed in (socket activation) ---------

// A socket made here as systemd would pass it: bound to `address` and, if
// `listening`, listening. Returns the descriptor, or -1.
int MakeSocket(int family, int type, const std::string& address,
               bool listening) {
  int fd = socket(family, type | SOCK_CLOEXEC, 0);
  if (fd < 0 || address.empty()) return fd;
  auto [addr, length] = ClientAddress(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), length) != 0 ||
      (listening && listen(fd, 16) != 0)) {
    close(fd);
    return -1;
  }
  return fd;
}

bool IsOpen(int fd) { return fcntl(fd, F_GETFD) >= 0; }

TEST(LinuxUnixTransport, SeveralAddressesFeedOneHandler) {
  Options options;
  options.address = UniqueAbstractAddress();
  options.extra_addresses = {UniqueSocketPath(), UniqueAbstractAddress()};
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(options);
  ASSERT_NE(transport, nullptr);
  std::vector<LinuxUnixTransport::ListenerInfo> listeners =
      transport->listeners();
  ASSERT_EQ(listeners.size(), 3u);
  EXPECT_EQ(listeners[0].name, options.address);
  EXPECT_EQ(listeners[1].name, options.extra_addresses[0]);
  EXPECT_EQ(listeners[2].name, options.extra_addresses[1]);
  int n = 0;
  RecordingHandler handler(
      [&n](const Request&) { return absl::StrCat(15000 + n++, "\n"); });
  ServingThread server(*transport, handler);

  EXPECT_EQ(Call(options.address, "1\n"), "15000\n");
  EXPECT_EQ(Call(options.extra_addresses[0], "2\n"), "15001\n");
  EXPECT_EQ(Call(options.extra_addresses[1], "3\n"), "15002\n");
  ASSERT_EQ(handler.seen().size(), 3u);
  EXPECT_EQ(handler.seen()[2].data, "3\n");
  EXPECT_TRUE(server.Stop().ok);
  transport.reset();
  struct stat st;
  EXPECT_NE(lstat(options.extra_addresses[0].c_str(), &st), 0);
}

TEST(LinuxUnixTransport, SameAddressTwiceIsAnError) {
  Options options;
  options.address = UniqueAbstractAddress();
  options.extra_addresses = {options.address};
  absl::StatusOr<std::unique_ptr<LinuxUnixTransport>> transport =
      LinuxUnixTransport::Create(options);
  ASSERT_FALSE(transport.ok());
  EXPECT_EQ(transport.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(transport.status().message(), HasSubstr("twice"));
}

TEST(LinuxUnixTransport, FailureOnALaterAddressRemovesEarlierFiles) {
  Options taken = AbstractOptions();
  std::unique_ptr<LinuxUnixTransport> first = MustCreate(taken);
  ASSERT_NE(first, nullptr);
  Options options;
  options.address = UniqueSocketPath();
  options.extra_addresses = {taken.address};
  absl::StatusOr<std::unique_ptr<LinuxUnixTransport>> second =
      LinuxUnixTransport::Create(options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(second.status().message(), HasSubstr(taken.address));
  struct stat st;
  EXPECT_NE(lstat(options.address.c_str(), &st), 0);
}

TEST(LinuxUnixTransport, PassedListeningSocketIsServedAsItIs) {
  const std::string abstract = UniqueAbstractAddress();
  const std::string path = UniqueSocketPath();
  int abstract_fd = MakeSocket(AF_UNIX, SOCK_STREAM, abstract, true);
  int path_fd = MakeSocket(AF_UNIX, SOCK_STREAM, path, true);
  ASSERT_GE(abstract_fd, 0);
  ASSERT_GE(path_fd, 0);
  struct stat before;
  ASSERT_EQ(lstat(path.c_str(), &before), 0);
  // Blocking, as systemd passes them: the transport must not block on them.
  Options options;
  options.inherited = {{abstract_fd, abstract}, {path_fd, path}};
  std::unique_ptr<LinuxUnixTransport> transport = MustCreate(options);
  ASSERT_NE(transport, nullptr);
  std::vector<LinuxUnixTransport::ListenerInfo> listeners =
      transport->listeners();
  ASSERT_EQ(listeners.size(), 2u);
  EXPECT_EQ(listeners[0].fd, abstract_fd);
  EXPECT_TRUE(listeners[0].inherited);
  EXPECT_EQ(listeners[1].fd, path_fd);
  EXPECT_NE(fcntl(abstract_fd, F_GETFL) & O_NONBLOCK, 0);
  EXPECT_NE(fcntl(abstract_fd, F_GETFD) & FD_CLOEXEC, 0);
  {
    RecordingHandler handler;
    ServingThread server(*transport, handler);
    EXPECT_EQ(Call(abstract, "1\n"), "ok\n");
    EXPECT_EQ(Call(path, "2\n"), "ok\n");
    EXPECT_EQ(Call(abstract, "3\n"), "ok\n");
    EXPECT_EQ(handler.seen().size(), 3u);
  }
  // Neither re-bound nor touched: the path still names the passed socket,
  // and it stays after the transport is gone (its owner removes it).
  struct stat after;
  ASSERT_EQ(lstat(path.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_EQ(after.st_mode, before.st_mode);
  transport.reset();
  EXPECT_EQ(lstat(path.c_str(), &after), 0);
  EXPECT_FALSE(IsOpen(abstract_fd));
  EXPECT_FALSE(IsOpen(path_fd));
  unlink(path.c_str());
}

TEST(LinuxUnixTransport, PassedSocketOfTheWrongKindIsAnError) {
  struct Case {
    const char* what;
    int fd;
    const char* message;
  };
  std::vector<Case> cases = {
      {"datagram",
       MakeSocket(AF_UNIX, SOCK_DGRAM, UniqueAbstractAddress(), false),
       "AF_UNIX SOCK_DGRAM"},
      {"seqpacket",
       MakeSocket(AF_UNIX, SOCK_SEQPACKET, UniqueAbstractAddress(), true),
       "AF_UNIX SOCK_SEQPACKET"},
      {"tcp", MakeSocket(AF_INET, SOCK_STREAM, "", false),
       "AF_INET SOCK_STREAM"},
      {"not listening",
       MakeSocket(AF_UNIX, SOCK_STREAM, UniqueAbstractAddress(), false),
       "not listening"},
      {"file", open("/dev/null", O_RDONLY | O_CLOEXEC), "not a socket"},
  };
  for (const Case& c : cases) {
    ASSERT_GE(c.fd, 0) << c.what;
    Options options;
    // A path to bind as well: a bad passed socket must leave no file.
    options.address = UniqueSocketPath();
    options.inherited = {{c.fd, "passed"}};
    absl::StatusOr<std::unique_ptr<LinuxUnixTransport>> transport =
        LinuxUnixTransport::Create(options);
    ASSERT_FALSE(transport.ok()) << c.what;
    EXPECT_EQ(transport.status().code(), absl::StatusCode::kInvalidArgument)
        << c.what;
    EXPECT_THAT(transport.status().message(), HasSubstr(c.message)) << c.what;
    EXPECT_THAT(transport.status().message(),
                HasSubstr(absl::StrCat("descriptor ", c.fd)))
        << c.what;
    EXPECT_FALSE(IsOpen(c.fd)) << c.what << ": closed even on failure";
    struct stat st;
    EXPECT_NE(lstat(options.address.c_str(), &st), 0) << c.what;
  }
}

}  // namespace
}  // namespace portserver
