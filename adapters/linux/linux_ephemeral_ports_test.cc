#include "adapters/linux/linux_ephemeral_ports.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace portserver {
namespace {

// A file under the test's private tmpdir holding `text`.
std::string TempFile(const std::string& name, const std::string& text) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
  std::ofstream(path) << text;
  return path;
}

std::string Contents(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

PortSet Set(const std::string& list) { return *ParsePortList(list); }

TEST(LinuxEphemeralPorts, ParsesAndFormatsTheKernelsListSyntax) {
  EXPECT_EQ(FormatPorts(Set("")), "");
  EXPECT_EQ(FormatPorts(Set("\n")), "");
  EXPECT_EQ(FormatPorts(Set("8080,9148\n")), "8080,9148");
  EXPECT_EQ(FormatPorts(Set("20000-20002,20003,7")), "7,20000-20003");
  EXPECT_EQ(FormatPorts(Set("0,65535")), "0,65535");
  EXPECT_FALSE(ParsePortList("1-x").ok());
  EXPECT_FALSE(ParsePortList("5-3").ok());
  EXPECT_FALSE(ParsePortList("65536").ok());
}

TEST(LinuxEphemeralPorts, ReadsTheRange) {
  absl::StatusOr<PortRange> range =
      ReadEphemeralRange(TempFile("range", "32768\t60999\n"));
  ASSERT_TRUE(range.ok()) << range.status();
  EXPECT_EQ(range->first, 32768);
  EXPECT_EQ(range->last, 60999);
  EXPECT_FALSE(ReadEphemeralRange(TempFile("bad", "1 2 3\n")).ok());
  EXPECT_FALSE(ReadEphemeralRange("/nonexistent/range").ok());
}

TEST(LinuxEphemeralPorts, OverlapLeavesOutReservedPorts) {
  std::vector<uint16_t> pool;
  for (uint16_t p = 30000; p <= 33000; ++p) pool.push_back(p);
  PortSet overlap =
      UnreservedEphemeral(pool, PortRange{32768, 60999}, Set("32800-32899"));
  EXPECT_EQ(FormatPorts(overlap), "32768-32799,32900-33000");
  EXPECT_EQ(CountPorts(overlap), 133u);
  EXPECT_EQ(
      CountPorts(UnreservedEphemeral(pool, PortRange{40000, 50000}, Set(""))),
      0u);
}

TEST(LinuxEphemeralPorts, ReserveMergesAndRestoreTakesOutOnlyWhatItAdded) {
  std::string path = TempFile("reserved", "8080,20005\n");
  std::vector<uint16_t> pool = {20000, 20001, 20002, 20003, 20004, 20005};
  {
    absl::StatusOr<std::unique_ptr<LinuxReservedPorts>> held =
        LinuxReservedPorts::Reserve(pool, path);
    ASSERT_TRUE(held.ok()) << held.status();
    EXPECT_EQ(Contents(path), "8080,20000-20005\n");
    EXPECT_EQ(FormatPorts((*held)->added()), "20000-20004");
    // Someone else reserves another port meanwhile: it stays.
    std::ofstream(path) << "8080,9000,20000-20005\n";
  }
  EXPECT_EQ(Contents(path), "8080,9000,20005\n");
}

TEST(LinuxEphemeralPorts, ReserveOfReservedPoolWritesNothing) {
  std::string path = TempFile("reserved2", "20000-20010\n");
  absl::StatusOr<std::unique_ptr<LinuxReservedPorts>> held =
      LinuxReservedPorts::Reserve({20001, 20002}, path);
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ(CountPorts((*held)->added()), 0u);
  ASSERT_TRUE((*held)->Restore().ok());
  EXPECT_EQ(Contents(path), "20000-20010\n");
}

TEST(LinuxEphemeralPorts, ReserveNamesTheFileItCannotRead) {
  absl::StatusOr<std::unique_ptr<LinuxReservedPorts>> held =
      LinuxReservedPorts::Reserve({20000}, "/nonexistent/reserved");
  ASSERT_FALSE(held.ok());
  EXPECT_NE(held.status().message().find("/nonexistent/reserved"),
            std::string::npos);
}

}  // namespace
}  // namespace portserver
