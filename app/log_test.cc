#include "app/log.h"

#include <regex>
#include <string>

#include "gtest/gtest.h"

namespace portserver {
namespace {

TEST(Log, FormatsLikeTheReferenceServer) {
  // I1125 02:17:10.900 12345 main.cc:80] Serving on @x
  std::string line =
      FormatLogLine(LogSeverity::kInfo, "app/main.cc", 80, "Serving on @x");
  EXPECT_TRUE(std::regex_match(
      line, std::regex(R"(I\d{4} \d\d:\d\d:\d\d\.\d{3} \d+ main\.cc:80\] Serving on @x)")))
      << line;
}

TEST(Log, SeverityLetters) {
  EXPECT_EQ(FormatLogLine(LogSeverity::kWarning, "f.cc", 1, "m")[0], 'W');
  EXPECT_EQ(FormatLogLine(LogSeverity::kError, "f.cc", 1, "m")[0], 'E');
}

TEST(Log, VerboseSwitch) {
  SetVerbose(true);
  EXPECT_TRUE(Verbose());
  SetVerbose(false);
  EXPECT_FALSE(Verbose());
}

}  // namespace
}  // namespace portserver
