// End to end on Windows: portserver.exe started with CreateProcess, asked
// over its named pipe by the python-style client (what python portpicker
// does on Windows) and by the C++ client library.
#include <winsock2.h>
#include <ws2tcpip.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "adapters/windows/python_style_pipe_client.h"
#include "adapters/windows/windows_error.h"
#include "adapters/windows/windows_test_util.h"
#include "adapters/windows/windows_text.h"
#include "app/platform_windows.h"
#include "client/control_client.h"
#include "client/portpicker.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace portserver {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr DWORD kStartMillis = 60000;  // Failure guard, not a sleep.

// A pool of `size` ports starting at a base unique to this run, below both
// the reference's default pool and the ephemeral ranges.
std::string UniquePool(int size, int* first = nullptr) {
  static int next = -1;
  if (next < 0) {
    next =
        5000 + static_cast<int>(
                   (GetCurrentProcessId() * 7919u + GetTickCount64()) % 900) *
                   10;
  }
  int base = next;
  next += size;
  if (first != nullptr) *first = base;
  return size == 1 ? std::to_string(base)
                   : absl::StrCat(base, "-", base + size - 1);
}

class Server {
 public:
  // Starts portserver.exe on `address` with `args`; waits until it serves.
  static std::unique_ptr<ChildProcess> Start(const std::string& address,
                                             const std::string& args,
                                             DWORD flags = 0) {
    std::string line =
        absl::StrCat(Quote(ExePath("app/portserver.exe")),
                     " --portserver_address=", address, " --verbose ", args);
    std::unique_ptr<ChildProcess> child =
        ChildProcess::Start(line, /*capture=*/true, flags);
    return child;
  }
};

int ParsePort(const std::string& reply) {
  int port = 0;
  if (reply.empty() || reply.back() != '\n' ||
      !absl::SimpleAtoi(reply.substr(0, reply.size() - 1), &port)) {
    return 0;
  }
  return port;
}

// LOCALAPPDATA, where a default journal goes, set to `dir` while in scope:
// the servers started meanwhile inherit it.
class ScopedLocalAppData {
 public:
  explicit ScopedLocalAppData(const std::string& dir) {
    had_ = GetEnvironmentVariableW(L"LOCALAPPDATA", saved_, 1024);
    SetEnvironmentVariableW(L"LOCALAPPDATA", Widen(dir).c_str());
  }
  ScopedLocalAppData(const ScopedLocalAppData&) = delete;
  ScopedLocalAppData& operator=(const ScopedLocalAppData&) = delete;
  ~ScopedLocalAppData() {
    SetEnvironmentVariableW(L"LOCALAPPDATA",
                            had_ > 0 && had_ < 1024 ? saved_ : nullptr);
  }

 private:
  wchar_t saved_[1024];
  DWORD had_;
};

class PortserverE2eTest : public ::testing::Test {
 protected:
  // A server on a fresh pipe with a journal in a fresh directory.
  void StartServer(const std::string& pool, const std::string& extra = "") {
    if (address_.empty()) address_ = UniquePipeAddress("e2e");
    if (journal_.empty()) journal_ = NewTempDirectory() + "\\leases.journal";
    server_ = Server::Start(
        address_,
        absl::StrCat("--portserver_static_pool=", pool,
                     " --portserver_state_file=", Quote(journal_), " ", extra));
    ASSERT_NE(server_, nullptr);
    ASSERT_TRUE(server_->WaitForOutput("Serving on", kStartMillis))
        << server_->Output();
  }
  int Ask(int64_t pid) {
    PythonStyleReply reply = AskLikePython(address_, pid);
    if (reply.error != 0) return 0;
    return ParsePort(reply.data);
  }

  std::string address_;
  std::string journal_;
  std::unique_ptr<ChildProcess> server_;
};

TEST_F(PortserverE2eTest, DistinctPortsForOneOwnerFromBothClients) {
  int first = 0;
  StartServer(UniquePool(10, &first));
  const DWORD pid = GetCurrentProcessId();
  std::set<int> ports;
  for (int i = 0; i < 3; ++i) {
    int port = Ask(pid);
    EXPECT_GE(port, first);
    EXPECT_LT(port, first + 10);
    ports.insert(port);
  }
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<int> port = portpicker::GetPortFromPortServer(address_, pid);
    ASSERT_TRUE(port.ok()) << port.status();
    EXPECT_GE(*port, first);
    EXPECT_LT(*port, first + 10);
    ports.insert(*port);
  }
  EXPECT_EQ(ports.size(), 5u);
}

