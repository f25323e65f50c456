#include "adapters/linux/test_processes.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>

namespace portserver {

char StateOf(pid_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  const std::string stat((std::istreambuf_iterator<char>(file)),
                         std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size()
             ? '?'
             : stat[paren + 2];
}

MainThreadExitedChild::MainThreadExitedChild() {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return;
  pid_ = fork();
  if (pid_ < 0) {
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return;
  }
  if (pid_ == 0) {
    close(pipe_fds[1]);
    static int read_fd;
    read_fd = pipe_fds[0];
    pthread_t thread;
    pthread_create(
        &thread, nullptr,
        [](void*) -> void* {
          char byte;
          (void)!read(read_fd, &byte, 1);  // Until the parent closes it.
          return nullptr;
        },
        nullptr);
    // The main thread alone ends, as pthread_exit() ends it (which would
    // unwind into gtest's handlers here).
    syscall(SYS_exit, 0);
  }
  close(pipe_fds[0]);
  release_fd_ = pipe_fds[1];
  // Until the kernel shows the main thread's exit (a condition, polled).
  for (int i = 0; i < 5000 && StateOf(pid_) != 'Z'; ++i) usleep(1000);
  ok_ = StateOf(pid_) == 'Z';
}

MainThreadExitedChild::~MainThreadExitedChild() {
  Release();
  if (pid_ > 0) waitpid(pid_, nullptr, 0);  // ECHILD if the test reaped it.
}

void MainThreadExitedChild::Release() {
  if (release_fd_ >= 0) close(release_fd_);
  release_fd_ = -1;
}

}  // namespace portserver
