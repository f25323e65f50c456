// docs/protocol.md's table of error codes lists every code an extended
// reply can carry (a code sent but not documented was found by a reviewer:
// thread-not-process).
#include <string>
#include <string_view>

#include "domain/control_service.h"
#include "domain/port_service.h"
#include "gtest/gtest.h"

extern const char kProtocolDoc[];

namespace portserver {
namespace {

bool Documented(const std::string& code) {
  // A row of the table: "| `code` |" or one of several codes in a cell.
  return std::string_view(kProtocolDoc).find("`" + code + "`") !=
         std::string_view::npos;
}

TEST(ProtocolDoc, ListsEveryDenialOfAnAllocation) {
  int checked = 0;
  for (int i = 0;; ++i) {
    const std::string code = OutcomeName(static_cast<Outcome>(i));
    if (code == "unknown") break;
    // Not denials an extended reply can carry: a grant; the plain
    // protocol's unreadable request (extended ones say `malformed`); a
    // connection the transport closed unread at its cap.
    if (code == "granted" || code == "malformed-request" ||
        code == "over-capacity") {
      continue;
    }
    EXPECT_TRUE(Documented(code)) << code;
    ++checked;
  }
  EXPECT_GE(checked, 8);
}

TEST(ProtocolDoc, ListsTheProtocolsOwnCodes) {
  for (const char* code : {"malformed", "unsupported-version", "unknown-verb",
                           "bad-argument", "not-leased", "permission-denied"}) {
    EXPECT_TRUE(Documented(code)) << code;
  }
}

}  // namespace
}  // namespace portserver
