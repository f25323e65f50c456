#include "adapters/windows/windows_pipe_transport.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "adapters/windows/windows_text.h"
#include "adapters/windows/windows_user.h"
#include "domain/lease_journal.h"
#include "domain/request_codec.h"

namespace portserver {

constexpr char WindowsPipeTransport::kDenialReply[];
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kPipePrefix[] = "\\\\.\\pipe\\";
constexpr size_t kMaxPipeNameChars = 256;

// Completion keys: pipe instances carry kPipeKey (their OVERLAPPED says
// which); Shutdown() posts kWakeKey.
constexpr ULONG_PTR kPipeKey = 1;
constexpr ULONG_PTR kWakeKey = 2;

constexpr DWORD kPipeBufferBytes = 4096;
constexpr ULONG kMaxEntries = 64;
// How long creating instances pauses when Windows refuses one.
constexpr Clock::duration kCreatePause = std::chrono::milliseconds(100);
// Longer read timeouts are cut to this, which keeps deadlines in range.
constexpr absl::Duration kMaxReadTimeout = absl::Hours(24 * 365);
// How long the end of Serve() waits for cancelled I/O to complete.
constexpr DWORD kDrainMillis = 5000;

absl::Status InUseError(absl::string_view address) {
  return absl::AlreadyExistsError(absl::StrCat(
      "address ", address, " is already in use (another port server?)"));
}

// A pipe instance, open at the server end. Overlapped I/O on it completes
// on the port; at most one operation is pending at a time.
struct Instance {
  OVERLAPPED overlapped{};  // Reused by each operation.
  ScopedHandle pipe;
  enum class Phase {
    kListening,   // ConnectNamedPipe pending.
    kReading,     // Connected; ReadFile pending (or about to be).
    kCancelling,  // Finished while a read was pending: CancelIoEx issued.
    kWriting,     // WriteFile of the reply pending.
  } phase = Phase::kListening;
  bool pending = false;  // An operation's completion packet is due.
  uint64_t id = 0;
  std::string data;
  std::string reply;  // For kCancelling: written once the read is back.
  char buffer[64];
  PeerCredentials peer;
};

HANDLE CreateInstance(const std::wstring& name, bool first) {
  DWORD open_mode = PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED;
  if (first) open_mode |= FILE_FLAG_FIRST_PIPE_INSTANCE;
  return CreateNamedPipeW(name.c_str(), open_mode,
                          PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT |
                              PIPE_REJECT_REMOTE_CLIENTS,
                          PIPE_UNLIMITED_INSTANCES, kPipeBufferBytes,
                          kPipeBufferBytes, 0, nullptr);
}

// The caller's user, read from the token the client lent the pipe, or
// else from its process. Returns kUnknownUid if neither can be read.
uint32_t CallerUid(HANDLE pipe, DWORD pid) {
  if (ImpersonateNamedPipeClient(pipe)) {
    HANDLE raw = nullptr;
    BOOL opened = OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &raw);
    // Serving on as the client would be a security hole: stop instead.
    if (!RevertToSelf()) std::abort();
    if (opened) {
      ScopedHandle token(raw);
      std::optional<uint32_t> uid = CallerUserId(token.get());
      if (uid.has_value()) return *uid;
    }
  }
  if (pid != 0) {
    ScopedHandle process(
        OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid));
    HANDLE raw = nullptr;
    if (process.valid() && OpenProcessToken(process.get(), TOKEN_QUERY, &raw)) {
      ScopedHandle token(raw);
      std::optional<uint32_t> uid = CallerUserId(token.get());
      if (uid.has_value()) return *uid;
    }
  }
  return WindowsPipeTransport::kUnknownUid;
}

// The state of one Serve() call.
class ServeLoop final {
 public:
  ServeLoop(const WindowsPipeTransport::Options& options,
            const std::wstring& name, HANDLE port,
            std::vector<ScopedHandle> ready, RequestHandler& handler)
      : options_(options),
        name_(name),
        port_(port),
        read_timeout_(std::chrono::duration_cast<Clock::duration>(
            absl::ToChronoNanoseconds(
                std::min(options.read_timeout, kMaxReadTimeout)))),
        handler_(handler) {
    // All are counted as free before any connects: a client that came
    // first must not make Replenish() create instances that exist.
    std::vector<Instance*> added;
    for (ScopedHandle& pipe : ready) added.push_back(Add(std::move(pipe)));
    for (Instance* instance : added) StartConnect(instance);
  }
  ServeLoop(const ServeLoop&) = delete;
  ServeLoop& operator=(const ServeLoop&) = delete;

