// Unit tests of the delta engine's plans (no server): operator tree and
// strategy choice, storage layout, errors for unsupported constructs, and
// quoting of hostile identifiers. golden_test.cc pins the generated SQL.
#include <string>
#include <vector>

#include "delta/delta_engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/delta/test_facts.h"

namespace trickle::delta {
namespace {

using testing::ShopFacts;

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

absl::StatusOr<DeltaPlan> Plan(const std::string& query,
                               RefreshMode mode = RefreshMode::kDifferential) {
  return BuildDeltaPlan({"st", "t", query, mode}, ShopFacts());
}

// The strategy of the first operator named `op` (pre-order), or "".
std::string StrategyOf(const ExplainNode& n, const std::string& op) {
  if (n.op == op) return n.strategy;
  for (const auto& c : n.children) {
    std::string s = StrategyOf(c, op);
    if (!s.empty()) return s;
  }
  return "";
}

std::vector<std::string> Names(const std::vector<StorageColumn>& cols, bool hidden) {
  std::vector<std::string> out;
  for (const auto& c : cols) {
    if (c.hidden == hidden) out.push_back(c.name);
  }
  return out;
}

// --- operator tree and strategies -------------------------------------------------

TEST(PlanTest, FilterProjectIsLinearAndKeyedBySourceKey) {
  auto plan = Plan("SELECT id, amount FROM orders WHERE amount > 10");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->maintained_mode, RefreshMode::kDifferential);
  EXPECT_EQ(plan->explain_tree.op, "Project");
  ASSERT_EQ(plan->explain_tree.children.size(), 1u);
  EXPECT_EQ(plan->explain_tree.children[0].op, "Filter");
  EXPECT_EQ(plan->explain_tree.children[0].detail, "orders.amount > 10");
  EXPECT_EQ(plan->explain_tree.children[0].strategy, "linear");
  EXPECT_THAT(plan->identity_columns, ElementsAre("id"));
  EXPECT_THAT(Names(plan->columns, false), ElementsAre("id", "amount"));
  EXPECT_THAT(Names(plan->columns, true), ElementsAre());
  EXPECT_THAT(plan->explanation, HasSubstr("apply: keyed"));
}

TEST(PlanTest, ProjectionWithoutKeyCarriesItHidden) {
  auto plan = Plan("SELECT status FROM orders");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Names(plan->columns, false), ElementsAre("status"));
  EXPECT_THAT(Names(plan->columns, true), ElementsAre("__pgt_k1"));
  EXPECT_THAT(plan->identity_columns, ElementsAre("__pgt_k1"));
}

TEST(PlanTest, KeylessSourceIsAMultisetWithOrdinals) {
  auto plan = Plan("SELECT k, v FROM events");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Names(plan->columns, true), ElementsAre("__pgt_row_id", "__pgt_dup"));
  EXPECT_THAT(plan->identity_columns, ElementsAre("k", "v", "__pgt_dup"));
  EXPECT_THAT(plan->explanation, HasSubstr("multiset"));
  // Both the unique identity index and the hash access path.
  ASSERT_EQ(plan->storage_ddl.size(), 3u);
  EXPECT_THAT(
      plan->storage_ddl[1],
      HasSubstr("CREATE UNIQUE INDEX ON st.t USING btree (k, v, __pgt_dup) NULLS NOT DISTINCT"));
  EXPECT_THAT(plan->storage_ddl[2], HasSubstr("(__pgt_row_id)"));
}

TEST(PlanTest, InnerJoinIsBilinearAndKeyedByBothKeys) {
  auto plan = Plan("SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.cust_id");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(StrategyOf(plan->explain_tree, "InnerJoin"), HasSubstr("bilinear"));
  EXPECT_THAT(plan->identity_columns, ElementsAre("id", "__pgt_k1"));
}

TEST(PlanTest, CountSumAvgOverIntegersAreAlgebraic) {
  auto plan = Plan(
      "SELECT status, count(*) AS n, sum(amount) AS s, avg(qty) AS a FROM orders GROUP BY status");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(StrategyOf(plan->explain_tree, "Aggregate"), HasSubstr("algebraic"));
  EXPECT_THAT(plan->identity_columns, ElementsAre("status"));
  EXPECT_THAT(Names(plan->columns, true), ElementsAre("__pgt_count", "__pgt_a1", "__pgt_a2",
                                                      "__pgt_n2", "__pgt_a3", "__pgt_n3"));
  // status is NOT NULL: matched by plain equality, no hash column.
  EXPECT_THAT(plan->merge_sql, HasSubstr("ON t.status = d.status"));
  EXPECT_THAT(plan->storage_ddl[0], HasSubstr("WITH (fillfactor=90)"));
}