TEST_F(PortserverE2eTest, CppClientPicksFromTheServerNamedByTheEnvironment) {
  int first = 0;
  StartServer(UniquePool(3, &first));
  SetEnvironmentVariableA("PORTSERVER_ADDRESS", address_.c_str());
  _putenv_s("PORTSERVER_ADDRESS", address_.c_str());
  // Without TEST_TARGET, python's plain request; with it (Bazel sets it in
  // every test), an extended one labelled with it.
  std::string target = EnvironmentUtf8("TEST_TARGET").value_or("");
  SetEnvironmentVariableA("TEST_TARGET", nullptr);
  _putenv_s("TEST_TARGET", "");
  portpicker::PortPicker picker;
  absl::StatusOr<int> port = picker.PickUnusedPort();
  SetEnvironmentVariableA("TEST_TARGET", "//e2e:label_test");
  _putenv_s("TEST_TARGET", "//e2e:label_test");
  absl::StatusOr<int> labelled = picker.PickUnusedPort();
  SetEnvironmentVariableA("TEST_TARGET", target.c_str());
  _putenv_s("TEST_TARGET", target.c_str());
  _putenv_s("PORTSERVER_ADDRESS", "");
  ASSERT_TRUE(port.ok()) << port.status();
  ASSERT_TRUE(labelled.ok()) << labelled.status();
  for (int p : {*port, *labelled}) {
    EXPECT_GE(p, first);
    EXPECT_LT(p, first + 3);
  }
  const DWORD pid = GetCurrentProcessId();
  EXPECT_TRUE(server_->WaitForOutput(
      absl::StrCat("Request on behalf of pid ", pid, ": port ", *port),
      kStartMillis))
      << server_->Output();
  EXPECT_TRUE(server_->WaitForOutput(
      absl::StrCat("Extended request: allocate pid=", pid,
                   " count=1 label=//e2e:label_test: ports ", *labelled),
      kStartMillis))
      << server_->Output();
}

// The extended protocol over the pipe (requests longer than a plain one's
// 20 bytes, framed by RequestByteLimit as on Linux): several ports in one
// request from the C++ client, portpicker -n and portserverctl.
TEST_F(PortserverE2eTest, SeveralPortsInOneExtendedRequest) {
  int first = 0;
  StartServer(UniquePool(10, &first));
  const DWORD pid = GetCurrentProcessId();
  absl::StatusOr<std::vector<int>> ports = portpicker::GetPortsFromPortServer(
      address_, pid, 3, "//tests/windows:e2e");
  ASSERT_TRUE(ports.ok()) << ports.status();
  ASSERT_EQ(ports->size(), 3u);
  std::set<int> distinct(ports->begin(), ports->end());
  EXPECT_EQ(distinct.size(), 3u);
  for (int port : *ports) {
    EXPECT_GE(port, first);
    EXPECT_LT(port, first + 10);
  }
  // Through the environment, as a test would.
  _putenv_s("PORTSERVER_ADDRESS", address_.c_str());
  portpicker::PortPicker picker;
  absl::StatusOr<std::vector<int>> more = picker.PickUnusedPorts(4);
  _putenv_s("PORTSERVER_ADDRESS", "");
  ASSERT_TRUE(more.ok()) << more.status();
  for (int port : *more) {
    EXPECT_TRUE(distinct.insert(port).second) << port;
    EXPECT_GE(port, first);
    EXPECT_LT(port, first + 10);
  }
  // All or none: 4 more do not fit in the 3 left.
  absl::StatusOr<std::vector<int>> too_many =
      portpicker::GetPortsFromPortServer(address_, pid, 4, "");
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kResourceExhausted)
      << too_many.status();
}

// Runs `exe` (relative to the runfiles) with `args` and PORTSERVER_ADDRESS
// set to `address`; returns its exit code (nullopt if it hung) and output.
std::optional<DWORD> RunTool(const std::string& exe, const std::string& args,
                             const std::string& address, std::string* output) {
  SetEnvironmentVariableA("PORTSERVER_ADDRESS", address.c_str());
  std::unique_ptr<ChildProcess> tool = ChildProcess::Start(
      absl::StrCat(Quote(ExePath(exe)), " ", args), /*capture=*/true);
  SetEnvironmentVariableA("PORTSERVER_ADDRESS", nullptr);
  if (tool == nullptr) return std::nullopt;
  std::optional<DWORD> code = tool->Wait(kStartMillis);
  *output = tool->Output();
  return code;
}

