#include "domain/lease_journal.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "domain/control_protocol.h"
#include "gtest/gtest.h"

namespace portserver {
namespace {

using Leases = std::vector<std::pair<uint16_t, Owner>>;
using Notes = std::vector<JournalNote>;

JournalNote Note(uint16_t port, Owner owner, int64_t seconds,
                 std::string label) {
  return JournalNote{port, owner, seconds, std::move(label)};
}

// Every byte a label may hold (no control character), and the ones that
// need escaping: space, '%', '-' alone, bytes >= 0x80.
const std::string kOddLabel = "//a b:c%d\xe2\x82\xac-~=";

TEST(LeaseJournal, RoundTripsASnapshot) {
  Leases leases = {{15000, Owner{1234, 99}},
                   {65535, Owner{INT64_MAX, UINT64_MAX}},
                   {1, Owner{7, 0}}};
  JournalReplay r = ParseJournal(JournalSnapshot(leases));
  EXPECT_TRUE(r.problems.empty()) << r.problems.front();
  EXPECT_EQ(r.leases, leases);
  EXPECT_EQ(r.lines, 4u);
}

// A journal whose line ends became CRLF (an editor, git's autocrlf, a copy
// through a Windows tool) is the same journal: it was refused as someone
// else's file ("remove it"), which would have lost its leases (a Windows
// trial).
TEST(LeaseJournal, CrlfLineEndsReadAsTheSameJournal) {
  Leases leases = {{15000, Owner{1234, 99}}, {15001, Owner{1235, 7}}};
  const std::string lf = JournalSnapshot(leases);
  std::string crlf;
  for (char c : lf) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  JournalReplay r = ParseJournal(crlf);
  EXPECT_TRUE(r.problems.empty()) << r.problems.front();
  EXPECT_EQ(r.leases, leases);
  EXPECT_TRUE(StartsAsJournal(crlf));
  EXPECT_TRUE(StartsAsJournal("portserver-journal 1\r\n"));
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

TEST(LeaseJournal, OnlyAJournalOrNothingStartsAsJournal) {
  EXPECT_TRUE(StartsAsJournal(""));  // A new journal.
  EXPECT_TRUE(StartsAsJournal(JournalHeader()));
  EXPECT_TRUE(StartsAsJournal("portserver-journal 1"));  // A start of one.
  EXPECT_TRUE(StartsAsJournal(JournalSnapshot({{100, Owner{5, 6}}})));
  // Damaged after the header: still a journal, restored as far as it goes.
  EXPECT_TRUE(StartsAsJournal(JournalHeader() + "garbage\n\x01\xff"));
  // Someone else's file: `--portserver_state_file=/etc/default/portserver`.
  for (std::string other :
       {std::string("precious data\nline 2\n"), std::string("\n"),
        std::string("\n") + JournalHeader(), std::string("portserver"),
        std::string("portserver-journal 2\n"),
        std::string("portserver-journal 1 \n"),
        std::string("portserver-journal 10\n"),
        std::string("L 100 5 6 00000000\n"),  // A record's look, not its sum.
        std::string("\x00\x00\x00\x00x\n", 6)}) {
    EXPECT_FALSE(StartsAsJournal(other)) << other;
  }
  // Ours, after damage: a header with a flipped bit, a journal truncated
  // while the server ran and appended to since.
  std::string flipped = JournalSnapshot({{100, Owner{5, 6}}});
  flipped[3] ^= 0x20;
  EXPECT_TRUE(StartsAsJournal(flipped));
  EXPECT_TRUE(StartsAsJournal(JournalLease(100, Owner{5, 6}) +
                              JournalLeaseNote(100, 10, "a")));
  // NULs (blocks a power loss left unwritten) are no journal's start: only
  // a whole .tmp of them is taken (LinuxLeaseStore).
  EXPECT_FALSE(StartsAsJournal(std::string(4096, '\0')));
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

TEST(LeaseJournalNotes, RoundTripASnapshotWithNotes) {
  Leases leases = {{15000, Owner{1234, 99}},
                   {15001, Owner{1234, 99}},
                   {65535, Owner{INT64_MAX, UINT64_MAX}},
                   {1, Owner{7, 0}},
                   {2, Owner{8, 1}}};
  auto note_of = [](uint16_t port) {
    switch (port) {
      case 15000:
        return Note(port, {}, 1764470012, "//pkg:my_test");
      case 15001:
        return Note(port, {}, 1764470013, kOddLabel);
      case 65535:
        return Note(port, {}, 1764470014, "");  // Time only.
      case 1:
        return Note(port, {}, -1, "-");  // Label only; "-" itself.
      default:
        return Note(port, {}, -1, "");  // Nothing: no N line.
    }
  };
  std::string text = JournalSnapshot(leases, note_of);
  JournalReplay r = ParseJournal(text);
  EXPECT_TRUE(r.problems.empty()) << r.problems.front();
  EXPECT_EQ(r.leases, leases);
  EXPECT_EQ(r.notes,
            (Notes{Note(15000, {1234, 99}, 1764470012, "//pkg:my_test"),
                   Note(15001, {1234, 99}, 1764470013, kOddLabel),
                   Note(65535, {INT64_MAX, UINT64_MAX}, 1764470014, ""),
                   Note(1, {7, 0}, -1, "-")}));
  EXPECT_EQ(r.lines, 1u + 5 + 4);
  // The note is the very next line after its lease; labels never hold a
  // space, so fields stay fields.
  EXPECT_NE(text.find(JournalLease(15000, {1234, 99}) +
                      JournalLeaseNote(15000, 1764470012, "//pkg:my_test")),
            std::string::npos);
  EXPECT_NE(text.find(" //a%20b:c%25d%E2%82%AC-~= "), std::string::npos)
      << text;
  EXPECT_NE(text.find("N 1 - %2D "), std::string::npos) << text;
}

// The records' exact bytes, checksums computed apart from this code (FNV-1a
// of the body, in python): what older servers and the robustness tests'
// own writers expect. Extremes of each field.
TEST(LeaseJournal, RecordsAreWrittenByteForByte) {
  EXPECT_EQ(JournalLease(1, Owner{1, 0}), "L 1 1 0 af87bd2b\n");
  EXPECT_EQ(JournalLease(65535, Owner{4194304, 18446744073709551615u}),
            "L 65535 4194304 18446744073709551615 a9e031d9\n");
  EXPECT_EQ(JournalLeaseNote(65535, 1764552000, "x y%"),
            "N 65535 1764552000 x%20y%25 88453f89\n");
  EXPECT_EQ(JournalLeaseNote(1, -1, "-"), "N 1 - %2D da0515e8\n");
  EXPECT_EQ(JournalLeaseNote(1, 4102444800, ""), "N 1 4102444800 - 5add46e8\n");
  std::string appended = "anything before\n";
  AppendJournalLeaseWithNote(appended, 1, Owner{1, 0}, -1, "-");
  EXPECT_EQ(appended,
            "anything before\nL 1 1 0 af87bd2b\nN 1 - %2D da0515e8\n");
  EXPECT_EQ(JournalLeaseWithNote(1, Owner{1, 0}, -1, "-"),
            "L 1 1 0 af87bd2b\nN 1 - %2D da0515e8\n");
}

TEST(LeaseJournalNotes, NothingToNoteWritesNothing) {
  EXPECT_EQ(JournalLeaseNote(100, -1, ""), "");
  EXPECT_EQ(JournalLeaseNote(100, 0, ""), "");
  EXPECT_EQ(
      JournalSnapshot({{100, Owner{5, 6}}},
                      [](uint16_t port) { return Note(port, {}, -1, ""); }),
      JournalSnapshot({{100, Owner{5, 6}}}));
}

TEST(LeaseJournalNotes, LabelIsCutToTheProtocolLimit) {
  std::string text = JournalHeader() + JournalLease(100, Owner{5, 6}) +
                     JournalLeaseNote(100, 1, std::string(500, 'x'));
  JournalReplay r = ParseJournal(text);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_EQ(r.notes[0].label, std::string(kMaxLabelBytes, 'x'));
}

TEST(LeaseJournalNotes, AppendedGrantsKeepTheirNotesAndTheLastWins) {
  std::string text = JournalSnapshot({{100, Owner{5, 6}}}, [](uint16_t p) {
    return Note(p, {}, 1000, "old");
  });
  // The port came back and was leased again (a new owner), then once more
  // by the same owner after a release.
  text += JournalLease(100, Owner{7, 8}) + JournalLeaseNote(100, 2000, "new");
  text += JournalLease(100, Owner{7, 8}) + JournalLeaseNote(100, 3000, "");
  JournalReplay r = ParseJournal(text);
  EXPECT_TRUE(r.problems.empty()) << r.problems.front();
  EXPECT_EQ(r.notes, (Notes{Note(100, {5, 6}, 1000, "old"),
                            Note(100, {7, 8}, 2000, "new"),
                            Note(100, {7, 8}, 3000, "")}));
}

TEST(LeaseJournalNotes, DamagedNoteIsSkippedAloneAndItsLeaseKept) {
  std::string note = JournalLeaseNote(101, 1764470012, "//pkg:t");
  note[4] = '9';  // A flipped digit of the time.
  std::string text = JournalHeader() + JournalLease(100, Owner{5, 6}) +
                     JournalLeaseNote(100, 1764470011, "//pkg:s") +
                     JournalLease(101, Owner{7, 8}) + note +
                     JournalLease(102, Owner{9, 10});
  JournalReplay r = ParseJournal(text);
  EXPECT_EQ(
      r.leases,
      (Leases{{100, Owner{5, 6}}, {101, Owner{7, 8}}, {102, Owner{9, 10}}}));
  EXPECT_EQ(r.notes, (Notes{Note(100, {5, 6}, 1764470011, "//pkg:s")}));
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0], "line 5: bad checksum, skipped");
}

TEST(LeaseJournalNotes, NoteWithoutItsLeaseLineIsSkipped) {
  std::string lease = JournalLease(101, Owner{7, 8});
  lease[2] = '9';  // Its lease line is damaged: the note belongs to nothing.
  std::string text =
      JournalHeader() + JournalLease(100, Owner{5, 6}) +
      JournalLeaseNote(100, 10, "a") + lease + JournalLeaseNote(101, 11, "b") +
      // A note of another port than the lease before it.
      JournalLease(102, Owner{9, 10}) + JournalLeaseNote(103, 12, "c") +
      // Two notes in a row: only the first follows a lease.
      JournalLease(104, Owner{11, 12}) + JournalLeaseNote(104, 13, "d") +
      JournalLeaseNote(104, 14, "e");
  // And a note on the first line, with no header.
  JournalReplay r = ParseJournal(text);
  EXPECT_EQ(r.leases.size(), 3u);
  EXPECT_EQ(r.notes,
            (Notes{Note(100, {5, 6}, 10, "a"), Note(104, {11, 12}, 13, "d")}));
  // The note of the damaged lease goes with it: only the damage is named.
  ASSERT_EQ(r.problems.size(), 3u);
  EXPECT_EQ(r.problems[0], "line 4: bad checksum, skipped");
  EXPECT_EQ(r.problems[1],
            "line 7: note of port 103 not right after its lease record, "
            "skipped");
  EXPECT_EQ(r.problems[2],
            "line 10: note of port 104 not right after its lease record, "
            "skipped");

  JournalReplay first = ParseJournal(JournalLeaseNote(100, 10, "a"));
  EXPECT_TRUE(first.notes.empty());
  EXPECT_EQ(first.problems.size(), 2u);  // No header; a note of nothing.
}

// Only the note right after a damaged lease line goes unreported (the
// damage is); a note after a damaged or misplaced note follows no lease.
TEST(LeaseJournalNotes, NoteAfterABadNoteIsReported) {
  std::string bad_note = JournalLeaseNote(100, 10, "a");
  bad_note[4] = '9';  // A flipped digit of the time.
  std::string text =
      JournalHeader() + JournalLease(100, Owner{5, 6}) + bad_note +
      JournalLeaseNote(100, 11, "b") + JournalLease(101, Owner{7, 8}) +
      JournalLeaseNote(101, 12, "c") + JournalLeaseNote(101, 13, "d") +
      JournalLeaseNote(101, 14, "e");
  JournalReplay r = ParseJournal(text);
  EXPECT_EQ(r.leases.size(), 2u);
  EXPECT_EQ(r.notes, (Notes{Note(101, {7, 8}, 12, "c")}));
  ASSERT_EQ(r.problems.size(), 4u);
  EXPECT_EQ(r.problems[0], "line 3: bad checksum, skipped");
  EXPECT_EQ(r.problems[1],
            "line 4: note of port 100 not right after its lease record, "
            "skipped");
  EXPECT_EQ(r.problems[2],
            "line 7: note of port 101 not right after its lease record, "
            "skipped");
  EXPECT_EQ(r.problems[3],
            "line 8: note of port 101 not right after its lease record, "
            "skipped");
}

TEST(LeaseJournal, BootRecordRoundTripsAndIsChecked) {
  const std::string boot = "0c3f2a9e-8d1b-4f53-9b7e-2d6a1c0e5f47";
  std::string text = JournalSnapshot(
      {{100, Owner{5, 6}}}, [](uint16_t) { return JournalNote{}; }, boot);
  EXPECT_EQ(text.substr(0, text.find('\n', text.find('\n') + 1) + 1),
            JournalHeader() + JournalBootRecord(boot));
  JournalReplay r = ParseJournal(text);
  EXPECT_EQ(r.boot_id, boot);
  EXPECT_EQ(r.leases.size(), 1u);
  EXPECT_TRUE(r.problems.empty());
  // Without one (an older journal): none.
  EXPECT_EQ(ParseJournal(JournalSnapshot({{100, Owner{5, 6}}})).boot_id, "");
  // A damaged one is skipped and said.
  std::string damaged = JournalBootRecord(boot);
  damaged[3] ^= 1;
  JournalReplay bad = ParseJournal(JournalHeader() + damaged);
  EXPECT_EQ(bad.boot_id, "");
  ASSERT_EQ(bad.problems.size(), 1u);
  EXPECT_EQ(bad.problems[0], "line 2: bad checksum, skipped");
}

TEST(LeaseJournalNotes, RejectsBadNotes) {
  // Each body is checksummed correctly: only its content is wrong.
  auto line = [](const std::string& body) {
    char sum[9];
    uint32_t h = 2166136261u;
    for (unsigned char c : body) {
      h ^= c;
      h *= 16777619u;
    }
    std::snprintf(sum, sizeof(sum), "%08x", h);
    return body + " " + sum + "\n";
  };
  // The format itself, as a checksum written by hand sees it.
  EXPECT_EQ(line("N 100 10 a"), JournalLeaseNote(100, 10, "a"));
  for (std::string bad :
       {line("N 0 10 a"), line("N 70000 10 a"), line("N 100 x a"),
        line("N 100 -1 a"), line("N 100 010 a"),
        line("N 100 99999999999999999 a"), line("N 100 10 %zz"),
        line("N 100 10 %0A"), line("N 100 10 %7F"), line("N 100 10 a%"),
        line("N 100 10 " + std::string(kMaxLabelBytes + 1, 'x')),
        line("N 100 10 a b"), line("N 100 10"), line("N 100 10 %")}) {
    JournalReplay r =
        ParseJournal(JournalHeader() + JournalLease(100, Owner{5, 6}) + bad);
    EXPECT_EQ(r.leases.size(), 1u) << bad;
    EXPECT_TRUE(r.notes.empty()) << bad;
    EXPECT_EQ(r.problems.size(), 1u) << bad;
  }
}

TEST(LeaseJournalNotes, JournalOfAnOlderServerStillRestores) {
  // As servers before notes wrote it (copied from such a file).
  std::string old_format =
      "portserver-journal 1\n"
      "L 15000 1234 99 fc30f93f\n";
  JournalReplay r = ParseJournal(old_format);
  EXPECT_TRUE(r.problems.empty());
  EXPECT_EQ(r.leases, (Leases{{15000, Owner{1234, 99}}}));
  EXPECT_TRUE(r.notes.empty());
}

TEST(LeaseJournalNotes, UnknownRecordKindsAreSkippedAlone) {
  // A later version's record kind: reported, every lease still restored.
  std::string text = JournalHeader() + JournalLease(100, Owner{5, 6}) +
                     "Z 100 something 12345678\n" +
                     JournalLease(101, Owner{7, 8});
  JournalReplay r = ParseJournal(text);
  EXPECT_EQ(r.leases.size(), 2u);
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0], "line 3: not a lease record, skipped");
}

