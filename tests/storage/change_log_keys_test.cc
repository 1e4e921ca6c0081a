// The key encoding: bytewise order must equal (tag, oid, commit LSN, seq)
// order, which every range read of the change log depends on.
#include "storage/change_log_keys.h"

#include <algorithm>
#include <random>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"

namespace trickle::storage::keys {
namespace {

TEST(ChangeLogKeysTest, ChangeKeyRoundTripsAndHasTheDocumentedBytes) {
  std::string key = ChangeKey(0x01020304, 0x1122334455667788, 0xAABBCCDD);
  EXPECT_EQ(key, std::string("c\x01\x02\x03\x04\x11\x22\x33\x44\x55\x66\x77\x88\xAA\xBB\xCC\xDD",
                             kChangeKeySize));
  auto parts = ParseChangeKey(key);
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->relation, 0x01020304u);
  EXPECT_EQ(parts->commit_lsn, 0x1122334455667788u);
  EXPECT_EQ(parts->seq, 0xAABBCCDDu);
  EXPECT_FALSE(ParseChangeKey(key.substr(1)).has_value());
  EXPECT_FALSE(ParseChangeKey(TransactionKey(5)).has_value());
}

TEST(ChangeLogKeysTest, BytewiseOrderIsNumericOrder) {
  std::mt19937_64 rng(42);
  std::vector<std::tuple<uint32_t, uint64_t, uint32_t>> tuples;
  const uint32_t oids[] = {0, 1, 255, 256, 16384, 0x7fffffff, 0x80000000, 0xffffffff};
  const uint64_t lsns[] = {0, 1, 0xff, 0x100, 0x16B3748, 0xffffffff, 0x100000000, UINT64_MAX};
  for (int i = 0; i < 2000; ++i) {
    tuples.emplace_back(oids[rng() % 8], (rng() % 2) ? lsns[rng() % 8] : rng(),
                        static_cast<uint32_t>(rng() % 3 == 0 ? rng() : rng() % 300));
  }
  std::vector<std::string> encoded;
  for (auto& [o, l, s] : tuples) encoded.push_back(ChangeKey(o, l, s));
  std::sort(tuples.begin(), tuples.end());
  std::sort(encoded.begin(), encoded.end());
  for (size_t i = 0; i < tuples.size(); ++i) {
    auto parts = ParseChangeKey(encoded[i]);
    ASSERT_TRUE(parts.has_value());
    EXPECT_EQ(std::make_tuple(parts->relation, parts->commit_lsn, parts->seq), tuples[i]);
  }
}

TEST(ChangeLogKeysTest, RelationRangeBounds) {
  // Every key of relation r lies in [LowerBound(r, 0), RelationEnd(r)).
  for (uint32_t r : {0u, 7u, 0xffffffffu}) {
    std::string lo = ChangeKeyLowerBound(r, 0);
    std::string hi = ChangeKeyRelationEnd(r);
    EXPECT_LE(lo, ChangeKey(r, 0, 0));
    EXPECT_LT(ChangeKey(r, UINT64_MAX, UINT32_MAX), hi);
    if (r != 0xffffffffu) {
      EXPECT_EQ(hi, ChangeKey(r + 1, 0, 0));
    }
    // The end stays inside the change tag for the last oid.
    EXPECT_LT(hi, std::string(1, kTransactionTag));
  }
}

TEST(ChangeLogKeysTest, OtherKeys) {
  EXPECT_EQ(ParseTransactionKey(TransactionKey(0x16B3748)).value(), 0x16B3748u);
  EXPECT_LT(TransactionKey(0xff), TransactionKey(0x100));
  auto rel = ParseRelationKey(RelationKey(16384, 3));
  ASSERT_TRUE(rel.has_value());
  EXPECT_EQ(rel->relation, 16384u);
  EXPECT_EQ(rel->version, 3u);
  EXPECT_LT(RelationKey(16384, 255), RelationKey(16384, 256));
  EXPECT_EQ(ParseTrimPointKey(TrimPointKey(9)).value(), 9u);
  EXPECT_EQ(ProgressKey("slot"), "pslot");
  EXPECT_EQ(MetaKey("high_water"), "mhigh_water");
  Lsn c = 0, e = 0;
  ASSERT_TRUE(DecodeHighWater(EncodeHighWater(0x10, 0x18), &c, &e));
  EXPECT_EQ(c, 0x10u);
  EXPECT_EQ(e, 0x18u);
  EXPECT_FALSE(DecodeHighWater("short", &c, &e));
}

}  // namespace
}  // namespace trickle::storage::keys
