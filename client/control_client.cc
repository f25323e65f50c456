#include "client/control_client.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "client/socket_address.h"

namespace portpicker {
namespace {

using portserver::ParsedReply;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

absl::Status IoError(const char* what, const std::string& address, int error) {
  std::string message =
      absl::StrCat(what, " portserver at ", address, ": ", std::strerror(error));
  if (error == EAGAIN || error == EWOULDBLOCK || error == EINPROGRESS) {
    return absl::DeadlineExceededError(message);
  }
  return absl::UnavailableError(message);
}

}  // namespace

absl::StatusOr<ParsedReply> ControlExchange(const std::string& address,
                                            const std::string& request,
                                            absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<SocketAddress> un = ParseUnixAddress(address);
  if (!un.ok()) return un.status();
  Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return IoError("socket for", address, errno);
  timeval tv = absl::ToTimeval(std::max(timeout, absl::Microseconds(1)));
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (connect(fd.get(), un->get(), un->size) != 0) {
    return IoError("cannot connect to", address, errno);
  }
  for (size_t sent = 0; sent < request.size();) {
    ssize_t n = send(fd.get(), request.data() + sent, request.size() - sent,
                     MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError("cannot send to", address, errno);
    sent += static_cast<size_t>(n);
  }
  std::string reply;
  while (true) {
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    pollfd p = {fd.get(), POLLIN, 0};
    const int ready =
        left_ms <= 0
            ? 0
            : poll(&p, 1,
                   static_cast<int>(std::min<int64_t>(
                       left_ms, std::numeric_limits<int>::max())));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return IoError("cannot poll", address, errno);
    if (ready == 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("portserver at ", address, " did not answer within ",
                       absl::FormatDuration(timeout)));
    }
    char buffer[8192];
    ssize_t n = recv(fd.get(), buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    // A server that answers before reading all of an overlong request
    // closes with bytes unread, and the kernel resets the connection after
    // the reply: the reply is whole or not by its "end" line, as at EOF.
    if (n < 0 && errno == ECONNRESET) break;
    if (n < 0) return IoError("cannot read from", address, errno);
    if (n == 0) break;
    reply.append(buffer, static_cast<size_t>(n));
    if (reply.size() > portserver::kMaxReplyBytes + 4096) {
      return absl::InternalError(absl::StrCat(
          "portserver at ", address, " sent a reply of more than ",
          portserver::kMaxReplyBytes, " bytes"));
    }
  }
  if (reply.empty()) {
    return absl::UnimplementedError(absl::StrCat(
        "portserver at ", address,
        " does not speak the extended protocol (it closed without a reply; "
        "python's portserver does that)"));
  }
  ParsedReply parsed = portserver::ParseControlReply(reply);
  if (!parsed.ok) {
    return absl::InternalError(absl::StrCat("portserver at ", address,
                                            " sent a bad reply: ",
                                            parsed.error));
  }
  return parsed;
}

std::string DefaultLabel() {
  const char* target = std::getenv("TEST_TARGET");
  return target == nullptr ? "" : target;
}

absl::Status RefusalStatus(const ParsedReply& reply) {
  std::string code = reply.header.Get("code").value_or("");
  std::string message = reply.header.Get("message").value_or(code);
  if (code == "pool-exhausted" || code == "quota-exceeded") {
    return absl::ResourceExhaustedError(message);
  }
  if (code == "permission-denied") return absl::PermissionDeniedError(message);
  if (code == "no-such-process" || code == "not-leased") {
    return absl::NotFoundError(message);
  }
  if (code == "invalid-pid" || code == "pid-is-init" ||
      code == "bad-argument" || code == "malformed") {
    return absl::InvalidArgumentError(message);
  }
  return absl::UnknownError(message.empty() ? code : message);
}

absl::StatusOr<std::vector<int>> GetPortsFromPortServer(
    const std::string& address, int64_t pid, int count,
    const std::string& label, absl::Duration timeout) {
  portserver::Fields args = {{"pid", std::to_string(pid)},
                             {"count", std::to_string(count)}};
  if (!label.empty()) {
    args.emplace_back("label", label.substr(0, portserver::kMaxLabelBytes));
  }
  absl::StatusOr<ParsedReply> reply = ControlExchange(
      address, portserver::FormatControlRequest("allocate", args), timeout);
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return RefusalStatus(*reply);
  std::optional<std::vector<uint16_t>> ports = portserver::ParsePortList(
      reply->header.Get("ports").value_or(""), portserver::kMaxPortsPerRequest);
  if (!ports || static_cast<int>(ports->size()) != count) {
    return absl::InternalError(absl::StrCat(
        "portserver at ", address, " granted a bad port list for ", count,
        " ports"));
  }
  return std::vector<int>(ports->begin(), ports->end());
}

}  // namespace portpicker
