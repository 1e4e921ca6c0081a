// The oracle matrix: every defining query below is maintained under random
// change batches on a real PostgreSQL, and after every batch the stream table
// must equal the query in the same snapshot (see oracle_harness.h).
//
// Environment:
//   TRICKLE_ORACLE_SEED     base seed (default fixed); a failure prints the
//                           seed that replays it
//   TRICKLE_ORACLE_BATCHES  change batches per query (default 25)
//   TRICKLE_ORACLE_VERBOSE  log every statement
#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/delta/oracle_harness.h"
#include "tests/support/postgres_server.h"

namespace trickle::delta::testing {
namespace {

constexpr uint64_t kDefaultSeed = 20240601;

const std::vector<OracleCase>& Cases() {
  static const auto* cases = new std::vector<OracleCase>{
      // --- scan / filter / project ---------------------------------------
      {"scan_all", "SELECT * FROM orders"},
      {"filter_project", "SELECT id, amount * 2 AS double_amount, upper(status) AS s FROM orders WHERE amount > 20"},
      {"project_case_cast",
       "SELECT id, CASE WHEN amount IS NULL THEN 'none' WHEN amount < 0 THEN 'neg' ELSE 'pos' END AS sign, "
       "amount::numeric(10,2) / 3 AS third, coalesce(cust_id, -1) AS c FROM orders"},
      {"keyless_scan", "SELECT sku, price, n FROM lines WHERE n > 1"},
      {"project_drops_key", "SELECT status, qty FROM orders WHERE qty >= 2"},
      // --- inner joins ------------------------------------------------------
      {"join_inner", "SELECT o.id, c.name, o.amount FROM orders o JOIN customers c ON c.id = o.cust_id"},
      {"join_using",
       "SELECT * FROM orders JOIN (SELECT id AS cust_id, name, tier FROM customers) c USING (cust_id) "
       "WHERE c.tier IS NOT NULL"},
      {"join_extra_condition",
       "SELECT o.id AS oid, c.id AS cid FROM orders o JOIN customers c ON c.id = o.cust_id AND o.amount > c.tier * 10"},
      {"join_three",
       "SELECT o.id, c.region, l.sku, l.price FROM orders o JOIN customers c ON c.id = o.cust_id "
       "JOIN lines l ON l.order_id = o.id"},
      {"join_comma_where", "SELECT c.name, p.category FROM customers c, products p WHERE p.cost = c.tier"},
      {"self_join", "SELECT a.id AS a_id, b.id AS b_id FROM orders a JOIN orders b ON a.cust_id = b.cust_id AND a.id < b.id"},
      {"join_keyless_dups", "SELECT l.sku, p.category, l.n FROM lines l JOIN products p ON p.sku = l.sku"},
      // --- aggregates -------------------------------------------------------
      {"group_count_sum_avg",
       "SELECT status, count(*) AS n, sum(amount) AS total, avg(amount) AS mean, count(amount) AS n_amount "
       "FROM orders GROUP BY status"},
      {"group_nullable_key", "SELECT cust_id, count(*) AS n, sum(qty) AS q FROM orders GROUP BY cust_id"},
      {"group_hidden_key", "SELECT sum(amount) AS total, count(*) AS n FROM orders GROUP BY cust_id, status"},
      {"group_expression_key",
       "SELECT amount / 10 AS bucket, count(*) AS n, sum(amount) % 7 AS s7 FROM orders GROUP BY amount / 10"},
      {"scalar_aggregate", "SELECT count(*) AS n, sum(amount) AS total, avg(qty) AS q FROM orders"},
      {"join_aggregate",
       "SELECT c.region, count(*) AS n, sum(o.amount) AS total, avg(o.amount) AS mean "
       "FROM orders o JOIN customers c ON c.id = o.cust_id GROUP BY c.region"},
      {"aggregate_filter",
       "SELECT cust_id, count(*) FILTER (WHERE status = 'paid') AS paid, sum(amount) FILTER (WHERE qty > 2) AS big "
       "FROM orders GROUP BY cust_id"},
  };
  return *cases;
}

uint64_t BaseSeed() {
  const char* s = std::getenv("TRICKLE_ORACLE_SEED");
  return s != nullptr ? std::strtoull(s, nullptr, 10) : kDefaultSeed;
}

int Batches() {
  const char* s = std::getenv("TRICKLE_ORACLE_BATCHES");
  return s != nullptr ? std::atoi(s) : 25;
}

class OracleTest : public ::testing::TestWithParam<OracleCase> {};

TEST_P(OracleTest, StreamTableEqualsQueryAfterEveryBatch) {
  const OracleCase& c = GetParam();
  auto conn = trickle::testing::TestPostgres().Connect();
  ASSERT_TRUE(conn.ok()) << conn.status();
  OracleOptions options;
  // One seed per case, derived from the base: a failure names it.
  uint64_t index = 0;
  for (size_t i = 0; i < Cases().size(); ++i) {
    if (Cases()[i].name == c.name) index = i;
  }
  options.seed = std::getenv("TRICKLE_ORACLE_SEED") != nullptr ? BaseSeed() : BaseSeed() + index;
  options.batches = Batches();
  options.verbose = std::getenv("TRICKLE_ORACLE_VERBOSE") != nullptr;
  OracleStats stats;
  absl::Status s = RunOracleCase(**conn, c, options, &stats);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(stats.batches, options.batches);
  if (c.expect_differential) EXPECT_GT(stats.changed_rows, 0);
}

INSTANTIATE_TEST_SUITE_P(Matrix, OracleTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<OracleCase>& info) { return info.param.name; });

}  // namespace
}  // namespace trickle::delta::testing
