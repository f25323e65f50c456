#include "adapters/windows/windows_pipe_transport.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "adapters/fake/after_reply_handler.h"
#include "adapters/windows/python_style_pipe_client.h"
#include "adapters/windows/windows_error.h"
#include "adapters/windows/windows_test_util.h"
#include "adapters/windows/windows_text.h"
#include "adapters/windows/windows_user.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace portserver {
namespace {

using ::testing::HasSubstr;

// Records every request; answers a complete one with "<n>\n", where n counts
// up from 10000 (at most 6 bytes, as python reads), anything else with "".
class RecordingHandler final : public RequestHandler {
 public:
  struct Seen {
    std::string data;
    Request::End end;
    PeerCredentials peer;
  };
  std::string HandleRequest(const Request& request) override {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.push_back(Seen{std::string(request.data), request.end, request.peer});
    changed_.notify_all();
    if (request.end != Request::End::kNewline) return "";
    return std::to_string(10000 + seen_.size()) + "\n";
  }
  std::vector<Seen> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  // Waits (bounded, as a failure guard) until `n` requests were seen.
  bool WaitForCount(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, std::chrono::seconds(30),
                             [&] { return seen_.size() >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<Seen> seen_;
};

// A transport serving on its own thread until the fixture ends.
class WindowsPipeTransportTest : public ::testing::Test {
 protected:
  void Start(WindowsPipeTransport::Options options) {
    address_ = options.address;
    auto transport = WindowsPipeTransport::Create(options);
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = std::move(*transport);
    thread_ = std::thread([this] { result_ = transport_->Serve(handler_); });
  }
  WindowsPipeTransport::Options DefaultOptions() {
    WindowsPipeTransport::Options options;
    options.address = UniquePipeAddress("transport");
    return options;
  }
  void TearDown() override { Stop(); }
  void Stop() {
    if (thread_.joinable()) {
      transport_->Shutdown();
      thread_.join();
      EXPECT_TRUE(result_.ok) << result_.error;
    }
  }
  // Opens the pipe as a client, as python does (no request sent yet).
  ScopedHandle Connect() {
    std::string name = "\\\\.\\pipe\\" + address_.substr(1);
    return ScopedHandle(CreateFileW(Widen(name).c_str(),
                                    GENERIC_READ | GENERIC_WRITE, 0, nullptr,
                                    OPEN_EXISTING, 0, nullptr));
  }

  std::string address_;
  RecordingHandler handler_;
  std::unique_ptr<WindowsPipeTransport> transport_;
  std::thread thread_;
  ServeResult result_;
};

TEST(WindowsPipeTransportName, MapsTheAddressAsTheManPageSays) {
  EXPECT_EQ(*WindowsPipeTransport::PipeName("@unittest-portserver"),
            "\\\\.\\pipe\\unittest-portserver");
  EXPECT_EQ(*WindowsPipeTransport::PipeName("\\\\.\\pipe\\x"),
            "\\\\.\\pipe\\x");
  EXPECT_EQ(*WindowsPipeTransport::PipeName("\\\\.\\PIPE\\x"),
            "\\\\.\\PIPE\\x");
  // Only the first '@' is special.
  EXPECT_EQ(*WindowsPipeTransport::PipeName("@a@b"), "\\\\.\\pipe\\a@b");
  EXPECT_EQ(WindowsPipeTransport::PipeName("plain").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WindowsPipeTransport::PipeName("@").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WindowsPipeTransport::PipeName("").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WindowsPipeTransport::PipeName("@" + std::string(300, 'x'))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(WindowsPipeTransportTest, ServesThePythonStyleClient) {
  Start(DefaultOptions());
  const DWORD pid = GetCurrentProcessId();
  PythonStyleReply reply = AskLikePython(address_, pid);
  ASSERT_EQ(reply.error, 0u) << reply.step;
  EXPECT_EQ(reply.data, "10001\n");
  std::vector<RecordingHandler::Seen> seen = handler_.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].data, std::to_string(pid) + "\n");
  EXPECT_EQ(seen[0].end, Request::End::kNewline);
  // The kernel's view of the caller: this process and its user.
  EXPECT_TRUE(seen[0].peer.known);
  EXPECT_EQ(seen[0].peer.pid, pid);
  HANDLE raw = nullptr;
  ASSERT_TRUE(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &raw));
  ScopedHandle token(raw);
  EXPECT_EQ(seen[0].peer.uid, *CallerUserId(token.get()));
}

TEST_F(WindowsPipeTransportTest, SecondServerOnTheSamePipeIsRefused) {
  Start(DefaultOptions());
  WindowsPipeTransport::Options again = DefaultOptions();
  again.address = address_;
  auto second = WindowsPipeTransport::Create(again);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr("already in use"));
  // The first one still serves.
  EXPECT_EQ(AskLikePython(address_, GetCurrentProcessId()).error, 0u);
}

TEST_F(WindowsPipeTransportTest, TwentyConcurrentClientsAreAllServed) {
  Start(DefaultOptions());
  constexpr int kClients = 20;
  // Every client connects first; only when all 20 are connected at once do
  // they send, so the server holds 20 connections together.
  std::vector<ScopedHandle> pipes(kClients);
  std::vector<DWORD> open_errors(kClients, 0);
  std::vector<std::string> replies(kClients);
  std::mutex mu;
  std::condition_variable all_connected;
  int connected = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      pipes[i] = Connect();
      if (!pipes[i].valid()) open_errors[i] = GetLastError();
      {
        std::unique_lock<std::mutex> lock(mu);
        ++connected;
        all_connected.notify_all();
        all_connected.wait(lock, [&] { return connected == kClients; });
      }
      if (!pipes[i].valid()) return;
      std::string request = std::to_string(1000 + i) + "\n";
      DWORD n = 0;
      if (!WriteFile(pipes[i].get(), request.data(),
                     static_cast<DWORD>(request.size()), &n, nullptr)) {
        return;
      }
      char buffer[6];
      if (ReadFile(pipes[i].get(), buffer, sizeof(buffer), &n, nullptr)) {
        replies[i].assign(buffer, n);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<std::string> distinct;
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(open_errors[i], 0u) << "client " << i;
    EXPECT_EQ(replies[i].size(), 6u) << "client " << i;
    distinct.insert(replies[i]);
  }
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kClients));
  std::vector<RecordingHandler::Seen> seen = handler_.seen();
  ASSERT_EQ(seen.size(), static_cast<size_t>(kClients));
  std::set<std::string> requests;
  for (const auto& s : seen) {
    EXPECT_EQ(s.end, Request::End::kNewline);
    requests.insert(s.data);
  }
  EXPECT_EQ(requests.size(), static_cast<size_t>(kClients));
}

