// Windows side of //client:portpicker (portpicker_platform.h): the port
// server over a named pipe (portserver(1): a leading '@' stands for
// "\\.\pipe\"), binds with Winsock.
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
// Winsock 2 must come before <windows.h>, which would otherwise pull in
// the old winsock.h: keep clang-format from sorting them.
// clang-format off
#include <winsock2.h>
#include <windows.h>
// clang-format on
#include <ws2tcpip.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "adapters/windows/windows_error.h"
#include "adapters/windows/windows_text.h"
#include "client/cli_platform.h"
#include "client/portpicker.h"
#include "client/portpicker_platform.h"

namespace portpicker {
namespace {

constexpr char kPipePrefix[] = "\\\\.\\pipe\\";

bool IsValidPort(int port) { return port >= 1 && port <= 65535; }

// The system's text for `code`, in UTF-8 like everything this client
// prints, then the code.
std::string ErrorText(DWORD code) {
  std::string message = portserver::GetWindowsErrorMessage(code);
  if (absl::StartsWith(message, "Windows error ")) return message;  // No text.
  return absl::StrCat(message, " (", code, ")");
}

class ScopedHandle {
 public:
  explicit ScopedHandle(HANDLE handle) : handle_(handle) {}
  ScopedHandle(const ScopedHandle&) = delete;
  ScopedHandle& operator=(const ScopedHandle&) = delete;
  ~ScopedHandle() {
    if (valid()) CloseHandle(handle_);
  }
  bool valid() const {
    return handle_ != nullptr && handle_ != INVALID_HANDLE_VALUE;
  }
  HANDLE get() const { return handle_; }

 private:
  HANDLE handle_;
};

class ScopedSocket {
 public:
  explicit ScopedSocket(SOCKET socket) : socket_(socket) {}
  ScopedSocket(const ScopedSocket&) = delete;
  ScopedSocket& operator=(const ScopedSocket&) = delete;
  ~ScopedSocket() {
    if (socket_ != INVALID_SOCKET) closesocket(socket_);
  }
  SOCKET get() const { return socket_; }
  SOCKET release() { return std::exchange(socket_, INVALID_SOCKET); }

 private:
  SOCKET socket_;
};

void EnsureWinsock() {
  static const bool started = [] {
    WSADATA data;
    return WSAStartup(MAKEWORD(2, 2), &data) == 0;
  }();
  (void)started;
}

using ::portserver::Widen;

absl::StatusOr<std::string> PipeName(const std::string& address) {
  std::string name;
  if (!address.empty() && address[0] == '@') {
    name = kPipePrefix + address.substr(1);
  } else if (absl::StartsWithIgnoreCase(address, kPipePrefix)) {
    name = address;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("portserver address \"", address,
                     "\" is not a pipe: want @name or \\\\.\\pipe\\name"));
  }
  if (name.size() == sizeof(kPipePrefix) - 1 || name.size() > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad pipe name \"", name, "\""));
  }
  return name;
}

DWORD MillisLeft(absl::Time deadline) {
  int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
  return left <= 0 ? 0
                   : static_cast<DWORD>(std::min<int64_t>(left, 0x7FFFFFFF));
}

absl::Status IoError(absl::string_view what, const std::string& address,
                     DWORD error) {
  return absl::UnavailableError(
      absl::StrCat(what, " portserver at ", address, ": ", ErrorText(error)));
}

// Runs one overlapped ReadFile or WriteFile to completion within the
// deadline. Returns the bytes moved, or the error (WAIT_TIMEOUT if late).
struct IoResult {
  DWORD bytes = 0;
  DWORD error = ERROR_SUCCESS;
};
template <typename Start>
IoResult Overlapped(HANDLE pipe, HANDLE event, absl::Time deadline,
                    Start start) {
  OVERLAPPED overlapped{};
  overlapped.hEvent = event;
  IoResult result;
  if (!start(&overlapped)) {
    DWORD error = GetLastError();
    if (error != ERROR_IO_PENDING) {
      result.error = error;
      return result;
    }
    if (WaitForSingleObject(event, MillisLeft(deadline)) != WAIT_OBJECT_0) {
      CancelIoEx(pipe, &overlapped);
      DWORD ignored;
      GetOverlappedResult(pipe, &overlapped, &ignored, TRUE);
      result.error = WAIT_TIMEOUT;
      return result;
    }
  }
  if (!GetOverlappedResult(pipe, &overlapped, &result.bytes, TRUE)) {
    result.error = GetLastError();
  }
  return result;
}