TEST(LeaseJournalNotes, SizeOfAFullPoolSnapshot) {
  // 65,535 leases of large pids and incarnations, each with a note.
  Leases leases;
  for (uint32_t port = 1; port <= 65535; ++port) {
    leases.push_back(
        {static_cast<uint16_t>(port), Owner{4194304, 18446744073709551615u}});
  }
  const std::string bazel_label = "//some/package/path:a_test_target";
  const std::string worst_label(kMaxLabelBytes, '\xff');  // All escaped.
  size_t plain = JournalSnapshot(leases).size();
  size_t typical = JournalSnapshot(leases, [&](uint16_t port) {
                     return Note(port, {}, 1764470012, bazel_label);
                   }).size();
  size_t time_only = JournalSnapshot(leases, [&](uint16_t port) {
                       return Note(port, {}, 1764470012, "");
                     }).size();
  size_t worst = JournalSnapshot(leases, [&](uint16_t port) {
                   return Note(port, {}, 1764470012, worst_label);
                 }).size();
  std::cout << "full pool snapshot: " << plain << " bytes without notes, "
            << time_only << " with times only, " << typical << " with "
            << bazel_label.size() << "-byte labels, " << worst << " with "
            << worst_label.size() << "-byte labels all escaped\n";
  // Bounded per lease: an N line is at most ~420 bytes.
  EXPECT_LE(worst, plain + 65535u * 420);
  EXPECT_LE(typical, plain + 65535u * (30 + bazel_label.size()));
}

}  // namespace
// Default journal names: distinct for addresses that differ only in the
// bytes written '_' (two servers shared one journal, and one dropped the
// other's leases as outside its pool: a Windows trial with two non-ASCII
// pipe names of one length); the same as before for plain names.
TEST(JournalFileName, IsDistinctForAddressesThatLookAlike) {
  EXPECT_EQ(JournalFileName("unittest-portserver"), "unittest-portserver");
  EXPECT_EQ(JournalFileName("x_a"), "x_a");
  EXPECT_EQ(JournalFileName("/run/x.sock"), "_run_x.sock-7238e002");
  const std::vector<std::vector<std::string>> alike = {
      {"x a", "x_a", "x\\a", "x/a"},
      {"/run/a/b", "/run/a_b", "_run_a_b"},
      {"h20win-\xe5\xbc\xa0\xe4\xbc\x9f", "h20win-\xe6\x9d\x8e\xe6\x98\x8e"},
  };
  for (const std::vector<std::string>& group : alike) {
    std::set<std::string> names;
    for (const std::string& address : group) {
      EXPECT_EQ(LegacyJournalFileName(address),
                LegacyJournalFileName(group.front()))
          << address;
      names.insert(JournalFileName(address));
    }
    EXPECT_EQ(names.size(), group.size()) << group.front();
  }
  for (char c : JournalFileName("\x01\xff @:/\\")) {
    EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                c == '-')
        << c;
  }
}

