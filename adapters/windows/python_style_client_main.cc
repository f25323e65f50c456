// python_style_client: asks a port server over a named pipe exactly as
// python portpicker 1.5.2 does on Windows (python_style_pipe_client.h), for
// tests and for trying a server by hand.
//
//   python_style_client ADDRESS [PID]     (PID defaults to this process)
//
// Prints what the server sent and exits 0 (our server's denial is an empty
// line, which python takes for a failure and falls back on); on a failure
// prints "<step> failed: <Win32 error>" to stderr and exits 1 (a server
// that closes without a reply: "ReadFile failed: 109", ERROR_BROKEN_PIPE,
// which python raises); exits 2 on bad arguments.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "adapters/windows/python_style_pipe_client.h"
#include "adapters/windows/windows_error.h"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: python_style_client ADDRESS [PID]\n");
    return 2;
  }
  long long pid = argc == 3 ? std::atoll(argv[2]) : GetCurrentProcessId();
  portserver::PythonStyleReply reply = portserver::AskLikePython(argv[1], pid);
  if (reply.error != 0) {
    std::fprintf(stderr, "%s failed: %lu\n", reply.step, reply.error);
    return 1;
  }
  std::fwrite(reply.data.data(), 1, reply.data.size(), stdout);
  return 0;
}