// Fills `storage` with the wildcard address of `family` (AF_INET6: [::],
// else 0.0.0.0) and `port`; returns its size for bind().
int WildcardAddress(int family, int port, sockaddr_storage* storage) {
  if (family == AF_INET6) {
    auto* addr = reinterpret_cast<sockaddr_in6*>(storage);
    addr->sin6_family = AF_INET6;
    addr->sin6_addr = in6addr_any;
    addr->sin6_port = htons(static_cast<u_short>(port));
    return sizeof(sockaddr_in6);
  }
  auto* addr = reinterpret_cast<sockaddr_in*>(storage);
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_ANY);
  addr->sin_port = htons(static_cast<u_short>(port));
  return sizeof(sockaddr_in);
}

// Winsock's python bind(): SO_EXCLUSIVEADDRUSE, since SO_REUSEADDR on
// Windows would let the bind take a port that another socket holds.
SOCKET BindExclusive(int family, int type, int port, bool* no_socket) {
  ScopedSocket sock(socket(family, type, 0));
  *no_socket = sock.get() == INVALID_SOCKET;
  if (sock.get() == INVALID_SOCKET) return INVALID_SOCKET;
  BOOL one = TRUE;
  sockaddr_storage storage{};
  const int size = WildcardAddress(family, port, &storage);
  if (setsockopt(sock.get(), SOL_SOCKET, SO_EXCLUSIVEADDRUSE,
                 reinterpret_cast<const char*>(&one), sizeof(one)) != 0 ||
      bind(sock.get(), reinterpret_cast<sockaddr*>(&storage), size) != 0) {
    return INVALID_SOCKET;
  }
  return sock.release();
}

int LocalPort(SOCKET sock) {
  sockaddr_storage storage{};
  int size = sizeof(storage);
  if (getsockname(sock, reinterpret_cast<sockaddr*>(&storage), &size) != 0) {
    return 0;
  }
  return storage.ss_family == AF_INET6
             ? ntohs(reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port)
             : ntohs(reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
}

}  // namespace

namespace internal {

absl::StatusOr<std::string> ExchangeWithServer(const std::string& address,
                                               const std::string& request,
                                               absl::Duration timeout,
                                               size_t max_reply_bytes,
                                               bool until_newline) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<std::string> name = PipeName(address);
  if (!name.ok()) return name.status();
  const std::wstring wide = Widen(*name);
  HANDLE raw = INVALID_HANDLE_VALUE;
  while (true) {
    raw = CreateFileW(wide.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr,
                      OPEN_EXISTING, FILE_FLAG_OVERLAPPED, nullptr);
    if (raw != INVALID_HANDLE_VALUE) break;
    DWORD error = GetLastError();
    // Unlike python's client, wait for a free instance (bounded).
    if (error == ERROR_PIPE_BUSY && MillisLeft(deadline) > 0) {
      WaitNamedPipeW(wide.c_str(), std::max<DWORD>(MillisLeft(deadline), 1));
      continue;
    }
    if (error == ERROR_PIPE_BUSY) {
      return absl::DeadlineExceededError(absl::StrCat(
          "portserver at ", address, " had no free pipe instance within ",
          absl::FormatDuration(timeout)));
    }
    return IoError("cannot connect to", address, error);
  }
  ScopedHandle pipe(raw);
  ScopedHandle event(CreateEventW(nullptr, TRUE, FALSE, nullptr));
  if (!event.valid()) return IoError("no event for", address, GetLastError());

