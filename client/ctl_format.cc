#include "client/ctl_format.h"

#ifndef _WIN32
#include <locale.h>
#include <wchar.h>
#endif

#include <algorithm>
#include <cstdio>
#include <string_view>

namespace portpicker {

namespace {

// The length of the well-formed UTF-8 character at the start of `s` (RFC
// 3629, section 4: no overlong forms, no surrogates, nothing above
// U+10FFFF), or 0 if it does not start with one.
size_t Utf8CharLength(std::string_view s) {
  auto at = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  auto in = [&](size_t i, unsigned lo, unsigned hi) {
    return i < s.size() && at(i) >= lo && at(i) <= hi;
  };
  const unsigned c = at(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return in(1, 0x80, 0xBF) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned lo = c == 0xE0 ? 0xA0 : 0x80;
    const unsigned hi = c == 0xED ? 0x9F : 0xBF;
    return in(1, lo, hi) && in(2, 0x80, 0xBF) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned lo = c == 0xF0 ? 0x90 : 0x80;
    const unsigned hi = c == 0xF4 ? 0x8F : 0xBF;
    return in(1, lo, hi) && in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF) ? 4 : 0;
  }
  return 0;
}

// The code point of the well-formed UTF-8 character `s` (Utf8CharLength n).
char32_t CodePoint(std::string_view s, size_t n) {
  auto at = [&](size_t i) {
    return static_cast<char32_t>(static_cast<unsigned char>(s[i]));
  };
  switch (n) {
    case 1:
      return at(0);
    case 2:
      return ((at(0) & 0x1F) << 6) | (at(1) & 0x3F);
    case 3:
      return ((at(0) & 0x0F) << 12) | ((at(1) & 0x3F) << 6) | (at(2) & 0x3F);
    default:
      return ((at(0) & 0x07) << 18) | ((at(1) & 0x3F) << 12) |
             ((at(2) & 0x3F) << 6) | (at(3) & 0x3F);
  }
}

// Columns a terminal gives the character `c`: wcwidth(3) under the C.UTF-8
// locale (glibc's tables of Unicode's East Asian Width: 2 for CJK and most
// emoji, 0 for combining marks), for this thread only (uselocale), so that
// the program's own locale does not matter. 1 where that locale is missing
// or on Windows.
size_t Columns(char32_t c) {
  if (c < 0x80) return 1;
#ifndef _WIN32
  static const locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", nullptr);
  if (utf8 != nullptr) {
    locale_t before = uselocale(utf8);
    int width = wcwidth(static_cast<wchar_t>(c));
    uselocale(before);
    if (width >= 0) return static_cast<size_t>(width);
  }
#endif
  return 1;
}

// The width of `cell` in terminal columns: a well-formed UTF-8 character
// as Columns() says, one a byte that does not start one.
size_t CellWidth(std::string_view cell) {
  size_t width = 0;
  for (size_t i = 0; i < cell.size();) {
    size_t n = Utf8CharLength(cell.substr(i));
    width += n == 0 ? 1 : Columns(CodePoint(cell.substr(i), n));
    i += n == 0 ? 1 : n;
  }
  return width;
}

// Bidirectional formatting characters (Unicode UAX #9: ALM, LRM, RLM,
// LRE/RLE/PDF/LRO/RLO, LRI/RLI/FSI/PDI): in a cell they could reorder what
// the terminal shows after them.
bool IsBidiControl(char32_t c) {
  return c == 0x061C || c == 0x200E || c == 0x200F ||
         (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069);
}

}  // namespace

std::string FormatAge(int64_t ms) {
  int64_t s = ms < 0 ? 0 : ms / 1000;
  char buffer[64];
  if (s < 60) {
    std::snprintf(buffer, sizeof(buffer), "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(buffer, sizeof(buffer), "%lldm%02llds",
                  static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else if (s < 86400) {
    std::snprintf(buffer, sizeof(buffer), "%lldh%02lldm",
                  static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  } else {
    std::snprintf(buffer, sizeof(buffer), "%lldd%02lldh",
                  static_cast<long long>(s / 86400),
                  static_cast<long long>(s % 86400 / 3600));
  }
  return buffer;
}

Table::Table(std::vector<std::string> header) {
  rows_.push_back(std::move(header));
}

void Table::Add(std::vector<std::string> row) {
  rows_.push_back(std::move(row));
}

std::string Table::Render() const {
  std::vector<size_t> width;
  for (const auto& row : rows_) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      width[i] = std::max(width[i], CellWidth(row[i]));
    }
  }
  std::string out;
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size())
        line += std::string(width[i] - CellWidth(row[i]) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80) {
      // JSON text is UTF-8 (RFC 8259, section 8.1): a byte that does not
      // start a well-formed character (a command line cut by an older
      // server, a label sent by hand) becomes U+FFFD, as decoders do.
      size_t n = Utf8CharLength(std::string_view(text).substr(i));
      if (n == 0) {
        out += "\\ufffd";
      } else {
        out.append(text, i, n);
        i += n - 1;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buffer[8];
          std::snprintf(buffer, sizeof(buffer), "\\u%04x", c);
          out += buffer;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

std::string PrintableCell(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    size_t n = Utf8CharLength(std::string_view(text).substr(i));
    const auto c = static_cast<unsigned char>(text[i]);
    // C1 controls are U+0080-U+009F: 0xC2 0x80 to 0xC2 0x9F.
    const bool control =
        n == 1 ? c < 0x20 || c == 0x7f
               : (n == 2 && c == 0xC2 &&
                  static_cast<unsigned char>(text[i + 1]) <= 0x9F) ||
                     (n > 1 && IsBidiControl(CodePoint(
                                   std::string_view(text).substr(i), n)));
    if (n == 0 || control) {
      out += '?';
    } else {
      out.append(text, i, n);
    }
    i += n == 0 ? 1 : n;
  }
  return out;
}

std::string LabelCell(const std::optional<std::string>& label) {
  if (!label) return "-";
  if (*label == "-" || label->empty() ||
      label->find(' ') != std::string::npos || label->front() == '"') {
    return JsonString(*label);
  }
  return *label;
}

}  // namespace portpicker
