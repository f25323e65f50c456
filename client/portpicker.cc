#include "client/portpicker.h"

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "client/cli_platform.h"
#include "client/control_client.h"
#include "client/portpicker_platform.h"
#include "domain/control_protocol.h"

namespace portpicker {
namespace {

constexpr int kMinPort = 1;
constexpr int kMaxPort = 65535;
using internal::BindBothFamilies;
using internal::Protocol;

bool IsValidPort(int port) { return port >= kMinPort && port <= kMaxPort; }

// python's _pick_unused_port_without_server(), never returning a port in
// `avoid`.
absl::StatusOr<int> PickWithoutServer(const std::set<int>& avoid) {
  // The kernel's choice first, TCP before UDP: on some kernels a UDP port 0
  // bind returns the same port over and over.
  for (int i = 0; i < 10; ++i) {
    const int port = BindBothFamilies(0, Protocol::kTcp);
    if (port != 0 && avoid.count(port) == 0 &&
        BindBothFamilies(port, Protocol::kUdp) != 0) {
      return port;
    }
  }
  std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int> range(15000, 24999);
  for (int i = 0; i < 10; ++i) {
    const int port = range(random);
    if (avoid.count(port) == 0 && IsPortFree(port)) return port;
  }
  return absl::ResourceExhaustedError(
      "no free port found without a port server (10 kernel-chosen and 10 "
      "random ports tried)");
}

absl::StatusOr<int> ParseReply(absl::string_view reply,
                               const std::string& address, int64_t pid) {
  if (reply.empty()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("portserver at ", address, " denied a port to pid ", pid,
                     " (closed without a reply)"));
  }
  // As python: the first line counts; it may lack its newline.
  absl::string_view line =
      absl::StripAsciiWhitespace(reply.substr(0, reply.find('\n')));
  if (line.empty() && reply.find('\n') != absl::string_view::npos) {
    // Our Windows server's denial (WindowsPipeTransport::kDenialReply):
    // what python's client takes for "failed to find a port".
    return absl::ResourceExhaustedError(
        absl::StrCat("portserver at ", address, " denied a port to pid ", pid,
                     " (replied with an empty line)"));
  }
  int port = 0;
  if (line.empty() || !absl::ascii_isdigit(line[0]) ||
      !absl::SimpleAtoi(line, &port) || port > kMaxPort) {
    return absl::InternalError(absl::StrCat(
        "portserver at ", address, " sent a reply that is not a port: \"",
        absl::CEscape(reply), "\""));
  }
  if (port == 0) {
    return absl::ResourceExhaustedError(absl::StrCat("portserver at ", address,
                                                     " denied a port to pid ",
                                                     pid, " (replied 0)"));
  }
  return port;
}

}  // namespace

absl::StatusOr<int> GetPortFromPortServer(const std::string& address,
                                          int64_t pid, absl::Duration timeout) {
  absl::StatusOr<std::string> reply =
      internal::ExchangeWithServer(address, absl::StrCat(pid, "\n"), timeout);
  if (!reply.ok()) return reply.status();
  return ParseReply(*reply, address, pid);
}

bool IsPortFree(int port) {
  return IsValidPort(port) && BindBothFamilies(port, Protocol::kTcp) != 0 &&
         BindBothFamilies(port, Protocol::kUdp) != 0;
}

absl::StatusOr<int> PickUnusedPortWithoutServer() {
  return PickWithoutServer({});
}

absl::StatusOr<int> PortPicker::PickUnusedPort(int64_t pid) {
  {
    absl::MutexLock lock(&mu_);
    if (!free_.empty()) {
      const int port = *free_.begin();
      free_.erase(free_.begin());
      owned_.insert(port);
      return port;
    }
  }
  const std::string address =
      EnvironmentUtf8(kPortServerAddressEnv).value_or("");
  absl::StatusOr<int> from_server =
      !address.empty()
          ? FromServer(address, pid)
          : absl::StatusOr<int>(absl::NotFoundError("no port server"));

  absl::MutexLock lock(&mu_);
  if (from_server.ok() && owned_.count(*from_server) == 0 &&
      random_.count(*from_server) == 0) {
    free_.erase(*from_server);  // In case AddReservedPort added it meanwhile.
    owned_.insert(*from_server);
    return *from_server;
  }
  std::set<int> avoid = owned_;
  avoid.insert(free_.begin(), free_.end());
  avoid.insert(random_.begin(), random_.end());
  absl::StatusOr<int> port = PickWithoutServer(avoid);
  if (port.ok()) random_.insert(*port);
  return port;
}

bool PortPicker::PlainOnly(const std::string& address) {
  absl::MutexLock lock(&mu_);
  return plain_only_.count(address) != 0;
}

absl::StatusOr<int> PortPicker::FromServer(const std::string& address,
                                           int64_t pid) {
  const std::string label = DefaultLabel();
  const bool extended = !label.empty() && !PlainOnly(address);
  if (extended) {
    absl::StatusOr<std::vector<int>> got =
        GetPortsFromPortServer(address, pid, 1, label);
    if (got.ok()) {
      if (got->size() == 1) return got->front();
      return absl::InternalError(absl::StrCat(
          "portserver at ", address, " granted ", got->size(), " ports for 1"));
    }
    if (!absl::IsUnimplemented(got.status())) return got.status();
  }
  absl::StatusOr<int> port = GetPortFromPortServer(address, pid);
  if (extended && port.ok()) {
    // Closed without a reply, then a port for the plain request: a server
    // without the extended protocol. (Ours closes without a reply only when
    // it cannot answer at all, out of descriptors: then the plain request
    // fails too, and the next pick tries the extended one again.)
    absl::MutexLock lock(&mu_);
    plain_only_.insert(address);
  }
  return port;
}

