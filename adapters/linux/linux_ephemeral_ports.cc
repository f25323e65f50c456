#include "adapters/linux/linux_ephemeral_ports.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace portserver {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// One write(2) of `text`: the kernel parses a sysctl write as a whole.
absl::Status WriteFile(const std::string& path, const std::string& text) {
  // O_TRUNC, as a shell's ">" does: /proc ignores it, a plain file (tests)
  // needs it.
  int fd = open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    if (error == EACCES || error == EPERM || error == EROFS) {
      return absl::PermissionDeniedError(absl::StrCat(
          "cannot write ", path, ": ", std::strerror(error),
          " (it takes root, or CAP_NET_ADMIN in the server's network "
          "namespace, and /proc/sys mounted writable)"));
    }
    return absl::UnavailableError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(error)));
  }
  std::string line = text.empty() ? "\n" : text + "\n";
  ssize_t written = write(fd, line.data(), line.size());
  int error = errno;
  close(fd);
  if (written != static_cast<ssize_t>(line.size())) {
    return absl::UnavailableError(
        absl::StrCat("cannot write '", text, "' to ", path, ": ",
                     written < 0 ? std::strerror(error) : "short write"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PortRange> ReadEphemeralRange(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  std::vector<absl::string_view> fields =
      absl::StrSplit(*text, absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
  uint32_t first = 0, last = 0;
  if (fields.size() != 2 || !absl::SimpleAtoi(fields[0], &first) ||
      !absl::SimpleAtoi(fields[1], &last) || first > last || last > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": expected two ports, got '",
                     absl::StripAsciiWhitespace(*text), "'"));
  }
  return PortRange{static_cast<uint16_t>(first), static_cast<uint16_t>(last)};
}

absl::StatusOr<PortSet> ParsePortList(absl::string_view text) {
  PortSet ports(65536, false);
  text = absl::StripAsciiWhitespace(text);
  if (text.empty()) return ports;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    item = absl::StripAsciiWhitespace(item);
    std::pair<absl::string_view, absl::string_view> bounds =
        absl::StrSplit(item, absl::MaxSplits('-', 1));
    uint32_t first = 0, last = 0;
    bool ok = absl::SimpleAtoi(bounds.first, &first);
    if (ok) {
      last = first;
      if (item.find('-') != absl::string_view::npos) {
        ok = absl::SimpleAtoi(bounds.second, &last);
      }
    }
    if (!ok || first > last || last > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad port list item '", item, "'"));
    }
    for (uint32_t p = first; p <= last; ++p) ports[p] = true;
  }
  return ports;
}

absl::StatusOr<PortSet> ReadReservedPorts(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<PortSet> ports = ParsePortList(*text);
  if (!ports.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", ports.status().message()));
  }
  return ports;
}

std::string FormatPorts(const PortSet& ports) {
  std::string out;
  for (size_t p = 0; p < ports.size(); ++p) {
    if (!ports[p]) continue;
    size_t last = p;
    while (last + 1 < ports.size() && ports[last + 1]) ++last;
    absl::StrAppend(&out, out.empty() ? "" : ",", p);
    if (last > p) absl::StrAppend(&out, "-", last);
    p = last;
  }
  return out;
}

PortSet UnreservedEphemeral(const std::vector<uint16_t>& pool,
                            const PortRange& range, const PortSet& reserved) {
  PortSet out(65536, false);
  for (uint16_t port : pool) {
    if (port >= range.first && port <= range.last &&
        !(port < reserved.size() && reserved[port])) {
      out[port] = true;
    }
  }
  return out;
}

size_t CountPorts(const PortSet& ports) {
  size_t n = 0;
  for (bool in : ports) n += in ? 1 : 0;
  return n;
}

absl::StatusOr<std::unique_ptr<LinuxReservedPorts>> LinuxReservedPorts::Reserve(
    const std::vector<uint16_t>& pool, const std::string& path) {
  absl::StatusOr<PortSet> before = ReadReservedPorts(path);
  if (!before.ok()) return before.status();
  PortSet merged = *before;
  PortSet added(65536, false);
  for (uint16_t port : pool) {
    if (!merged[port]) added[port] = merged[port] = true;
  }
  if (CountPorts(added) > 0) {
    absl::Status written = WriteFile(path, FormatPorts(merged));
    if (!written.ok()) return written;
    absl::StatusOr<PortSet> after = ReadReservedPorts(path);
    if (!after.ok()) return after.status();
    for (uint16_t port : pool) {
      if (!(*after)[port]) {
        return absl::InternalError(absl::StrCat(path, " does not list port ",
                                                port, " after writing it"));
      }
    }
  }
  return std::unique_ptr<LinuxReservedPorts>(
      new LinuxReservedPorts(path, std::move(added)));
}

absl::Status LinuxReservedPorts::Restore() {
  if (restored_ || CountPorts(added_) == 0) {
    restored_ = true;
    return absl::OkStatus();
  }
  absl::StatusOr<PortSet> now = ReadReservedPorts(path_);
  if (!now.ok()) return now.status();
  PortSet kept = *now;
  for (size_t p = 0; p < kept.size(); ++p) {
    if (added_[p]) kept[p] = false;
  }
  absl::Status written = WriteFile(path_, FormatPorts(kept));
  if (written.ok()) restored_ = true;
  return written;
}

LinuxReservedPorts::~LinuxReservedPorts() { Restore().IgnoreError(); }

}  // namespace portserver