TEST(PlanTest, NullableGroupKeyIsMatchedThroughRowHashThenExactly) {
  auto plan = Plan("SELECT cust_id, count(*) AS n FROM orders GROUP BY cust_id");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Names(plan->columns, true), ElementsAre("__pgt_count", "__pgt_a1", "__pgt_row_id"));
  EXPECT_THAT(
      plan->merge_sql,
      HasSubstr("ON t.__pgt_row_id = d.__pgt_row_id AND t.cust_id IS NOT DISTINCT FROM d.cust_id"));
  EXPECT_THAT(plan->storage_ddl[1],
              HasSubstr("UNIQUE INDEX ON st.t USING btree (cust_id) NULLS NOT DISTINCT"));
}

TEST(PlanTest, InexactSumsAndOtherAggregatesAreRecomputedPerGroup) {
  // Floating-point and numeric sums, COUNT(DISTINCT), HAVING: the touched
  // groups are recomputed.
  for (const char* q :
       {"SELECT status, sum(weight) AS w FROM orders GROUP BY status",
        "SELECT status, avg(price) AS p FROM orders GROUP BY status",
        "SELECT status, count(DISTINCT cust_id) AS c FROM orders GROUP BY status",
        "SELECT status, bool_or(amount > 0) AS b FROM orders GROUP BY status",
        "SELECT status, count(*) AS n FROM orders GROUP BY status HAVING count(*) > 1"}) {
    auto plan = Plan(q);
    ASSERT_TRUE(plan.ok()) << q << ": " << plan.status();
    EXPECT_THAT(StrategyOf(plan->explain_tree, "Aggregate"), HasSubstr("group recompute")) << q;
  }
}

TEST(PlanTest, MinMaxKeepTheirExtremeAndRescanOnlyWhenItMayBeGone) {
  auto plan = Plan(
      "SELECT status, min(amount) AS lo, max(price) AS hi, count(*) AS n FROM orders GROUP BY "
      "status");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(StrategyOf(plan->explain_tree, "Aggregate"),
              HasSubstr("MIN/MAX rescan only groups whose extreme was deleted"));
  EXPECT_THAT(Names(plan->columns, true),
              ElementsAre("__pgt_count", "__pgt_a1", "__pgt_a2", "__pgt_a3"));
  EXPECT_THAT(plan->merge_sql, HasSubstr("LEAST(t.__pgt_a1, d.__pgt_ins1)"));
  EXPECT_THAT(plan->merge_sql, HasSubstr("GREATEST(t.__pgt_a2, d.__pgt_ins2)"));
}

TEST(PlanTest, OuterSemiAntiAndSetOperationsUseAffectedKeys) {
  auto left = Plan("SELECT o.id, c.name FROM orders o LEFT JOIN customers c ON c.id = o.cust_id");
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_THAT(StrategyOf(left->explain_tree, "LeftJoin"), HasSubstr("equi-join key"));
  auto exists = Plan(
      "SELECT id FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.cust_id = c.id)");
  ASSERT_TRUE(exists.ok()) << exists.status();
  EXPECT_THAT(StrategyOf(exists->explain_tree, "SemiJoin"), HasSubstr("equi-join key"));
  auto not_in = Plan("SELECT id FROM customers WHERE id NOT IN (SELECT cust_id FROM orders)");
  ASSERT_TRUE(not_in.ok()) << not_in.status();
  EXPECT_THAT(StrategyOf(not_in->explain_tree, "NotInJoin"), HasSubstr("NULLs"));
  auto intersect = Plan("SELECT k FROM events INTERSECT SELECT tier FROM customers");
  ASSERT_TRUE(intersect.ok()) << intersect.status();
  EXPECT_EQ(intersect->explain_tree.op, "Intersect");
  EXPECT_THAT(intersect->identity_columns, ElementsAre("k"));
  auto uni = Plan("SELECT k FROM events UNION SELECT tier FROM customers");
  ASSERT_TRUE(uni.ok()) << uni.status();
  EXPECT_EQ(uni->explain_tree.op, "Distinct");
  EXPECT_THAT(Names(uni->columns, true), ElementsAre("__pgt_count", "__pgt_row_id"));
}

