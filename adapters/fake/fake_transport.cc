#include "adapters/fake/fake_transport.h"

#include <utility>

namespace portserver {

std::optional<std::string> FakeTransport::Call(std::string data,
                                               Request::End end,
                                               PeerCredentials peer) {
  Pending pending{std::move(data), end, peer, std::nullopt, false};
  std::unique_lock<std::mutex> lock(mu_);
  if (shutdown_) return std::nullopt;
  queue_.push_back(&pending);
  cv_.notify_all();
  cv_.wait(lock, [&] { return pending.done; });
  return pending.reply;
}

void FakeTransport::FailServe(std::string error) {
  std::lock_guard<std::mutex> lock(mu_);
  serve_error_ = std::move(error);
}

void FakeTransport::WaitUntilServing() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return serving_ || shutdown_; });
}

ServeResult FakeTransport::Serve(RequestHandler& handler) {
  std::unique_lock<std::mutex> lock(mu_);
  if (serve_error_) {
    ServeResult failed{false, *serve_error_};
    serve_error_.reset();
    return failed;
  }
  serving_ = true;
  cv_.notify_all();
  while (true) {
    cv_.wait(lock, [&] { return shutdown_ || !queue_.empty(); });
    if (shutdown_) break;
    Pending* p = queue_.front();
    queue_.pop_front();
    Request request{p->data, p->end, p->peer};
    lock.unlock();
    std::string reply = handler.HandleRequest(request);
    // In memory the reply is "sent" when Call() returns it; AfterReply runs
    // just before, so that tests that count what a request costs see all
    // of it (the real transports' tests check the order on the wire).
    handler.AfterReply();
    lock.lock();
    p->reply = std::move(reply);
    p->done = true;
    cv_.notify_all();
  }
  // Requests still queued are dropped, as a closing socket would drop them.
  for (Pending* p : queue_) p->done = true;
  queue_.clear();
  serving_ = false;
  cv_.notify_all();
  return ServeResult{};
}

void FakeTransport::Shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  shutdown_ = true;
  cv_.notify_all();
}

}  // namespace portserver
