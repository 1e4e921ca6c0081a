// GatherCatalogFacts against a real PostgreSQL: relation resolution through
// the search_path, columns and types, keys (primary key, replica identity
// index, none), function facts, output names, and the errors.
#include "delta/catalog_adapter.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/postgres_server.h"

namespace trickle::delta {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class CatalogAdapterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto conn = trickle::testing::TestPostgres().Connect();
    ASSERT_TRUE(conn.ok()) << conn.status();
    conn_ = std::move(*conn);
    ASSERT_TRUE(conn_
                    ->Exec(R"sql(
      DROP SCHEMA IF EXISTS cat CASCADE;
      DROP SCHEMA IF EXISTS "Odd Schema" CASCADE;
      CREATE SCHEMA cat;
      CREATE SCHEMA "Odd Schema";
      SET search_path = cat, public;
      CREATE TABLE cat.pk (id int PRIMARY KEY, a text, b numeric(10,2) NOT NULL, dropped int);
      ALTER TABLE cat.pk DROP COLUMN dropped;
      ALTER TABLE cat.pk ADD COLUMN c timestamptz;
      CREATE TABLE cat.ri (x int NOT NULL, y int NOT NULL, z text);
      CREATE UNIQUE INDEX ri_xy ON cat.ri (y, x);
      ALTER TABLE cat.ri REPLICA IDENTITY USING INDEX ri_xy;
      CREATE TABLE cat.nokey (k int, v text);
      CREATE TABLE cat.parted (id int, part int, PRIMARY KEY (id, part)) PARTITION BY LIST (part);
      CREATE TABLE cat.parted_1 PARTITION OF cat.parted FOR VALUES IN (1);
      CREATE VIEW cat.v AS SELECT * FROM cat.pk;
      CREATE TABLE "Odd Schema"."we""ird" ("select" int PRIMARY KEY, "a""b" text);
      CREATE FUNCTION cat.stable_lookup(int) RETURNS int STABLE LANGUAGE sql AS 'SELECT $1';
      CREATE FUNCTION cat."Rnd"() RETURNS float8 VOLATILE LANGUAGE sql AS 'SELECT random()';
      CREATE FUNCTION cat.rnd() RETURNS float8 IMMUTABLE LANGUAGE sql AS 'SELECT 0.5::float8';
      CREATE AGGREGATE cat.upper(text) (SFUNC = textcat, STYPE = text);
    )sql")
                    .ok());
  }
  std::unique_ptr<PgConnection> conn_;
};

TEST_F(CatalogAdapterTest, GathersColumnsKeysAndNames) {
  auto facts = GatherCatalogFacts(
      *conn_,
      "SELECT p.id, count(*) AS n, lower(p.a) FROM pk p JOIN ri ON ri.x = p.id "
      "JOIN nokey ON nokey.k = p.id JOIN parted ON parted.id = p.id GROUP BY p.id, p.a");
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_THAT(facts->search_path, ElementsAre("cat", "public"));
  ASSERT_EQ(facts->relations.size(), 4u);
  const RelationFacts& pk = facts->relations[0];
  EXPECT_EQ(pk.schema, "cat");
  EXPECT_EQ(pk.name, "pk");
  EXPECT_GT(pk.oid, 0u);
  ASSERT_EQ(pk.columns.size(), 4u);  // the dropped column is gone
  EXPECT_EQ(pk.columns[0].name, "id");
  EXPECT_EQ(pk.columns[0].type, "integer");
  EXPECT_TRUE(pk.columns[0].not_null);
  EXPECT_EQ(pk.columns[2].type, "numeric(10,2)");
  EXPECT_TRUE(pk.columns[2].not_null);
  EXPECT_EQ(pk.columns[3].name, "c");
  EXPECT_EQ(pk.columns[3].type, "timestamp with time zone");
  EXPECT_THAT(pk.key, ElementsAre("id"));
  EXPECT_THAT(facts->relations[1].key, ElementsAre("y", "x"));  // index order
  EXPECT_TRUE(facts->relations[2].key.empty());
  EXPECT_THAT(facts->relations[3].key, ElementsAre("id", "part"));
  EXPECT_THAT(facts->output_column_names, ElementsAre("id", "n", "lower"));
  ASSERT_TRUE(facts->functions.count("count"));
  EXPECT_TRUE(facts->functions.at("count").is_aggregate);
  ASSERT_TRUE(facts->functions.count("lower"));
  EXPECT_EQ(facts->functions.at("lower").volatility, 'i');
  EXPECT_FALSE(facts->functions.at("lower").is_aggregate);
}