  // Cancels what is pending, waits for it, and closes every instance.
  ~ServeLoop() {
    size_t pending = 0;
    for (auto& [raw, instance] : instances_) {
      if (instance->pending) {
        CancelIoEx(instance->pipe.get(), &instance->overlapped);
        ++pending;
      }
    }
    ULONGLONG give_up = GetTickCount64() + kDrainMillis;
    while (pending > 0 && GetTickCount64() < give_up) {
      OVERLAPPED_ENTRY entries[kMaxEntries];
      ULONG n = 0;
      if (!GetQueuedCompletionStatusEx(port_, entries, kMaxEntries, &n,
                                       kDrainMillis, FALSE)) {
        break;
      }
      for (ULONG i = 0; i < n; ++i) {
        if (entries[i].lpCompletionKey != kPipeKey) continue;
        auto it = instances_.find(
            reinterpret_cast<Instance*>(entries[i].lpOverlapped));
        if (it != instances_.end() && it->second->pending) {
          it->second->pending = false;
          --pending;
        }
      }
    }
    for (auto& [raw, instance] : instances_) {
      // The system may still write into an instance whose cancellation
      // never completed: leak it rather than free memory under I/O.
      if (instance->pending) instance.release();
    }
  }

  ServeResult Run() {
    while (true) {
      Clock::time_point now = Clock::now();
      ExpireDeadlines(now);
      if (!create_paused_until_.has_value() || *create_paused_until_ <= now) {
        create_paused_until_.reset();
        Replenish();
      }
      if (!fatal_error_.empty()) return ServeResult{false, fatal_error_};
      OVERLAPPED_ENTRY entries[kMaxEntries];
      ULONG n = 0;
      if (!GetQueuedCompletionStatusEx(port_, entries, kMaxEntries, &n,
                                       WaitMillis(now), FALSE)) {
        DWORD error = GetLastError();
        if (error == WAIT_TIMEOUT) continue;
        return ServeResult{
            false, WindowsErrorText("GetQueuedCompletionStatusEx", error)};
      }
      bool wake = false;
      for (ULONG i = 0; i < n; ++i) {
        if (entries[i].lpCompletionKey == kWakeKey) {
          wake = true;
          continue;
        }
        auto it = instances_.find(
            reinterpret_cast<Instance*>(entries[i].lpOverlapped));
        if (it == instances_.end()) continue;
        if (wake || !fatal_error_.empty()) {
          // Dequeued, so no longer pending, but serving is over: the
          // destructor closes the instance.
          it->second->pending = false;
          continue;
        }
        OnCompletion(it->second.get(), entries[i].dwNumberOfBytesTransferred);
      }
      if (wake) return ServeResult{};
    }
  }

 private:
  struct Deadline {
    Clock::time_point when;
    uint64_t id;
  };

  DWORD WaitMillis(Clock::time_point now) const {
    std::optional<Clock::time_point> next;
    if (!deadlines_.empty()) next = deadlines_.front().when;
    if (create_paused_until_.has_value() &&
        (!next.has_value() || *create_paused_until_ < *next)) {
      next = create_paused_until_;
    }
    if (!next.has_value()) return INFINITE;
    if (*next <= now) return 0;
    auto millis =
        std::chrono::ceil<std::chrono::milliseconds>(*next - now).count();
    return millis >= INFINITE ? INFINITE - 1 : static_cast<DWORD>(millis);
  }

  // Keeps options_.listening_instances free instances waiting.
  void Replenish() {
    while (listening_ < options_.listening_instances) {
      ScopedHandle pipe(CreateInstance(name_, false));
      if (!pipe.valid() ||
          CreateIoCompletionPort(pipe.get(), port_, kPipeKey, 0) == nullptr) {
        // Out of resources, or instances limited: try again soon.
        create_paused_until_ = Clock::now() + kCreatePause;
        return;
      }
      Listen(std::move(pipe));
    }
  }

  // Waits for a client on `pipe` (already on the port).
  void Listen(ScopedHandle pipe) { StartConnect(Add(std::move(pipe))); }

  // A free instance, counted as listening.
  Instance* Add(ScopedHandle pipe) {
    auto owned = std::make_unique<Instance>();
    Instance* instance = owned.get();
    instance->pipe = std::move(pipe);
    instance->phase = Instance::Phase::kListening;
    instances_.emplace(instance, std::move(owned));
    ++listening_;
    return instance;
  }