TEST_F(PortserverE2eTest,
       PortpickerCliTakesSeveralPortsAndPortserverctlSeesThem) {
  int first = 0;
  StartServer(UniquePool(5, &first));
  const DWORD pid = GetCurrentProcessId();
  std::string output;
  ASSERT_EQ(
      RunTool("client/portpicker_cli.exe",
              absl::StrCat("-n 3 --no-fallback ", pid), address_, &output),
      std::optional<DWORD>(0))
      << output;
  std::vector<std::string> lines =
      absl::StrSplit(output, '\n', absl::SkipWhitespace());
  ASSERT_EQ(lines.size(), 3u) << output;
  std::set<int> ports;
  for (const std::string& line : lines) {
    int port = 0;
    ASSERT_TRUE(absl::SimpleAtoi(line, &port)) << output;
    EXPECT_GE(port, first);
    EXPECT_LT(port, first + 5);
    ports.insert(port);
  }
  EXPECT_EQ(ports.size(), 3u);

  // portserverctl over the same pipe: the leases and who holds a port.
  ASSERT_EQ(RunTool("client/portserverctl.exe", "leases", address_, &output),
            std::optional<DWORD>(0))
      << output;
  for (int port : ports) EXPECT_THAT(output, HasSubstr(std::to_string(port)));
  // The label (the TEST_TARGET portpicker inherited) travels only in the
  // extended request: the three came in one `allocate`, not as plain ones.
  const char* target = std::getenv("TEST_TARGET");
  if (target != nullptr && target[0] != '\0') {
    EXPECT_THAT(output, HasSubstr(target));
  }
  ASSERT_EQ(RunTool("client/portserverctl.exe",
                    absl::StrCat("who ", *ports.begin()), address_, &output),
            std::optional<DWORD>(0))
      << output;
  EXPECT_THAT(output, HasSubstr(std::to_string(pid)));
  // Its command line (this test's executable) and since when, as on Linux.
  EXPECT_THAT(output, HasSubstr("portserver_e2e_test.exe")) << output;
  // (gtest's simple regex on Windows: \\d, +, no classes.)
  EXPECT_THAT(output, ::testing::ContainsRegex("\\d+s ago")) << output;
  ASSERT_EQ(RunTool("client/portserverctl.exe", "status", address_, &output),
            std::optional<DWORD>(0))
      << output;

  // --no-fallback: no server on a pipe -> exit 1, no port printed.
  const std::string nobody = UniquePipeAddress("nobody");
  EXPECT_EQ(
      RunTool("client/portpicker_cli.exe", "--no-fallback", nobody, &output),
      std::optional<DWORD>(1))
      << output;
  EXPECT_THAT(output, HasSubstr("portserver at " + nobody));
  EXPECT_EQ(RunTool("client/portserverctl.exe", "status", nobody, &output),
            std::optional<DWORD>(3))
      << output;
}

// A non-ASCII TEST_TARGET reaches the lease as UTF-8 (the CLI reads the
// environment as UTF-16, not in the ANSI code page, which turned "ë" into
// one byte and CJK characters into '?'), and portserverctl prints it so.
TEST_F(PortserverE2eTest, NonAsciiLabelTravelsAsUtf8) {
  int first = 0;
  StartServer(UniquePool(3, &first));
  const DWORD pid = GetCurrentProcessId();
  wchar_t saved[1024];
  DWORD had = GetEnvironmentVariableW(L"TEST_TARGET", saved, 1024);
  SetEnvironmentVariableW(L"TEST_TARGET", L"//pkg:t\u00ebst_\u65e5\u672c");
  std::string output;
  std::optional<DWORD> code =
      RunTool("client/portpicker_cli.exe", absl::StrCat("-n 2 ", pid), address_,
              &output);
  SetEnvironmentVariableW(L"TEST_TARGET",
                          had > 0 && had < 1024 ? saved : nullptr);
  ASSERT_EQ(code, std::optional<DWORD>(0)) << output;
  ASSERT_EQ(
      RunTool("client/portserverctl.exe", "--json leases", address_, &output),
      std::optional<DWORD>(0))
      << output;
  EXPECT_THAT(output, HasSubstr("//pkg:t\xC3\xABst_\xE6\x97\xA5\xE6\x9C\xAC"))
      << output;
}

