#include "adapters/linux/linux_unix_transport.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <initializer_list>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace portserver {
namespace {

using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC.

// epoll_event.data.u64: the wake descriptor is kWakeId, listener i is
// kFirstListenerId + i, and connections count up from after the last
// listener and are never reused, unlike descriptors.
constexpr uint64_t kWakeId = 0;
constexpr uint64_t kFirstListenerId = 1;

constexpr int kMaxEvents = 64;
// Bounds the accepts per wakeup so that reading keeps up with a flood.
constexpr int kMaxAcceptsPerWakeup = 64;
// How long accepting stops when the process is out of descriptors.
constexpr Clock::duration kAcceptPause = std::chrono::milliseconds(100);
// Longer read timeouts are cut to this, which keeps deadlines in range.
constexpr absl::Duration kMaxReadTimeout = absl::Hours(24 * 365);

// Owns a descriptor; closes it unless released.
class ScopedFd final {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// The errno of a failed call as a Status: "<what>: <strerror>".
absl::Status ErrnoError(int error, absl::string_view what) {
  return absl::ErrnoToStatus(error, what);
}

absl::Status InUseError(absl::string_view address) {
  return absl::AlreadyExistsError(absl::StrCat(
      "address ", address, " is already in use (another port server?)"));
}

struct UnixAddress {
  sockaddr_un addr;
  socklen_t length = 0;
  bool abstract = false;
};

// "@name" is the abstract name "\0name" (length without a trailing NUL);
// anything else is a path.
absl::StatusOr<UnixAddress> MakeAddress(const std::string& address) {
  UnixAddress result;
  std::memset(&result.addr, 0, sizeof(result.addr));
  result.addr.sun_family = AF_UNIX;
  constexpr size_t kPathCapacity = sizeof(result.addr.sun_path);
  if (address.empty()) {
    return absl::InvalidArgumentError("the socket address is empty");
  }
  if (address.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "socket address \"", absl::CEscape(address), "\" contains a NUL"));
  }
  if (address.front() == '@') {
    if (address.size() == 1) {
      return absl::InvalidArgumentError(
          "abstract socket address \"@\" has no name");
    }
    // The '@' becomes the leading NUL, so the whole size counts.
    if (address.size() > kPathCapacity) {
      return absl::InvalidArgumentError(absl::StrCat(
          "socket address ", address, " is too long: ", address.size(),
          " bytes, at most ", kPathCapacity));
    }
    std::memcpy(result.addr.sun_path + 1, address.data() + 1,
                address.size() - 1);
    result.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) +
                                           address.size());
    result.abstract = true;
  } else {
    if (address.size() + 1 > kPathCapacity) {
      return absl::InvalidArgumentError(absl::StrCat(
          "socket path ", address, " is too long: ", address.size(),
          " bytes, at most ", kPathCapacity - 1));
    }
    std::memcpy(result.addr.sun_path, address.data(), address.size());
    result.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) +
                                           address.size() + 1);
  }
  return result;
}

// Makes `address.addr` (a path) free to bind: nothing there, or a socket
// nobody listens on any more, which is removed. A live socket or anything
// that is not a socket is left alone and reported.
absl::Status ClearStaleSocket(const std::string& path,
                              const UnixAddress& address) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoError(errno, absl::StrCat("cannot stat ", path));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " exists and is not a socket; not replacing it"));
  }
  ScopedFd probe(
      socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (probe.get() < 0) return ErrnoError(errno, "socket(AF_UNIX)");
  int rc;
  do {
    rc = connect(probe.get(), reinterpret_cast<const sockaddr*>(&address.addr),
                 address.length);
  } while (rc != 0 && errno == EINTR);
  // EAGAIN: a live server whose backlog is full.
  if (rc == 0 || errno == EAGAIN || errno == EINPROGRESS) {
    return InUseError(path);
  }
  if (errno != ECONNREFUSED) {
    return ErrnoError(errno,
                      absl::StrCat("cannot tell whether ", path, " is in use"));
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError(errno, absl::StrCat("cannot remove stale socket ", path));
  }
  return absl::OkStatus();
}