TEST_F(WindowsPipeTransportTest, SilentClientTimesOutWhileOthersAreServed) {
  WindowsPipeTransport::Options options = DefaultOptions();
  options.read_timeout = absl::Seconds(2);
  Start(options);
  ScopedHandle silent = Connect();
  ASSERT_TRUE(silent.valid()) << GetLastError();
  for (int i = 0; i < 5; ++i) {
    PythonStyleReply reply = AskLikePython(address_, 2000 + i);
    ASSERT_EQ(reply.error, 0u) << reply.step;
    EXPECT_EQ(reply.data.back(), '\n');
  }
  // The five were answered while the silent one still waited.
  std::vector<RecordingHandler::Seen> seen = handler_.seen();
  ASSERT_EQ(seen.size(), 5u);
  for (const auto& s : seen) EXPECT_EQ(s.end, Request::End::kNewline);
  // Then its time runs out: the denial's empty line, then the close.
  char buffer[6];
  DWORD n = 0;
  ASSERT_TRUE(ReadFile(silent.get(), buffer, sizeof(buffer), &n, nullptr))
      << GetLastError();
  EXPECT_EQ(std::string(buffer, n), WindowsPipeTransport::kDenialReply);
  EXPECT_FALSE(ReadFile(silent.get(), buffer, sizeof(buffer), &n, nullptr));
  EXPECT_EQ(GetLastError(), static_cast<DWORD>(ERROR_BROKEN_PIPE));
  seen = handler_.seen();
  ASSERT_EQ(seen.size(), 6u);
  EXPECT_EQ(seen[5].end, Request::End::kTimedOut);
  EXPECT_EQ(seen[5].data, "");
}

TEST_F(WindowsPipeTransportTest, OversizedRequestIsCutAtTheLimit) {
  Start(DefaultOptions());
  PythonStyleReply reply =
      SendLikePython(address_, std::string(25, '1') + "\n");
  EXPECT_TRUE(reply.denied()) << reply.step << " " << reply.error;
  std::vector<RecordingHandler::Seen> seen = handler_.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].end, Request::End::kTooLong);
  EXPECT_EQ(seen[0].data, std::string(kMaxRequestBytes, '1'));
}

