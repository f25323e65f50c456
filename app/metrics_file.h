// MetricsFileWriter: writes the server's metrics (Prometheus text format) to
// a file every N seconds, for node_exporter's textfile collector, which
// wants each file replaced atomically: the text goes to "<path>.tmp" in the
// same directory, which is then renamed over <path>
// (https://github.com/prometheus/node_exporter#textfile-collector).
//
// Example:
//   MetricsFileWriter writer("/var/lib/node_exporter/portserver.prom",
//                            std::chrono::seconds(15),
//                            [&] { return server.MetricsText(); });
//   ...  // has written once on return, then every 15 s; removed when destroyed
//
// Thread-safe: its own thread calls `text`; the destructor stops it.
#ifndef PORTSERVER_APP_METRICS_FILE_H_
#define PORTSERVER_APP_METRICS_FILE_H_

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"

namespace portserver {

// Writes `text` to `path` atomically (temporary file, then rename). Errors
// name the file. The temporary file is not opened through a symbolic link.
absl::Status WriteFileAtomically(const std::string& path,
                                 const std::string& text);

// OK if `path` may be the metrics file: missing, or a regular file that is
// empty or starts as the server writes it ("# HELP portserver_"), and the
// same for "<path>.tmp" beside it, and "<path>.tmp" can be written now (it
// is created and removed). Otherwise (someone else's file, which the
// writes would replace; a directory, a symbolic link, a device; a missing
// or read-only directory) an InvalidArgument error that says so. Checked
// at start-up.
absl::Status CheckMetricsFile(const std::string& path);

class MetricsFileWriter {
 public:
  MetricsFileWriter(std::string path, std::chrono::seconds interval,
                    std::function<std::string()> text);
  MetricsFileWriter(const MetricsFileWriter&) = delete;
  MetricsFileWriter& operator=(const MetricsFileWriter&) = delete;
  // Stops the thread and removes the file (if it is still ours): a server
  // that stopped exports nothing. A crashed server's file stays; its age is
  // node_exporter's node_textfile_mtime_seconds.
  ~MetricsFileWriter();

 private:
  void Loop();
  void WriteOnce();

  const std::string path_;
  const std::chrono::seconds interval_;
  const std::function<std::string()> text_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;     // Guarded by mu_.
  bool failing_ = false;  // Only the thread: logs a failure streak once.
  std::thread thread_;
};

}  // namespace portserver

#endif  // PORTSERVER_APP_METRICS_FILE_H_