// A pipe name and a profile folder with characters outside the ANSI code
// page: the server reads its arguments and LOCALAPPDATA as UTF-16, so it
// serves that very name and keeps its default journal in that folder (it
// used to read them in the code page, where such characters become '?').
TEST_F(PortserverE2eTest, NonAsciiPipeNameAndProfileFolder) {
  int first = 0;
  const std::string pool = UniquePool(3, &first);
  const std::string local =
      NewTempDirectory() + "\\\xC5\x81ukasz-\xE5\xBC\xA0\xE4\xBC\x9F";
  ASSERT_TRUE(CreateDirectoryW(Widen(local).c_str(), nullptr));
  ScopedLocalAppData app_data(local);
  address_ = UniquePipeAddress("e2e-\xE6\x97\xA5\xE6\x9C\xAC-\xC5\x82");
  // A metrics file of such a name too (it was written under the name the
  // code page makes of it, "m\xC3\x83\xC2\xA9trics...": a reviewer).
  const std::string metrics = local + "\\m\xC3\xA9trics-\xE6\x97\xA5.prom";
  server_ = Server::Start(
      address_, absl::StrCat("--portserver_static_pool=", pool,
                             " --portserver_metrics_file=", Quote(metrics)));
  ASSERT_NE(server_, nullptr);
  ASSERT_TRUE(server_->WaitForOutput("Serving on", kStartMillis))
      << server_->Output();
  EXPECT_THAT(server_->Output(), HasSubstr(address_.substr(1)));
  const DWORD pid = GetCurrentProcessId();
  int port = Ask(pid);
  EXPECT_GE(port, first);
  EXPECT_LT(port, first + 3);
  absl::StatusOr<int> cpp = portpicker::GetPortFromPortServer(address_, pid);
  ASSERT_TRUE(cpp.ok()) << cpp.status();
  EXPECT_NE(*cpp, port);
  DWORD attributes = GetFileAttributesW(Widen(local + "\\portserver").c_str());
  ASSERT_NE(attributes, INVALID_FILE_ATTRIBUTES) << server_->Output();
  EXPECT_NE(attributes & FILE_ATTRIBUTE_DIRECTORY, 0u);
  attributes = GetFileAttributesW(Widen(metrics).c_str());
  ASSERT_NE(attributes, INVALID_FILE_ATTRIBUTES) << server_->Output();
  EXPECT_EQ(attributes & FILE_ATTRIBUTE_DIRECTORY, 0u);
}

// Pipe names whose default journal would be a DOS device ("con.x" is CON)
// or longer than a file name may be serve with a journal of their own (a
// Windows trial: exit 2, "...\\CON.journal is a device", or "cannot open
// ...journal.lock" for a name of 243 characters).
TEST_F(PortserverE2eTest, DeviceAndLongPipeNamesGetAJournal) {
  const std::string local = NewTempDirectory();
  ScopedLocalAppData app_data(local);
  const std::string unique = UniquePipeAddress("e2e-dev").substr(1);
  for (const std::string& address :
       {"@con." + unique, "@COM1." + unique,
        "@" + unique + std::string(243 - unique.size(), 'l')}) {
    std::unique_ptr<ChildProcess> server = Server::Start(
        address, absl::StrCat("--portserver_static_pool=", UniquePool(1)));
    ASSERT_NE(server, nullptr);
    ASSERT_TRUE(server->WaitForOutput("Serving on", kStartMillis))
        << address << "\n"
        << server->Output();
    PythonStyleReply reply = AskLikePython(address, GetCurrentProcessId());
    EXPECT_EQ(reply.error, 0u) << reply.step;
    EXPECT_FALSE(reply.denied()) << server->Output();
  }
}

// Pipe names that differ only in what a derived name writes '_' are two
// servers, each with a journal, a pipe lock and a statistics event of its
// own (a Windows trial: two non-ASCII names of one length shared one
// journal, and the second server was refused as "in use by another port
// server", or dropped the first's leases; "a\\b" and "a_b" shared the
// pipe's lock, and the second was refused as "already in use").
TEST_F(PortserverE2eTest, LookAlikePipeNamesAreTwoServers) {
  const std::string local = NewTempDirectory();
  ScopedLocalAppData app_data(local);
  const std::string base = UniquePipeAddress("e2e-alike");
  const std::vector<std::vector<std::string>> pairs = {
      {base + "-\xE5\xBC\xA0\xE4\xBC\x9F", base + "-\xE6\x9D\x8E\xE6\x98\x8E"},
      {base + "-a\\b", base + "-a_b"},
  };
  std::vector<std::unique_ptr<ChildProcess>> servers;
  for (const std::vector<std::string>& pair : pairs) {
    for (const std::string& address : pair) {
      int first = 0;
      servers.push_back(Server::Start(
          address,
          absl::StrCat("--portserver_static_pool=", UniquePool(2, &first))));
      ASSERT_NE(servers.back(), nullptr);
      ASSERT_TRUE(servers.back()->WaitForOutput("Serving on", kStartMillis))
          << address << ": " << servers.back()->Output();
      PythonStyleReply reply = AskLikePython(address, GetCurrentProcessId());
      EXPECT_EQ(ParsePort(reply.data), first) << address;
    }
    EXPECT_NE(StatsEventName(pair[0]), StatsEventName(pair[1]));
  }
}