// Removes `path` if it still names the inode (dev, ino).
void UnlinkIfSame(const std::string& path, dev_t dev, ino_t ino) {
  struct stat st;
  if (lstat(path.c_str(), &st) == 0 && st.st_dev == dev && st.st_ino == ino) {
    unlink(path.c_str());
  }
}

absl::StatusOr<LinuxUnixTransport::Listener> BindListener(
    const std::string& name);
void CloseListener(const LinuxUnixTransport::Listener& listener);

// The state of one Serve() call: open connections and their deadlines.
class ServeLoop final {
 public:
  ServeLoop(const LinuxUnixTransport::Options& options,
            std::vector<LinuxUnixTransport::Listener>& listeners, int epoll_fd,
            int* reserve_fd, RequestHandler& handler)
      : listeners_(listeners),
        epoll_fd_(epoll_fd),
        reserve_fd_(reserve_fd),
        max_request_bytes_(options.max_request_bytes),
        max_connections_(options.max_connections),
        read_timeout_(std::chrono::duration_cast<Clock::duration>(
            absl::ToChronoNanoseconds(
                std::min(options.read_timeout, kMaxReadTimeout)))),
        handler_(handler),
        next_id_(kFirstListenerId + listeners.size()),
        path_check_interval_(std::chrono::duration_cast<Clock::duration>(
            absl::ToChronoNanoseconds(options.path_check_interval))),
        notice_(options.notice),
        path_problems_(listeners.size()) {
    for (const auto& listener : listeners_) {
      if (listener.owns_path &&
          options.path_check_interval > absl::ZeroDuration()) {
        next_path_check_ = Clock::now() + path_check_interval_;
      }
    }
  }
  ServeLoop(const ServeLoop&) = delete;
  ServeLoop& operator=(const ServeLoop&) = delete;

  // Closes the connections still open, without a request for them.
  ~ServeLoop() {
    for (auto& [id, connection] : connections_) close(connection.fd);
    if (accept_paused_until_.has_value()) SetAccepting(true);
  }