  void StartConnect(Instance* instance) {
    if (ConnectNamedPipe(instance->pipe.get(), &instance->overlapped)) {
      instance->pending = true;  // Completed; its packet is queued.
      return;
    }
    DWORD error = GetLastError();
    if (error == ERROR_IO_PENDING) {
      instance->pending = true;
    } else if (error == ERROR_PIPE_CONNECTED || error == ERROR_NO_DATA) {
      // The client came first (no packet is queued); with ERROR_NO_DATA it
      // has gone again, but what it wrote may still be read.
      Connected(instance);
    } else {
      --listening_;
      Close(instance);
    }
  }

  void OnCompletion(Instance* instance, DWORD bytes) {
    instance->pending = false;
    DWORD transferred = 0;
    DWORD error = ERROR_SUCCESS;
    if (!GetOverlappedResult(instance->pipe.get(), &instance->overlapped,
                             &transferred, FALSE)) {
      error = GetLastError();
    } else {
      bytes = transferred;
    }
    switch (instance->phase) {
      case Instance::Phase::kListening:
        if (error == ERROR_SUCCESS || error == ERROR_PIPE_CONNECTED) {
          Connected(instance);
        } else {
          --listening_;
          Close(instance);
        }
        return;
      case Instance::Phase::kReading:
        if (error != ERROR_SUCCESS) {
          // ERROR_BROKEN_PIPE: the client closed its end.
          Finish(instance, Request::End::kEof);
          return;
        }
        instance->data.append(instance->buffer, bytes);
        Examine(instance);
        return;
      case Instance::Phase::kCancelling:
        WriteReplyOrClose(instance);
        return;
      case Instance::Phase::kWriting:
        CloseAnswered(instance);
        return;
    }
  }

  void Connected(Instance* instance) {
    --listening_;
    Replenish();  // A free instance for the next client, first.
    if (reading_.size() >= options_.max_connections) EvictOldest();
    instance->phase = Instance::Phase::kReading;
    instance->id = next_id_++;
    ULONG pid = 0;
    instance->peer.known = true;
    if (GetNamedPipeClientProcessId(instance->pipe.get(), &pid)) {
      instance->peer.pid = pid;
    }
    reading_.emplace(instance->id, instance);
    deadlines_.push_back(Deadline{Clock::now() + read_timeout_, instance->id});
    StartRead(instance);
  }

  void StartRead(Instance* instance) {
    size_t room = Limit(instance->data) - instance->data.size();
    DWORD chunk = static_cast<DWORD>(std::min(room, sizeof(instance->buffer)));
    instance->overlapped = OVERLAPPED{};
    if (ReadFile(instance->pipe.get(), instance->buffer, chunk, nullptr,
                 &instance->overlapped)) {
      instance->pending = true;  // Its packet is queued all the same.
      return;
    }
    DWORD error = GetLastError();
    if (error == ERROR_IO_PENDING) {
      instance->pending = true;
      return;
    }
    Finish(instance, Request::End::kEof);  // ERROR_BROKEN_PIPE and the like.
  }

  // The domain's framing rule, as on Linux: an extended request
  // ("portserver/...", docs/protocol.md) may have up to
  // kMaxExtendedRequestBytes; a plain one max_request_bytes. The first read
  // asks for at most that many, so a plain request is never read past.
  size_t Limit(std::string_view data) const {
    size_t limit = RequestByteLimit(data);
    return limit > kMaxRequestBytes ? limit : options_.max_request_bytes;
  }

  // After bytes arrived: a request, or more to read.
  void Examine(Instance* instance) {
    std::string& data = instance->data;
    size_t newline = data.find('\n');
    if (newline != std::string::npos) {
      data.resize(newline + 1);
      Finish(instance, Request::End::kNewline);
    } else if (data.size() >= Limit(data)) {
      Finish(instance, Request::End::kTooLong);
    } else {
      StartRead(instance);
    }
  }

  void ExpireDeadlines(Clock::time_point now) {
    while (!deadlines_.empty()) {
      Deadline deadline = deadlines_.front();
      auto it = reading_.find(deadline.id);
      if (it != reading_.end() && deadline.when > now) break;
      deadlines_.pop_front();
      if (it == reading_.end()) continue;
      Finish(it->second, Request::End::kTimedOut);
    }
  }

  void EvictOldest() {
    while (!deadlines_.empty()) {
      auto it = reading_.find(deadlines_.front().id);
      deadlines_.pop_front();
      if (it != reading_.end()) {
        Finish(it->second, Request::End::kOverCapacity);
        return;
      }
    }
  }