TEST(PlanTest, ScalarSubqueryIsAOneRowCrossJoin) {
  auto plan = Plan("SELECT id, (SELECT max(amount) FROM orders) AS top FROM orders");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(plan->explanation, HasSubstr("ScalarSubquery"));
  EXPECT_THAT(plan->identity_columns, ElementsAre("id"));
  // The subquery's aggregate does not make the outer query an aggregate
  // (which would merge duplicate rows of a keyless table).
  EXPECT_EQ(plan->explain_tree.children[0].op, "InnerJoin");
  EXPECT_EQ(plan->explain_tree.children[0].children[0].op, "Scan");
  auto keyless = Plan("SELECT k, (SELECT max(k) FROM events) AS top FROM events");
  ASSERT_TRUE(keyless.ok()) << keyless.status();
  EXPECT_THAT(keyless->explanation, Not(HasSubstr("Aggregate GROUP BY")));
  EXPECT_THAT(keyless->identity_columns, ElementsAre("k", "top", "__pgt_dup"));
}

TEST(PlanTest, ArraySubqueryKeepsItsOrderBy) {
  auto plan = Plan(
      "SELECT id, ARRAY(SELECT o.id FROM orders o ORDER BY o.amount DESC NULLS LAST, 1) AS ids "
      "FROM customers");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(plan->explanation,
              HasSubstr("ArraySubquery ORDER BY o.amount DESC NULLS LAST, id"));
  EXPECT_THAT(plan->explanation, HasSubstr("o.amount (for ORDER BY)"));
  EXPECT_THAT(plan->full_refresh_sql[1], HasSubstr("ORDER BY i.c2 DESC NULLS LAST, i.c1) AS c1"));
  // A scalar subquery's ORDER BY (no LIMIT) decides nothing: dropped.
  auto scalar = Plan("SELECT id, (SELECT max(amount) FROM orders ORDER BY 1) AS m FROM customers");
  ASSERT_TRUE(scalar.ok()) << scalar.status();
  EXPECT_THAT(scalar->full_refresh_sql[1], Not(HasSubstr("ORDER BY")));
  auto distinct =
      Plan("SELECT ARRAY(SELECT DISTINCT status FROM orders ORDER BY amount) AS s", RefreshMode::kAuto);
  ASSERT_FALSE(distinct.ok());
  EXPECT_THAT(distinct.status().message(), HasSubstr("ORDER BY expressions must appear"));
}

TEST(PlanTest, ScalarSubqueryInsideAnAggregateArgumentIsNotANestedAggregate) {
  // PostgreSQL accepts an aggregate over a scalar subquery that aggregates;
  // only an aggregate directly inside another one is an error.
  auto plan = Plan("SELECT status, sum((SELECT count(*) FROM customers)) AS s FROM orders GROUP BY "
                   "status");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(plan->explanation, HasSubstr("ScalarSubquery"));
  auto nested = Plan("SELECT status, sum(count(*)) FROM orders GROUP BY status");
  EXPECT_EQ(nested.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(nested.status().message(), HasSubstr("cannot be nested"));
}

TEST(PlanTest, CorrelatedScalarSubqueriesAreDecorrelatedIntoGroupedJoins) {
  // In a WHERE comparison, NULL over no rows: an inner join on the key.
  auto where = Plan("SELECT o.id FROM orders o WHERE o.amount > (SELECT avg(o2.amount) FROM orders "
                    "o2 WHERE o2.cust_id = o.cust_id)");
  ASSERT_TRUE(where.ok()) << where.status();
  EXPECT_THAT(where->explanation,
              HasSubstr("rewrite: correlated scalar subquery joined with a derived table grouped "
                        "by (o2.cust_id) (position 44)"));
  EXPECT_THAT(where->explanation,
              HasSubstr("InnerJoin ON o.amount > __pgt_value AND __pgt_key1 = o.cust_id  [bilinear"));
  EXPECT_THAT(where->explanation, HasSubstr("Aggregate GROUP BY o2.cust_id: avg(o2.amount)"));
  // In the select list, count over no rows is 0: a LEFT JOIN and the
  // subquery's own value over an empty input.
  auto count = Plan("SELECT c.id, (SELECT count(*) FROM orders o WHERE o.cust_id = c.id) AS n FROM "
                    "customers c");
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_THAT(count->explanation, HasSubstr("LeftJoin ON __pgt_key1 = c.id"));
  EXPECT_THAT(count->explanation, HasSubstr("ScalarSubquery"));
  EXPECT_THAT(Names(count->columns, false), ElementsAre("id", "n"));
}

TEST(PlanTest, CtesAndSubqueriesAreInlined) {
  auto plan = Plan(
      "WITH p AS (SELECT * FROM orders WHERE status = 'paid') SELECT p.id FROM p JOIN p AS q ON "
      "q.id = p.id");
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->sources.size(), 1u);
  EXPECT_EQ(plan->sources[0].name, "orders");
}

