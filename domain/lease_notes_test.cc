#include <string>

#include "domain/owner_records.h"
#include "gtest/gtest.h"

namespace portserver {
namespace {

TEST(LeaseNotes, EachPortKeepsItsOwnLabelAndTime) {
  LeaseNotes notes;
  notes.Set(15000, 1764470012345, "//pkg:a_test");
  notes.Set(15001, 1764470099999, "//pkg:b_test");
  notes.Set(15002, 1764470100000, "");
  EXPECT_EQ(notes.Get(15000).label, "//pkg:a_test");
  EXPECT_EQ(notes.Get(15000).unix_ms, 1764470012000);  // To the second.
  EXPECT_EQ(notes.Get(15001).label, "//pkg:b_test");
  EXPECT_EQ(notes.Get(15002).label, "");
  EXPECT_EQ(notes.Get(15002).unix_ms, 1764470100000);
  EXPECT_EQ(notes.Get(14999).unix_ms, -1);  // Never noted.
  EXPECT_EQ(notes.Get(65535).label, "");
  EXPECT_EQ(notes.labels(), 2u);
}

TEST(LeaseNotes, DistinctLabelsAreStoredOnceAndFreedWithTheirLastPort) {
  LeaseNotes notes;
  for (uint16_t p = 1000; p < 1100; ++p) notes.Set(p, 5000, "//pkg:same");
  EXPECT_EQ(notes.labels(), 1u);
  notes.Set(1000, 6000, "//pkg:other");
  EXPECT_EQ(notes.labels(), 2u);
  for (uint16_t p = 1001; p < 1100; ++p) notes.Clear(p);
  EXPECT_EQ(notes.labels(), 1u);
  EXPECT_EQ(notes.Get(1000).label, "//pkg:other");
  // Re-noting a port with its own label keeps the label.
  notes.Set(1000, 7000, "//pkg:other");
  EXPECT_EQ(notes.Get(1000).label, "//pkg:other");
  EXPECT_EQ(notes.labels(), 1u);
  notes.Set(1000, 8000, "");
  EXPECT_EQ(notes.labels(), 0u);
  // A freed index is reused for a new label.
  notes.Set(2000, 9000, "//pkg:new");
  EXPECT_EQ(notes.Get(2000).label, "//pkg:new");
  EXPECT_EQ(notes.Get(1000).label, "");
}

TEST(LeaseNotes, PruneForgetsLabelsOfPortsNoLongerLeased) {
  Ledger ledger;
  LeaseNotes notes;
  ASSERT_TRUE(ledger.Lease(3000, Owner{100, 1}));
  notes.Set(3000, 1000, "//pkg:kept");
  for (uint16_t p = 4000; p < 4200; ++p) {
    notes.Set(p, 1000, "//pkg:gone" + std::to_string(p));
  }
  EXPECT_EQ(notes.labels(), 201u);
  notes.Prune(ledger);
  EXPECT_EQ(notes.labels(), 1u);
  EXPECT_EQ(notes.Get(3000).label, "//pkg:kept");
  EXPECT_EQ(notes.Get(4000).label, "");
}

}  // namespace
}  // namespace portserver