// The other order (a review): the plain name first. Its journal has the
// name the other pipe's servers before 0.4.2 used, which that pipe's server
// must leave to it, running or stopped with a live lease.
TEST_F(PortserverE2eTest, LookAlikePipeNamesPlainNameFirst) {
  const std::string local = NewTempDirectory();
  ScopedLocalAppData app_data(local);
  const std::string base = UniquePipeAddress("e2e-alike2");
  const std::string plain = base + "-a_b", alike = base + "-a\\b";
  int first = 0;
  const std::string pool = UniquePool(2, &first);
  std::unique_ptr<ChildProcess> server =
      Server::Start(plain, absl::StrCat("--portserver_static_pool=", pool));
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(server->WaitForOutput("Serving on", kStartMillis))
      << server->Output();
  ASSERT_EQ(ParsePort(AskLikePython(plain, GetCurrentProcessId()).data), first);
  // Running: the look-alike serves too.
  std::unique_ptr<ChildProcess> other = Server::Start(
      alike, absl::StrCat("--portserver_static_pool=", UniquePool(2)));
  ASSERT_NE(other, nullptr);
  EXPECT_TRUE(other->WaitForOutput("Serving on", kStartMillis))
      << other->Output();
  other->Kill();
  // Stopped with a live lease: the look-alike leaves it alone.
  server->Kill();
  other = Server::Start(
      alike, absl::StrCat("--portserver_static_pool=", UniquePool(2)));
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->WaitForOutput("Serving on", kStartMillis))
      << other->Output();
  EXPECT_THAT(other->Output(), Not(HasSubstr("dropping")));
  other->Kill();
  server =
      Server::Start(plain, absl::StrCat("--portserver_static_pool=", pool));
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(server->WaitForOutput("restored 1 of 1", kStartMillis))
      << server->Output();
}

// Pipe names ignore case: "@Case\A" and "@case\a" are one server, and a
// restart under the other spelling finds its journal (a review: the digits
// were of the name as typed).
TEST_F(PortserverE2eTest, PipeNameInOtherCapitalsKeepsTheJournal) {
  const std::string local = NewTempDirectory();
  ScopedLocalAppData app_data(local);
  for (const char* tail : {"-CaseA", "-Case\\A"}) {
    const std::string upper = UniquePipeAddress("e2e-case") + tail;
    const std::string pool = UniquePool(2);
    std::unique_ptr<ChildProcess> server =
        Server::Start(upper, absl::StrCat("--portserver_static_pool=", pool));
    ASSERT_NE(server, nullptr);
    ASSERT_TRUE(server->WaitForOutput("Serving on", kStartMillis))
        << server->Output();
    ASSERT_NE(ParsePort(AskLikePython(upper, GetCurrentProcessId()).data), 0)
        << server->Output();
    server->Kill();
    server = Server::Start(absl::AsciiStrToLower(upper),
                           absl::StrCat("--portserver_static_pool=", pool));
    ASSERT_NE(server, nullptr);
    EXPECT_TRUE(server->WaitForOutput("restored 1 of 1", kStartMillis))
        << tail << ": " << server->Output();
  }
}

TEST_F(PortserverE2eTest, DeadOwnersPortsComeBack) {
  int first = 0;
  StartServer(UniquePool(2, &first));
  std::set<int> leased;
  for (int i = 0; i < 2; ++i) {
    // A client process that asks for itself, prints the port and exits.
    std::unique_ptr<ChildProcess> client = ChildProcess::Start(
        absl::StrCat(Quote(ExePath("adapters/windows/python_style_client.exe")),
                     " ", address_),
        /*capture=*/true);
    ASSERT_NE(client, nullptr);
    ASSERT_EQ(client->Wait(kStartMillis), std::optional<DWORD>(0))
        << client->Output();
    int port = ParsePort(client->Output());
    ASSERT_NE(port, 0) << client->Output();
    leased.insert(port);
  }
  ASSERT_EQ(leased.size(), 2u);  // The whole pool, to two dead owners.
  // Both owners are gone: their ports serve a new owner.
  int again = Ask(GetCurrentProcessId());
  EXPECT_EQ(leased.count(again), 1u) << again;
  int third = Ask(GetCurrentProcessId());
  EXPECT_EQ(leased.count(third), 1u) << third;
  EXPECT_NE(again, third);
}