  // One write, as python does.
  IoResult wrote =
      Overlapped(pipe.get(), event.get(), deadline, [&](OVERLAPPED* o) {
        return WriteFile(pipe.get(), request.data(),
                         static_cast<DWORD>(request.size()), nullptr, o);
      });
  if (wrote.error == WAIT_TIMEOUT) {
    return absl::DeadlineExceededError(absl::StrCat(
        "portserver at ", address, " did not take the request within ",
        absl::FormatDuration(timeout)));
  }
  if (wrote.error != ERROR_SUCCESS) {
    return IoError("cannot send to", address, wrote.error);
  }
  // Until the server closes (ERROR_BROKEN_PIPE), or the first newline.
  std::string reply;
  while (!until_newline || reply.find('\n') == std::string::npos) {
    char buffer[4096];
    ResetEvent(event.get());
    IoResult got =
        Overlapped(pipe.get(), event.get(), deadline, [&](OVERLAPPED* o) {
          return ReadFile(pipe.get(), buffer, sizeof(buffer), nullptr, o);
        });
    if (got.error == ERROR_BROKEN_PIPE ||
        got.error == ERROR_PIPE_NOT_CONNECTED) {
      break;
    }
    if (got.error == WAIT_TIMEOUT) {
      return absl::DeadlineExceededError(
          absl::StrCat("portserver at ", address, " did not answer within ",
                       absl::FormatDuration(timeout)));
    }
    if (got.error != ERROR_SUCCESS) {
      return IoError("cannot read from", address, got.error);
    }
    reply.append(buffer, got.bytes);
    if (reply.size() > max_reply_bytes) {
      return absl::InternalError(absl::StrCat("portserver at ", address,
                                              " sent a reply of more than ",
                                              max_reply_bytes, " bytes"));
    }
  }
  return reply;
}

int BindBothFamilies(int port, Protocol protocol) {
  EnsureWinsock();
  const int type = protocol == Protocol::kTcp ? SOCK_STREAM : SOCK_DGRAM;
  bool got_socket = false;
  for (int family : {AF_INET6, AF_INET}) {
    bool no_socket = false;
    ScopedSocket sock(BindExclusive(family, type, port, &no_socket));
    if (sock.get() == INVALID_SOCKET) {
      // A family whose socket() fails (not supported, or refused) is
      // skipped, whatever the error, as python 1.6 skips it; a failed bind
      // means the port is taken.
      if (no_socket) continue;
      return 0;
    }
    got_socket = true;
    if (type == SOCK_STREAM && listen(sock.get(), 1) != 0) return 0;
    port = LocalPort(sock.get());
    if (port == 0) return 0;
  }
  return got_socket ? port : 0;
}

int64_t CurrentPid() { return GetCurrentProcessId(); }

}  // namespace internal

std::optional<std::string> EnvironmentUtf8(const char* name) {
  return portserver::EnvironmentUtf8(name);
}

std::vector<std::string> ArgumentsUtf8(int argc, char** argv) {
  return portserver::ArgumentsUtf8(argc, argv);
}

void UseUtf8Console() { portserver::UseUtf8Console(); }

absl::StatusOr<int> HoldPort(int port) {
  if (!IsValidPort(port)) {
    return absl::InvalidArgumentError(absl::StrCat("bad port ", port));
  }
  EnsureWinsock();
  // A plain bind (no SO_REUSEADDR, no SO_EXCLUSIVEADDRUSE): Windows will not
  // hand the port out meanwhile, and a server that sets SO_REUSEADDR can
  // still bind it. Socket values fit in 32 bits (Windows guarantees it for
  // 32/64-bit interoperability).
  for (int family : {AF_INET6, AF_INET}) {
    ScopedSocket sock(socket(family, SOCK_STREAM, 0));
    if (sock.get() == INVALID_SOCKET) continue;
    sockaddr_storage storage{};
    const int size = WildcardAddress(family, port, &storage);
    if (bind(sock.get(), reinterpret_cast<sockaddr*>(&storage), size) != 0) {
      return absl::UnavailableError(absl::StrCat(
          "cannot bind port ", port, ": ", ErrorText(WSAGetLastError())));
    }
    return static_cast<int>(sock.release());
  }
  return absl::UnavailableError(
      absl::StrCat("cannot bind port ", port, ": no socket"));
}

}  // namespace portpicker
