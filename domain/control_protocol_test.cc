#include "domain/control_protocol.h"

#include "gtest/gtest.h"

namespace portserver {
namespace {

// What Linux and Windows both record as a command line.
TEST(DisplayCommandLine, ControlCharactersAreQuestionMarksAndCutsAreMarked) {
  EXPECT_EQ(DisplayCommandLine("sleep 600", 256), "sleep 600");
  EXPECT_EQ(DisplayCommandLine("a\tb\nc\x1b[31m\x7f", 256), "a?b?c?[31m?");
  EXPECT_EQ(DisplayCommandLine("abcdefghij", 8), "abcde...");
  // 'é' is two bytes: never cut inside one, and never longer than asked.
  std::string e_acutes;
  for (int i = 0; i < 10; ++i) e_acutes += "\xC3\xA9";
  for (size_t max = 0; max <= 12; ++max) {
    std::string cut = DisplayCommandLine(e_acutes, max);
    EXPECT_LE(cut.size(), max) << max;
    size_t kept = cut.size() >= 3 ? cut.size() - 3 : 0;
    EXPECT_EQ(kept % 2, 0u) << max << ": " << cut;
  }
  EXPECT_EQ(DisplayCommandLine(e_acutes, 20), e_acutes);
}

TEST(ControlProtocol, PercentEncodingRoundTripsEveryByte) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  std::string encoded = PercentEncode(all);
  EXPECT_EQ(encoded.find(' '), std::string::npos);
  EXPECT_EQ(encoded.find('\n'), std::string::npos);
  EXPECT_EQ(PercentDecode(encoded), all);
  EXPECT_EQ(PercentEncode("sleep 600"), "sleep%20600");
  EXPECT_EQ(PercentDecode("%4"), std::nullopt);
  EXPECT_EQ(PercentDecode("%zz"), std::nullopt);
}

TEST(ControlProtocol, ParsesARequestItFormats) {
  std::string line =
      FormatControlRequest("allocate", {{"pid", "1234"}, {"label", "//a b:c"}});
  EXPECT_EQ(line, "portserver/1 allocate pid=1234 label=//a%20b:c\n");
  ControlRequest r = ParseControlRequest(line);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.version, 1);
  EXPECT_EQ(r.verb, "allocate");
  EXPECT_EQ(r.Get("pid"), "1234");
  EXPECT_EQ(r.Get("label"), "//a b:c");
  EXPECT_EQ(r.Get("count"), std::nullopt);
}

TEST(ControlProtocol, RejectsMalformedRequestsWithAReason) {
  for (const char* bad :
       {"status\n", "portserver/ status\n", "portserver/0 status\n",
        "portserver/1\n", "portserver/1  status\n", "portserver/1 Status\n",
        "portserver/1 who ports\n", "portserver/1 who =1\n",
        "portserver/1 who ports=%1\n", "portserver/1 who\rx\n"}) {
    ControlRequest r = ParseControlRequest(bad);
    EXPECT_FALSE(r.ok) << bad;
    EXPECT_FALSE(r.error.empty()) << bad;
  }
  // A verb of another form is named, not called missing (a new user:
  // "portserver/1 STATUS" was "no verb after portserver/1").
  EXPECT_EQ(ParseControlRequest("portserver/1 STATUS\n").error,
            "bad verb \"STATUS\": verbs are lower-case letters, digits, '-' "
            "and '_'");
  EXPECT_EQ(ParseControlRequest("portserver/1\n").error,
            "no verb after portserver/1");
}

TEST(ControlProtocol, NewerVersionIsUnsupportedNotMalformed) {
  ControlRequest r = ParseControlRequest("portserver/2 status\n");
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.unsupported_version);
  EXPECT_EQ(r.version, 2);
}

TEST(ControlProtocol, ReplyRoundTrips) {
  ControlReplyBuilder b;
  b.Field("count", 2);
  b.Record("lease");
  b.RecordField("port", 15000);
  b.RecordField("cmdline", "sleep 600");
  b.Record("lease");
  b.RecordField("port", 15001);
  std::string bytes = b.Finish();
  EXPECT_EQ(bytes,
            "portserver/1 ok count=2\nlease port=15000 cmdline=sleep%20600\n"
            "lease port=15001\nend\n");
  ParsedReply p = ParseControlReply(bytes);
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_FALSE(p.is_error());
  EXPECT_EQ(p.header.Get("count"), "2");
  ASSERT_EQ(p.records.size(), 2u);
  EXPECT_EQ(p.records[0].Get("cmdline"), "sleep 600");
}

TEST(ControlProtocol, ErrorReplyCarriesCodeAndMessage) {
  ControlReplyBuilder b;
  b.Error("pool-exhausted", "pool exhausted (5 of 5 leased)");
  ParsedReply p = ParseControlReply(b.Finish());
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_TRUE(p.is_error());
  EXPECT_EQ(p.header.Get("code"), "pool-exhausted");
  EXPECT_EQ(p.header.Get("message"), "pool exhausted (5 of 5 leased)");
}

TEST(ControlProtocol, CutOrEmptyRepliesAreNotReplies) {
  EXPECT_EQ(ParseControlReply("").error, "no reply");
  EXPECT_FALSE(ParseControlReply("portserver/1 ok\nlease port=1\n").ok);
  EXPECT_FALSE(ParseControlReply("portserver/1 ok\nlease port=1").ok);
  EXPECT_FALSE(ParseControlReply("15000\n").ok);
}

TEST(ControlProtocol, PortLists) {
  EXPECT_EQ(ParsePortList("1,65535", 2), (std::vector<uint16_t>{1, 65535}));
  EXPECT_EQ(ParsePortList("1,2,3", 2), std::nullopt);
  EXPECT_EQ(ParsePortList("0", 2), std::nullopt);
  EXPECT_EQ(ParsePortList("65536", 2), std::nullopt);
  EXPECT_EQ(ParsePortList("5,5", 2), std::nullopt);
  EXPECT_EQ(ParsePortList("5,", 2), std::nullopt);
  EXPECT_EQ(ParsePortList("", 2), std::nullopt);
  EXPECT_EQ(FormatPortList({7, 8}), "7,8");
}

TEST(ControlProtocol, PortListsSayWhatIsWrong) {
  std::string why;
  EXPECT_EQ(ParsePortList("7,63700,8,63700", 20, &why), std::nullopt);
  EXPECT_EQ(why, "port 63700 is named twice");
  EXPECT_EQ(ParsePortList("1,2,3", 2, &why), std::nullopt);
  EXPECT_EQ(why, "more than 2 ports");
  EXPECT_EQ(ParsePortList("5,0", 2, &why), std::nullopt);
  EXPECT_EQ(why, "a port that is not 1-65535");
  EXPECT_EQ(ParsePortList("5,", 2, &why), std::nullopt);
  EXPECT_EQ(why, "an empty port");
  why = "untouched";
  EXPECT_EQ(ParsePortList("5,6", 2, &why), (std::vector<uint16_t>{5, 6}));
  EXPECT_EQ(why, "untouched");
}

}  // namespace
}  // namespace portserver