// --- names ---------------------------------------------------------------------------

TEST(PlanTest, OutputNamesFollowPostgres) {
  auto plan = Plan(
      "SELECT count(*), amount + 1, amount::bigint, CASE WHEN qty > 1 THEN 'a' END, "
      "coalesce(cust_id, 0), 1::int FROM orders GROUP BY amount, qty, cust_id");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Names(plan->columns, false),
              ElementsAre("count", "?column?", "amount", "case", "coalesce", "int4"));
}

TEST(PlanTest, FactsOutputNamesOverride) {
  CatalogFacts f = ShopFacts();
  f.output_column_names = {"x", "y"};
  auto plan = BuildDeltaPlan({"st", "t", "SELECT id, amount FROM orders", RefreshMode::kAuto}, f);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Names(plan->columns, false), ElementsAre("x", "y"));
}

// --- errors ----------------------------------------------------------------------------

struct UnsupportedCase {
  std::string query;
  std::string construct;
  int position;
};

TEST(PlanTest, UnsupportedConstructsAreNamedWithTheirPosition) {
  const std::vector<UnsupportedCase> cases = {
      {"SELECT id, row_number() OVER (ORDER BY id) FROM orders", "window function row_number()",
       12},
      {"SELECT id FROM orders ORDER BY id LIMIT 5", "ORDER BY ... LIMIT / OFFSET (top-k)", 41},
      {"SELECT id FROM orders WHERE random() > 0.5", "volatile or stable function random()", 29},
      {"SELECT id, now() FROM orders", "volatile or stable function now()", 12},
      {"SELECT id, CURRENT_DATE FROM orders", "stable SQL value function", 12},
      {"SELECT generate_series(1, id) FROM orders", "set-returning function generate_series()", 8},
      {"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT n FROM "
       "r",
       "recursive WITH", 1},
      {"SELECT c.id FROM customers c, LATERAL (SELECT o.id FROM orders o WHERE o.cust_id = c.id "
       "ORDER BY o.amount LIMIT 2) x",
       "LATERAL subquery", 0},
      {"SELECT id, (SELECT max(amount) FROM orders o2 WHERE o2.id < o.id) FROM orders o",
       "correlated scalar subquery", 12},
      {"SELECT DISTINCT ON (status) status, id FROM orders", "DISTINCT ON", 21},
      {"SELECT c.id FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.cust_id = c.id "
       "AND "
       "EXISTS (SELECT 1 FROM events e WHERE e.k = c.tier))",
       "reference to an outer query from a nested subquery", 94},
  };
  for (const auto& c : cases) {
    auto plan = Plan(c.query, RefreshMode::kDifferential);
    ASSERT_FALSE(plan.ok()) << c.query;
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument) << c.query;
    EXPECT_THAT(plan.status().message(), HasSubstr(c.construct)) << c.query;
    EXPECT_THAT(plan.status().message(), HasSubstr("use refresh mode FULL or AUTO")) << c.query;
    if (c.position > 0) {
      EXPECT_THAT(plan.status().message(), HasSubstr("at position " + std::to_string(c.position)))
          << c.query;
    }
    // AUTO and FULL accept it, maintained by full refresh, with the reason.
    for (RefreshMode mode : {RefreshMode::kAuto, RefreshMode::kFull}) {
      auto full = Plan(c.query, mode);
      ASSERT_TRUE(full.ok()) << c.query << ": " << full.status();
      EXPECT_EQ(full->maintained_mode, RefreshMode::kFull);
      EXPECT_THAT(full->full_refresh_reason, HasSubstr(c.construct));
      EXPECT_EQ(full->unsupported_position, c.position) << c.query;
      EXPECT_TRUE(full->merge_sql.empty());
      EXPECT_EQ(full->full_refresh_sql.size(), 2u);
      EXPECT_EQ(full->storage_ddl.size(), 1u);
    }
  }
}