// A long address (a Windows pipe name of up to 247 characters, a relative
// socket path made absolute in a deep directory) keeps its journal's name
// within NAME_MAX with every suffix, and still one name per address.
TEST(JournalFileName, LongAddressesAreCutAndStayDistinct) {
  const std::string deep = "/" + std::string(300, 'd') + "/rel.sock";
  const std::string plain(250, 'p');
  std::set<std::string> names;
  for (const std::string& address :
       {deep, deep + "2", plain, plain + "q", std::string(190, 'p')}) {
    const std::string name = JournalFileName(address);
    EXPECT_LE(name.size() + std::string(".netns-18446744073709551615"
                                        ".journal.lock")
                                .size(),
              255u)
        << address;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), 5u);
  EXPECT_EQ(JournalFileName(std::string(190, 'p')), std::string(190, 'p'));
}

}  // namespace portserver

namespace portserver {
// The records as they were formatted before they were appended in place
// (temporary strings, snprintf): a differential check of the new code.
namespace former {
uint32_t OldFnv1a(std::string_view s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}
std::string OldHex8(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", v);
  return buf;
}
std::string OldLease(uint16_t port, const Owner& owner) {
  std::string body = "L " + std::to_string(port) + " " +
                     std::to_string(owner.pid) + " " +
                     std::to_string(owner.incarnation);
  return body + " " + OldHex8(OldFnv1a(body)) + "\n";
}
std::string OldNote(uint16_t port, int64_t unix_seconds,
                    std::string_view label) {
  label = label.substr(0, kMaxLabelBytes);
  if (unix_seconds <= 0 && label.empty()) return "";
  std::string body = "N " + std::to_string(port) + " " +
                     (unix_seconds > 0 ? std::to_string(unix_seconds) : "-") +
                     " ";
  if (label.empty()) {
    body += "-";
  } else if (label == "-") {
    body += "%2D";
  } else {
    body += PercentEncode(label);
  }
  return body + " " + OldHex8(OldFnv1a(body)) + "\n";
}
}  // namespace former

TEST(LeaseJournal, AppendedRecordsMatchTheFormerFormattingByteForByte) {
  using namespace former;
  std::mt19937_64 rng(42);
  const std::vector<int64_t> i64s = {
      0, 1, -1, 9, 10, INT64_MIN, INT64_MAX, -4194304, 4194304, 1764552000};
  const std::vector<uint64_t> u64s = {0, 1, 9, 10, UINT64_MAX, 1ull << 63};
  const std::vector<std::string> labels = {"",
                                           "-",
                                           "--",
                                           " ",
                                           "%",
                                           "x y%",
                                           std::string(200, 'a'),
                                           std::string(127, 'a') + " b",
                                           std::string(128, 'a') + " ",
                                           std::string("\0\x01\xff\n", 4),
                                           "//pkg:some_test",
                                           "\xc3\xa9"};
  for (int round = 0; round < 20000; ++round) {
    uint16_t port = static_cast<uint16_t>(rng());
    int64_t pid =
        round < 100 ? i64s[round % i64s.size()] : static_cast<int64_t>(rng());
    uint64_t inc = round < 100 ? u64s[round % u64s.size()] : rng();
    int64_t secs = round < 100 ? i64s[(round / 3) % i64s.size()]
                               : static_cast<int64_t>(rng() >> (rng() % 64));
    if (rng() % 4 == 0 && secs != INT64_MIN) secs = -secs;  // (-INT64_MIN: UB)
    std::string label = labels[rng() % labels.size()];
    if (rng() % 3 == 0) {
      label.clear();
      for (size_t n = rng() % 140; n > 0; --n)
        label += static_cast<char>(rng());
    }
    Owner owner{pid, inc};
    ASSERT_EQ(JournalLease(port, owner), OldLease(port, owner));
    ASSERT_EQ(JournalLeaseNote(port, secs, label), OldNote(port, secs, label))
        << secs << " [" << label << "]";
    std::string out = "prefix";
    AppendJournalLeaseWithNote(out, port, owner, secs, label);
    ASSERT_EQ(out,
              "prefix" + OldLease(port, owner) + OldNote(port, secs, label));
  }
}
}  // namespace portserver