// The framing rule of domain/request_codec.h, as on Linux: a request that
// starts "portserver/" (the extended protocol: portserverctl, portpicker -n)
// may have up to kMaxExtendedRequestBytes, anything else kMaxRequestBytes.
TEST_F(WindowsPipeTransportTest, ExtendedRequestsMayBeLongerThanPlainOnes) {
  Start(DefaultOptions());
  const std::string line =
      "portserver/1 allocate pid=1234 count=20 label=" + std::string(200, 'x') +
      "\n";
  {
    // In pieces: the limit follows the first bytes as they arrive.
    ScopedHandle pipe = Connect();
    ASSERT_TRUE(pipe.valid());
    DWORD n = 0;
    ASSERT_TRUE(WriteFile(pipe.get(), line.data(), 3, &n, nullptr));
    ASSERT_TRUE(WriteFile(pipe.get(), line.data() + 3,
                          static_cast<DWORD>(line.size() - 3), &n, nullptr));
    char buffer[16];
    ASSERT_TRUE(ReadFile(pipe.get(), buffer, sizeof(buffer), &n, nullptr));
    EXPECT_EQ(std::string(buffer, n), "10001\n");
  }
  const std::string too_long =
      "portserver/" + std::string(kMaxExtendedRequestBytes, 'p');
  PythonStyleReply cut = SendLikePython(address_, too_long);
  // An extended request without a reply (this handler's) is closed.
  EXPECT_EQ(cut.error, static_cast<DWORD>(ERROR_BROKEN_PIPE)) << cut.step;
  PythonStyleReply junk =
      SendLikePython(address_, std::string(kMaxRequestBytes + 10, 'j'));
  EXPECT_TRUE(junk.denied()) << junk.step << " " << junk.error;

  std::vector<RecordingHandler::Seen> seen = handler_.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].data, line);
  EXPECT_EQ(seen[0].end, Request::End::kNewline);
  EXPECT_EQ(seen[1].data, too_long.substr(0, kMaxExtendedRequestBytes));
  EXPECT_EQ(seen[1].end, Request::End::kTooLong);
  EXPECT_EQ(seen[2].data, std::string(kMaxRequestBytes, 'j'));
  EXPECT_EQ(seen[2].end, Request::End::kTooLong);
}

TEST_F(WindowsPipeTransportTest, RequestSentInPiecesIsAssembled) {
  Start(DefaultOptions());
  ScopedHandle pipe = Connect();
  ASSERT_TRUE(pipe.valid());
  DWORD n = 0;
  ASSERT_TRUE(WriteFile(pipe.get(), "12", 2, &n, nullptr));
  ASSERT_TRUE(WriteFile(pipe.get(), "34\n", 3, &n, nullptr));
  char buffer[6];
  ASSERT_TRUE(ReadFile(pipe.get(), buffer, sizeof(buffer), &n, nullptr));
  EXPECT_EQ(std::string(buffer, n), "10001\n");
  EXPECT_EQ(handler_.seen()[0].data, "1234\n");
}

TEST_F(WindowsPipeTransportTest, ClientThatHangsUpEndsItsRequest) {
  Start(DefaultOptions());
  {
    ScopedHandle pipe = Connect();
    ASSERT_TRUE(pipe.valid());
    DWORD n = 0;
    ASSERT_TRUE(WriteFile(pipe.get(), "77", 2, &n, nullptr));
  }
  ASSERT_TRUE(handler_.WaitForCount(1));
  EXPECT_EQ(handler_.seen()[0].end, Request::End::kEof);
  EXPECT_EQ(handler_.seen()[0].data, "77");
}

// An extended request cut at the cap is closed without a reply, as on
// Linux: the denial's empty line is for plain requests (python's client),
// and would read to an extended client as a bad reply (a reviewer).
TEST_F(WindowsPipeTransportTest, ExtendedRequestEvictedAtTheCapGetsNoLine) {
  WindowsPipeTransport::Options options = DefaultOptions();
  options.max_connections = 2;
  Start(options);
  ASSERT_EQ(AskLikePython(address_, 2999).error, 0u);
  ScopedHandle first = Connect();
  ASSERT_TRUE(first.valid());
  DWORD n = 0;
  ASSERT_TRUE(WriteFile(first.get(), "portserver/1 sta", 16, &n, nullptr));
  ScopedHandle second = Connect();
  ASSERT_TRUE(second.valid());
  ASSERT_EQ(AskLikePython(address_, 3000).error, 0u);
  char buffer[6];
  EXPECT_FALSE(ReadFile(first.get(), buffer, sizeof(buffer), &n, nullptr))
      << "read " << std::string(buffer, n);
  EXPECT_EQ(GetLastError(), static_cast<DWORD>(ERROR_BROKEN_PIPE));
}

