// ceiling_server: the least a port server of this protocol must do, as a
// yardstick for throughput. One thread, epoll, AF_UNIX; each request
// ("<pid>\n") is answered with the next port of the pool, round-robin, that
// passes the reference's is_port_free (bind TCP and UDP on IPv6 and IPv4,
// SO_REUSEADDR, listen for TCP). No ledger, no process probe, no logging
// per request: the pid is parsed and otherwise ignored.
//
//   ceiling_server [--portserver_address=@unittest-portserver]
//                  [--portserver_static_pool=15000-24999]
//
// Prints "Serving on <address>" to stderr when ready; SIGTERM or SIGINT
// exits 0.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/wire_client.h"

namespace {

constexpr size_t kMaxRequestBytes = 20;

bool BindOne(int family, int type, uint16_t port) {
  int fd = socket(family, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  int rc;
  if (family == AF_INET6) {
    sockaddr_in6 a;
    std::memset(&a, 0, sizeof(a));
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_any;
    a.sin6_port = htons(port);
    rc = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  } else {
    sockaddr_in a;
    std::memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons(port);
    rc = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  }
  if (rc == 0 && type == SOCK_STREAM) rc = listen(fd, 1);
  close(fd);
  return rc == 0;
}

// The reference's is_port_free: four binds.
bool IsPortFree(uint16_t port) {
  return BindOne(AF_INET6, SOCK_STREAM, port) &&
         BindOne(AF_INET, SOCK_STREAM, port) &&
         BindOne(AF_INET6, SOCK_DGRAM, port) &&
         BindOne(AF_INET, SOCK_DGRAM, port);
}

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "ceiling_server: error: %s: %s\n", what,
               std::strerror(errno));
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  portserver_bench::Flags flags(argc, argv);
  std::string address = flags.Get("portserver_address", "@unittest-portserver");
  address = flags.Get("portserver_unix_socket_address", address);
  std::string pool_spec = flags.Get("portserver_static_pool", "15000-24999");
  flags.CheckAllUsed("ceiling_server");
  std::vector<uint16_t> pool;
  if (!portserver_bench::ParsePool(pool_spec, &pool)) {
    std::fprintf(stderr, "ceiling_server: error: bad pool '%s'\n",
                 pool_spec.c_str());
    return 2;
  }

  sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  if (address.empty() || address.size() >= sizeof(addr.sun_path)) {
    std::fprintf(stderr, "ceiling_server: error: bad address\n");
    return 2;
  }
  std::memcpy(addr.sun_path, address.data(), address.size());
  socklen_t length =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
  if (address[0] == '@') {
    addr.sun_path[0] = '\0';
  } else {
    unlink(address.c_str());
    length += 1;
  }
  int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener < 0) Fail("socket");
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), length) != 0) {
    Fail("bind");
  }
  if (listen(listener, SOMAXCONN) != 0) Fail("listen");

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigprocmask(SIG_BLOCK, &signals, nullptr);
  int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC);
  if (signal_fd < 0) Fail("signalfd");

  int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) Fail("epoll_create1");
  for (int fd : {listener, signal_fd}) {
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.fd = fd;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &e) != 0) Fail("epoll_ctl");
  }
  std::fprintf(stderr, "ceiling_server: Serving on %s (pool %s, %zu ports)\n",
               address.c_str(), pool_spec.c_str(), pool.size());

  std::vector<std::string> pending;  // Request bytes by descriptor.
  size_t next = 0;                   // Round-robin position in `pool`.
  epoll_event events[64];
  while (true) {
    int n = epoll_wait(epoll_fd, events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      Fail("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == signal_fd) {
        if (address[0] != '@') unlink(address.c_str());
        return 0;
      }
      if (fd == listener) {
        while (true) {
          int c =
              accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          epoll_event e{};
          e.events = EPOLLIN;
          e.data.fd = c;
          if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c, &e) != 0) {
            close(c);
            continue;
          }
          if (static_cast<size_t>(c) >= pending.size()) {
            pending.resize(static_cast<size_t>(c) + 1);
          }
          pending[static_cast<size_t>(c)].clear();
        }
        continue;
      }
      std::string& data = pending[static_cast<size_t>(fd)];
      char buffer[64];
      bool done = false;
      while (!done) {
        ssize_t r = read(fd, buffer, sizeof(buffer));
        if (r > 0) {
          data.append(buffer, static_cast<size_t>(r));
          done = data.find('\n') != std::string::npos ||
                 data.size() > kMaxRequestBytes;
        } else if (r < 0 && errno == EINTR) {
          continue;
        } else if (r < 0 && errno == EAGAIN) {
          break;
        } else {
          done = true;  // End of stream or an error.
        }
      }
      if (!done) continue;
      size_t digits = 0;
      while (digits < data.size() && data[digits] >= '0' &&
             data[digits] <= '9') {
        ++digits;
      }
      bool valid = digits > 0 && data.size() <= kMaxRequestBytes &&
                   (digits == data.size() || data[digits] == '\n');
      if (valid) {
        for (size_t tried = 0; tried < pool.size(); ++tried) {
          uint16_t port = pool[next];
          next = next + 1 == pool.size() ? 0 : next + 1;
          if (IsPortFree(port)) {
            char reply[8];
            int len = std::snprintf(reply, sizeof(reply), "%u\n", port);
            send(fd, reply, static_cast<size_t>(len),
                 MSG_NOSIGNAL | MSG_DONTWAIT);
            break;
          }
        }
      }
      close(fd);  // Also removes it from the epoll set.
      data.clear();
    }
  }
}
