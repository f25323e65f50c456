#include "adapters/windows/windows_test_util.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "absl/strings/str_cat.h"
#include "adapters/windows/windows_text.h"

namespace portserver {

std::string UniquePipeAddress(const std::string& tag) {
  static std::atomic<int> counter{0};
  return absl::StrCat("@portserver-test-", tag, "-", GetCurrentProcessId(), "-",
                      counter.fetch_add(1), "-", GetTickCount64());
}

std::string NewTempDirectory() {
  static std::atomic<int> counter{0};
  std::string base;
  std::optional<std::string> test_tmp = EnvironmentUtf8("TEST_TMPDIR");
  if (test_tmp.has_value() && !test_tmp->empty()) {
    base = *test_tmp;
    // A Unix path from Bazel: under wine, drive Z: is the Unix root.
    if (base[0] == '/') base = "Z:" + base;
  } else {
    wchar_t temp[MAX_PATH + 1];
    DWORD n = GetTempPathW(MAX_PATH + 1, temp);
    base = Narrow(std::wstring_view(temp, n));
  }
  while (!base.empty() && (base.back() == '\\' || base.back() == '/')) {
    base.pop_back();
  }
  std::string dir =
      absl::StrCat(base, "\\portserver-test-", GetCurrentProcessId(), "-",
                   counter.fetch_add(1), "-", GetTickCount64());
  CreateDirectoryW(Widen(dir).c_str(), nullptr);
  return dir;
}

std::string ThisExecutable() {
  wchar_t path[32768];
  DWORD n = GetModuleFileNameW(nullptr, path, 32768);
  return Narrow(std::wstring(path, n));
}

std::string ExePath(const std::string& relative) {
  std::wstring wide = Widen(relative);
  DWORD attributes = GetFileAttributesW(wide.c_str());
  if (attributes != INVALID_FILE_ATTRIBUTES) {
    // Absolute, with backslashes: CreateProcessW may look for a relative
    // path beside the running program first.
    wchar_t full[32768];
    DWORD n = GetFullPathNameW(wide.c_str(), 32768, full, nullptr);
    if (n == 0 || n >= 32768) return relative;
    std::wstring path(full, n);
    if (path.size() < 200) return Narrow(path);
    // CreateProcessW fails on paths near MAX_PATH (Bazel's sandboxed
    // runfiles are that long): run a copy from %TEMP% instead.
    wchar_t temp[MAX_PATH + 1];
    DWORD t = GetTempPathW(MAX_PATH + 1, temp);
    size_t slash = path.find_last_of(L"\\/");
    std::wstring copy = std::wstring(temp, t) + L"portserver-" +
                        std::to_wstring(GetCurrentProcessId()) + L"-" +
                        path.substr(slash + 1);
    if (CopyFileW(path.c_str(), copy.c_str(), FALSE) ||
        GetLastError() == ERROR_SHARING_VIOLATION) {
      return Narrow(copy);
    }
    return Narrow(path);
  }
  std::string self = ThisExecutable();
  size_t slash = self.find_last_of("\\/");
  size_t name = relative.find_last_of("\\/");
  return self.substr(0, slash + 1) +
         (name == std::string::npos ? relative : relative.substr(name + 1));
}

std::string Quote(const std::string& arg) { return "\"" + arg + "\""; }

std::unique_ptr<ChildProcess> ChildProcess::Start(
    const std::string& command_line, bool capture, DWORD flags, DWORD* error) {
  std::unique_ptr<ChildProcess> child(new ChildProcess());
  STARTUPINFOW startup{};
  startup.cb = sizeof(startup);
  ScopedHandle write_end;
  if (capture) {
    SECURITY_ATTRIBUTES inherit{sizeof(inherit), nullptr, TRUE};
    HANDLE read = nullptr;
    HANDLE write = nullptr;
    if (!CreatePipe(&read, &write, &inherit, 0)) {
      if (error != nullptr) *error = GetLastError();
      return nullptr;
    }
    child->output_.Reset(read);
    write_end.Reset(write);
    SetHandleInformation(read, HANDLE_FLAG_INHERIT, 0);
    startup.dwFlags = STARTF_USESTDHANDLES;
    startup.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
    startup.hStdOutput = write;
    startup.hStdError = write;
  }
  std::wstring line = Widen(command_line);
  PROCESS_INFORMATION info{};
  if (!CreateProcessW(nullptr, &line[0], nullptr, nullptr,
                      capture ? TRUE : FALSE, flags, nullptr, nullptr, &startup,
                      &info)) {
    DWORD code = GetLastError();
    if (error != nullptr) *error = code;
    std::fprintf(stderr, "CreateProcessW(%s) failed: %lu\n",
                 command_line.c_str(), code);
    return nullptr;
  }
  child->process_.Reset(info.hProcess);
  child->thread_handle_.Reset(info.hThread);
  child->pid_ = info.dwProcessId;
  write_end.Reset();  // Only the child holds the write end now.
  if (capture) {
    child->reader_ = std::thread([c = child.get()] { c->ReadLoop(); });
  } else {
    child->ended_ = true;
  }
  return child;
}

ChildProcess::~ChildProcess() {
  if (WaitForSingleObject(process_.get(), 0) == WAIT_TIMEOUT) Kill();
  if (reader_.joinable()) {
    // The output ends when the child is gone, unless a grandchild holds the
    // write end: then cancel the reader's blocking read.
    std::unique_lock<std::mutex> lock(mu_);
    while (!changed_.wait_for(lock, std::chrono::seconds(2),
                              [this] { return ended_; })) {
      if (reader_thread_.valid()) CancelSynchronousIo(reader_thread_.get());
    }
    lock.unlock();
    reader_.join();
  }
}

void ChildProcess::Resume() { ResumeThread(thread_handle_.get()); }

std::optional<DWORD> ChildProcess::Wait(DWORD timeout_ms) {
  if (WaitForSingleObject(process_.get(), timeout_ms) != WAIT_OBJECT_0) {
    return std::nullopt;
  }
  DWORD code = 0;
  GetExitCodeProcess(process_.get(), &code);
  // The exit closed the child's end of the output pipe: let the reader take
  // what is left, so that Output() is complete (bounded, in case a
  // grandchild holds the pipe).
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_for(lock, std::chrono::seconds(10), [this] { return ended_; });
  return code;
}

void ChildProcess::Kill(UINT code) {
  TerminateProcess(process_.get(), code);
  WaitForSingleObject(process_.get(), 10000);
}

void ChildProcess::ReadLoop() {
  {
    HANDLE self = nullptr;
    DuplicateHandle(GetCurrentProcess(), GetCurrentThread(),
                    GetCurrentProcess(), &self, 0, FALSE,
                    DUPLICATE_SAME_ACCESS);
    std::lock_guard<std::mutex> lock(mu_);
    reader_thread_.Reset(self);
  }
  char buffer[4096];
  while (true) {
    DWORD n = 0;
    if (!ReadFile(output_.get(), buffer, sizeof(buffer), &n, nullptr) ||
        n == 0) {
      break;
    }
    std::lock_guard<std::mutex> lock(mu_);
    text_.append(buffer, n);
    changed_.notify_all();
  }
  std::lock_guard<std::mutex> lock(mu_);
  ended_ = true;
  changed_.notify_all();
}

std::string ChildProcess::Output() const {
  std::lock_guard<std::mutex> lock(mu_);
  return text_;
}

bool ChildProcess::WaitForOutput(const std::string& text,
                                 DWORD timeout_ms) const {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
    return text_.find(text) != std::string::npos || ended_;
  });
  return text_.find(text) != std::string::npos;
}

}  // namespace portserver