  ServeResult Run() {
    epoll_event events[kMaxEvents];
    while (true) {
      Clock::time_point now = Clock::now();
      ExpireDeadlines(now);
      if (accept_paused_until_.has_value() && *accept_paused_until_ <= now) {
        accept_paused_until_.reset();
        SetAccepting(true);
      }
      if (next_path_check_.has_value() && *next_path_check_ <= now) {
        CheckPaths();
        next_path_check_ = now + path_check_interval_;
      }
      if (!fatal_error_.empty()) return ServeResult{false, fatal_error_};
      int n = epoll_wait(epoll_fd_, events, kMaxEvents, WaitMillis(now));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ServeResult{false,
                           absl::StrCat("epoll_wait: ", std::strerror(errno))};
      }
      for (int i = 0; i < n && fatal_error_.empty(); ++i) {
        uint64_t id = events[i].data.u64;
        if (id == kWakeId) return ServeResult{};
        if (id - kFirstListenerId < listeners_.size()) {
          AcceptReady(listeners_[id - kFirstListenerId].fd);
        } else {
          OnReadable(id);
        }
      }
    }
  }

 private:
  struct Connection {
    int fd;
    std::string data;
    PeerCredentials peer;
  };
  struct Deadline {
    Clock::time_point when;
    uint64_t id;
  };
  using ConnectionMap = std::unordered_map<uint64_t, Connection>;

  // Milliseconds until the next deadline or the end of an accept pause,
  // rounded up so that a near deadline does not spin; -1 if none.
  int WaitMillis(Clock::time_point now) const {
    std::optional<Clock::time_point> next;
    if (!deadlines_.empty()) next = deadlines_.front().when;
    if (accept_paused_until_.has_value() &&
        (!next.has_value() || *accept_paused_until_ < *next)) {
      next = accept_paused_until_;
    }
    if (next_path_check_.has_value() &&
        (!next.has_value() || *next_path_check_ < *next)) {
      next = next_path_check_;
    }
    if (!next.has_value()) return -1;
    if (*next <= now) return 0;
    auto millis =
        std::chrono::ceil<std::chrono::milliseconds>(*next - now).count();
    return millis > INT_MAX ? INT_MAX : static_cast<int>(millis);
  }

  // Drops deadlines of closed connections and times out expired ones.
  // All connections share one timeout, so deadlines_ is sorted.
  void ExpireDeadlines(Clock::time_point now) {
    while (!deadlines_.empty()) {
      Deadline deadline = deadlines_.front();
      auto it = connections_.find(deadline.id);
      if (it != connections_.end() && deadline.when > now) break;
      deadlines_.pop_front();
      if (it == connections_.end()) continue;
      // Bytes that arrived in the meantime still count.
      std::optional<Request::End> end = ReadMore(it->second);
      Finish(it, end.value_or(Request::End::kTimedOut));
    }
  }

  void AcceptReady(int listen_fd) {
    bool released = false;  // ReleaseDescriptors() was asked.
    for (int i = 0; i < kMaxAcceptsPerWakeup; ++i) {
      int fd =
          accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        // At the cap, the oldest connection (still without a complete
        // request, or it would be gone) makes room: an idle flood cannot
        // lock a prompt client out. The handler counts it; its client reads
        // a denial.
        if (connections_.size() >= max_connections_) EvictOldest();
        AddConnection(fd);
        continue;
      }
      switch (errno) {
        case EAGAIN:
          return;
        case EINTR:
        // The client's problem, not ours (accept(2) lists the network
        // errors that Linux passes on).
        case ECONNABORTED:
        case EPROTO:
        case EPERM:
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
          continue;
        case EBADF:
        case EINVAL:
        case ENOTSOCK:
        case EFAULT:
          fatal_error_ = absl::StrCat("accept4: ", std::strerror(errno));
          return;
        default:
          // EMFILE, ENFILE, ENOBUFS, ENOMEM or unknown: out of resources.
          // Descriptors kept only to save work give way first (once a
          // wake-up); else one client is turned away with the spare
          // descriptor (counted and logged by the handler), or accepting
          // stops for a while; never spin on a readable listener.
          if ((errno == EMFILE || errno == ENFILE) && !released &&
              handler_.ReleaseDescriptors()) {
            released = true;
            continue;
          }
          if (!DropOneClient(listen_fd, errno == EMFILE)) PauseAccepting();
          return;
      }
    }
  }

  // Accepts one client with the spare descriptor freed and closes it.
  // Returns false if that did not work.
  bool DropOneClient(int listen_fd, bool process_limit) {
    if (*reserve_fd_ < 0) return false;
    close(*reserve_fd_);
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    int error = errno;
    if (fd >= 0) {
      // Counted before the close: a client that reads the end of the
      // stream finds it counted.
      handler_.RefusedForDescriptors(process_limit);
      close(fd);
    }
    *reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd >= 0 || error == EAGAIN;
  }

  void PauseAccepting() {
    if (SetAccepting(false)) accept_paused_until_ = Clock::now() + kAcceptPause;
  }

  // Out of descriptors affects every listener alike: all pause together.
  bool SetAccepting(bool on) {
    for (size_t i = 0; i < listeners_.size(); ++i) {
      epoll_event event{};
      event.events = on ? uint32_t{EPOLLIN} : uint32_t{0};
      event.data.u64 = kFirstListenerId + i;
      if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listeners_[i].fd, &event) != 0) {
        fatal_error_ =
            absl::StrCat("epoll_ctl(listener): ", std::strerror(errno));
        return false;
      }
    }
    return true;
  }

  void Notice(const std::string& line) {
    if (notice_) notice_(line);
  }

  // A path socket whose file is gone is bound again: its clients could no
  // longer reach it (connect() says ENOENT), and nothing else will. One
  // whose path names something else now is left alone. Each finding is
  // told once, until the path is ours again.
  void CheckPaths() {
    for (size_t i = 0; i < listeners_.size(); ++i) {
      LinuxUnixTransport::Listener& listener = listeners_[i];
      if (!listener.owns_path) continue;
      std::string problem;
      struct stat st;
      if (lstat(listener.name.c_str(), &st) == 0) {
        if (st.st_dev == listener.path_dev && st.st_ino == listener.path_ino) {
          path_problems_[i].clear();
          continue;
        }
        problem = absl::StrCat(listener.name,
                               " names something else now, not this "
                               "server's socket: clients of that path do not "
                               "reach this server");
      } else if (errno != ENOENT) {
        problem = absl::StrCat("cannot check the socket ", listener.name, ": ",
                               std::strerror(errno));
      } else if (absl::StatusOr<LinuxUnixTransport::Listener> again =
                     BindListener(listener.name);
                 !again.ok()) {
        problem = absl::StrCat("the socket ", listener.name,
                               " was removed and cannot be bound again: ",
                               again.status().message());
      } else {
        epoll_event event{};
        event.events =
            accept_paused_until_.has_value() ? uint32_t{0} : uint32_t{EPOLLIN};
        event.data.u64 = kFirstListenerId + i;
        if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, again->fd, &event) != 0) {
          problem = absl::StrCat("the socket ", listener.name,
                                 " was removed and cannot be served again: "
                                 "epoll_ctl: ",
                                 std::strerror(errno));
          CloseListener(*again);
        } else {
          // Clients that connected before the removal are served first.
          AcceptReady(listener.fd);
          epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listener.fd, nullptr);
          close(listener.fd);
          listener = std::move(*again);
          path_problems_[i].clear();
          Notice(absl::StrCat("the socket ", listener.name,
                              " was removed (a cleaner of old files?): bound "
                              "it again"));
          continue;
        }
      }
      if (problem != path_problems_[i]) {
        path_problems_[i] = problem;
        Notice(problem);
      }
    }
  }

  void AddConnection(int fd) {
    Connection connection{fd, std::string(), PeerCredentials()};
    ucred cred{};
    socklen_t length = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) == 0 &&
        length == sizeof(cred)) {
      connection.peer.known = true;
      connection.peer.pid = cred.pid;
      connection.peer.uid = cred.uid;
    }
    uint64_t id = next_id_++;
    epoll_event event{};
    event.events = EPOLLIN | EPOLLRDHUP;
    event.data.u64 = id;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
      int error = errno;
      close(fd);
      if (error != ENOMEM && error != ENOSPC) {
        fatal_error_ = absl::StrCat("epoll_ctl: ", std::strerror(error));
      }
      return;
    }
    connections_.emplace(id, std::move(connection));
    deadlines_.push_back(Deadline{Clock::now() + read_timeout_, id});
  }

  void OnReadable(uint64_t id) {
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    std::optional<Request::End> end = ReadMore(it->second);
    if (end.has_value()) Finish(it, *end);
  }

  // Reads what is available. Returns why the request ended, or nullopt if
  // it needs more bytes.
  std::optional<Request::End> ReadMore(Connection& connection) {
    std::string& data = connection.data;
    while (data.size() < Limit(data)) {
      const size_t limit = Limit(data);
      size_t old_size = data.size();
      data.resize(limit);
      ssize_t n = recv(connection.fd, &data[old_size], limit - old_size, 0);
      if (n > 0) {
        data.resize(old_size + static_cast<size_t>(n));
        size_t newline = data.find('\n', old_size);
        if (newline != std::string::npos) {
          data.resize(newline + 1);
          return Request::End::kNewline;
        }
        continue;
      }
      data.resize(old_size);
      if (n == 0) return Request::End::kEof;
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return std::nullopt;
      return Request::End::kEof;  // ECONNRESET and the like: it is over.
    }
    return Request::End::kTooLong;
  }

  // The domain's framing rule: an extended request may be longer than a
  // plain one, whose limit is max_request_bytes_.
  size_t Limit(std::string_view data) const {
    size_t limit = RequestByteLimit(data);
    return limit > kMaxRequestBytes ? limit : max_request_bytes_;
  }

  // Frees a slot: the oldest connection is finished, as a request if what it
  // sent is complete by now, else as kOverCapacity.
  void EvictOldest() {
    while (!deadlines_.empty()) {
      auto it = connections_.find(deadlines_.front().id);
      deadlines_.pop_front();
      if (it != connections_.end()) {
        std::optional<Request::End> end = ReadMore(it->second);
        Finish(it, end.value_or(Request::End::kOverCapacity));
        return;
      }
    }
  }

  // Hands the request to the handler, sends the reply and closes.
  void Finish(ConnectionMap::iterator it, Request::End end) {
    Connection& connection = it->second;
    Request request;
    request.data = connection.data;
    request.end = end;
    request.peer = connection.peer;
    std::string reply = handler_.HandleRequest(request);
    if (!reply.empty() && end != Request::End::kOverCapacity) {
      // Replies are at most kMaxReplyBytes (32 KiB, extended ones; a plain
      // one is a few bytes) and the socket buffer is empty, so one send
      // normally takes all; if not, the client gets a cut reply and EOF.
      ssize_t n;
      do {
        n = send(connection.fd, reply.data(), reply.size(),
                 MSG_NOSIGNAL | MSG_DONTWAIT);
      } while (n < 0 && errno == EINTR);
    }
    close(connection.fd);
    connections_.erase(it);
    handler_.AfterReply();
  }

  std::vector<LinuxUnixTransport::Listener>& listeners_;
  const int epoll_fd_;
  int* const reserve_fd_;
  const size_t max_request_bytes_;
  const size_t max_connections_;
  const Clock::duration read_timeout_;
  RequestHandler& handler_;

  ConnectionMap connections_;
  std::deque<Deadline> deadlines_;  // FIFO; front is the earliest.
  uint64_t next_id_;
  std::optional<Clock::time_point> accept_paused_until_;
  std::string fatal_error_;  // Set when serving must stop.
  const Clock::duration path_check_interval_;
  const std::function<void(const std::string&)> notice_;
  std::optional<Clock::time_point> next_path_check_;  // None: never.
  std::vector<std::string> path_problems_;  // The last told, per listener.
};