TEST(PlanTest, TypesWithoutEqualityAreRefusedWhereEqualityIsNeeded) {
  CatalogFacts f = ShopFacts();
  f.relations.push_back(
      {"src", "docs", 1005, {{"id", "integer", true}, {"body", "json", false}}, {"id"}});
  f.relations.push_back(
      {"src", "loose", 1006, {{"n", "integer", false}, {"body", "json", false}}, {}});
  auto out =
      BuildDeltaPlan({"st", "t", "SELECT id, body FROM docs", RefreshMode::kDifferential}, f);
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("output column \"body\" of type json"));
  auto ok = BuildDeltaPlan(
      {"st", "t", "SELECT id, body::text AS b FROM docs", RefreshMode::kDifferential}, f);
  EXPECT_TRUE(ok.ok()) << ok.status();
  auto keyless = BuildDeltaPlan({"st", "t", "SELECT n FROM loose", RefreshMode::kDifferential}, f);
  ASSERT_FALSE(keyless.ok());
  EXPECT_THAT(keyless.status().message(), HasSubstr("src.loose.body of type json"));
  auto automode = BuildDeltaPlan({"st", "t", "SELECT n FROM loose", RefreshMode::kAuto}, f);
  ASSERT_TRUE(automode.ok()) << automode.status();
  EXPECT_EQ(automode->maintained_mode, RefreshMode::kFull);
}

TEST(PlanTest, InvalidQueriesAreErrors) {
  struct Case {
    std::string query;
    std::string message;
  };
  for (const auto& c : std::vector<Case>{
           {"SELECT * FROM nowhere", "relation \"nowhere\" is not in the catalog facts"},
           {"SELECT nope FROM orders", "column \"nope\" does not exist"},
           {"SELECT id FROM orders o JOIN customers c ON c.id = o.cust_id",
            "column reference \"id\" is ambiguous"},
           {"SELECT o.id, c.id FROM orders o JOIN customers c ON c.id = o.cust_id",
            "appears more than once"},
           {"SELECT 1; SELECT 2", "exactly one SELECT"},
           {"DELETE FROM orders", "exactly one SELECT"},
           {"SELEC 1", "syntax error"},
           {"SELECT id AS __pgt_x FROM orders", "reserves"},
       }) {
    auto plan = Plan(c.query, RefreshMode::kAuto);
    ASSERT_FALSE(plan.ok()) << c.query;
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument) << c.query;
    EXPECT_THAT(plan.status().message(), HasSubstr(c.message)) << c.query;
  }
}

TEST(PlanTest, UnfaithfulDeparseIsRefusedNotGuessed) {
  // libpg_query 15-4.0.0 prints a IS DISTINCT FROM (b IS DISTINCT FROM c)
  // without the parentheses, which does not parse: the engine refuses
  // differential maintenance rather than emitting SQL it cannot verify.
  const std::string q =
      "SELECT id FROM orders WHERE (amount IS DISTINCT FROM (qty IS DISTINCT FROM 1)::int) IS TRUE";
  auto diff = Plan(q, RefreshMode::kDifferential);
  ASSERT_FALSE(diff.ok());
  EXPECT_THAT(diff.status().message(), HasSubstr("cannot deparse faithfully"));
  auto full = Plan(q, RefreshMode::kAuto);
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->maintained_mode, RefreshMode::kFull);
  // The full refresh uses the query's own text (it parsed as one SELECT).
  EXPECT_THAT(full->full_refresh_sql[1], HasSubstr(q));
}

// --- quoting -----------------------------------------------------------------------------