// A denial is an empty line, then the close: python's Windows client raised
// BrokenPipeError out of pick_unused_port() on a pipe closed without a
// reply (it catches only FileNotFoundError), where on Linux it falls back;
// an empty line is a ValueError it catches, and it falls back.
TEST_F(PortserverE2eTest, DenialsAreAnEmptyLinePythonFallsBackOn) {
  StartServer(UniquePool(1));
  // No such process; then an invalid pid.
  PythonStyleReply reply = AskLikePython(address_, 0x7FFFFFF0);
  EXPECT_TRUE(reply.denied()) << reply.step << " " << reply.error;
  reply = AskLikePython(address_, 0);
  EXPECT_TRUE(reply.denied()) << reply.step << " " << reply.error;
  // The one port goes to this live process; the next request finds the pool
  // exhausted.
  EXPECT_NE(Ask(GetCurrentProcessId()), 0);
  reply = AskLikePython(address_, GetCurrentProcessId());
  EXPECT_TRUE(reply.denied()) << reply.step << " " << reply.error;
  absl::StatusOr<int> cpp =
      portpicker::GetPortFromPortServer(address_, GetCurrentProcessId());
  EXPECT_EQ(cpp.status().code(), absl::StatusCode::kResourceExhausted)
      << cpp.status();
  EXPECT_TRUE(server_->WaitForOutput("denied (pool-exhausted)", kStartMillis))
      << server_->Output();
}

TEST_F(PortserverE2eTest, BadFlagExitsTwoWithOneLine) {
  std::unique_ptr<ChildProcess> bad = Server::Start(
      UniquePipeAddress("bad"), "--portserver_static_pool=200-100");
  ASSERT_NE(bad, nullptr);
  EXPECT_EQ(bad->Wait(kStartMillis), std::optional<DWORD>(2));
  std::string output = bad->Output();
  std::vector<std::string> lines =
      absl::StrSplit(output, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1u) << output;
  EXPECT_THAT(lines[0], StartsWith("portserver: error: "));
  EXPECT_THAT(lines[0], HasSubstr("200-100"));
}

TEST_F(PortserverE2eTest, AddressThatIsNotAPipeNameExitsTwo) {
  std::unique_ptr<ChildProcess> bad = Server::Start(
      "not-a-pipe", absl::StrCat("--portserver_static_pool=", UniquePool(1)));
  ASSERT_NE(bad, nullptr);
  EXPECT_EQ(bad->Wait(kStartMillis), std::optional<DWORD>(2));
  EXPECT_THAT(bad->Output(), StartsWith("portserver: error: pipe address"));
}

// A device as the metrics file is refused at start-up, as it is as the
// journal (a Windows trial: with COM1 the metrics went to the serial port
// every 15 seconds; with NUL nowhere).
TEST_F(PortserverE2eTest, DeviceAsMetricsFileExitsTwo) {
  for (const char* device : {"NUL", "COM1", "com1.prom"}) {
    std::unique_ptr<ChildProcess> server =
        Server::Start(UniquePipeAddress("e2e-device"),
                      absl::StrCat("--portserver_static_pool=", UniquePool(1),
                                   " --portserver_state_file=none",
                                   " --portserver_metrics_file=", device));
    ASSERT_NE(server, nullptr);
    EXPECT_EQ(server->Wait(kStartMillis), std::optional<DWORD>(2)) << device;
    EXPECT_THAT(server->Output(), HasSubstr("is a device, not a metrics file"))
        << device;
  }
}

// One journal spelled two ways ("X\\j" and "X\\j.": Windows drops trailing
// dots) is one journal with one lock: the second server exits 2 (it got a
// lock of its own, "j..lock", served on the same file and, restarted
// alone, dropped the first's leases: a Windows trial).
TEST_F(PortserverE2eTest, SecondServerOnAnotherSpellingOfTheJournalExitsTwo) {
  StartServer(UniquePool(2));
  std::unique_ptr<ChildProcess> second =
      Server::Start(UniquePipeAddress("e2e-spelling"),
                    absl::StrCat("--portserver_static_pool=", UniquePool(2),
                                 " --portserver_state_file=", journal_, "."));
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->Wait(kStartMillis), std::optional<DWORD>(2))
      << second->Output();
  EXPECT_THAT(second->Output(), HasSubstr("is in use by another port server"));
}

