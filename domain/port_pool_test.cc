#include "domain/port_pool.h"

#include <string>

#include "gtest/gtest.h"

namespace portserver {
namespace {

TEST(PortPool, ParsesDefaultRange) {
  PortPoolParse p = ParsePortPool("15000-24999");
  ASSERT_TRUE(p.ok) << p.error;
  ASSERT_EQ(p.ports.size(), 10000u);
  EXPECT_EQ(p.ports.front(), 15000);
  EXPECT_EQ(p.ports.back(), 24999);
}

TEST(PortPool, ParsesSeveralRangesInGivenOrder) {
  PortPoolParse p = ParsePortPool("30-31, 10-11 ,20");
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.ports, (std::vector<uint16_t>{30, 31, 10, 11, 20}));
}

TEST(PortPool, CanonicalSpellingDropsBlanks) {
  EXPECT_EQ(ParsePortPool(" 10-20").canonical, "10-20");
  EXPECT_EQ(ParsePortPool("\t10 - 20 ,30 , 40-41\t").canonical,
            "10-20,30,40-41");
  EXPECT_EQ(ParsePortPool("15000-24999").canonical, "15000-24999");
  EXPECT_EQ(ParsePortPool(" 10-20").ports, ParsePortPool("10-20").ports);
}

TEST(PortPool, AcceptsWholePortSpace) {
  PortPoolParse p = ParsePortPool("1-65535");
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.ports.size(), 65535u);
}

struct BadPool {
  std::string spec;
  std::string mentions;  // The error must name this.
};

class PortPoolBadTest : public ::testing::TestWithParam<BadPool> {};

TEST_P(PortPoolBadTest, RejectsWithMessageNamingTheProblem) {
  PortPoolParse p = ParsePortPool(GetParam().spec);
  EXPECT_FALSE(p.ok);
  EXPECT_TRUE(p.ports.empty() || !p.ok);
  EXPECT_NE(p.error.find(GetParam().mentions), std::string::npos)
      << "error for '" << GetParam().spec << "' was: " << p.error;
  EXPECT_EQ(p.error.find('\n'), std::string::npos) << "one line";
}

INSTANTIATE_TEST_SUITE_P(
    Bad, PortPoolBadTest,
    ::testing::Values(BadPool{"1-", "'1-'"}, BadPool{"-5", "'-5'"},
                      BadPool{"5-3", "ends before it starts"},
                      BadPool{"0-10", "outside 1-65535"},
                      BadPool{"70000-70001", "outside 1-65535"},
                      BadPool{"65535-65536", "outside 1-65535"},
                      BadPool{"abc", "'abc'"}, BadPool{"", "empty"},
                      BadPool{"10-20,", "empty range"},
                      BadPool{"10-20,,30-40", "empty range"},
                      BadPool{"100-200,150-160", "overlaps"},
                      BadPool{"100-200,200", "port 200"},
                      BadPool{"1-2-3", "'1-2-3'"}, BadPool{"+1-2", "'+1-2'"},
                      BadPool{"99999999999-2", "99999999999"},
                      // Control bytes are escaped: the error stays one line.
                      BadPool{"15000-24999\n", "'15000-24999\\x0a'"},
                      BadPool{std::string("1\x00"
                                          "2",
                                          3),
                              "'1\\x002'"}));

}  // namespace
}  // namespace portserver
