#include "adapters/linux/linux_port_lock_probe.h"

#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace portserver {

constexpr char LinuxPortLockProbe::kDefaultPrefix[];

LinuxPortLockProbe::LinuxPortLockProbe(PortProbe& inner, std::string prefix)
    : inner_(inner), prefix_(std::move(prefix)) {}

LinuxPortLockProbe::~LinuxPortLockProbe() {
  for (const auto& [port, fd] : held_) close(fd);
}

int LinuxPortLockProbe::TryLock(uint16_t port, PortState* state) const {
  *state = PortState::kUnknown;
  std::string name = prefix_ + std::to_string(port);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (name.size() + 1 > sizeof(addr.sun_path)) return -1;
  addr.sun_path[0] = '\0';  // Abstract namespace.
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  socklen_t length =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), length) != 0) {
    if (errno == EADDRINUSE) *state = PortState::kBusy;
    close(fd);
    return -1;
  }
  return fd;
}

PortState LinuxPortLockProbe::Check(uint16_t port) {
  auto it = held_.find(port);
  PortState state = PortState::kFree;
  int fd = it != held_.end() ? it->second : TryLock(port, &state);
  if (fd < 0) return state;
  state = inner_.Check(port);
  if (!IsLeasable(state)) {
    Release(port);
    if (it == held_.end()) close(fd);
    return state;
  }
  held_[port] = fd;
  return state;
}

bool LinuxPortLockProbe::IsFree(uint16_t port) {
  return IsLeasable(Check(port));
}

bool LinuxPortLockProbe::Reserve(uint16_t port) {
  if (held_.count(port) != 0) return true;
  PortState state;
  int fd = TryLock(port, &state);
  if (fd < 0) return false;
  held_[port] = fd;
  return true;
}

void LinuxPortLockProbe::Release(uint16_t port) {
  auto it = held_.find(port);
  if (it == held_.end()) return;
  close(it->second);
  held_.erase(it);
}

}  // namespace portserver
