#include "adapters/windows/windows_lease_store.h"

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "adapters/windows/windows_text.h"
#include "domain/lease_journal.h"

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

constexpr char kRemedy[] =
    "remove it or choose another --portserver_state_file";

// What a file with these attributes is, if not a plain file; null if it is.
const char* KindOf(DWORD attributes) {
  if ((attributes & FILE_ATTRIBUTE_REPARSE_POINT) != 0) {
    return "a link (reparse point)";
  }
  if ((attributes & FILE_ATTRIBUTE_DIRECTORY) != 0) return "a directory";
  if ((attributes & FILE_ATTRIBUTE_DEVICE) != 0) return "a device";
  return nullptr;
}

// True if `path` names a device rather than a file: a DOS device name
// (NUL, CON, COM1, CONIN$..., which GetFullPathNameW maps to "\\.\NAME";
// checked by name, since opening a serial port may block) or, for an
// existing path, one whose handle is not a disk file (GetFileType; under
// wine a Unix device such as Z:\dev\null). GetFileAttributesW does not say
// FILE_ATTRIBUTE_DEVICE for these.
bool IsDeviceWide(const std::wstring& path) {
  wchar_t full[MAX_PATH + 1];
  DWORD n = GetFullPathNameW(path.c_str(), MAX_PATH + 1, full, nullptr);
  if (n > 0 && n <= MAX_PATH &&
      std::wstring(full, n).rfind(L"\\\\.\\", 0) == 0) {
    return true;
  }
  ScopedHandle file(CreateFileW(
      path.c_str(), 0, kShareAll, nullptr, OPEN_EXISTING,
      FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS, nullptr));
  return file.valid() && GetFileType(file.get()) != FILE_TYPE_DISK;
}

// Appends what `file` holds from its position on, up to `limit` bytes in
// all, to `*out`; false on a read error.
bool ReadUpTo(HANDLE file, size_t limit, std::string* out) {
  char buffer[65536];
  while (out->size() < limit) {
    DWORD want = static_cast<DWORD>(limit - out->size() < sizeof(buffer)
                                        ? limit - out->size()
                                        : sizeof(buffer));
    DWORD n = 0;
    if (!ReadFile(file, buffer, want, &n, nullptr)) return false;
    if (n == 0) break;
    out->append(buffer, n);
  }
  return true;
}

// Why the store must not take the file `path` names as its journal (or
// leftover .tmp), nor write over it, or "" if it may: missing, or a plain
// file whose start passes `is_journal` (if given), or with `unwritten_ok`
// (a .tmp) one of NULs only, whole (a snapshot a power loss cut before its
// blocks were written). `what` names it. As NotAJournal() of
// linux_lease_store.cc.
std::string NotAJournal(const std::string& path, const std::string& what,
                        const WindowsLeaseStore::JournalTest& is_journal,
                        bool unwritten_ok = false) {
  const std::wstring wide = Widen(path);
  if (IsDeviceWide(wide)) {
    return absl::StrCat(what, " is a device, not a portserver journal");
  }
  DWORD attributes = GetFileAttributesW(wide.c_str());
  if (attributes == INVALID_FILE_ATTRIBUTES) return "";  // Missing: new.
  if (const char* kind = KindOf(attributes)) {
    return absl::StrCat(what, " is ", kind, ", not a portserver journal");
  }
  if (!is_journal) return "";
  ScopedHandle file(CreateFileW(wide.c_str(), GENERIC_READ, kShareAll, nullptr,
                                OPEN_EXISTING, FILE_FLAG_OPEN_REPARSE_POINT,
                                nullptr));
  if (!file.valid()) return "";  // Gone, or unreadable: opening it says.
  std::string start;
  bool ours = ReadUpTo(file.get(), 4096, &start);
  if (ours && !is_journal(start)) {
    // NULs so far: all of it (read on), or someone else's file.
    LARGE_INTEGER size{};
    ours = unwritten_ok && start.find_first_not_of('\0') == std::string::npos &&
           GetFileSizeEx(file.get(), &size) &&
           size.QuadPart <= (int64_t{64} << 20) &&
           ReadUpTo(file.get(), static_cast<size_t>(size.QuadPart), &start) &&
           start.find_first_not_of('\0') == std::string::npos;
  }
  return ours ? "" : NotAJournalMessage(what);
}

