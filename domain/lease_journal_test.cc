#include "domain/lease_journal.h"

#include <algorithm>
#include <string>

#include "gtest/gtest.h"

namespace portserver {
namespace {

using Leases = std::vector<std::pair<uint16_t, Owner>>;

TEST(LeaseJournal, RoundTripsASnapshot) {
  Leases leases = {{15000, Owner{1234, 99}},
                   {65535, Owner{INT64_MAX, UINT64_MAX}},
                   {1, Owner{7, 0}}};
  JournalReplay r = ParseJournal(JournalSnapshot(leases));
  EXPECT_TRUE(r.problems.empty()) << r.problems.front();
  EXPECT_EQ(r.leases, leases);
  EXPECT_EQ(r.lines, 4u);
}

TEST(LeaseJournal, AppendedLinesFollowTheSnapshot) {
  std::string text =
      JournalSnapshot({{100, Owner{5, 6}}}) + JournalLease(101, Owner{7, 8});
  EXPECT_EQ(ParseJournal(text).leases,
            (Leases{{100, Owner{5, 6}}, {101, Owner{7, 8}}}));
}

TEST(LeaseJournal, SkipsOnlyTheDamagedLine) {
  std::string good1 = JournalLease(100, Owner{5, 6});
  std::string good2 = JournalLease(102, Owner{9, 10});
  std::string damaged = JournalLease(101, Owner{7, 8});
  damaged[2] = '9';  // A flipped digit: the checksum no longer matches.
  JournalReplay r = ParseJournal(JournalHeader() + good1 + damaged + good2);
  EXPECT_EQ(r.leases, (Leases{{100, Owner{5, 6}}, {102, Owner{9, 10}}}));
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0], "line 3: bad checksum, skipped");
}

TEST(LeaseJournal, TruncatedLastLineIsSkipped) {
  std::string text = JournalHeader() + JournalLease(100, Owner{5, 6});
  std::string torn = JournalLease(101, Owner{7, 8});
  text += torn.substr(0, torn.size() / 2);
  JournalReplay r = ParseJournal(text);
  EXPECT_EQ(r.leases, (Leases{{100, Owner{5, 6}}}));
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_NE(r.problems[0].find("truncated"), std::string::npos);
}

TEST(LeaseJournal, EveryPrefixOfAJournalKeepsEveryCompleteLine) {
  Leases leases;
  for (int i = 0; i < 20; ++i)
    leases.push_back({static_cast<uint16_t>(100 + i), Owner{i + 2, 7}});
  std::string text = JournalSnapshot(leases);
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    std::string_view prefix(text.data(), cut);
    JournalReplay r = ParseJournal(prefix);
    size_t complete_lines = std::count(prefix.begin(), prefix.end(), '\n');
    size_t expected = complete_lines == 0 ? 0 : complete_lines - 1;
    ASSERT_EQ(r.leases.size(), expected) << "cut at " << cut;
  }
}

TEST(LeaseJournal, MissingHeaderIsReportedButLinesStillCount) {
  JournalReplay r = ParseJournal(JournalLease(100, Owner{5, 6}));
  EXPECT_EQ(r.leases, (Leases{{100, Owner{5, 6}}}));
  ASSERT_FALSE(r.problems.empty());
  EXPECT_NE(r.problems[0].find("header"), std::string::npos);
}

TEST(LeaseJournal, RejectsOutOfRangeAndGarbage) {
  for (std::string bad :
       {std::string("L 0 5 6 00000000\n"),
        std::string("L 70000 5 6 00000000\n"),
        std::string("X 100 5 6 00000000\n"), std::string("L 100 5\n"),
        std::string("\x00\xff\n", 3), std::string("\n"),
        std::string("L 100 -5 6 00000000\n")}) {
    JournalReplay r = ParseJournal(JournalHeader() + bad);
    EXPECT_TRUE(r.leases.empty()) << bad;
    EXPECT_EQ(r.problems.size(), 1u) << bad;
  }
}

TEST(LeaseJournal, LimitsTheProblemsDescribed) {
  std::string text = JournalHeader();
  for (int i = 0; i < 100; ++i) text += "garbage\n";
  JournalReplay r = ParseJournal(text);
  EXPECT_EQ(r.problems.size(), 21u);
  EXPECT_EQ(r.problems.back(), "and 80 more damaged lines");
}

}  // namespace
}  // namespace portserver
