// StartThread: starts a std::thread and returns it once the thread runs.
//
// Until a new thread first runs, glibc keeps every signal blocked in it,
// faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL) too: pthread_create(3) blocks all
// signals around clone(2), and the thread restores the mask it inherited
// when it starts. A server whose threads are all started before it serves
// never has a thread that blocks a fault (POSIX leaves a blocked fault
// undefined; Linux then kills the process, and a crash report is lost),
// however late the scheduler runs one. The server's threads are few and
// made at start-up, so the wait costs one wake-up each.
//
// Example:
//   std::thread watcher = StartThread([this] { Loop(); });
//   ...  // the thread runs, with the signal mask it inherited
//   watcher.join();
//
// Thread-safe. Errors: as std::thread's constructor (std::system_error).
#ifndef PORTSERVER_APP_STARTED_THREAD_H_
#define PORTSERVER_APP_STARTED_THREAD_H_

#include <future>
#include <thread>
#include <utility>

namespace portserver {

template <typename Body>
std::thread StartThread(Body body) {
  std::promise<void> running;
  std::future<void> ran = running.get_future();
  // The promise moves into the thread: it outlives set_value() there.
  std::thread thread(
      [running = std::move(running), body = std::move(body)]() mutable {
        running.set_value();
        body();
      });
  ran.wait();
  return thread;
}

}  // namespace portserver

#endif  // PORTSERVER_APP_STARTED_THREAD_H_
