#include "client/control_client.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/cli_platform.h"
#include "client/portpicker_platform.h"

namespace portpicker {

using portserver::ParsedReply;

absl::StatusOr<ParsedReply> ControlExchange(const std::string& address,
                                            const std::string& request,
                                            absl::Duration timeout) {
  // The OS part (AF_UNIX socket or named pipe) is portpicker_platform.h's;
  // the whole reply is read, until the server closes.
  absl::StatusOr<std::string> reply = internal::ExchangeWithServer(
      address, request, timeout, portserver::kMaxReplyBytes + 4096,
      /*until_newline=*/false);
  if (!reply.ok()) return reply.status();
  if (reply->empty()) {
    return absl::UnimplementedError(absl::StrCat(
        "portserver at ", address,
        " closed without a reply: python's portserver does that (it does "
        "not speak the extended protocol), and ours at its connection cap "
        "or out of descriptors (its log says so)"));
  }
  ParsedReply parsed = portserver::ParseControlReply(*reply);
  if (!parsed.ok) {
    return absl::InternalError(absl::StrCat(
        "portserver at ", address, " sent a bad reply: ", parsed.error));
  }
  return parsed;
}

std::string DefaultLabel() {
  // UTF-8 on Windows too (not the ANSI code page).
  return EnvironmentUtf8("TEST_TARGET").value_or("");
}

std::string SendableLabel(std::string_view label) {
  std::string out(label.substr(
      0, portserver::Utf8CutLength(label, portserver::kMaxLabelBytes)));
  for (char& ch : out) {
    if (portserver::IsLabelControlByte(ch)) ch = '?';
  }
  return out;
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
    const std::string& label, absl::Duration timeout, int64_t* owner,
    bool* leased_to_caller) {
  if (owner != nullptr) *owner = 0;
  if (leased_to_caller != nullptr) *leased_to_caller = false;
  portserver::Fields args = {{"pid", std::to_string(pid)},
                             {"count", std::to_string(count)}};
  if (!label.empty()) args.emplace_back("label", SendableLabel(label));
  absl::StatusOr<ParsedReply> reply = ControlExchange(
      address, portserver::FormatControlRequest("allocate", args), timeout);
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return RefusalStatus(*reply);
  std::optional<std::vector<uint16_t>> ports = portserver::ParsePortList(
      reply->header.Get("ports").value_or(""), portserver::kMaxPortsPerRequest);
  if (!ports || static_cast<int>(ports->size()) != count) {
    return absl::InternalError(absl::StrCat("portserver at ", address,
                                            " granted a bad port list for ",
                                            count, " ports"));
  }
  if (owner != nullptr) {
    int64_t got = 0;
    if (absl::SimpleAtoi(reply->header.Get("pid").value_or(""), &got)) {
      *owner = got;
    }
  }
  if (leased_to_caller != nullptr) {
    *leased_to_caller = reply->header.Get("leased_to_caller") == "1";
  }
  return std::vector<int>(ports->begin(), ports->end());
}

}  // namespace portpicker
