// FakeTransport: an in-memory Transport. Call() hands a request to the
// thread running Serve() and returns the reply, exactly as a socket client
// would see it ("" means the server closed without a reply).
//
// Example:
//   FakeTransport transport;
//   std::thread server([&] { transport.Serve(handler); });
//   std::string reply = transport.Call("1234\n");
//   transport.Shutdown(); server.join();
//
// Thread-safe.
#ifndef PORTSERVER_ADAPTERS_FAKE_FAKE_TRANSPORT_H_
#define PORTSERVER_ADAPTERS_FAKE_FAKE_TRANSPORT_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

#include "domain/transport.h"

namespace portserver {

class FakeTransport final : public Transport {
 public:
  // Blocks until the serving thread has answered. Returns nullopt if the
  // transport was shut down before the request was served.
  std::optional<std::string> Call(std::string data,
                                  Request::End end = Request::End::kNewline,
                                  PeerCredentials peer = {});
  // The next Serve() returns this error at once.
  void FailServe(std::string error);
  // Blocks until Serve() is running.
  void WaitUntilServing();

  ServeResult Serve(RequestHandler& handler) override;
  void Shutdown() override;

 private:
  struct Pending {
    std::string data;
    Request::End end;
    PeerCredentials peer;
    std::optional<std::string> reply;
    bool done = false;
  };

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending*> queue_;
  bool shutdown_ = false;
  bool serving_ = false;
  std::optional<std::string> serve_error_;
};

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_FAKE_FAKE_TRANSPORT_H_
