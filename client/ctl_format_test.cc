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

TEST(Table, AlignsColumnsByTerminalColumnsNotBytes) {
  // "é" is 2 bytes and "€" 3, one column each; "😀" 4 bytes and "日" 3, two
  // columns each (East Asian Wide); a stray byte one.
  Table t({"LABEL", "COMMAND"});
  t.Add({"caf\xC3\xA9", "a"});
  t.Add({"\xE2\x82\xAC\xF0\x9F\x98\x80", "b"});
  t.Add({"\xE6\x97\xA5\xE6\x9C\xAC", "c"});
  t.Add({"x\xA9", "d"});
#ifndef _WIN32
  // "€😀" takes 3 columns, "日本" 4; the cells are padded to 7.
  const std::string wide_pad = "    ", cjk_pad = "   ";
#else
  // No wcwidth on Windows: one column a character (README).
  const std::string wide_pad = "     ", cjk_pad = "     ";
#endif
  EXPECT_EQ(t.Render(),
            "LABEL  COMMAND\n"
            "caf\xC3\xA9   a\n"
            "\xE2\x82\xAC\xF0\x9F\x98\x80" +
                wide_pad + "b\n" + "\xE6\x97\xA5\xE6\x9C\xAC" + cjk_pad +
                "c\n" + "x\xA9     d\n");
}

TEST(PrintableCell, ShowsControlsAndBadBytesAsQuestionMarks) {
  EXPECT_EQ(PrintableCell("//pkg:my_test"), "//pkg:my_test");
  EXPECT_EQ(PrintableCell(""), "");
  // C0, DEL: one '?' each.
  EXPECT_EQ(PrintableCell("a\x1b[31mb\tc\n\x7f"), "a?[31mb?c??");
  // C1 (U+0080-U+009F): one '?' per character, e.g. CSI U+009B.
  EXPECT_EQ(PrintableCell("\xC2\x9B"
                          "31m\xC2\x80\xC2\x9F"),
            "?31m??");
  // The first characters after C1 pass: U+00A0, U+00A9, and others.
  EXPECT_EQ(PrintableCell("\xC2\xA0\xC2\xA9 caf\xC3\xA9 \xE2\x82\xAC "
                          "\xF0\x9F\x98\x80"),
            "\xC2\xA0\xC2\xA9 caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  // A byte that does not start a well-formed character: one '?' each (a
  // cut character, a stray continuation, overlong, surrogate, > U+10FFFF).
  EXPECT_EQ(PrintableCell("ab\xC3"), "ab?");
  EXPECT_EQ(PrintableCell("\xA9x"), "?x");
  EXPECT_EQ(PrintableCell("\xC0\xAF"), "??");
  EXPECT_EQ(PrintableCell("\xED\xA0\x80"), "???");
  EXPECT_EQ(PrintableCell("\xF4\x90\x80\x80"), "????");
  EXPECT_EQ(PrintableCell("\xC2"), "?");
  // Bidi controls (RLO U+202E, RLI U+2067, RLM U+200F) would reorder what
  // follows them on the terminal.
  EXPECT_EQ(PrintableCell("a\xE2\x80\xAE"
                          "cba\xE2\x81\xA7x\xE2\x80\x8F"),
            "a?cba?x?");
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