TEST(PlanTest, HostileIdentifiersAreQuotedEverywhere) {
  StreamTableSpec spec{"My Schema", "St\"Table", "", RefreshMode::kDifferential};
  spec.query =
      "SELECT \"select\", \"a\"\"b\" AS \"From\", \"Group\", \"MixedCase\" "
      "FROM \"Odd Schema\".\"we\"\"ird\" WHERE \"Group\" > 1";
  auto plan = BuildDeltaPlan(spec, ShopFacts());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(plan->storage_ddl[0], HasSubstr("CREATE TABLE \"My Schema\".\"St\"\"Table\""));
  EXPECT_THAT(plan->storage_ddl[0], HasSubstr("FROM \"Odd Schema\".\"we\"\"ird\""));
  EXPECT_THAT(plan->storage_ddl[0], HasSubstr("t.\"select\""));
  EXPECT_THAT(plan->storage_ddl[0], HasSubstr("t.\"a\"\"b\""));
  EXPECT_THAT(plan->storage_ddl[0], HasSubstr("AS \"From\""));
  EXPECT_THAT(plan->storage_ddl[0], HasSubstr("\"MixedCase\""));
  EXPECT_THAT(plan->merge_sql, HasSubstr("MERGE INTO \"My Schema\".\"St\"\"Table\" t"));
  EXPECT_THAT(plan->merge_sql, HasSubstr("ON t.\"select\" = d.\"select\""));
  EXPECT_THAT(plan->merge_sql, Not(HasSubstr("a\"b")));  // only ever quoted: a""b
  EXPECT_THAT(Names(plan->columns, false), ElementsAre("select", "From", "Group", "MixedCase"));
  // The generated statements name the hostile relations exactly (parsed
  // back, not matched as text).
  struct Expect {
    std::string sql;
    bool source;  // a linear query's MERGE reads only the delta table
  };
  for (const auto& e : std::vector<Expect>{{plan->storage_ddl[0], true},
                                           {plan->full_refresh_sql[1], true},
                                           {plan->merge_sql, false}}) {
    auto refs = ListQueryReferences(e.sql);
    ASSERT_TRUE(refs.ok()) << refs.status();
    bool target = false, source = false;
    for (const auto& r : refs->relations) {
      target |= r.schema == "My Schema" && r.name == "St\"Table";
      source |= r.schema == "Odd Schema" && r.name == "we\"ird";
    }
    EXPECT_TRUE(target) << e.sql;
    EXPECT_EQ(source, e.source) << e.sql;
  }
}

TEST(PlanTest, DeltaTableNamesComeFromTheCaller) {
  PlanOptions options;
  options.delta_tables = {{"src.orders", "pg_temp.d \"1\""}};
  auto plan = BuildDeltaPlan(
      {"st", "t", "SELECT orders.id FROM orders JOIN customers c ON c.id = orders.cust_id",
       RefreshMode::kAuto},
      ShopFacts(), options);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->sources.size(), 2u);
  EXPECT_EQ(plan->sources[0].delta_table, "pg_temp.d \"1\"");
  EXPECT_EQ(plan->sources[1].delta_table, "__trickle_delta_1002");
  EXPECT_THAT(plan->merge_sql, HasSubstr("FROM pg_temp.\"d \"\"1\"\"\" d"));
  EXPECT_EQ(plan->sources[0].delta_table_ddl,
            "CREATE TEMPORARY TABLE pg_temp.\"d \"\"1\"\"\" (__op \"char\" NOT NULL, id int, "
            "cust_id int, amount int, "
            "status text, qty int, price numeric(8, 2), weight double precision) ON COMMIT DROP");
}

TEST(PlanTest, ListQueryReferencesSkipsCtes) {
  auto refs = ListQueryReferences(
      "WITH x AS (SELECT * FROM src.orders) SELECT * FROM x JOIN customers ON true WHERE "
      "lower(name) <> ''");
  ASSERT_TRUE(refs.ok()) << refs.status();
  std::vector<std::string> names;
  for (const auto& r : refs->relations) names.push_back(r.schema + "." + r.name);
  EXPECT_THAT(names, ::testing::UnorderedElementsAre("src.orders", ".customers"));
  EXPECT_THAT(refs->functions, ElementsAre("lower"));
}

}  // namespace
}  // namespace trickle::delta
