// portserver: hands out free ports to test processes. See --help and
// README.md. Exit status: 0 after SIGTERM/SIGINT/SIGHUP (or --help,
// --version), 2 for bad flags or an address that cannot be bound, 1 if
// serving fails later.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "app/log.h"
#include "app/metrics_file.h"
#include "app/options.h"
#include "app/platform.h"
#include "app/server.h"

namespace {

int Fail(int code, const absl::Status& status) {
  std::string message(status.message());
  std::fprintf(stderr, "portserver: error: %.*s\n",
               static_cast<int>(message.size()), message.data());
  return code;
}

// The files the server writes must be distinct: a metrics file that is
// the journal (or its lock or temporary file) was replaced by metrics text
// every 15 s, and a clean stop removed it with the leases (a Windows
// trial). Each pair of the journal's files, the metrics file's and the
// path sockets' that name one file (portserver::FileIdentity) is refused.
absl::Status CheckFilesDiffer(const portserver::Options& options,
                              const std::string& journal_path) {
  struct Named {
    int group;  // Files of one group may not collide with another's.
    std::string what;
    std::string path;
  };
  std::vector<Named> files;
  if (!journal_path.empty()) {
    files.push_back({0, "the state file", journal_path});
    files.push_back({0, "the state file's lock", journal_path + ".lock"});
    files.push_back(
        {0, "the state file's temporary file", journal_path + ".tmp"});
  }
  if (!options.metrics_file.empty()) {
    files.push_back({1, "the metrics file", options.metrics_file});
    files.push_back({1, "the metrics file's temporary file",
                     options.metrics_file + ".tmp"});
  }
#ifndef _WIN32
  std::vector<std::string> addresses = {options.address};
  addresses.insert(addresses.end(), options.extra_addresses.begin(),
                   options.extra_addresses.end());
  for (const std::string& address : addresses) {
    if (!address.empty() && address[0] != '@') {
      files.push_back({2, "the socket " + address, address});
    }
  }
#endif
  for (size_t i = 0; i < files.size(); ++i) {
    for (size_t j = i + 1; j < files.size(); ++j) {
      if (files[i].group == files[j].group) continue;
      if (portserver::FileIdentity(files[i].path) !=
          portserver::FileIdentity(files[j].path)) {
        continue;
      }
      return absl::InvalidArgumentError(
          files[i].what + " (" + files[i].path + ") and " + files[j].what +
          " (" + files[j].path +
          ") are one file: the server would write one over the other; "
          "give them different names");
    }
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace portserver;
  std::vector<std::string> args = Utf8Arguments(argc, argv);
  std::vector<const char*> arg_pointers;
  for (const std::string& arg : args) arg_pointers.push_back(arg.c_str());
  absl::StatusOr<CommandLine> command_line = ParseCommandLine(
      static_cast<int>(arg_pointers.size()), arg_pointers.data());
  if (!command_line.ok()) return Fail(2, command_line.status());
  if (command_line->help) {
    std::cout << UsageText();
    return 0;
  }
  if (command_line->version) {
    std::cout << VersionText();
    return 0;
  }
  const Options& options = command_line->options;
  SetVerbose(options.verbose);

  absl::StatusOr<std::unique_ptr<PlatformAdapters>> platform =
      MakePlatformAdapters(options);
  if (!platform.ok()) return Fail(2, platform.status());

  // Before anything is written (the journal, its lock, the default
  // journal's directory): the files must differ, then the metrics file must
  // be writable. A metrics file naming the default journal exited 2 once
  // that journal and its lock were made, and left them behind; in a default
  // directory not made yet it was refused for that directory's absence,
  // not for being the journal.
  auto before_writing = [&](const std::string& journal_path) {
    if (absl::Status distinct = CheckFilesDiffer(options, journal_path);
        !distinct.ok()) {
      return distinct;
    }
    return options.metrics_file.empty()
               ? absl::OkStatus()
               : CheckMetricsFile(options.metrics_file);
  };
  if (options.state_file == "none") {
    if (absl::Status ok = before_writing(""); !ok.ok()) return Fail(2, ok);
  }

  std::string journal_path, journal;
  absl::StatusOr<std::unique_ptr<LeaseStore>> store =
      OpenLeaseStore(options, &journal_path, &journal, before_writing);
  if (!store.ok()) return Fail(2, store.status());

  Server server(options, (*platform)->adapters());
  server.SetListeningOn((*platform)->listening_on());
  // First, before any other thread exists: threads inherit the signal mask.
  std::unique_ptr<SignalWatcher> signals = WatchSignals(
      options, [&server] { server.DumpStats(); },
      [&server] {
        PS_LOG(INFO) << "Stopping on signal.";
        server.Shutdown();
      });
  std::unique_ptr<OwnerWatcher> owners =
      WatchOwners([&server](int64_t pid) { server.OwnerExited(pid); });
  server.SetOwnerWatcher(owners.get());
  server.SetBootId(BootId());
  if (*store) server.UseJournal(**store, journal, journal_path);
  std::unique_ptr<MetricsFileWriter> metrics;
  if (!options.metrics_file.empty()) {
    metrics = std::make_unique<MetricsFileWriter>(
        options.metrics_file, std::chrono::seconds(options.metrics_interval_s),
        [&server] { return server.MetricsText(); });
  }
  absl::Status served = server.Serve();
  metrics.reset();
  owners.reset();  // No exit callback may run once serving is over.
  return served.ok() ? 0 : 1;
}
