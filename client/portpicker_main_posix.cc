#include <errno.h>
#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/portpicker_main_platform.h"

namespace portpicker {

int64_t ParentPid() { return getppid(); }

size_t WriteStdout(const std::string& text, int* error) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(STDOUT_FILENO, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = n < 0 ? errno : EIO;
      return done;
    }
    done += static_cast<size_t>(n);
  }
  return done;
}

void KeepBoundInBackground(const std::vector<int>& held, double seconds) {
  const pid_t child = fork();
  if (child < 0) {
    std::fprintf(stderr,
                 "portpicker: cannot fork to keep the ports bound: %s\n",
                 std::strerror(errno));
    for (int fd : held) close(fd);
    return;
  }
  if (child > 0) {
    for (int fd : held) close(fd);
    return;
  }
  const int null = open("/dev/null", O_RDWR);
  for (int stdio = 0; stdio <= 2; ++stdio) {
    if (null >= 0) dup2(null, stdio);
  }
  absl::SleepFor(absl::Seconds(seconds));
  for (int fd : held) close(fd);
  _exit(0);
}

}  // namespace portpicker