// The metrics file may not be the journal, or its lock or temporary file
// (the metrics would replace the journal every 15 s, and a clean stop
// remove it with the leases).
TEST_F(PortserverE2eTest, MetricsFileThatIsTheJournalExitsTwo) {
  const std::string journal = NewTempDirectory() + "\\leases.journal";
  for (const std::string& metrics :
       {journal, journal + ".", absl::AsciiStrToUpper(journal) + ".LOCK"}) {
    std::unique_ptr<ChildProcess> server =
        Server::Start(UniquePipeAddress("e2e-collide"),
                      absl::StrCat("--portserver_static_pool=", UniquePool(1),
                                   " --portserver_state_file=", journal,
                                   " --portserver_metrics_file=", metrics));
    ASSERT_NE(server, nullptr);
    EXPECT_EQ(server->Wait(kStartMillis), std::optional<DWORD>(2)) << metrics;
    EXPECT_THAT(server->Output(), HasSubstr("are one file")) << metrics;
  }
}

TEST_F(PortserverE2eTest, SecondServerOnTheSamePipeExitsTwo) {
  StartServer(UniquePool(2));
  std::unique_ptr<ChildProcess> second = Server::Start(
      address_, absl::StrCat("--portserver_static_pool=", UniquePool(2),
                             " --portserver_state_file=none"));
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->Wait(kStartMillis), std::optional<DWORD>(2));
  EXPECT_THAT(second->Output(),
              HasSubstr(absl::StrCat("portserver: error: address ", address_,
                                     " is already in use")));
  EXPECT_NE(Ask(GetCurrentProcessId()), 0);  // The first one still serves.
}

// Every server takes the port locks, whatever its flags, as on Linux: a
// second server with default flags on another pipe, same pool, does not
// lease the port the first one leased (before 0.4.2 a Windows server took
// the locks only with --portserver_lock_ports, so it did).
TEST_F(PortserverE2eTest, TwoServersWithDefaultFlagsNeverLeaseOnePort) {
  const std::string pool = UniquePool(1);
  StartServer(pool);
  ASSERT_NE(Ask(GetCurrentProcessId()), 0) << server_->Output();
  const std::string other_address = UniquePipeAddress("e2e-other");
  std::unique_ptr<ChildProcess> other = Server::Start(
      other_address, absl::StrCat("--portserver_static_pool=", pool,
                                  " --portserver_state_file=none"));
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->WaitForOutput("Serving on", kStartMillis))
      << other->Output();
  PythonStyleReply reply = AskLikePython(other_address, GetCurrentProcessId());
  EXPECT_TRUE(reply.denied()) << "the other server leased " << reply.data;
  EXPECT_TRUE(other->WaitForOutput("denied (pool-exhausted)", kStartMillis))
      << other->Output();
}

TEST_F(PortserverE2eTest, JournalKeepsALiveOwnersLeasesAcrossKillAndRestart) {
  const std::string pool = UniquePool(2);
  StartServer(pool);
  const int mine = Ask(GetCurrentProcessId());
  ASSERT_NE(mine, 0) << server_->Output();
  server_->Kill();  // TerminateProcess: no chance to clean up.
  server_.reset();
  StartServer(pool);
  EXPECT_TRUE(server_->WaitForOutput("restored 1 of 1", kStartMillis))
      << server_->Output();
  // The other port goes to another live process; then nothing is left,
  // since this process still holds its port.
  std::unique_ptr<ChildProcess> owner = ChildProcess::Start(
      Quote(ExePath("adapters/windows/python_style_client.exe")) + " @none",
      false, CREATE_SUSPENDED);
  ASSERT_NE(owner, nullptr);
  const int other = Ask(owner->pid());
  EXPECT_NE(other, 0);
  EXPECT_NE(other, mine);
  std::unique_ptr<ChildProcess> late = ChildProcess::Start(
      Quote(ExePath("adapters/windows/python_style_client.exe")) + " @none",
      false, CREATE_SUSPENDED);
  ASSERT_NE(late, nullptr);
  EXPECT_TRUE(AskLikePython(address_, late->pid()).denied());
}

