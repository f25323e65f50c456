#include "adapters/windows/python_style_pipe_client.h"

#include "adapters/windows/windows_error.h"
#include "adapters/windows/windows_text.h"

namespace portserver {

PythonStyleReply SendLikePython(const std::string& address,
                                const std::string& request) {
  PythonStyleReply reply;
  std::string name = address;
  if (!name.empty() && name[0] == '@') name = "\\\\.\\pipe\\" + name.substr(1);
  ScopedHandle pipe(CreateFileW(Widen(name).c_str(),
                                GENERIC_READ | GENERIC_WRITE, 0, nullptr,
                                OPEN_EXISTING, 0, nullptr));
  if (!pipe.valid()) {
    reply.error = GetLastError();
    reply.step = "CreateFile";
    return reply;
  }
  DWORD written = 0;
  if (!WriteFile(pipe.get(), request.data(), static_cast<DWORD>(request.size()),
                 &written, nullptr)) {
    reply.error = GetLastError();
    reply.step = "WriteFile";
    return reply;
  }
  char buffer[6];
  DWORD read = 0;
  if (!ReadFile(pipe.get(), buffer, sizeof(buffer), &read, nullptr)) {
    reply.error = GetLastError();
    reply.step = "ReadFile";
    return reply;
  }
  reply.data.assign(buffer, read);
  return reply;
}

PythonStyleReply AskLikePython(const std::string& address, int64_t pid) {
  return SendLikePython(address, std::to_string(pid) + "\n");
}

}  // namespace portserver