// Why the server must not take `lock_path` as its lock file, or "" if it
// may: missing, or an empty plain file (the only kind it makes).
std::string NotALockFile(const std::string& lock_path) {
  if (IsDeviceWide(Widen(lock_path))) {
    return absl::StrCat(lock_path,
                        " is a device, not a port server's lock file");
  }
  WIN32_FILE_ATTRIBUTE_DATA data{};
  if (!GetFileAttributesExW(Widen(lock_path).c_str(), GetFileExInfoStandard,
                            &data)) {
    return "";  // Missing: a new lock file.
  }
  if (const char* kind = KindOf(data.dwFileAttributes)) {
    return absl::StrCat(lock_path, " is ", kind,
                        ", not a port server's lock file");
  }
  if (data.nFileSizeHigh != 0 || data.nFileSizeLow != 0) {
    return absl::StrCat(lock_path,
                        " is not empty, so not a port server's lock file "
                        "(those always are)");
  }
  return "";
}

}  // namespace

absl::StatusOr<std::string> WindowsLeaseStore::DefaultDirectory() {
  // As UTF-16: a profile folder may hold characters the ANSI code page
  // (getenv) has not.
  std::optional<std::string> local = EnvironmentUtf8("LOCALAPPDATA");
  if (!local.has_value() || local->empty()) {
    return absl::FailedPreconditionError(
        "LOCALAPPDATA is not set: give --portserver_state_file");
  }
  std::string dir = absl::StrCat(*local, "\\portserver");
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
    const std::string& path, std::string* contents, JournalTest is_journal) {
  auto refuse = [](const std::string& why) {
    return absl::FailedPreconditionError(absl::StrCat(why, ": ", kRemedy));
  };
  // Checked before anything is created: a refusal leaves no trace.
  const std::string state_file = absl::StrCat("state file ", path);
  if (std::string why = NotAJournal(path, state_file, is_journal);
      !why.empty()) {
    return refuse(why);
  }
  const std::string tmp_path = path + ".tmp";  // Left by a crash.
  if (std::string why =
          NotAJournal(tmp_path, tmp_path, is_journal, /*unwritten_ok=*/true);
      !why.empty()) {
    return refuse(why);
  }
  std::string lock_path = path + ".lock";
  if (std::string why = NotALockFile(lock_path); !why.empty()) {
    return refuse(why);
  }
  ScopedHandle lock(CreateFileW(
      Widen(lock_path).c_str(), GENERIC_READ | GENERIC_WRITE, kShareAll,
      nullptr, OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, nullptr));
  if (!lock.valid()) {
    DWORD error = GetLastError();
    if (error == ERROR_PATH_NOT_FOUND) {  // The directory, not the lock.
      std::string dir = path.substr(0, path.find_last_of("\\/"));
      return WindowsError(
          absl::StrCat("cannot open state file ", path, ": its directory ", dir,
                       " does not exist"),
          error);
    }
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
  if (is_journal && !is_journal(*contents)) {  // Written since the check.
    return refuse(NotAJournalMessage(state_file));
  }
  return std::unique_ptr<WindowsLeaseStore>(new WindowsLeaseStore(
      path, std::move(file), std::move(lock), std::move(is_journal)));
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
  // Nothing that is not ours is written over: not a file that appeared as
  // the .tmp since Open().
  if (std::string why =
          NotAJournal(tmp, tmp, is_journal_, /*unwritten_ok=*/true);
      !why.empty()) {
    return StoreResult{false, absl::StrCat(why, ": ", kRemedy)};
  }
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

bool WindowsLeaseStore::IsDevice(const std::string& utf8_path) {
  return IsDeviceWide(Widen(utf8_path));
}

std::string WindowsLeaseStore::FullPath(const std::string& utf8_path) {
  const std::wstring wide = Widen(utf8_path);
  DWORD size = GetFullPathNameW(wide.c_str(), 0, nullptr, nullptr);
  if (size == 0) return utf8_path;
  std::wstring full(size, L'\0');
  size = GetFullPathNameW(wide.c_str(), size, full.data(), nullptr);
  if (size == 0 || size >= full.size()) return utf8_path;
  full.resize(size);
  // GetLongPathNameW needs the file to exist: else its directory, which
  // must (the journal is created in it), then the name as given.
  auto longer = [](const std::wstring& path) -> std::wstring {
    DWORD n = GetLongPathNameW(path.c_str(), nullptr, 0);
    if (n == 0) return L"";
    std::wstring out(n, L'\0');
    n = GetLongPathNameW(path.c_str(), out.data(), n);
    if (n == 0 || n >= out.size()) return L"";
    out.resize(n);
    return out;
  };
  if (std::wstring whole = longer(full); !whole.empty()) return Narrow(whole);
  const size_t slash = full.find_last_of(L'\\');
  if (slash != std::wstring::npos && slash > 0) {
    std::wstring dir = longer(full.substr(0, slash));
    if (!dir.empty()) return Narrow(dir + full.substr(slash));
  }
  return Narrow(full);
}

}  // namespace portserver