// Closes `listener` and, if this process bound its path, removes the file.
void CloseListener(const LinuxUnixTransport::Listener& listener) {
  if (listener.owns_path) {
    UnlinkIfSame(listener.name, listener.path_dev, listener.path_ino);
  }
  if (listener.fd >= 0) close(listener.fd);
}

// Owns listeners until released; closes them (and removes their files) if
// Create() fails half-way.
class ListenerSet final {
 public:
  ListenerSet() = default;
  ListenerSet(const ListenerSet&) = delete;
  ListenerSet& operator=(const ListenerSet&) = delete;
  ~ListenerSet() {
    for (const auto& listener : listeners_) CloseListener(listener);
  }
  void Add(LinuxUnixTransport::Listener listener) {
    listeners_.push_back(std::move(listener));
  }
  const std::vector<LinuxUnixTransport::Listener>& get() const {
    return listeners_;
  }
  std::vector<LinuxUnixTransport::Listener> Release() {
    return std::exchange(listeners_, {});
  }

 private:
  std::vector<LinuxUnixTransport::Listener> listeners_;
};

// Creates, binds and listens a socket at `name` ("@abstract" or a path).
absl::StatusOr<LinuxUnixTransport::Listener> BindListener(
    const std::string& name) {
  absl::StatusOr<UnixAddress> address = MakeAddress(name);
  if (!address.ok()) return address.status();

  ScopedFd listen_fd(
      socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (listen_fd.get() < 0) return ErrnoError(errno, "socket(AF_UNIX)");
  if (!address->abstract) {
    absl::Status cleared = ClearStaleSocket(name, *address);
    if (!cleared.ok()) return cleared;
  }
  if (bind(listen_fd.get(), reinterpret_cast<const sockaddr*>(&address->addr),
           address->length) != 0) {
    if (errno == EADDRINUSE) return InUseError(name);
    return ErrnoError(errno, absl::StrCat("cannot bind ", name));
  }

  // From here on, a failure removes the socket file created by bind().
  bool owns_path = false;
  struct stat st {};
  if (!address->abstract) {
    if (lstat(name.c_str(), &st) != 0) {
      return ErrnoError(errno, absl::StrCat("cannot stat ", name));
    }
    owns_path = true;
  }
  struct PathGuard {
    const std::string* path;  // Null once disarmed.
    dev_t dev;
    ino_t ino;
    ~PathGuard() {
      if (path != nullptr) UnlinkIfSame(*path, dev, ino);
    }
  } guard{owns_path ? &name : nullptr, st.st_dev, st.st_ino};

  // Any local user may ask for ports, as with an abstract socket; the
  // directory can restrict that.
  if (owns_path && chmod(name.c_str(), 0666) != 0) {
    return ErrnoError(errno, absl::StrCat("cannot chmod ", name));
  }
  if (listen(listen_fd.get(), SOMAXCONN) != 0) {
    return ErrnoError(errno, absl::StrCat("cannot listen on ", name));
  }
  guard.path = nullptr;
  LinuxUnixTransport::Listener listener;
  listener.fd = listen_fd.release();
  listener.name = name;
  listener.owns_path = owns_path;
  listener.path_dev = st.st_dev;
  listener.path_ino = st.st_ino;
  return listener;
}

const char* FamilyName(int family) {
  switch (family) {
    case AF_UNIX:
      return "AF_UNIX";
    case AF_INET:
      return "AF_INET";
    case AF_INET6:
      return "AF_INET6";
    case AF_NETLINK:
      return "AF_NETLINK";
  }
  return "another family";
}

const char* TypeName(int type) {
  switch (type) {
    case SOCK_STREAM:
      return "SOCK_STREAM";
    case SOCK_DGRAM:
      return "SOCK_DGRAM";
    case SOCK_SEQPACKET:
      return "SOCK_SEQPACKET";
    case SOCK_RAW:
      return "SOCK_RAW";
  }
  return "another type";
}

// Checks that `fd` is a listening AF_UNIX stream socket, and makes it
// non-blocking and close-on-exec (a passed socket may be neither).
absl::Status CheckInherited(int fd, const std::string& name) {
  // E.g. "the socket @x (passed as descriptor 3)": the descriptor once,
  // whether or not the caller's name says it.
  const std::string descriptor = absl::StrCat("descriptor ", fd);
  std::string what = absl::StrCat("the socket ", name);
  if (name.find(descriptor) == std::string::npos) {
    absl::StrAppend(&what, " (", descriptor, ")");
  }
  if (fd < 0 || fcntl(fd, F_GETFD) < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not an open descriptor"));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what,
                     " is not a socket; want a listening AF_UNIX "
                     "SOCK_STREAM socket"));
  }
  int family = 0, type = 0, accepting = 0;
  socklen_t length = sizeof(int);
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &length) != 0) {
    return ErrnoError(errno, absl::StrCat(what, ": getsockopt(SO_DOMAIN)"));
  }
  length = sizeof(int);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) != 0) {
    return ErrnoError(errno, absl::StrCat(what, ": getsockopt(SO_TYPE)"));
  }
  length = sizeof(int);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) != 0) {
    return ErrnoError(errno, absl::StrCat(what, ": getsockopt(SO_ACCEPTCONN)"));
  }
  if (family != AF_UNIX || type != SOCK_STREAM) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " is ", FamilyName(family), " ", TypeName(type),
        "; want a listening AF_UNIX SOCK_STREAM socket (ListenStream= with "
        "an @name or a path)"));
  }
  if (!accepting) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is AF_UNIX SOCK_STREAM but not listening"));
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
      fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    return ErrnoError(errno, absl::StrCat(what, ": fcntl"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<LinuxUnixTransport>> LinuxUnixTransport::Create(
    const Options& options) {
  // Inherited descriptors are ours whatever happens: adopt them first.
  ListenerSet inherited;
  for (const InheritedListener& passed : options.inherited) {
    Listener listener;
    listener.fd = passed.fd;
    listener.name = passed.name;
    listener.inherited = true;
    inherited.Add(std::move(listener));
  }
  if (options.read_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("read_timeout must be positive");
  }
  if (options.max_request_bytes < 1) {
    return absl::InvalidArgumentError("max_request_bytes must be at least 1");
  }
  if (options.max_connections < 1) {
    return absl::InvalidArgumentError("max_connections must be at least 1");
  }
  std::vector<std::string> addresses;
  if (!options.address.empty() ||
      (options.extra_addresses.empty() && options.inherited.empty())) {
    addresses.push_back(options.address);  // Empty: MakeAddress reports it.
  }
  addresses.insert(addresses.end(), options.extra_addresses.begin(),
                   options.extra_addresses.end());
  for (size_t i = 0; i < addresses.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (addresses[i] == addresses[j]) {
        return absl::InvalidArgumentError(
            absl::StrCat("address ", addresses[i], " is given twice"));
      }
    }
  }
  // Checked before anything is bound, so that a bad passed socket leaves no
  // file behind.
  for (const Listener& listener : inherited.get()) {
    absl::Status checked = CheckInherited(listener.fd, listener.name);
    if (!checked.ok()) return checked;
  }
  // Options order: bound ones (address, extra_addresses), then inherited.
  ListenerSet listeners;
  for (const std::string& address : addresses) {
    absl::StatusOr<Listener> listener = BindListener(address);
    if (!listener.ok()) return listener.status();
    listeners.Add(std::move(*listener));
  }
  for (Listener& listener : inherited.Release()) {
    listeners.Add(std::move(listener));
  }
  const std::vector<Listener>& all = listeners.get();

  ScopedFd epoll_fd(epoll_create1(EPOLL_CLOEXEC));
  if (epoll_fd.get() < 0) return ErrnoError(errno, "epoll_create1");
  ScopedFd wake_fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (wake_fd.get() < 0) return ErrnoError(errno, "eventfd");
  std::vector<std::pair<int, uint64_t>> watched = {{wake_fd.get(), kWakeId}};
  for (size_t i = 0; i < all.size(); ++i) {
    watched.emplace_back(all[i].fd, kFirstListenerId + i);
  }
  for (auto [fd, id] : watched) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = id;
    if (epoll_ctl(epoll_fd.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
      return ErrnoError(errno, "epoll_ctl");
    }
  }
  // Without a spare descriptor Serve() pauses accepting on EMFILE instead.
  int reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

  return std::unique_ptr<LinuxUnixTransport>(
      new LinuxUnixTransport(options, listeners.Release(), epoll_fd.release(),
                             wake_fd.release(), reserve_fd));
}

LinuxUnixTransport::LinuxUnixTransport(Options options,
                                       std::vector<Listener> listeners,
                                       int epoll_fd, int wake_fd,
                                       int reserve_fd)
    : options_(std::move(options)),
      listeners_(std::move(listeners)),
      epoll_fd_(epoll_fd),
      wake_fd_(wake_fd),
      reserve_fd_(reserve_fd) {}

LinuxUnixTransport::~LinuxUnixTransport() {
  for (const Listener& listener : listeners_) CloseListener(listener);
  close(epoll_fd_);
  close(wake_fd_);
  if (reserve_fd_ >= 0) close(reserve_fd_);
}

std::vector<LinuxUnixTransport::ListenerInfo> LinuxUnixTransport::listeners()
    const {
  std::vector<ListenerInfo> result;
  for (const Listener& listener : listeners_) {
    result.push_back(
        ListenerInfo{listener.name, listener.fd, listener.inherited});
  }
  return result;
}

ServeResult LinuxUnixTransport::Serve(RequestHandler& handler) {
  ServeLoop loop(options_, listeners_, epoll_fd_, &reserve_fd_, handler);
  return loop.Run();
}

void LinuxUnixTransport::Shutdown() {
  // Only write(2): async-signal-safe. The counter is never read, so every
  // later Serve() sees it too.
  int saved_errno = errno;
  uint64_t one = 1;
  ssize_t written = write(wake_fd_, &one, sizeof(one));
  (void)written;
  errno = saved_errno;
}

}  // namespace portserver
