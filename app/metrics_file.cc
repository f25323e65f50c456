#include "app/metrics_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "app/log.h"

namespace portserver {

absl::Status WriteFileAtomically(const std::string& path,
                                 const std::string& text) {
  const std::string temp = path + ".tmp";
  std::FILE* f = std::fopen(temp.c_str(), "wb");
  if (f == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot write ", temp, ": ", std::strerror(errno)));
  }
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = std::fflush(f) == 0 && ok;
  ok = std::fclose(f) == 0 && ok;
  if (!ok) {
    std::remove(temp.c_str());
    return absl::UnavailableError(absl::StrCat("cannot write ", temp));
  }
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  if (error) {
    std::remove(temp.c_str());
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
  thread_ = std::thread([this] { Loop(); });
}

MetricsFileWriter::~MetricsFileWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
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
    lock.unlock();
    WriteOnce();  // Also the last figures when stopping.
    lock.lock();
    if (stopping) return;
  }
}

}  // namespace portserver
