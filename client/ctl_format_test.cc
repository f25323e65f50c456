#include "client/ctl_format.h"

#include "gtest/gtest.h"

namespace portpicker {
namespace {

TEST(FormatAge, ReadsAsPeopleDo) {
  EXPECT_EQ(FormatAge(-5), "0s");
  EXPECT_EQ(FormatAge(999), "0s");
  EXPECT_EQ(FormatAge(45000), "45s");
  EXPECT_EQ(FormatAge(192000), "3m12s");
  EXPECT_EQ(FormatAge(3600000 + 5 * 60000 + 7000), "1h05m");
  EXPECT_EQ(FormatAge(3 * 86400000LL + 4 * 3600000), "3d04h");
}

TEST(Table, AlignsColumns) {
  Table t({"PORT", "PID", "COMMAND"});
  t.Add({"15000", "7", "sleep 600"});
  t.Add({"15001", "123456", ""});
  EXPECT_EQ(t.Render(),
            "PORT   PID     COMMAND\n"
            "15000  7       sleep 600\n"
            "15001  123456\n");
}

TEST(JsonString, EscapesWhatJsonRequires) {
  EXPECT_EQ(JsonString("a\"b\\c\nd\x01"), "\"a\\\"b\\\\c\\nd\\u0001\"");
  EXPECT_EQ(JsonString("//pkg:test"), "\"//pkg:test\"");
}

TEST(JsonString, WritesOnlyUtf8) {
  // Well-formed characters of 2, 3 and 4 bytes pass.
  EXPECT_EQ(JsonString("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"),
            "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"");
  // A character cut short (a command line cut inside one), a stray
  // continuation byte, an overlong form, a surrogate, and beyond U+10FFFF.
  EXPECT_EQ(JsonString("ab\xC3"), "\"ab\\ufffd\"");
  EXPECT_EQ(JsonString("\xA9x"), "\"\\ufffdx\"");
  EXPECT_EQ(JsonString("\xC0\xAF"), "\"\\ufffd\\ufffd\"");
  EXPECT_EQ(JsonString("\xED\xA0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");
  EXPECT_EQ(JsonString("\xF4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
  EXPECT_EQ(JsonString("\xE2\x82"), "\"\\ufffd\\ufffd\"");
}

TEST(LabelCell, NoLabelAndTheLabelDashDiffer) {
  EXPECT_EQ(LabelCell(std::nullopt), "-");
  EXPECT_EQ(LabelCell(std::string("-")), "\"-\"");
  EXPECT_EQ(LabelCell(std::string("//pkg:my_test")), "//pkg:my_test");
  EXPECT_EQ(LabelCell(std::string("two words")), "\"two words\"");
  EXPECT_EQ(LabelCell(std::string("\"quoted")), "\"\\\"quoted\"");
  EXPECT_EQ(LabelCell(std::string("")), "\"\"");
}

}  // namespace
}  // namespace portpicker
