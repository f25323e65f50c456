// Output helpers of portserverctl: ages as people read them ("3m12s"),
// tables with aligned columns, and JSON strings.
//
// Example:
//   FormatAge(192000);                  // "3m12s"
//   Table t({"PORT", "PID"});
//   t.Add({"15000", "1234"});
//   std::string text = t.Render();      // "PORT   PID\n15000  1234\n"
//   JsonString("a\"b");                 // "\"a\\\"b\""
//   LabelCell(std::nullopt);            // "-"
//   LabelCell("-");                     // "\"-\""
//   PrintableCell("a\x1b[31m\xC2\x9B");   // "a?[31m?"
//
// Thread-compatible.
#ifndef PORTSERVER_CLIENT_CTL_FORMAT_H_
#define PORTSERVER_CLIENT_CTL_FORMAT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace portpicker {

// A duration in ms as "45s", "3m12s", "2h05m", "3d04h"; "0s" under a second
// or for negative input.
std::string FormatAge(int64_t ms);

// Columns separated by two spaces, each as wide as its widest cell in
// terminal columns: each well-formed UTF-8 character as wcwidth(3) says under
// the C.UTF-8 locale (2 for CJK and most emoji, 0 for combining marks, 1 for
// "é"), each byte that does not start one as 1; every character counts 1
// where that locale is missing and on Windows. The last column is not
// padded. Cells must not hold newlines: pass text from elsewhere through
// PrintableCell().
class Table {
 public:
  explicit Table(std::vector<std::string> header);
  void Add(std::vector<std::string> row);
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// `text` as a JSON string literal (RFC 8259 section 7): quotes, backslash
// and control characters escaped; well-formed UTF-8 is copied, and each
// byte that does not start a well-formed UTF-8 character is written as
// \ufffd, so that the output is always UTF-8 (section 8.1).
std::string JsonString(const std::string& text);

// `text` for a terminal: each control character (C0 0x00-0x1F, DEL 0x7F, C1
// U+0080-U+009F such as CSI U+009B), each bidirectional formatting
// character (ALM U+061C, LRM, RLM, U+202A-U+202E, U+2066-U+2069) and each
// byte that does not start a well-formed UTF-8 character becomes one '?';
// other well-formed UTF-8 is copied. For cells that come from others
// (labels, command lines), so that they cannot move the cursor, recolour or
// retitle the terminal, or reorder what it shows after them.
std::string PrintableCell(const std::string& text);

// A lease's label in a table for people: "-" when it has none; a label that
// could be misread there (one that is "-", is empty, holds a space or
// starts with a quote) as JsonString() writes it, so that "-" and "a b" do
// not pass for no label or for two columns. --json output gives the label
// itself.
std::string LabelCell(const std::optional<std::string>& label);

}  // namespace portpicker

#endif  // PORTSERVER_CLIENT_CTL_FORMAT_H_
