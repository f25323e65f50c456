#include "app/metrics_file.h"

#ifndef _WIN32
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "app/log.h"
#include "app/started_thread.h"
#ifdef _WIN32
#include "adapters/windows/windows_lease_store.h"
#endif

namespace portserver {

namespace {

constexpr char kMetricsStart[] = "# HELP portserver_";

// The path, UTF-8 as every flag is (on Windows too, app/platform.h), for
// std::filesystem: in the narrow functions Windows would read it in the
// ANSI code page, where a name outside it is another name.
std::filesystem::path FsPath(const std::string& utf8) {
  return std::filesystem::u8path(utf8);
}

std::FILE* OpenFile(const std::string& path, bool write) {
#ifdef _WIN32
  return _wfopen(FsPath(path).c_str(), write ? L"wb" : L"rb");
#else
  return std::fopen(path.c_str(), write ? "wb" : "rb");
#endif
}

void RemoveFile(const std::string& path) {
  std::error_code ignored;
  std::filesystem::remove(FsPath(path), ignored);
}

// `path` opened for writing, truncated; not through a symbolic link where
// the platform has them. Mode 0644 whatever the umask (a service's
// UMask=0077): node_exporter, another user, must read it; it holds counts
// only.
std::FILE* OpenForWriting(const std::string& path) {
#ifdef _WIN32
  return OpenFile(path, /*write=*/true);
#else
  int fd = open(path.c_str(),
                O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return nullptr;
  if (fchmod(fd, 0644) != 0) {
    close(fd);
    return nullptr;
  }
  std::FILE* f = fdopen(fd, "wb");
  if (f == nullptr) close(fd);
  return f;
#endif
}

absl::Status CheckOne(const std::string& path) {
  const char* remedy =
      ": remove it or choose another --portserver_metrics_file";
#ifdef _WIN32
  // NUL, COM1, "com1.prom", ...: std::filesystem sees no device there, and
  // the writes would go to a serial port (a Windows trial), or nowhere.
  if (WindowsLeaseStore::IsDevice(path)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is a device, not a metrics file",
                     ": choose another --portserver_metrics_file"));
  }
#endif
  std::error_code error;
  std::filesystem::file_status st =
      std::filesystem::symlink_status(FsPath(path), error);
  if (error || st.type() == std::filesystem::file_type::not_found) {
    return absl::OkStatus();  // Missing: a new file.
  }
  if (st.type() != std::filesystem::file_type::regular) {
    return absl::InvalidArgumentError(
        absl::StrCat(path,
                     " is not a regular file (a directory, a symbolic link, a "
                     "device...), and the metrics writes would replace it",
                     remedy));
  }
  std::FILE* f = OpenFile(path, /*write=*/false);
  if (f == nullptr) return absl::OkStatus();  // Writing it will say.
  char start[sizeof(kMetricsStart) - 1];
  size_t n = std::fread(start, 1, sizeof(start), f);
  std::string_view got(start, n);
  // Ours: its start, or less of it (a write cut short), or NULs only (blocks
  // a power loss left unwritten: the writes are not synced).
  bool ours = got == std::string_view(kMetricsStart).substr(0, n);
  if (!ours && got.find_first_not_of('\0') == std::string_view::npos) {
    int c;
    while ((c = std::fgetc(f)) == 0) {
    }
    ours = c == EOF;
  }
  std::fclose(f);
  if (ours) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      path, " is not a metrics file of a portserver (it does not start with \"",
      kMetricsStart, "\"), and the metrics writes would replace it", remedy));
}

}  // namespace

absl::Status CheckMetricsFile(const std::string& path) {
  const std::string temp = path + ".tmp";
  absl::Status s = CheckOne(path);
  if (s.ok()) s = CheckOne(temp);
  if (!s.ok()) return s;
  // Writable now, or every write would fail with a warning only: a
  // directory that does not exist, or one the service may not write.
  std::error_code exists_error;
  const bool left_over = std::filesystem::exists(FsPath(temp), exists_error);
  std::FILE* f = OpenForWriting(temp);
  if (f == nullptr) {
    const int error = errno;
    if (left_over) {  // The directory is fine: that file is not ours to use.
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot write ", temp,
          " (left by another run?): ", std::strerror(error), "; remove it"));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot write ", temp, ": ", std::strerror(error),
        "; the metrics file's directory must exist and be writable by the "
#ifdef _WIN32
        "server"));
#else
        "server (under systemd's ProtectSystem=strict, add ReadWritePaths= "
        "with that directory in a drop-in: systemctl edit portserver)"));
#endif
  }
  std::fclose(f);
  RemoveFile(temp);
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path,
                                 const std::string& text) {
  const std::string temp = path + ".tmp";
  std::FILE* f = OpenForWriting(temp);
  if (f == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot write ", temp, ": ", std::strerror(errno)));
  }
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = std::fflush(f) == 0 && ok;
  ok = std::fclose(f) == 0 && ok;
  if (!ok) {
    RemoveFile(temp);
    return absl::UnavailableError(absl::StrCat("cannot write ", temp));
  }
  std::error_code error;
  std::filesystem::rename(FsPath(temp), FsPath(path), error);
  if (error) {
    RemoveFile(temp);
    return absl::UnavailableError(absl::StrCat("cannot rename ", temp, " to ",
                                               path, ": ", error.message()));
  }
  return absl::OkStatus();
}

MetricsFileWriter::MetricsFileWriter(std::string path,
                                     std::chrono::seconds interval,
                                     std::function<std::string()> text)
    : path_(std::move(path)), interval_(interval), text_(std::move(text)) {
  WriteOnce();  // The file exists once the constructor returns.
  thread_ = StartThread([this] { Loop(); });
}

MetricsFileWriter::~MetricsFileWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  // Gone with the server: node_exporter would otherwise export the last
  // figures of a server that no longer runs. Only our own file.
  if (CheckOne(path_).ok()) RemoveFile(path_);
}

void MetricsFileWriter::WriteOnce() {
  absl::Status s = WriteFileAtomically(path_, text_());
  if (!s.ok() && !failing_) {
    PS_LOG(WARNING) << "Metrics file: " << s.message()
                    << " (logged once until a write succeeds)";
  }
  failing_ = !s.ok();
}

void MetricsFileWriter::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    bool stopping = wake_.wait_for(lock, interval_, [this] { return stop_; });
    if (stopping) return;
    lock.unlock();
    WriteOnce();
    lock.lock();
  }
}

}  // namespace portserver