TEST_F(CatalogAdapterTest, FunctionVolatilityComesFromTheCatalog) {
  auto facts = GatherCatalogFacts(*conn_, "SELECT id, stable_lookup(id), random() FROM pk");
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->functions.at("stable_lookup").volatility, 's');
  EXPECT_EQ(facts->functions.at("random").volatility, 'v');
  // The engine refuses both differentially, naming the first.
  auto plan = BuildDeltaPlan(
      {"cat", "st", "SELECT id, stable_lookup(id) FROM pk", RefreshMode::kDifferential}, *facts);
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("stable function stable_lookup()"));
}

TEST_F(CatalogAdapterTest, QuotedNamesAndMixedKindsAreNotGuessed) {
  // "Rnd" (volatile) and rnd (immutable) are different functions.
  auto facts = GatherCatalogFacts(*conn_, "SELECT id, \"Rnd\"() AS r FROM pk");
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->functions.at("Rnd").volatility, 'v');
  auto plan = BuildDeltaPlan(
      {"cat", "st", "SELECT id, \"Rnd\"() AS r FROM pk", RefreshMode::kDifferential}, *facts);
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("volatile function Rnd()"));
  // cat.upper is an aggregate, pg_catalog.upper a plain function: refused
  // rather than guessed.
  auto mixed = GatherCatalogFacts(*conn_, "SELECT id, upper(a) AS u FROM pk");
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  EXPECT_TRUE(mixed->functions.at("upper").mixed_kinds);
  auto mixed_plan =
      BuildDeltaPlan({"cat", "st", "SELECT id, upper(a) AS u FROM pk", RefreshMode::kAuto}, *mixed);
  ASSERT_TRUE(mixed_plan.ok()) << mixed_plan.status();
  EXPECT_EQ(mixed_plan->maintained_mode, RefreshMode::kFull);
  EXPECT_THAT(mixed_plan->full_refresh_reason, HasSubstr("function upper()"));
}

TEST_F(CatalogAdapterTest, HostileNamesResolve) {
  auto facts =
      GatherCatalogFacts(*conn_, "SELECT \"select\", \"a\"\"b\" FROM \"Odd Schema\".\"we\"\"ird\"");
  ASSERT_TRUE(facts.ok()) << facts.status();
  ASSERT_EQ(facts->relations.size(), 1u);
  EXPECT_EQ(facts->relations[0].schema, "Odd Schema");
  EXPECT_EQ(facts->relations[0].name, "we\"ird");
  EXPECT_THAT(facts->relations[0].key, ElementsAre("select"));
  EXPECT_THAT(facts->output_column_names, ElementsAre("select", "a\"b"));
}

TEST_F(CatalogAdapterTest, Errors) {
  auto missing = GatherCatalogFacts(*conn_, "SELECT * FROM nowhere");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("relation \"nowhere\""));
  auto view = GatherCatalogFacts(*conn_, "SELECT * FROM v");
  ASSERT_FALSE(view.ok());
  EXPECT_THAT(view.status().message(), HasSubstr("cat.v is not a table"));
  auto bad = GatherCatalogFacts(*conn_, "SELECT nope FROM pk");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("column \"nope\" does not exist"));
}

}  // namespace
}  // namespace trickle::delta
