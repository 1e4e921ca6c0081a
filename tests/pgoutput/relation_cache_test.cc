#include "pgoutput/relation_cache.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trickle::pgoutput {
namespace {

using ::testing::HasSubstr;

RelationMessage Orders() {
  return RelationMessage{.xid = 0,
                         .relation_oid = 16391,
                         .namespace_name = "public",
                         .relation_name = "orders",
                         .replica_identity = 'f',
                         .columns = {{true, "id", 23, -1},
                                     {true, "customer", 25, -1},
                                     {true, "amount", 1700, 655366}}};
}

SchemaVersion CurrentVersion(const RelationCache& cache, Oid oid) {
  auto schema = cache.Current(oid);
  EXPECT_TRUE(schema.ok()) << schema.status();
  return schema.ok() ? (*schema)->version : 0;
}

TEST(RelationCacheTest, FirstSchemaIsVersionOne) {
  RelationCache cache;
  EXPECT_EQ(cache.Apply(Orders()), 1u);
  auto schema = cache.Current(16391);
  ASSERT_TRUE(schema.ok());
  EXPECT_EQ((*schema)->version, 1u);
  EXPECT_EQ((*schema)->relation_oid, 16391u);
  EXPECT_EQ((*schema)->QualifiedName(), "public.orders");
  EXPECT_EQ((*schema)->columns, Orders().columns);
  EXPECT_EQ((*schema)->replica_identity, 'f');
}

TEST(RelationCacheTest, ResendingTheSameSchemaKeepsTheVersion) {
  RelationCache cache;
  EXPECT_EQ(cache.Apply(Orders()), 1u);
  EXPECT_EQ(cache.Apply(Orders()), 1u);  // reconnect / cache invalidation resend
  RelationMessage streamed = Orders();
  streamed.xid = 901;  // carried by a streamed transaction: not a schema change
  EXPECT_EQ(cache.Apply(streamed), 1u);
  EXPECT_EQ(CurrentVersion(cache, 16391), 1u);
}

TEST(RelationCacheTest, EverySchemaChangeBumpsTheVersion) {
  struct Change {
    const char* what;
    void (*apply)(RelationMessage&);
  };
  const Change changes[] = {
      {"add column", [](RelationMessage& m) { m.columns.push_back({true, "status", 25, -1}); }},
      {"drop column", [](RelationMessage& m) { m.columns.pop_back(); }},
      {"rename column", [](RelationMessage& m) { m.columns[1].name = "client"; }},
      {"change type", [](RelationMessage& m) { m.columns[0].type_oid = 20; }},
      {"change typmod", [](RelationMessage& m) { m.columns[2].type_modifier = 786438; }},
      {"reorder columns", [](RelationMessage& m) { std::swap(m.columns[0], m.columns[1]); }},
      {"key flag", [](RelationMessage& m) { m.columns[1].is_key = false; }},
      {"replica identity", [](RelationMessage& m) { m.replica_identity = 'd'; }},
      {"rename table", [](RelationMessage& m) { m.relation_name = "orders_2024"; }},
      {"set schema", [](RelationMessage& m) { m.namespace_name = "archive"; }},
  };
  for (const Change& change : changes) {
    SCOPED_TRACE(change.what);
    RelationCache cache;
    ASSERT_EQ(cache.Apply(Orders()), 1u);
    RelationMessage altered = Orders();
    change.apply(altered);
    EXPECT_EQ(cache.Apply(altered), 2u);
    EXPECT_EQ(cache.Apply(altered), 2u);
    // Going back is a change too: versions never reuse an older number.
    EXPECT_EQ(cache.Apply(Orders()), 3u);
  }
}

// The order in which a consumer sees things: Relation, changes, ALTER TABLE,
// Relation, changes. Each change is tagged with Current() at its turn.
TEST(RelationCacheTest, ChangesBeforeAndAfterAlterTableMapToTheirVersion) {
  RelationCache cache;
  std::vector<SchemaVersion> tags;
  cache.Apply(Orders());
  tags.push_back(CurrentVersion(cache, 16391));  // INSERT
  tags.push_back(CurrentVersion(cache, 16391));  // UPDATE
  cache.Apply(Orders());                         // resend after reconnect
  tags.push_back(CurrentVersion(cache, 16391));  // DELETE
  RelationMessage altered = Orders();
  altered.columns.push_back({true, "status", 25, -1});  // ALTER TABLE ADD COLUMN
  cache.Apply(altered);
  tags.push_back(CurrentVersion(cache, 16391));  // INSERT with 4 columns
  EXPECT_EQ(tags, (std::vector<SchemaVersion>{1, 1, 1, 2}));

  // Both versions stay readable, e.g. to read back stored changes.
  auto v1 = cache.Get(16391, 1);
  auto v2 = cache.Get(16391, 2);
  ASSERT_TRUE(v1.ok() && v2.ok());
  EXPECT_EQ((*v1)->columns.size(), 3u);
  EXPECT_EQ((*v2)->columns.size(), 4u);
}

TEST(RelationCacheTest, RelationsAreVersionedIndependently) {
  RelationCache cache;
  RelationMessage other = Orders();
  other.relation_oid = 16400;
  other.relation_name = "customers";
  EXPECT_EQ(cache.Apply(Orders()), 1u);
  RelationMessage altered = Orders();
  altered.columns.pop_back();
  EXPECT_EQ(cache.Apply(altered), 2u);
  EXPECT_EQ(cache.Apply(other), 1u);
  EXPECT_EQ(cache.relation_count(), 2u);
}

TEST(RelationCacheTest, UnknownRelationIsNotFound) {
  RelationCache cache;
  auto current = cache.Current(42);
  EXPECT_EQ(current.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(current.status().message()),
              HasSubstr("no schema known for relation OID 42"));
  cache.Apply(Orders());
  auto missing = cache.Get(16391, 7);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(missing.status().message()),
            "no schema version 7 known for relation OID 16391");
}