  // Hands the request to the handler; then the reply is written (once a
  // pending read is cancelled) and the instance closed.
  void Finish(Instance* instance, Request::End end) {
    reading_.erase(instance->id);
    instance->peer.uid =
        CallerUid(instance->pipe.get(), static_cast<DWORD>(instance->peer.pid));
    Request request;
    request.data = instance->data;
    request.end = end;
    request.peer = instance->peer;
    std::string reply = handler_.HandleRequest(request);
    if (end != Request::End::kOverCapacity) instance->reply = std::move(reply);
    // A plain request's denial. An extended client always gets a reply,
    // but for one closed at the connection cap: it is closed as on Linux
    // (an empty line would read to it as a bad reply, a reviewer), and so
    // is a connection closed at the cap before anything of it was read.
    const bool plain =
        !IsExtendedRequest(instance->data) &&
        !(end == Request::End::kOverCapacity && instance->data.empty());
    if (instance->reply.empty() && plain) {
      instance->reply = WindowsPipeTransport::kDenialReply;
    }
    if (instance->pending) {
      instance->phase = Instance::Phase::kCancelling;
      CancelIoEx(instance->pipe.get(), &instance->overlapped);
      return;
    }
    WriteReplyOrClose(instance);
  }

  // The reply in one write (so that a client's single read gets all of
  // it), then the instance is closed. Closing, unlike DisconnectNamedPipe,
  // leaves the reply readable by the client.
  void WriteReplyOrClose(Instance* instance) {
    if (instance->reply.empty()) {
      CloseAnswered(instance);
      return;
    }
    instance->phase = Instance::Phase::kWriting;
    instance->overlapped = OVERLAPPED{};
    if (WriteFile(instance->pipe.get(), instance->reply.data(),
                  static_cast<DWORD>(instance->reply.size()), nullptr,
                  &instance->overlapped) ||
        GetLastError() == ERROR_IO_PENDING) {
      instance->pending = true;
      return;
    }
    CloseAnswered(instance);  // The client is gone.
  }

  void Close(Instance* instance) { instances_.erase(instance); }

  // Closes an instance whose request the handler has answered (the reply
  // written, or none), then lets the handler do its after-reply work.
  void CloseAnswered(Instance* instance) {
    Close(instance);
    handler_.AfterReply();
  }

  const WindowsPipeTransport::Options& options_;
  const std::wstring& name_;
  const HANDLE port_;
  const Clock::duration read_timeout_;
  RequestHandler& handler_;

  std::unordered_map<Instance*, std::unique_ptr<Instance>> instances_;
  std::unordered_map<uint64_t, Instance*> reading_;  // Connections by id.
  std::deque<Deadline> deadlines_;  // FIFO; front is the earliest.
  size_t listening_ = 0;
  uint64_t next_id_ = 1;
  std::optional<Clock::time_point> create_paused_until_;
  std::string fatal_error_;
};

}  // namespace

std::string WindowsPipeTransport::KernelObjectName(std::string name) {
  // A kernel object's name has no backslash after its namespace: each is
  // written '_', with the name's FNV-1a after it, so that "a\b" and "a_b"
  // differ.
  const std::string hash = Fnv1aHex(name);
  bool rewritten = false;
  for (char& c : name) {
    if (c == '\\') {
      c = '_';
      rewritten = true;
    }
  }
  if (rewritten) name += "-" + hash;
  return name;
}

std::string WindowsPipeTransport::PipeLockName(const std::string& pipe_name) {
  return "Global\\portserver-pipe-" +
         KernelObjectName(absl::AsciiStrToLower(pipe_name.substr(
             std::min(pipe_name.size(), sizeof(kPipePrefix) - 1))));
}

absl::StatusOr<std::string> WindowsPipeTransport::PipeName(
    const std::string& address) {
  std::string name;
  if (!address.empty() && address.front() == '@') {
    name = kPipePrefix + address.substr(1);
  } else if (absl::StartsWithIgnoreCase(address, kPipePrefix)) {
    name = address;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "pipe address \"", address,
        "\" must start with @ (for \\\\.\\pipe\\) or with \\\\.\\pipe\\"));
  }
  if (name.size() == sizeof(kPipePrefix) - 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("pipe address \"", address, "\" has no name"));
  }
  // The limit counts UTF-16 units (CreateNamedPipeW), not UTF-8 bytes.
  if (const size_t length = Widen(name).size(); length > kMaxPipeNameChars) {
    return absl::InvalidArgumentError(
        absl::StrCat("pipe name ", name, " is too long: ", length,
                     " characters, at most ", kMaxPipeNameChars));
  }
  if (name.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("pipe address contains a NUL");
  }
  return name;
}

