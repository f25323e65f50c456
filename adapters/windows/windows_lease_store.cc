#include "adapters/windows/windows_lease_store.h"

#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace portserver {
namespace {

// Every handle shares delete: MoveFileExW may replace the journal while
// this process (or a reader) has it open.
constexpr DWORD kShareAll =
    FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;

// Writes all of `data`; false with GetLastError() set on failure.
bool WriteAll(HANDLE file, std::string_view data) {
  while (!data.empty()) {
    DWORD chunk =
        data.size() > 0x40000000 ? 0x40000000 : static_cast<DWORD>(data.size());
    DWORD written = 0;
    if (!WriteFile(file, data.data(), chunk, &written, nullptr)) return false;
    data.remove_prefix(written);
  }
  return true;
}

ScopedHandle OpenForAppend(const std::wstring& path, DWORD disposition) {
  return ScopedHandle(CreateFileW(path.c_str(), FILE_APPEND_DATA | SYNCHRONIZE,
                                  kShareAll, nullptr, disposition,
                                  FILE_ATTRIBUTE_NORMAL, nullptr));
}

}  // namespace

absl::StatusOr<std::string> WindowsLeaseStore::DefaultDirectory() {
  const char* local = std::getenv("LOCALAPPDATA");
  if (local == nullptr || local[0] == '\0') {
    return absl::FailedPreconditionError(
        "LOCALAPPDATA is not set: give --portserver_state_file");
  }
  std::string dir = absl::StrCat(local, "\\portserver");
  if (!CreateDirectoryW(Widen(dir).c_str(), nullptr)) {
    DWORD error = GetLastError();
    if (error != ERROR_ALREADY_EXISTS) {
      return WindowsError(absl::StrCat("cannot create ", dir), error);
    }
  }
  DWORD attributes = GetFileAttributesW(Widen(dir).c_str());
  if (attributes == INVALID_FILE_ATTRIBUTES ||
      (attributes & FILE_ATTRIBUTE_DIRECTORY) == 0 ||
      (attributes & FILE_ATTRIBUTE_REPARSE_POINT) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, " is not a directory (a link?)"));
  }
  return dir;
}

absl::StatusOr<std::unique_ptr<WindowsLeaseStore>> WindowsLeaseStore::Open(
    const std::string& path, std::string* contents) {
  std::string lock_path = path + ".lock";
  ScopedHandle lock(CreateFileW(
      Widen(lock_path).c_str(), GENERIC_READ | GENERIC_WRITE, kShareAll,
      nullptr, OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, nullptr));
  if (!lock.valid()) {
    DWORD error = GetLastError();
    return WindowsError(absl::StrCat("cannot open ", lock_path), error);
  }
  OVERLAPPED at_zero{};
  if (!LockFileEx(lock.get(),
                  LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0,
                  &at_zero)) {
    DWORD error = GetLastError();
    if (error == ERROR_LOCK_VIOLATION || error == ERROR_IO_PENDING) {
      return absl::AlreadyExistsError(absl::StrCat(
          "state file ", path, " is in use by another port server"));
    }
    return WindowsError(absl::StrCat("cannot lock ", lock_path), error);
  }
  const std::wstring wide = Widen(path);
  ScopedHandle file = OpenForAppend(wide, OPEN_ALWAYS);
  if (!file.valid()) {
    DWORD error = GetLastError();
    return WindowsError(absl::StrCat("cannot open state file ", path), error);
  }
  ScopedHandle reader(CreateFileW(wide.c_str(), GENERIC_READ, kShareAll,
                                  nullptr, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL,
                                  nullptr));
  if (!reader.valid()) {
    DWORD error = GetLastError();
    return WindowsError(absl::StrCat("cannot read state file ", path), error);
  }
  contents->clear();
  char buffer[65536];
  while (true) {
    DWORD n = 0;
    if (!ReadFile(reader.get(), buffer, sizeof(buffer), &n, nullptr)) {
      DWORD error = GetLastError();
      return WindowsError(absl::StrCat("cannot read state file ", path), error);
    }
    if (n == 0) break;
    contents->append(buffer, n);
  }
  return std::unique_ptr<WindowsLeaseStore>(
      new WindowsLeaseStore(path, std::move(file), std::move(lock)));
}

StoreResult WindowsLeaseStore::Append(std::string_view record) {
  if (!WriteAll(file_.get(), record)) {
    DWORD error = GetLastError();
    return StoreResult{false,
                       WindowsErrorText("cannot append to " + path_, error)};
  }
  return {};
}

StoreResult WindowsLeaseStore::Replace(std::string_view contents) {
  const std::string tmp = path_ + ".tmp";
  const std::wstring wide_tmp = Widen(tmp);
  {
    ScopedHandle out(CreateFileW(wide_tmp.c_str(), GENERIC_WRITE, kShareAll,
                                 nullptr, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL,
                                 nullptr));
    if (!out.valid()) {
      DWORD error = GetLastError();
      return StoreResult{false,
                         WindowsErrorText("cannot create " + tmp, error)};
    }
    if (!WriteAll(out.get(), contents) || !FlushFileBuffers(out.get())) {
      DWORD error = GetLastError();
      out.Reset();
      DeleteFileW(wide_tmp.c_str());
      return StoreResult{false, WindowsErrorText("cannot write " + tmp, error)};
    }
  }
  const std::wstring wide = Widen(path_);
  // Our own handle goes first: Windows refuses to replace an open file
  // unless every opener shares delete, and wine refuses even then.
  file_.Reset();
  StoreResult result;
  if (!MoveFileExW(wide_tmp.c_str(), wide.c_str(),
                   MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) {
    DWORD error = GetLastError();
    DeleteFileW(wide_tmp.c_str());
    result =
        StoreResult{false, WindowsErrorText("cannot replace " + path_, error)};
  }
  // The new journal, or the old one if it could not be replaced.
  file_ = OpenForAppend(wide, OPEN_EXISTING);
  if (!file_.valid() && result.ok) {
    DWORD error = GetLastError();
    result =
        StoreResult{false, WindowsErrorText("cannot reopen " + path_, error)};
  }
  return result;
}

}  // namespace portserver