TEST_F(PortserverE2eTest, StatisticsEventLogsTheStatistics) {
  StartServer(UniquePool(2));
  ASSERT_NE(Ask(GetCurrentProcessId()), 0);
  std::string name = StatsEventName(address_);
  ScopedHandle event(
      OpenEventW(EVENT_MODIFY_STATE, FALSE, Widen(name).c_str()));
  ASSERT_TRUE(event.valid()) << name << ": " << GetLastError();
  ASSERT_TRUE(SetEvent(event.get()));
  EXPECT_TRUE(server_->WaitForOutput("total-allocations 1", kStartMillis))
      << server_->Output();
  EXPECT_THAT(server_->Output(), HasSubstr("Dumping statistics"));
  EXPECT_EQ(server_->Wait(0), std::nullopt);  // Still serving.
}

// Console control events reach the processes attached to a console: this
// test gets one of its own (headless under wine), and the server shares it.
class ConsoleControlTest : public PortserverE2eTest {
 protected:
  void SetUp() override {
    FreeConsole();
    ASSERT_TRUE(AllocConsole()) << GetLastError();
  }
  void TearDown() override { SetConsoleCtrlHandler(nullptr, FALSE); }
  void StartOnConsole(DWORD flags) {
    address_ = UniquePipeAddress("console");
    server_ =
        Server::Start(address_,
                      absl::StrCat("--portserver_static_pool=", UniquePool(1),
                                   " --portserver_state_file=none"),
                      flags);
    ASSERT_NE(server_, nullptr);
    ASSERT_TRUE(server_->WaitForOutput("Serving on", kStartMillis));
    // This process ignores the event from now on (children started later
    // would inherit that; the server started before).
    SetConsoleCtrlHandler(nullptr, TRUE);
  }
  void ExpectCleanStop() {
    EXPECT_EQ(server_->Wait(kStartMillis), std::optional<DWORD>(0))
        << server_->Output();
    EXPECT_THAT(server_->Output(), HasSubstr("Stopping on signal."));
    EXPECT_THAT(server_->Output(), HasSubstr("Dumping statistics"));
    EXPECT_THAT(server_->Output(), HasSubstr("Goodbye."));
    // Its pipe is gone with it.
    EXPECT_EQ(AskLikePython(address_, GetCurrentProcessId()).error,
              static_cast<DWORD>(ERROR_FILE_NOT_FOUND));
  }
};

TEST_F(ConsoleControlTest, CtrlCStopsTheServerWithExitZero) {
  StartOnConsole(0);
  ASSERT_TRUE(GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0)) << GetLastError();
  ExpectCleanStop();
}

TEST_F(ConsoleControlTest, CtrlBreakStopsTheServerWithExitZero) {
  StartOnConsole(CREATE_NEW_PROCESS_GROUP);
  if (!GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, server_->pid())) {
    // Wine 8 delivers only CTRL_C_EVENT to process group 0.
    GTEST_SKIP() << "this system cannot send Ctrl+Break to a process group: "
                 << GetLastError();
  }
  ExpectCleanStop();
}

// The C++ client's fallback: a port taken on IPv6 alone is not free. A
// family whose socket() fails is skipped, as python skips it, but a failed
// bind is a port in use (the final read of the change that made socket()
// failures skippable found it skipping failed binds too).
TEST(WindowsClientFallback, PortTakenOnIpv6AloneIsNotFree) {
  ASSERT_EQ(EnsureWinsock(), 0);
  absl::StatusOr<int> port = portpicker::PickUnusedPortWithoutServer();
  ASSERT_TRUE(port.ok()) << port.status();
  SOCKET taken = socket(AF_INET6, SOCK_STREAM, 0);
  if (taken == INVALID_SOCKET) GTEST_SKIP() << "no IPv6 here";
  BOOL one = TRUE;
  setsockopt(taken, IPPROTO_IPV6, IPV6_V6ONLY,
             reinterpret_cast<const char*>(&one), sizeof(one));
  setsockopt(taken, SOL_SOCKET, SO_EXCLUSIVEADDRUSE,
             reinterpret_cast<const char*>(&one), sizeof(one));
  sockaddr_in6 address{};
  address.sin6_family = AF_INET6;
  address.sin6_port = htons(static_cast<u_short>(*port));
  ASSERT_EQ(bind(taken, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
            0);
  ASSERT_EQ(listen(taken, 1), 0);
  EXPECT_FALSE(portpicker::IsPortFree(*port));
  closesocket(taken);
  EXPECT_TRUE(portpicker::IsPortFree(*port));
}

}  // namespace
}  // namespace portserver
