// The publication layout rule (publisher::ChooseLayout) and the default
// publication name, without a database.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "publisher/publication.h"

namespace trickle::publisher {
namespace {

using ::testing::ElementsAre;

delta::DeltaPlan Plan(std::vector<delta::StorageColumn> columns, std::vector<std::string> identity) {
  delta::DeltaPlan plan;
  plan.columns = std::move(columns);
  plan.identity_columns = std::move(identity);
  return plan;
}

TEST(ChooseLayoutTest, NaturalKeyBecomesPrimaryKeyAndHiddenStateStaysOut) {
  // SELECT g, count(*) AS n FROM t GROUP BY g, with g NOT NULL.
  auto plan = Plan({{"g", false}, {"n", false}, {"__pgt_count", true}}, {"g"});
  PublicationLayout l = ChooseLayout(plan, /*read_by_stream_table=*/false);
  EXPECT_EQ(l.identity, IdentityKind::kPrimaryKey);
  EXPECT_FALSE(l.surrogate_key);
  EXPECT_THAT(l.key, ElementsAre("g"));
  ASSERT_TRUE(l.columns.has_value());
  EXPECT_THAT(*l.columns, ElementsAre("g", "n"));
}

TEST(ChooseLayoutTest, HiddenKeyColumnIsPublishedBecauseTheIdentityNeedsIt) {
  // SELECT sum(v) AS s FROM t GROUP BY g: the group key is stored hidden.
  auto plan = Plan({{"s", false}, {"__pgt_k1", true}}, {"__pgt_k1"});
  PublicationLayout l = ChooseLayout(plan, false);
  EXPECT_EQ(l.identity, IdentityKind::kPrimaryKey);
  EXPECT_THAT(l.key, ElementsAre("__pgt_k1"));
  EXPECT_THAT(*l.columns, ElementsAre("s", "__pgt_k1"));
}

TEST(ChooseLayoutTest, NullableOrMultisetIdentityGetsTheSurrogateKey) {
  auto nullable = Plan({{"g", false}, {"n", false}, {"__pgt_row_id", true}}, {"g"});
  PublicationLayout l = ChooseLayout(nullable, false);
  EXPECT_EQ(l.identity, IdentityKind::kPrimaryKey);
  EXPECT_TRUE(l.surrogate_key);
  EXPECT_THAT(l.key, ElementsAre(kRowKeyColumn));
  EXPECT_THAT(*l.columns, ElementsAre("g", "n", kRowKeyColumn));

  auto multiset = Plan({{"a", false}, {"__pgt_row_id", true}, {"__pgt_dup", true}}, {"a", "__pgt_dup"});
  l = ChooseLayout(multiset, false);
  EXPECT_TRUE(l.surrogate_key);
  EXPECT_THAT(*l.columns, ElementsAre("a", kRowKeyColumn));

  auto full_only = Plan({{"a", false}, {"b", false}}, {});
  l = ChooseLayout(full_only, false);
  EXPECT_TRUE(l.surrogate_key);
  EXPECT_THAT(*l.columns, ElementsAre("a", "b", kRowKeyColumn));
}

TEST(ChooseLayoutTest, ReadByAnotherStreamTableMeansFullAndEveryColumn) {
  auto plan = Plan({{"g", false}, {"n", false}, {"__pgt_count", true}}, {"g"});
  PublicationLayout l = ChooseLayout(plan, /*read_by_stream_table=*/true);
  EXPECT_EQ(l.identity, IdentityKind::kFull);
  EXPECT_THAT(l.key, ElementsAre("g"));  // the key stays: events still carry it
  EXPECT_FALSE(l.columns.has_value());
}

TEST(DefaultPublicationNameTest, DerivedFromTheTableWithinPostgresLimit) {
  EXPECT_EQ(DefaultPublicationName("public", "orders_by_day"), "orders_by_day_pub");
  EXPECT_EQ(DefaultPublicationName("sales", "totals"), "sales_totals_pub");
  std::string long_name(70, 'x');
  EXPECT_EQ(DefaultPublicationName("public", long_name).size(), 63u);
  // Never cut inside a UTF-8 character: 31 two-byte characters are 62 bytes.
  std::string accents;
  for (int i = 0; i < 40; ++i) accents += "\xc3\xa9";
  std::string cut = DefaultPublicationName("public", accents);
  EXPECT_EQ(cut.size(), 62u);
}

}  // namespace
}  // namespace trickle::publisher
