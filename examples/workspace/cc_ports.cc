// A C++ test under portserver_test. Each round picks two ports with the C++
// client (@portserver//client:portpicker), which asks the server at
// PORTSERVER_ADDRESS on behalf of this process: the lease lasts as long as
// this process, i.e. the whole test. Binds each at once (TCP, listening, and
// UDP; no SO_REUSEADDR) and keeps it bound to the end. Fails on a port
// outside PORTSERVER_POOL, the same port twice, or a port someone else has
// bound (COLLISION).
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/portpicker.h"

namespace {

// Binds `port` on the IPv4 wildcard address; -1 with errno on failure.
int Bind(int port, int type) {
  int fd = socket(AF_INET, type, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      (type == SOCK_STREAM && listen(fd, 1) != 0)) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 10;
  const std::string pool = std::getenv("PORTSERVER_POOL");
  const int first = std::atoi(pool.c_str());
  const int last = std::atoi(pool.substr(pool.find('-') + 1).c_str());
  std::set<int> seen;
  std::vector<int> held;  // Kept open (bound) until the process exits.
  for (int round = 0; round < rounds; ++round) {
    absl::StatusOr<std::vector<int>> ports = portpicker::PickUnusedPorts(2);
    if (!ports.ok()) {
      std::printf("no ports: %s\n", ports.status().ToString().c_str());
      return 1;
    }
    for (int port : *ports) {
      if (port < first || port > last || !seen.insert(port).second) {
        std::printf("port %d: outside the pool %s or handed out twice\n", port,
                    pool.c_str());
        return 1;
      }
      for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
        int fd = Bind(port, type);
        if (fd < 0) {
          std::printf("%s: port %d: %s\n",
                      errno == EADDRINUSE ? "COLLISION" : "bind failed", port,
                      std::strerror(errno));
          return 1;
        }
        held.push_back(fd);
      }
    }
  }
  std::printf("cc_ports: %zu ports leased and bound\n", seen.size());
  return 0;
}
