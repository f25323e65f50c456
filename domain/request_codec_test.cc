#include "domain/request_codec.h"

#include <string>

#include "gtest/gtest.h"

namespace portserver {
namespace {

TEST(RequestCodec, ParsesPidWithNewline) {
  ParsedRequest r = ParseRequest("1234\n");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.pid, 1234);
}

TEST(RequestCodec, ParsesPidWithoutNewlineOrWithCrLf) {
  EXPECT_EQ(ParseRequest("77").pid, 77);
  EXPECT_TRUE(ParseRequest("77").ok);
  EXPECT_EQ(ParseRequest("78\r\n").pid, 78);
  EXPECT_TRUE(ParseRequest("78\r\n").ok);
}

TEST(RequestCodec, KeepsNonPositivePidsForPolicyToDeny) {
  ParsedRequest zero = ParseRequest("0\n");
  ASSERT_TRUE(zero.ok);
  EXPECT_EQ(zero.pid, 0);
  ParsedRequest negative = ParseRequest("-5\n");
  ASSERT_TRUE(negative.ok);
  EXPECT_EQ(negative.pid, -5);
}

TEST(RequestCodec, AcceptsInt64Extremes) {
  ParsedRequest max = ParseRequest("9223372036854775807\n");
  ASSERT_TRUE(max.ok);
  EXPECT_EQ(max.pid, INT64_MAX);
  ParsedRequest min = ParseRequest("-9223372036854775808");
  ASSERT_TRUE(min.ok);
  EXPECT_EQ(min.pid, INT64_MIN);
}

TEST(RequestCodec, RejectsOverflow) {
  EXPECT_FALSE(ParseRequest("9223372036854775808\n").ok);
  EXPECT_FALSE(ParseRequest("-9223372036854775809").ok);
  EXPECT_FALSE(ParseRequest("9999999999999999999\n").ok);
}

TEST(RequestCodec, RejectsMalformedInput) {
  for (std::string bad :
       {std::string(""), std::string("\n"), std::string(" 12\n"),
        std::string("12 \n"), std::string("+12\n"), std::string("-\n"),
        std::string("1 2\n"), std::string("abc\n"), std::string("12\n\n"),
        std::string("0x10\n"), std::string("12\r"), std::string("\r\n"),
        std::string("1\0"
                    "2\n",
                    4),
        std::string("\xff\xfe\n")}) {
    ParsedRequest r = ParseRequest(bad);
    EXPECT_FALSE(r.ok) << "accepted '" << bad << "'";
    EXPECT_FALSE(r.error.empty());
  }
}

TEST(RequestCodec, AcceptsAtMostNineteenDigits) {
  EXPECT_TRUE(ParseRequest("0000000000000000001").ok);          // 19 digits
  ParsedRequest twenty = ParseRequest("00000000000000000001");  // 20, 20 bytes
  EXPECT_FALSE(twenty.ok);
  EXPECT_NE(twenty.error.find("19 digits"), std::string::npos) << twenty.error;
}

TEST(RequestCodec, EnforcesSizeLimit) {
  std::string longest = std::string(kMaxRequestBytes - 1, '1');
  longest.back() = '\n';
  EXPECT_TRUE(ParseRequest(longest).ok) << longest;
  std::string too_long = "0" + std::string(kMaxRequestBytes - 1, '1');
  ParsedRequest r = ParseRequest(too_long + "\n");
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("longer"), std::string::npos) << r.error;
}

TEST(RequestCodec, FormatsReply) {
  EXPECT_EQ(FormatReply(15000), "15000\n");
  EXPECT_EQ(FormatReply(1), "1\n");
  EXPECT_EQ(FormatReply(65535), "65535\n");
}

TEST(RequestCodec, RoundTripsEveryPortThroughPythonClientParsing) {
  // python portpicker reads int(reply.split(b'\n')[0]).
  for (uint32_t port = 1; port <= 65535; ++port) {
    std::string reply = FormatReply(static_cast<uint16_t>(port));
    ASSERT_EQ(reply.back(), '\n');
    ASSERT_EQ(std::stoul(reply.substr(0, reply.find('\n'))), port);
  }
}

TEST(RequestCodec, FramingLimitDependsOnTheFirstBytes) {
  EXPECT_EQ(RequestByteLimit(""), kMaxRequestBytes);
  EXPECT_EQ(RequestByteLimit("1"), kMaxRequestBytes);
  EXPECT_EQ(RequestByteLimit("-5"), kMaxRequestBytes);
  EXPECT_EQ(RequestByteLimit(" 12"), kMaxRequestBytes);
  EXPECT_EQ(RequestByteLimit("abc\n"), kMaxRequestBytes);
  EXPECT_EQ(RequestByteLimit("portserver"), kMaxRequestBytes);  // Not yet.
  EXPECT_EQ(RequestByteLimit("portserver/"), kMaxExtendedRequestBytes);
  EXPECT_EQ(RequestByteLimit("portserver/1 status"), kMaxExtendedRequestBytes);
  EXPECT_FALSE(IsExtendedRequest("1234\n"));
  EXPECT_FALSE(IsExtendedRequest("junk\n"));
  EXPECT_TRUE(IsExtendedRequest("portserver/1 version\n"));
  // The prefix fits in a plain request's limit: a transport can always tell.
  EXPECT_LT(std::string_view(kExtendedRequestPrefix).size(), kMaxRequestBytes);
}

TEST(RequestCodec, ExtendedRequestIsNotAPlainOne) {
  EXPECT_FALSE(ParseRequest("portserver/1 status\n").ok);
}

}  // namespace
}  // namespace portserver
