// AfterReplyHandler: a RequestHandler for transport tests that checks the
// RequestHandler::AfterReply contract (domain/transport.h): its AfterReply
// waits until the test's client says it has the whole reply, which it
// could not have if the transport still had the reply to send; once per
// request, denials too.
//
// Example:
//   AfterReplyHandler handler("deny\n");   // answers "15000\n", or "" to it
//   ... Serve(handler) on a thread ...
//   Call(address, "1234\n");  handler.ClientDone();
//   EXPECT_EQ(handler.calls(), 1);  EXPECT_EQ(handler.too_early(), 0);
//
// Thread-safe.
#ifndef PORTSERVER_ADAPTERS_FAKE_AFTER_REPLY_HANDLER_H_
#define PORTSERVER_ADAPTERS_FAKE_AFTER_REPLY_HANDLER_H_

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>

#include "domain/transport.h"

namespace portserver {

class AfterReplyHandler final : public RequestHandler {
 public:
  // Requests equal to `deny` get no reply.
  explicit AfterReplyHandler(std::string deny) : deny_(std::move(deny)) {}

  std::string HandleRequest(const Request& request) override {
    return request.data == deny_ ? "" : "15000\n";
  }
  // Waits (up to 10 s, a failure guard) for ClientDone() of this request.
  void AfterReply() override {
    std::unique_lock<std::mutex> lock(mu_);
    bool seen = cv_.wait_for(lock, std::chrono::seconds(10),
                             [this] { return client_done_ > calls_; });
    ++calls_;
    if (!seen) ++too_early_;
    cv_.notify_all();
  }
  // Waits (up to 10 s, a failure guard) until AfterReply ran `n` times;
  // false if it did not. A reply written asynchronously (the Windows
  // denial's empty line) is followed by AfterReply once its write is done,
  // which may be after the client has read it.
  bool WaitForCalls(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10),
                        [&] { return calls_ >= n; });
  }
  // The client has its whole reply (or end of stream) for one more request.
  void ClientDone() {
    std::lock_guard<std::mutex> lock(mu_);
    ++client_done_;
    cv_.notify_all();
  }
  int calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  // AfterReply calls that came before the client had its reply.
  int too_early() {
    std::lock_guard<std::mutex> lock(mu_);
    return too_early_;
  }

 private:
  const std::string deny_;
  std::mutex mu_;
  std::condition_variable cv_;
  int client_done_ = 0, calls_ = 0, too_early_ = 0;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_FAKE_AFTER_REPLY_HANDLER_H_
