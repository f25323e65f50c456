// Demo: three jobs share a five-port range; when one finishes, its ports go
// to the next job. Run: ./bazelw run //examples/scheduler:demo
#include <cstdio>

#include "examples/scheduler/job_ports.h"

int main() {
  scheduler::JobPorts ports({30000, 30001, 30002, 30003, 30004});
  int64_t a = ports.StartJob();
  int64_t b = ports.StartJob();
  auto print = [](const char* what, int64_t job,
                  const std::vector<uint16_t>& got) {
    std::printf("%s job %lld:", what, static_cast<long long>(job));
    for (uint16_t p : got) std::printf(" %u", p);
    std::printf("\n");
  };
  print("leased to", a, ports.Lease(a, 3));
  print("leased to", b, ports.Lease(b, 3));  // Only 2 left.
  std::printf("job %lld finished: %zu ports back\n", static_cast<long long>(a),
              ports.FinishJob(a));
  int64_t c = ports.StartJob();
  print("leased to", c, ports.Lease(c, 3));
  return 0;
}