TEST(RelationCacheTest, PointersStayValidAsVersionsAccumulate) {
  RelationCache cache;
  cache.Apply(Orders());
  const RelationSchema* first = *cache.Current(16391);
  for (int i = 0; i < 100; ++i) {
    RelationMessage m = Orders();
    m.columns.push_back({false, "c" + std::to_string(i), 25, -1});
    cache.Apply(m);
  }
  EXPECT_EQ(first->version, 1u);
  EXPECT_EQ(first->columns.size(), 3u);
  EXPECT_EQ(*cache.Get(16391, 1), first);
  EXPECT_EQ(CurrentVersion(cache, 16391), 101u);
}

RelationSchema Persisted(SchemaVersion version) {
  RelationMessage m = Orders();
  return RelationSchema{m.relation_oid, version,         m.namespace_name,
                        m.relation_name, m.replica_identity, m.columns};
}

TEST(RelationCacheTest, RestoreContinuesNumbering) {
  RelationCache cache;
  ASSERT_TRUE(cache.Restore(Persisted(5)).ok());
  EXPECT_EQ(CurrentVersion(cache, 16391), 5u);
  EXPECT_EQ(cache.Apply(Orders()), 5u);  // the server resends the same schema
  RelationMessage altered = Orders();
  altered.columns.pop_back();
  EXPECT_EQ(cache.Apply(altered), 6u);
}

TEST(RelationCacheTest, RestoreIsIdempotentAndOrdered) {
  RelationCache cache;
  ASSERT_TRUE(cache.Restore(Persisted(2)).ok());
  RelationSchema v4 = Persisted(4);
  v4.columns.pop_back();
  ASSERT_TRUE(cache.Restore(v4).ok());
  EXPECT_TRUE(cache.Restore(Persisted(2)).ok());  // same again: no-op
  EXPECT_TRUE(cache.Restore(v4).ok());

  absl::Status out_of_order = cache.Restore(Persisted(3));
  EXPECT_EQ(out_of_order.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::string(out_of_order.message()),
            "cannot restore schema version 3 of relation public.orders (OID 16391): versions "
            "must be restored in ascending order (latest known version is 4)");

  absl::Status conflicting = cache.Restore(Persisted(4));  // v4 with other columns
  EXPECT_EQ(conflicting.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(conflicting.message()),
              HasSubstr("a different schema already has that version"));

  absl::Status zero = cache.Restore(Persisted(0));
  EXPECT_EQ(zero.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(zero.message()), HasSubstr("version 0 is not a valid version"));
}

TEST(RelationSchemaTest, QualifiedNameSpellsOutPgCatalog) {
  RelationSchema schema;
  schema.relation_name = "pg_class";
  EXPECT_EQ(schema.QualifiedName(), "pg_catalog.pg_class");
}

}  // namespace
}  // namespace trickle::pgoutput