absl::StatusOr<int> PortPicker::PickUnusedPort() {
  return PickUnusedPort(internal::CurrentPid());
}

absl::StatusOr<std::vector<int>> PortPicker::PickUnusedPorts(int n) {
  if (n <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("want a positive number of ports, not ", n));
  }
  std::vector<int> ports;
  {
    absl::MutexLock lock(&mu_);
    while (static_cast<int>(ports.size()) < n && !free_.empty()) {
      const int port = *free_.begin();
      free_.erase(free_.begin());
      owned_.insert(port);
      ports.push_back(port);
    }
  }
  const int missing = n - static_cast<int>(ports.size());
  const std::string address =
      EnvironmentUtf8(kPortServerAddressEnv).value_or("");
  if (missing > 1 && !address.empty() && !PlainOnly(address)) {
    // Round trips to a server of the extended protocol, each all or none
    // (at most kMaxPortsPerRequest ports); only a server without it
    // (python's: Unimplemented) gets one request per port.
    std::vector<int> leased;
    absl::Status refused;
    bool extended = true;
    while (static_cast<int>(leased.size()) < missing) {
      const int chunk =
          std::min(missing - static_cast<int>(leased.size()),
                   static_cast<int>(portserver::kMaxPortsPerRequest));
      absl::StatusOr<std::vector<int>> got = GetPortsFromPortServer(
          address, internal::CurrentPid(), chunk, DefaultLabel());
      if (absl::IsUnimplemented(got.status()) && leased.empty()) {
        extended = false;
        absl::MutexLock lock(&mu_);
        plain_only_.insert(address);
        break;
      }
      if (!got.ok()) {
        refused = got.status();
        break;
      }
      leased.insert(leased.end(), got->begin(), got->end());
    }
    if (extended) {
      absl::Status failed;
      {
        absl::MutexLock lock(&mu_);
        std::set<int> distinct;
        bool fresh = refused.ok();
        for (int port : leased) {
          fresh = fresh && owned_.count(port) == 0 &&
                  random_.count(port) == 0 && distinct.insert(port).second;
        }
        if (fresh) {
          for (int port : leased) {
            free_.erase(port);
            owned_.insert(port);
            ports.push_back(port);
          }
          return ports;
        }
        // Refused (that request leased none), unreachable, or a grant of a
        // port this picker has handed out already: a mix of leased ports
        // and ports picked without the server would hide the failure. What
        // this call leased goes to the free set (leased to this process
        // until it exits, for later picks), and the rest are all picked
        // without the server, as PickUnusedPort falls back.
        for (int port : leased) {
          if (owned_.count(port) == 0 && random_.count(port) == 0) {
            free_.insert(port);
          }
        }
        std::set<int> avoid = owned_;
        avoid.insert(free_.begin(), free_.end());
        avoid.insert(random_.begin(), random_.end());
        std::vector<int> picked;
        while (failed.ok() && static_cast<int>(picked.size()) < missing) {
          absl::StatusOr<int> port = PickWithoutServer(avoid);
          if (!port.ok()) {
            failed = port.status();
          } else {
            avoid.insert(*port);
            picked.push_back(*port);
          }
        }
        if (failed.ok()) {
          random_.insert(picked.begin(), picked.end());
          ports.insert(ports.end(), picked.begin(), picked.end());
          return ports;
        }
      }
      for (int picked : ports) ReturnPort(picked).IgnoreError();
      return failed;
    }
  }
  while (static_cast<int>(ports.size()) < n) {
    absl::StatusOr<int> port = PickUnusedPort();
    if (!port.ok()) {
      for (int picked : ports) ReturnPort(picked).IgnoreError();
      return port.status();
    }
    ports.push_back(*port);
  }
  return ports;
}

absl::Status PortPicker::ReturnPort(int port) {
  absl::MutexLock lock(&mu_);
  if (random_.erase(port) > 0) return absl::OkStatus();
  if (owned_.erase(port) > 0) {
    free_.insert(port);
    return absl::OkStatus();
  }
  if (free_.count(port) > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("port ", port, " was already returned"));
  }
  return absl::NotFoundError(
      absl::StrCat("port ", port, " was not handed out by portpicker"));
}

void PortPicker::AddReservedPort(int port) {
  if (!IsValidPort(port)) return;
  absl::MutexLock lock(&mu_);
  free_.insert(port);
}

namespace {

PortPicker& ProcessPicker() {
  static PortPicker* const picker = new PortPicker;
  return *picker;
}

}  // namespace

absl::StatusOr<int> PickUnusedPort() {
  return ProcessPicker().PickUnusedPort();
}

absl::StatusOr<std::vector<int>> PickUnusedPorts(int n) {
  return ProcessPicker().PickUnusedPorts(n);
}

absl::Status ReturnPort(int port) { return ProcessPicker().ReturnPort(port); }

void AddReservedPort(int port) { ProcessPicker().AddReservedPort(port); }

}  // namespace portpicker
