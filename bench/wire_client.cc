#include "bench/wire_client.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace portserver_bench {

int64_t NowNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

Exchanged Exchange(const std::string& address, std::string_view request,
                   size_t max_reply) {
  Exchanged out;
  int64_t start = NowNanos();
  sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  size_t n = std::min(address.size(), sizeof(addr.sun_path) - 1);
  std::memcpy(addr.sun_path, address.data(), n);
  socklen_t length =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n);
  if (n > 0 && address[0] == '@') {
    addr.sun_path[0] = '\0';  // Abstract: no trailing NUL counted.
  } else {
    length += 1;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    out.error = errno;
    return out;
  }
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), length) != 0) {
    out.error = errno;
    close(fd);
    out.nanos = NowNanos() - start;
    return out;
  }
  out.connected = true;
  ssize_t sent;
  do {
    sent = send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  char buffer[4096];
  while (out.reply.size() < max_reply) {
    size_t room = std::min(sizeof(buffer), max_reply - out.reply.size());
    ssize_t r = read(fd, buffer, room);
    if (r > 0) {
      out.reply.append(buffer, static_cast<size_t>(r));
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) out.error = errno;
    break;
  }
  close(fd);
  out.nanos = NowNanos() - start;
  return out;
}

Reply AskForPort(const std::string& address, int64_t pid) {
  Reply reply;
  Exchanged x = Exchange(address, std::to_string(pid) + "\n", 64);
  reply.nanos = x.nanos;
  reply.error = x.error;
  if (!x.connected) {
    reply.kind = Reply::Kind::kNoServer;
    return reply;
  }
  if (reply.error != 0) return reply;  // kBadReply
  const std::string& got = x.reply;
  if (got.empty()) {
    reply.kind = Reply::Kind::kDenied;
    return reply;
  }
  int port = 0;
  size_t i = 0;
  for (; i < got.size() && got[i] >= '0' && got[i] <= '9' && port <= 65535;
       ++i) {
    port = port * 10 + (got[i] - '0');
  }
  if (i > 0 && i + 1 == got.size() && got[i] == '\n' && port >= 1 &&
      port <= 65535) {
    reply.kind = Reply::Kind::kPort;
    reply.port = port;
  }
  return reply;
}

Percentiles Summarize(std::vector<int64_t>& nanos) {
  Percentiles p;
  p.count = nanos.size();
  if (nanos.empty()) return p;
  std::sort(nanos.begin(), nanos.end());
  // Nearest rank.
  auto rank = [&](double q) {
    size_t k = static_cast<size_t>(q * static_cast<double>(nanos.size()));
    if (k >= nanos.size()) k = nanos.size() - 1;
    return nanos[k];
  };
  p.min = nanos.front();
  p.p50 = rank(0.50);
  p.p99 = rank(0.99);
  p.max = nanos.back();
  return p;
}

Flags::Flags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      for (++i; i < argc; ++i) rest_.push_back(argv[i]);
      break;
    }
    if (arg.rfind("--", 0) != 0) {
      std::fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0],
                   arg.c_str());
      std::exit(2);
    }
    size_t eq = arg.find('=');
    Arg a;
    a.name =
        arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    a.value = eq == std::string::npos ? "true" : arg.substr(eq + 1);
    args_.push_back(a);
  }
}

Flags::Arg* Flags::Find(std::string_view name) {
  Arg* found = nullptr;
  for (Arg& a : args_) {
    if (a.name == name) {
      a.used = true;
      found = &a;  // The last one wins.
    }
  }
  return found;
}

std::string Flags::Get(std::string_view name, const std::string& fallback) {
  Arg* a = Find(name);
  return a == nullptr ? fallback : a->value;
}

int64_t Flags::GetInt(std::string_view name, int64_t fallback) {
  Arg* a = Find(name);
  if (a == nullptr) return fallback;
  char* end = nullptr;
  long long v = std::strtoll(a->value.c_str(), &end, 10);
  if (a->value.empty() || *end != '\0') {
    std::fprintf(stderr, "--%s: not an integer: '%s'\n", a->name.c_str(),
                 a->value.c_str());
    std::exit(2);
  }
  return v;
}

double Flags::GetDouble(std::string_view name, double fallback) {
  Arg* a = Find(name);
  if (a == nullptr) return fallback;
  char* end = nullptr;
  double v = std::strtod(a->value.c_str(), &end);
  if (a->value.empty() || *end != '\0') {
    std::fprintf(stderr, "--%s: not a number: '%s'\n", a->name.c_str(),
                 a->value.c_str());
    std::exit(2);
  }
  return v;
}

bool Flags::Has(std::string_view name) { return Find(name) != nullptr; }

void Flags::CheckAllUsed(const char* program) const {
  for (const Arg& a : args_) {
    if (!a.used) {
      std::fprintf(stderr, "%s: unknown flag --%s\n", program, a.name.c_str());
      std::exit(2);
    }
  }
}

bool ParsePool(const std::string& spec, std::vector<uint16_t>* ports) {
  ports->clear();
  size_t pos = 0;
  while (pos <= spec.size()) {
    size_t comma = spec.find(',', pos);
    std::string part = spec.substr(
        pos, comma == std::string::npos ? std::string::npos : comma - pos);
    long lo = 0;
    long hi = 0;
    char tail = 0;
    int fields = std::sscanf(part.c_str(), "%ld-%ld%c", &lo, &hi, &tail);
    if (fields == 1) {
      char extra = 0;
      if (std::sscanf(part.c_str(), "%ld%c", &lo, &extra) != 1) return false;
      hi = lo;
    } else if (fields != 2) {
      return false;
    }
    if (lo < 1 || hi > 65535 || lo > hi) return false;
    for (long p = lo; p <= hi; ++p) ports->push_back(static_cast<uint16_t>(p));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return !ports->empty();
}

}  // namespace portserver_bench
