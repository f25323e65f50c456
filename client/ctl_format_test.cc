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