TEST_F(WindowsPipeTransportTest, AtTheCapTheOldestIdleConnectionIsEvicted) {
  WindowsPipeTransport::Options options = DefaultOptions();
  options.max_connections = 2;
  Start(options);
  // Once one request is answered the server is in its loop, and takes
  // connections in the order they come.
  ASSERT_EQ(AskLikePython(address_, 2999).error, 0u);
  ScopedHandle first = Connect();
  ScopedHandle second = Connect();
  ASSERT_TRUE(first.valid() && second.valid());
  PythonStyleReply reply = AskLikePython(address_, 3000);
  ASSERT_EQ(reply.error, 0u) << reply.step;
  // The first, oldest idle connection made room: closed (nothing of it was
  // read, so nothing says it is a plain request).
  char buffer[6];
  DWORD n = 0;
  EXPECT_FALSE(ReadFile(first.get(), buffer, sizeof(buffer), &n, nullptr));
  EXPECT_EQ(GetLastError(), static_cast<DWORD>(ERROR_BROKEN_PIPE));
  std::vector<RecordingHandler::Seen> seen = handler_.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[1].end, Request::End::kOverCapacity);
  EXPECT_EQ(seen[2].end, Request::End::kNewline);
  EXPECT_EQ(seen[2].data, "3000\n");
}

TEST_F(WindowsPipeTransportTest, ShutdownClosesOpenConnectionsUnanswered) {
  Start(DefaultOptions());
  ScopedHandle idle = Connect();
  ASSERT_TRUE(idle.valid());
  Stop();
  char buffer[6];
  DWORD n = 0;
  EXPECT_FALSE(ReadFile(idle.get(), buffer, sizeof(buffer), &n, nullptr));
  EXPECT_TRUE(handler_.seen().empty());
  // The pipe is gone: python's client sees "no server".
  EXPECT_EQ(AskLikePython(address_, 1).error,
            static_cast<DWORD>(ERROR_FILE_NOT_FOUND));
}

// AfterReply runs once the client has its whole reply, once per request,
// denials too (adapters/fake/after_reply_handler.h).
TEST(WindowsPipeTransport, AfterReplyRunsOnceTheClientHasItsReply) {
  WindowsPipeTransport::Options options;
  options.address = UniquePipeAddress("after-reply");
  auto transport = WindowsPipeTransport::Create(options);
  ASSERT_TRUE(transport.ok()) << transport.status();
  AfterReplyHandler handler("1\n");
  ServeResult result;
  std::thread thread([&] { result = (*transport)->Serve(handler); });
  PythonStyleReply reply = AskLikePython(options.address, 4242);
  EXPECT_EQ(reply.data, "15000\n") << reply.step;
  handler.ClientDone();
  PythonStyleReply denied = AskLikePython(options.address, 1);
  EXPECT_TRUE(denied.denied()) << denied.step << " " << denied.error;
  handler.ClientDone();
  EXPECT_TRUE(handler.WaitForCalls(2));
  (*transport)->Shutdown();
  thread.join();
  EXPECT_TRUE(result.ok) << result.error;
  EXPECT_EQ(handler.calls(), 2);
  EXPECT_EQ(handler.too_early(), 0);
}

TEST(WindowsPipeTransport, ShutdownBeforeServeReturnsAtOnce) {
  WindowsPipeTransport::Options options;
  options.address = UniquePipeAddress("early");
  auto transport = WindowsPipeTransport::Create(options);
  ASSERT_TRUE(transport.ok()) << transport.status();
  (*transport)->Shutdown();
  RecordingHandler handler;
  EXPECT_TRUE((*transport)->Serve(handler).ok);
  EXPECT_TRUE((*transport)->Serve(handler).ok);
}

TEST(WindowsPipeTransport, RejectsBadOptions) {
  WindowsPipeTransport::Options options;
  options.address = "no-prefix";
  EXPECT_EQ(WindowsPipeTransport::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.address = UniquePipeAddress("bad");
  options.max_connections = 0;
  EXPECT_EQ(WindowsPipeTransport::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace portserver
