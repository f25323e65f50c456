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
      line,
      std::regex(
          R"(I\d{4} \d\d:\d\d:\d\d\.\d{3} \d+ main\.cc:80\] Serving on @x)")))
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

namespace portserver {
namespace {

TEST(LogRateLimiter, LetsABurstThroughPerWindowAndCountsTheRest) {
  LogRateLimiter limiter(3, absl::Seconds(1));
  absl::Time t = absl::FromUnixSeconds(1000);
  uint64_t held_back = 99;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(limiter.Allow(t, &held_back));
    EXPECT_EQ(held_back, 0u);
  }
  for (int i = 0; i < 500; ++i) {
    EXPECT_FALSE(limiter.Allow(t + absl::Milliseconds(i), &held_back));
  }
  EXPECT_EQ(limiter.suppressed(), 500u);
  // The next window lets a line through, which reports what was held back.
  EXPECT_TRUE(limiter.Allow(t + absl::Seconds(1), &held_back));
  EXPECT_EQ(held_back, 500u);
  EXPECT_TRUE(limiter.Allow(t + absl::Seconds(1), &held_back));
  EXPECT_EQ(held_back, 0u);
  EXPECT_EQ(limiter.suppressed(), 500u);
}

}  // namespace
}  // namespace portserver