absl::StatusOr<std::unique_ptr<WindowsPipeTransport>>
WindowsPipeTransport::Create(const Options& options) {
  if (options.read_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("read_timeout must be positive");
  }
  if (options.max_request_bytes < 1) {
    return absl::InvalidArgumentError("max_request_bytes must be at least 1");
  }
  if (options.max_connections < 1) {
    return absl::InvalidArgumentError("max_connections must be at least 1");
  }
  if (options.listening_instances < 1) {
    return absl::InvalidArgumentError("listening_instances must be at least 1");
  }
  absl::StatusOr<std::string> name = PipeName(options.address);
  if (!name.ok()) return name.status();
  const std::wstring wide = Widen(*name);
  // Three guards against a second server on the name, each for a case the
  // others miss: a named mutex that our servers hold while they live
  // (Windows drops it with its holder); WaitNamedPipeW, which sees another
  // program's listening instances without connecting to them (it fails
  // with ERROR_FILE_NOT_FOUND only when none exists); and
  // FILE_FLAG_FIRST_PIPE_INSTANCE on the first instance, which closes the
  // remaining race on Windows (wine 8 ignores that flag).
  SetLastError(ERROR_SUCCESS);
  ScopedHandle lock(
      CreateMutexW(nullptr, FALSE, Widen(PipeLockName(*name)).c_str()));
  if (!lock.valid() || GetLastError() == ERROR_ALREADY_EXISTS) {
    DWORD error = GetLastError();
    if (error == ERROR_ALREADY_EXISTS || error == ERROR_ACCESS_DENIED) {
      return InUseError(options.address);
    }
    if (error == ERROR_INVALID_HANDLE) {
      // CreateMutexW's answer when an object of another type has the name.
      return absl::AlreadyExistsError(
          "cannot create the pipe's lock " + PipeLockName(*name) +
          ": another program made an object of another kind (an event?) "
          "with that name");
    }
    return WindowsError("cannot create the pipe's lock", error);
  }
  if (WaitNamedPipeW(wide.c_str(), 1) ||
      GetLastError() != ERROR_FILE_NOT_FOUND) {
    return InUseError(options.address);
  }
  ScopedHandle port(
      CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1));
  if (!port.valid()) {
    DWORD error = GetLastError();
    return WindowsError("CreateIoCompletionPort", error);
  }
  // Every free instance exists before Create() returns: a client that comes
  // before Serve() runs finds one (its connection completes in Serve()).
  std::vector<ScopedHandle> ready;
  for (size_t i = 0; i < options.listening_instances; ++i) {
    ScopedHandle pipe(CreateInstance(wide, /*first=*/i == 0));
    if (!pipe.valid()) {
      DWORD error = GetLastError();
      // FILE_FLAG_FIRST_PIPE_INSTANCE fails with ERROR_ACCESS_DENIED when
      // the pipe exists; ERROR_PIPE_BUSY when it has no free instance.
      if (i == 0 &&
          (error == ERROR_ACCESS_DENIED || error == ERROR_PIPE_BUSY)) {
        return InUseError(options.address);
      }
      return WindowsError(absl::StrCat("cannot create pipe ", *name), error);
    }
    if (CreateIoCompletionPort(pipe.get(), port.get(), kPipeKey, 0) ==
        nullptr) {
      DWORD error = GetLastError();
      return WindowsError("CreateIoCompletionPort(pipe)", error);
    }
    ready.push_back(std::move(pipe));
  }
  return std::unique_ptr<WindowsPipeTransport>(
      new WindowsPipeTransport(options, *std::move(name), std::move(lock),
                               std::move(port), std::move(ready)));
}

WindowsPipeTransport::WindowsPipeTransport(Options options,
                                           std::string pipe_name,
                                           ScopedHandle lock, ScopedHandle port,
                                           std::vector<ScopedHandle> ready)
    : options_(std::move(options)),
      pipe_name_(std::move(pipe_name)),
      lock_(std::move(lock)),
      port_(std::move(port)),
      ready_(std::move(ready)) {}

WindowsPipeTransport::~WindowsPipeTransport() = default;

ServeResult WindowsPipeTransport::Serve(RequestHandler& handler) {
  if (shutdown_.load()) {
    ready_.clear();  // Clients that came early see the pipe close.
    return ServeResult{};
  }
  const std::wstring name = Widen(pipe_name_);
  ServeLoop loop(options_, name, port_.get(), std::move(ready_), handler);
  ready_.clear();
  return loop.Run();
}

void WindowsPipeTransport::Shutdown() {
  shutdown_.store(true);
  PostQueuedCompletionStatus(port_.get(), 0, kWakeKey, nullptr);
}

}  // namespace portserver
