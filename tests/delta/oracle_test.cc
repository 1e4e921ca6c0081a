// The oracle matrix: every defining query below is maintained under random
// change batches on a real PostgreSQL, and after every batch the stream table
// must equal the query in the same snapshot (see oracle_harness.h).
//
// Environment:
//   TRICKLE_ORACLE_SEED     base seed (default fixed); a failure prints the
//                           seed that replays it
//   TRICKLE_ORACLE_BATCHES  change batches per query (default 25)
//   TRICKLE_ORACLE_VERBOSE  log every statement
//   TRICKLE_ORACLE_CASE     run only the case with this name
//   TRICKLE_ORACLE_EXPLAIN  print each case's plan explanation
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/delta/oracle_harness.h"
#include "tests/support/postgres_server.h"

namespace trickle::delta::testing {
namespace {

constexpr uint64_t kDefaultSeed = 20240601;

// The matrix, in groups: each group is one test process (one throwaway
// PostgreSQL), each case in it is checked independently.
struct OracleGroup {
  std::string name;
  std::vector<OracleCase> cases;
};

const std::vector<OracleGroup>& Groups() {
  static const auto* groups = new std::vector<OracleGroup>{
      {"scan_filter_project",
       {
           {"scan_all", "SELECT * FROM orders"},
           {"filter_project",
            "SELECT id, amount * 2 AS double_amount, upper(status) AS s FROM orders WHERE amount > "
            "20"},
           {"project_case_cast",
            "SELECT id, CASE WHEN amount IS NULL THEN 'none' WHEN amount < 0 THEN 'neg' ELSE 'pos' "
            "END AS sign, "
            "amount::numeric(10,2) / 3 AS third, coalesce(cust_id, -1) AS c FROM orders"},
           {"keyless_scan", "SELECT sku, price, n FROM lines WHERE n > 1"},
           {"project_drops_key", "SELECT status, qty FROM orders WHERE qty >= 2"},
       }},
      {"inner_joins",
       {
           {"join_inner",
            "SELECT o.id, c.name, o.amount FROM orders o JOIN customers c ON c.id = o.cust_id"},
           {"join_using",
            "SELECT * FROM orders JOIN (SELECT id AS cust_id, name, tier FROM customers) c USING "
            "(cust_id) "
            "WHERE c.tier IS NOT NULL"},
           {"join_extra_condition",
            "SELECT o.id AS oid, c.id AS cid FROM orders o JOIN customers c ON c.id = o.cust_id "
            "AND o.amount > c.tier * 10"},
           {"join_three",
            "SELECT o.id, c.region, l.sku, l.price FROM orders o JOIN customers c ON c.id = "
            "o.cust_id "
            "JOIN lines l ON l.order_id = o.id"},
           {"join_comma_where",
            "SELECT c.name, p.category FROM customers c, products p WHERE p.cost = c.tier"},
           {"self_join",
            "SELECT a.id AS a_id, b.id AS b_id FROM orders a JOIN orders b ON a.cust_id = "
            "b.cust_id AND a.id < b.id"},
           {"join_keyless_dups",
            "SELECT l.sku, p.category, l.n FROM lines l JOIN products p ON p.sku = l.sku"},
       }},
      {"aggregates",
       {
           {"group_count_sum_avg",
            "SELECT status, count(*) AS n, sum(amount) AS total, avg(amount) AS mean, "
            "count(amount) AS n_amount "
            "FROM orders GROUP BY status"},
           {"group_nullable_key",
            "SELECT cust_id, count(*) AS n, sum(qty) AS q FROM orders GROUP BY cust_id"},
           {"group_hidden_key",
            "SELECT sum(amount) AS total, count(*) AS n FROM orders GROUP BY cust_id, status"},
           {"group_expression_key",
            "SELECT amount / 10 AS bucket, count(*) AS n, sum(amount) % 7 AS s7 FROM orders GROUP "
            "BY amount / 10"},
           {"scalar_aggregate",
            "SELECT count(*) AS n, sum(amount) AS total, avg(qty) AS q FROM orders"},
           {"join_aggregate",
            "SELECT c.region, count(*) AS n, sum(o.amount) AS total, avg(o.amount) AS mean "
            "FROM orders o JOIN customers c ON c.id = o.cust_id GROUP BY c.region"},
           {"output_names_like_internal_ones",
            "SELECT status AS c1, count(*) AS c2, sum(qty) AS k1, cust_id AS i FROM orders GROUP "
            "BY status, cust_id"},
           {"recompute_output_names_like_internal_ones",
            "SELECT cust_id AS k1, max(amount) AS c1, min(status) AS n FROM orders GROUP BY "
            "cust_id"},
           {"aggregate_filter",
            "SELECT cust_id, count(*) FILTER (WHERE status = 'paid') AS paid, sum(amount) FILTER "
            "(WHERE qty > 2) AS big "
            "FROM orders GROUP BY cust_id"},
       }},
      {"outer_joins",
       {
           {"left_join",
            "SELECT o.id, o.amount, c.name, c.region FROM orders o LEFT JOIN customers c ON c.id = "
            "o.cust_id"},
           {"right_join",
            "SELECT o.id AS oid, c.id AS cid, c.name FROM orders o RIGHT JOIN customers c ON c.id "
            "= o.cust_id"},
           {"full_join",
            "SELECT o.id AS oid, c.id AS cid, o.amount, c.tier FROM orders o FULL JOIN customers c "
            "ON c.id = o.cust_id"},
           {"left_join_extra_condition",
            "SELECT c.id, c.name, o.id AS oid FROM customers c LEFT JOIN orders o ON o.cust_id = "
            "c.id AND o.status = 'paid'"},
           {"left_join_multi_key_nullable",
            "SELECT e.k, e.v, a.k AS ak FROM events e LEFT JOIN audit a ON a.k = e.k AND a.v = "
            "e.v"},
           {"full_join_multi_key_keyless",
            "SELECT e.k, e.v, a.k AS ak, a.v AS av FROM events e FULL JOIN audit a ON a.k = e.k "
            "AND a.v = e.v"},
           {"right_join_then_inner",
            "SELECT c.id, o.id AS oid, l.sku FROM orders o RIGHT JOIN customers c ON c.id = "
            "o.cust_id "
            "JOIN lines l ON l.order_id = o.id"},
           {"left_join_keyless",
            "SELECT l.sku, l.n, p.category FROM lines l LEFT JOIN products p ON p.sku = l.sku"},
           {"left_join_aggregate",
            "SELECT c.id, c.name, count(o.id) AS orders, sum(o.amount) AS total FROM customers c "
            "LEFT JOIN orders o ON o.cust_id = c.id GROUP BY c.id, c.name"},
           {"left_join_chain",
            "SELECT o.id, c.name, p.category FROM orders o LEFT JOIN customers c ON c.id = "
            "o.cust_id "
            "LEFT JOIN lines l ON l.order_id = o.id LEFT JOIN products p ON p.sku = l.sku"},
           {"left_join_non_equi",
            "SELECT e.k, e.v, a.k AS ak FROM events e LEFT JOIN audit a ON e.k < a.k AND a.v = "
            "'x'"},
       }},
      {"other_aggregates",
       {
           {"min_max",
            "SELECT status, min(amount) AS lo, max(amount) AS hi, count(*) AS n FROM orders GROUP "
            "BY status"},
           {"min_max_text_nullable_group",
            "SELECT region, min(name) AS first, max(tier) AS top FROM customers GROUP BY region"},
           {"count_distinct",
            "SELECT status, count(DISTINCT cust_id) AS customers FROM orders GROUP BY status"},
           {"bool_and_or",
            "SELECT cust_id, bool_and(amount > 0) AS all_pos, bool_or(status = 'void') AS any_void "
            "FROM orders GROUP BY cust_id"},
           {"having",
            "SELECT cust_id, count(*) AS n, sum(amount) AS total FROM orders GROUP BY cust_id "
            "HAVING count(*) > 2"},
           {"having_scalar", "SELECT count(*) AS n FROM orders HAVING sum(amount) > 100"},
           {"numeric_sum_avg",
            "SELECT sku, sum(price) AS total, avg(price) AS mean, sum(price * n) AS value FROM "
            "lines GROUP BY sku"},
           {"string_agg_ordered",
            "SELECT region, string_agg(name, ',' ORDER BY name) AS names, array_agg(id ORDER BY "
            "id) AS ids "
            "FROM customers GROUP BY region"},
           {"min_max_scalar",
            "SELECT min(amount) AS lo, max(amount) AS hi FROM orders WHERE status <> 'void'"},
           {"aggregate_expression_over_aggregates",
            "SELECT status, sum(amount) / NULLIF(count(*), 0) AS per, count(*) * 2 + 1 AS odd, "
            "max(qty) - min(qty) AS spread "
            "FROM orders GROUP BY status"},
       }},
      {"distinct_and_set_operations",
       {
           {"distinct", "SELECT DISTINCT status, qty FROM orders"},
           {"distinct_nullable", "SELECT DISTINCT k, v FROM events"},
           {"distinct_join",
            "SELECT DISTINCT c.region, o.status FROM orders o JOIN customers c ON c.id = "
            "o.cust_id"},
           {"union_all", "SELECT k, v FROM events UNION ALL SELECT k, v FROM audit"},
           {"union_all_keyed",
            "SELECT id, name AS label FROM customers UNION ALL SELECT id, status FROM orders"},
           {"union", "SELECT k, v FROM events UNION SELECT k, v FROM audit"},
           {"intersect", "SELECT k, v FROM events INTERSECT SELECT k, v FROM audit"},
           {"intersect_all", "SELECT k, v FROM events INTERSECT ALL SELECT k, v FROM audit"},
           {"except", "SELECT k, v FROM events EXCEPT SELECT k, v FROM audit"},
           {"except_all", "SELECT k, v FROM events EXCEPT ALL SELECT k, v FROM audit"},
           {"union_of_aggregates",
            "SELECT 'o' AS src, status AS label, count(*) AS n FROM orders GROUP BY status "
            "UNION ALL SELECT 'c', region, count(*) FROM customers GROUP BY region"},
       }},
      {"subqueries_and_ctes",
       {
           {"subquery_in_from",
            "SELECT s.cust_id, s.total, c.name FROM (SELECT cust_id, sum(amount) AS total FROM "
            "orders GROUP BY cust_id) s "
            "JOIN customers c ON c.id = s.cust_id"},
           {"cte",
            "WITH paid AS (SELECT * FROM orders WHERE status = 'paid') SELECT cust_id, count(*) AS "
            "n FROM paid GROUP BY cust_id"},
           {"cte_twice",
            "WITH t AS (SELECT cust_id, amount FROM orders WHERE amount > 0) "
            "SELECT a.cust_id, a.amount AS x, b.amount AS y FROM t a JOIN t b ON a.cust_id = "
            "b.cust_id AND a.amount < b.amount"},
           {"nested_aggregate",
            "SELECT n, count(*) AS customers FROM (SELECT cust_id, count(*) AS n FROM orders GROUP "
            "BY cust_id) s GROUP BY n"},
           {"exists",
            "SELECT c.id, c.name FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE "
            "o.cust_id = c.id AND o.amount > 50)"},
           {"not_exists",
            "SELECT c.id, c.name FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE "
            "o.cust_id = c.id)"},
           {"in_subquery",
            "SELECT id, amount FROM orders WHERE cust_id IN (SELECT id FROM customers WHERE region "
            "= 'north')"},
           {"not_in_subquery",
            "SELECT id, amount FROM orders WHERE cust_id NOT IN (SELECT id FROM customers WHERE "
            "tier = 1)"},
           {"not_in_nullable",
            "SELECT k, v FROM events WHERE k NOT IN (SELECT k FROM audit WHERE v = 'x')"},
           {"scalar_subquery_select",
            "SELECT id, amount, (SELECT max(amount) FROM orders) AS top FROM orders WHERE status = "
            "'paid'"},
           {"scalar_subquery_where",
            "SELECT id, amount FROM orders WHERE amount > (SELECT avg(amount) FROM orders)"},
           {"row_in_subquery", "SELECT k, v FROM events WHERE (k, v) IN (SELECT k, v FROM audit)"},
           {"not_in_subquery_with_nulls",
            "SELECT k, v FROM events WHERE k NOT IN (SELECT k FROM audit)"},
           {"scalar_subquery_in_having",
            "SELECT status, count(*) AS n FROM orders GROUP BY status "
            "HAVING count(*) > (SELECT count(*) / 8 FROM orders)"},
           {"distinct_over_aggregate",
            "SELECT DISTINCT count(*) AS n FROM orders GROUP BY cust_id"},
           {"scalar_subquery_keyless_duplicates",
            "SELECT k, v, (SELECT max(k) FROM audit) AS top FROM events"},
           {"scalar_subquery_where_keyless",
            "SELECT k, v FROM events WHERE k > (SELECT min(k) FROM audit)"},
           // ORDER BY inside ARRAY(SELECT ...) decides the array's order.
           {"array_subquery_ordered",
            "SELECT c.id, ARRAY(SELECT o.id FROM orders o WHERE o.status = 'paid' "
            "ORDER BY o.amount DESC NULLS LAST, o.id) AS paid FROM customers c WHERE c.tier = 1"},
           {"array_subquery_order_hidden_and_position",
            "SELECT code, ARRAY(SELECT name FROM customers WHERE tier IS NOT NULL "
            "ORDER BY region NULLS FIRST, 1 DESC) AS names FROM accounts WHERE kind = 'loan'"},
           {"array_subquery_order_by_aggregate",
            "SELECT ARRAY(SELECT status FROM orders GROUP BY status ORDER BY count(*) DESC, "
            "status) AS by_count, ARRAY(SELECT DISTINCT k FROM events ORDER BY k) AS ks"},
           {"exists_uncorrelated",
            "SELECT k, v FROM events WHERE EXISTS (SELECT 1 FROM audit WHERE v = 'z')"},
       }},
      {"nested_operators",
       {
           {"nested_intersect_join",
            "SELECT x.k, count(*) AS n FROM (SELECT k FROM events INTERSECT SELECT k FROM audit) x "
            "JOIN events e ON e.k = x.k GROUP BY x.k"},
           {"nested_except_all",
            "SELECT s.k, s.v FROM (SELECT k, v FROM events EXCEPT ALL SELECT k, v FROM audit) s "
            "WHERE s.k > 2"},
           {"nested_distinct_join",
            "SELECT d.region, c.id FROM (SELECT DISTINCT region FROM customers WHERE tier = 2) d "
            "JOIN customers c ON c.region = d.region"},
           {"nested_left_join_in_aggregate",
            "SELECT s.region, count(*) AS n, count(s.oid) AS with_orders FROM "
            "(SELECT c.region, o.id AS oid FROM customers c LEFT JOIN orders o ON o.cust_id = c.id "
            "AND o.amount > 40) s "
            "GROUP BY s.region"},
           {"exists_same_table",
            "SELECT o.id, o.cust_id FROM orders o WHERE EXISTS (SELECT 1 FROM orders o2 WHERE "
            "o2.cust_id = o.cust_id "
            "AND o2.id <> o.id AND o2.status = 'paid')"},
           {"union_then_aggregate",
            "SELECT k, count(*) AS n, count(DISTINCT v) AS vs FROM (SELECT k, v FROM events UNION "
            "ALL SELECT k, v FROM audit) u "
            "GROUP BY k"},
           {"min_max_over_join_nested",
            "SELECT c.region, max(t.total) AS best FROM customers c JOIN "
            "(SELECT cust_id, sum(amount) AS total FROM orders GROUP BY cust_id) t ON t.cust_id = "
            "c.id GROUP BY c.region"},
           {"not_exists_keyless",
            "SELECT l.order_id, l.sku FROM lines l WHERE NOT EXISTS (SELECT 1 FROM products p "
            "WHERE p.sku = l.sku)"},
           {"scalar_subquery_in_join_filter",
            "SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.cust_id "
            "WHERE o.amount >= (SELECT avg(amount) FROM orders WHERE status = 'paid')"},
       }},
      {"hostile_identifiers",
       {
           {"hostile_names",
            "SELECT \"select\", \"a\"\"b\" AS \"From\", \"Group\" FROM \"Odd "
            "Schema\".\"we\"\"ird\" WHERE \"Group\" IS NOT NULL"},
           {"hostile_aggregate",
            "SELECT \"Group\", count(*) AS \"Count\", sum(\"select\") AS \"a\"\"b\" FROM \"Odd "
            "Schema\".\"we\"\"ird\" GROUP BY \"Group\""},
       }},
      {"tpch_combinations",
       {
           {"tpch_revenue_by_region_category",
            "SELECT c.region, p.category, count(*) AS lines, sum(l.n) AS units, sum(l.price * l.n) "
            "AS revenue "
            "FROM orders o JOIN customers c ON c.id = o.cust_id JOIN lines l ON l.order_id = o.id "
            "JOIN products p ON p.sku = l.sku WHERE o.status <> 'void' GROUP BY c.region, "
            "p.category"},
           {"tpch_comma_joins",
            "SELECT c.region, p.category, sum(l.n) AS units, count(*) AS n FROM customers c, "
            "orders o, lines l, "
            "products p WHERE o.cust_id = c.id AND l.order_id = o.id AND p.sku = l.sku AND "
            "o.status <> 'void' "
            "GROUP BY c.region, p.category"},
           {"tpch_top_customers_having",
            "SELECT c.id, c.name, sum(o.amount) AS spent, count(DISTINCT o.status) AS statuses "
            "FROM customers c "
            "JOIN orders o ON o.cust_id = c.id GROUP BY c.id, c.name HAVING sum(o.amount) > 50"},
           {"tpch_exists_aggregate",
            "SELECT status, count(*) AS n, sum(qty) AS q FROM orders o "
            "WHERE EXISTS (SELECT 1 FROM lines l WHERE l.order_id = o.id AND l.price > 2) GROUP BY "
            "status"},
           {"tpch_not_exists_join",
            "SELECT c.region, count(*) AS idle FROM customers c WHERE NOT EXISTS "
            "(SELECT 1 FROM orders o WHERE o.cust_id = c.id AND o.status = 'paid') GROUP BY "
            "c.region"},
           {"left_join_distinct",
            "SELECT DISTINCT c.region, o.status FROM customers c LEFT JOIN orders o ON o.cust_id = "
            "c.id"},
           {"cte_aggregate_join_back",
            "WITH totals AS (SELECT cust_id, sum(amount) AS total, count(*) AS n FROM orders GROUP "
            "BY cust_id) "
            "SELECT o.id, o.amount, t.total, t.n FROM orders o JOIN totals t ON t.cust_id = "
            "o.cust_id"},
           {"not_in_aggregate_subquery",
            "SELECT id, name FROM customers WHERE id NOT IN (SELECT cust_id FROM orders GROUP BY "
            "cust_id HAVING count(*) > 3)"},
           {"union_of_joins",
            "SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.cust_id WHERE o.amount "
            "> 50 "
            "UNION SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.cust_id WHERE "
            "c.tier = 1"},
           {"in_with_aggregate_outer",
            "SELECT cust_id, max(amount) AS top, min(amount) AS bottom FROM orders "
            "WHERE cust_id IN (SELECT id FROM customers WHERE tier IS NOT NULL) GROUP BY cust_id"},
           {"full_join_aggregates",
            "SELECT coalesce(a.k, b.k) AS k, a.n AS events, b.n AS audits FROM "
            "(SELECT k, count(*) AS n FROM events GROUP BY k) a FULL JOIN (SELECT k, count(*) AS n "
            "FROM audit GROUP BY k) b "
            "ON a.k = b.k"},
           {"scalar_subquery_ratio",
            "SELECT status, count(*) AS n, (SELECT count(*) FROM orders) AS all_orders FROM orders "
            "GROUP BY status"},
           {"values_join",
            "SELECT o.id, v.label FROM orders o JOIN (VALUES ('paid', 'P'), ('new', 'N')) "
            "v(status, label) "
            "ON v.status = o.status"},
           {"join_on_expression",
            "SELECT o.id, p.sku FROM orders o JOIN products p ON p.cost = o.qty * 2 AND p.category "
            "IS NOT NULL"},
       }},
      {"composite_domain_money",
       {
           // Composite values whose fields are all NULL: IS NULL, yet a
           // value (one group, equal to itself, counted by count(x)).
           {"composite_group_numeric_sum",
            "SELECT ref, sum(amount) AS total, count(*) AS n FROM ledger GROUP BY ref"},
           {"composite_count_algebraic",
            "SELECT acct, count(ref) AS refs, count(*) AS n FROM ledger GROUP BY acct"},
           {"composite_except_all", "SELECT ref FROM ledger EXCEPT ALL SELECT owner FROM accounts"},
           {"composite_intersect", "SELECT ref FROM ledger INTERSECT SELECT owner FROM accounts"},
           {"composite_not_in",
            "SELECT code, owner FROM accounts WHERE owner NOT IN "
            "(SELECT ref FROM ledger WHERE ref IS DISTINCT FROM NULL AND memo = 'a')"},
           {"composite_left_join",
            "SELECT a.code, a.owner, l.amount FROM accounts a LEFT JOIN ledger l ON l.ref = "
            "a.owner"},
           {"composite_nested_distinct_join",
            "SELECT d.ref, a.code FROM (SELECT DISTINCT ref FROM ledger WHERE memo IS NOT NULL) d "
            "JOIN accounts a ON a.owner = d.ref"},
           {"composite_field_group",
            "SELECT (owner).a AS owner_a, count(*) AS n, sum(balance) AS total FROM accounts GROUP "
            "BY (owner).a"},
           {"domain_text_key_group",
            "SELECT kind, count(*) AS n, sum(balance) AS total, avg(balance) AS mean, "
            "min(balance) AS lo, max(code) AS last FROM accounts GROUP BY kind"},
           {"money_join_text_key",
            "SELECT l.acct, a.kind, sum(l.amount) AS total, count(*) AS n FROM ledger l "
            "JOIN accounts a ON a.code = l.acct GROUP BY l.acct, a.kind"},
           {"money_filter_project",
            "SELECT code, balance, balance * 1.1 AS with_interest, kind FROM accounts WHERE "
            "balance > 10"},
           {"domain_money_keyless_distinct", "SELECT DISTINCT amount, memo FROM ledger"},
       }},
      {"correlated_subqueries",
       {
           // Decorrelated by delta/rewrite_decorrelate.cc; NULL correlation
           // keys on both sides, keyless sources with duplicates, groups
           // that empty (the subquery over no rows).
           {"corr_where_avg",
            "SELECT o.id, o.amount FROM orders o WHERE o.amount > (SELECT avg(o2.amount) FROM "
            "orders o2 WHERE o2.cust_id = o.cust_id)"},
           {"corr_select_count",
            "SELECT c.id, (SELECT count(*) FROM orders o WHERE o.cust_id = c.id) AS n FROM "
            "customers c"},
           {"corr_select_sum_keyless",
            "SELECT e.k, e.v, (SELECT sum(a.k) FROM audit a WHERE a.v = e.v) AS s FROM events e"},
           {"corr_select_lookup",
            "SELECT o.id, (SELECT c.name FROM customers c WHERE c.id = o.cust_id) AS name, "
            "o.amount FROM orders o"},
           {"corr_having_count",
            "SELECT o.cust_id, sum(o.qty) AS q FROM orders o GROUP BY o.cust_id HAVING sum(o.qty) "
            "> (SELECT count(*) FROM orders o2 WHERE o2.cust_id = o.cust_id AND o2.status = "
            "'paid')"},
           {"corr_select_of_grouped",
            "SELECT c.region, count(*) AS n, (SELECT count(*) FROM customers c2 WHERE c2.region = "
            "c.region AND c2.tier = 1) AS tier1 FROM customers c GROUP BY c.region"},
           {"corr_q17_shape",
            "SELECT sum(l.price) AS total, count(*) AS n FROM lines l JOIN products p ON p.sku = "
            "l.sku WHERE p.category = 'a' AND l.n < (SELECT 0.5 * avg(l2.n) + 1 FROM lines l2 "
            "WHERE l2.sku = p.sku)"},
           {"corr_q2_shape_min",
            "SELECT p.sku, p.cost FROM products p WHERE p.cost = (SELECT min(p2.cost) FROM "
            "products p2 WHERE p2.category = p.category)"},
           {"corr_inside_in_subquery",
            "SELECT c.id, c.name FROM customers c WHERE c.id IN (SELECT o.cust_id FROM orders o "
            "WHERE o.qty > (SELECT count(*) FROM lines l WHERE l.order_id = o.id))"},
           {"corr_two_keys_nullable",
            "SELECT e.k, e.v, (SELECT count(*) FROM audit a WHERE a.k = e.k AND a.v = e.v) AS same "
            "FROM events e"},
           {"corr_under_coalesce_two_items",
            "SELECT o.id, c.name FROM orders o, customers c WHERE c.id = o.cust_id AND "
            "coalesce((SELECT sum(o3.amount) FROM orders o3 WHERE o3.cust_id = c.id AND o3.status "
            "= o.status), 0) > 10"},
           {"corr_inside_aggregate_argument",
            "SELECT o.status, sum((SELECT count(*) FROM lines l WHERE l.order_id = o.id)) AS lines "
            "FROM orders o GROUP BY o.status"},
           {"corr_star_and_case",
            "SELECT *, CASE WHEN (SELECT max(l.price) FROM lines l WHERE l.order_id = orders.id) > 2 "
            "THEN 'big' END AS size FROM orders"},
       }},
      {"subqueries_in_expressions",
       {
           // EXISTS / IN / ANY / ALL under OR, in the select list and HAVING
           // (delta/rewrite_decorrelate.cc), multi-column NOT IN
           // (delta/rewrite_not_in.cc): three-valued results in the output,
           // NULLs on both sides.
           {"exists_under_or",
            "SELECT c.id, c.name FROM customers c WHERE c.tier = 1 OR EXISTS (SELECT 1 FROM orders "
            "o WHERE o.cust_id = c.id AND o.status = 'paid')"},
           {"not_exists_under_or",
            "SELECT c.id FROM customers c WHERE c.region IS NULL OR NOT EXISTS (SELECT 1 FROM "
            "orders o WHERE o.cust_id = c.id)"},
           {"in_under_or_correlated",
            "SELECT o.id, o.amount FROM orders o WHERE o.amount > 80 OR o.qty IN (SELECT o2.qty "
            "FROM orders o2 WHERE o2.cust_id = o.cust_id AND o2.id <> o2.qty)"},
           {"in_under_or_uncorrelated_nulls",
            "SELECT e.k, e.v FROM events e WHERE e.v = 'x' OR e.k IN (SELECT a.k FROM audit a "
            "WHERE a.v = 'y')"},
           {"not_in_under_or_nulls",
            "SELECT e.k, e.v FROM events e WHERE e.v = 'z' OR e.k NOT IN (SELECT a.k FROM audit a "
            "WHERE a.v <> 'x')"},
           {"exists_in_select_list",
            "SELECT c.id, EXISTS (SELECT 1 FROM orders o WHERE o.cust_id = c.id AND o.amount > 50) "
            "AS big_spender FROM customers c"},
           {"in_select_list_three_valued",
            "SELECT e.k, e.v, e.k IN (SELECT a.k FROM audit a WHERE a.v = e.v) AS seen FROM "
            "events e"},
           {"all_in_select_list",
            "SELECT o.id, o.amount >= ALL (SELECT o2.amount FROM orders o2 WHERE o2.cust_id = "
            "o.cust_id) AS top FROM orders o"},
           {"exists_uncorrelated_select_list",
            "SELECT k, v, EXISTS (SELECT 1 FROM audit WHERE v = 'z') AS any_z FROM events"},
           {"exists_or_in_having",
            "SELECT o.cust_id, count(*) AS n FROM orders o GROUP BY o.cust_id HAVING count(*) > 3 "
            "OR EXISTS (SELECT 1 FROM customers c WHERE c.id = o.cust_id AND c.tier = 3)"},
           {"multi_column_not_in_nullable",
            "SELECT e.k, e.v FROM events e WHERE (e.k, e.v) NOT IN (SELECT a.k, a.v FROM audit a)"},
           {"multi_column_not_in_half_keyed",
            "SELECT o.id, o.qty FROM orders o WHERE (o.id, o.qty) NOT IN (SELECT c.id, c.tier FROM "
            "customers c)"},
       }},
      {"lateral_subqueries",
       {
           // LATERAL subqueries correlated by equalities (delta/rewrite_lateral.cc):
           // one row per outer row for an aggregate (count over no rows: 0),
           // NULL keys joining nothing, keyless sources, ON conditions.
           {"lateral_plain",
            "SELECT o.id, x.name, x.region FROM orders o, LATERAL (SELECT c.name, c.region FROM "
            "customers c WHERE c.id = o.cust_id) x"},
           {"lateral_left_aggregate",
            "SELECT c.id, s.n, s.total FROM customers c LEFT JOIN LATERAL (SELECT count(*) AS n, "
            "sum(o.amount) AS total FROM orders o WHERE o.cust_id = c.id) s ON true"},
           {"lateral_comma_aggregate_filtered",
            "SELECT c.id, s.n FROM customers c, LATERAL (SELECT count(*) AS n FROM orders o WHERE "
            "o.cust_id = c.id AND o.status = 'paid') s WHERE s.n < 2"},
           {"lateral_group_by",
            "SELECT c.id, s.status, s.n FROM customers c JOIN LATERAL (SELECT o.status, count(*) "
            "AS n FROM orders o WHERE o.cust_id = c.id GROUP BY o.status) s ON s.n >= 1"},
           {"lateral_keyless_nullable_key",
            "SELECT e.k, e.v, s.m FROM events e LEFT JOIN LATERAL (SELECT max(a.k) AS m FROM audit "
            "a WHERE a.v = e.v) s ON true"},
           {"lateral_distinct",
            "SELECT e.k, s.v FROM events e, LATERAL (SELECT DISTINCT a.v FROM audit a WHERE a.k = "
            "e.k) s"},
           {"lateral_left_on_condition",
            "SELECT o.id, x.sku, x.price FROM orders o LEFT JOIN LATERAL (SELECT l.sku, l.price "
            "FROM lines l WHERE l.order_id = o.id) x ON x.price > 2"},
           {"lateral_star_count",
            "SELECT * FROM customers c, LATERAL (SELECT count(*) AS n FROM orders o WHERE "
            "o.cust_id = c.id) s"},
           {"lateral_uncorrelated",
            "SELECT o.id, s.m FROM orders o, LATERAL (SELECT max(amount) AS m FROM orders) s"},
           {"lateral_two_keys",
            "SELECT e.k, e.v, s.n FROM events e, LATERAL (SELECT count(*) AS n FROM audit a WHERE "
            "a.k = e.k AND a.v = e.v) s"},
       }},
      {"full_refresh_only",
       {
           {"window_full_only", "SELECT id, row_number() OVER (ORDER BY id) AS rn FROM orders",
            false},
           {"limit_full_only", "SELECT id FROM orders ORDER BY amount DESC LIMIT 5", false},
           {"volatile_full_only", "SELECT id, amount FROM orders WHERE now() > '2000-01-01'",
            false},
       }},
  };
  return *groups;
}

uint64_t BaseSeed() {
  const char* s = std::getenv("TRICKLE_ORACLE_SEED");
  return s != nullptr ? std::strtoull(s, nullptr, 10) : kDefaultSeed;
}

int Batches() {
  const char* s = std::getenv("TRICKLE_ORACLE_BATCHES");
  return s != nullptr ? std::atoi(s) : 25;
}

class OracleTest : public ::testing::TestWithParam<OracleGroup> {};

void PrintTo(const OracleGroup& g, std::ostream* os) { *os << g.name; }

TEST_P(OracleTest, StreamTableEqualsQueryAfterEveryBatch) {
  const OracleGroup& group = GetParam();
  auto conn = trickle::testing::TestPostgres().Connect();
  ASSERT_TRUE(conn.ok()) << conn.status();
  // One seed per case, derived from the base and the case's place in the
  // matrix; a failure names it, and TRICKLE_ORACLE_SEED replays it.
  uint64_t index = 0;
  for (const auto& g : Groups()) {
    if (g.name == group.name) break;
    index += g.cases.size();
  }
  for (const OracleCase& c : group.cases) {
    OracleOptions options;
    options.seed = std::getenv("TRICKLE_ORACLE_SEED") != nullptr ? BaseSeed() : BaseSeed() + index;
    ++index;
    if (const char* only = std::getenv("TRICKLE_ORACLE_CASE"); only != nullptr && c.name != only)
      continue;
    options.batches = Batches();
    options.verbose = std::getenv("TRICKLE_ORACLE_VERBOSE") != nullptr;
    OracleStats stats;
    absl::Status s = RunOracleCase(**conn, c, options, &stats);
    if (!s.ok()) {
      ADD_FAILURE() << s.message();
      continue;
    }
    if (std::getenv("TRICKLE_ORACLE_EXPLAIN") != nullptr) {
      std::printf("== %s: %s\n%s\n", c.name.c_str(), c.query.c_str(), stats.explanation.c_str());
    }
    EXPECT_EQ(stats.batches, options.batches) << c.name;
    if (c.expect_differential) {
      EXPECT_GT(stats.changed_rows, 0) << c.name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Matrix, OracleTest, ::testing::ValuesIn(Groups()),
                         [](const ::testing::TestParamInfo<OracleGroup>& info) {
                           return info.param.name;
                         });

// Stream tables reading stream tables: each chain's upstream is refreshed
// first in the same snapshot, and its readers see it as a keyless source.
TEST(OracleChainTest, StreamTablesReadingStreamTables) {
  auto conn = trickle::testing::TestPostgres().Connect();
  ASSERT_TRUE(conn.ok()) << conn.status();
  std::vector<OracleCase> cases = {
      {"base_orders", "SELECT id, cust_id, amount, status FROM orders WHERE status <> 'void'"},
      {"chain_corr_where",
       "SELECT t.id, t.amount FROM st.t_base_orders t WHERE t.amount > (SELECT avg(t2.amount) "
       "FROM st.t_base_orders t2 WHERE t2.cust_id = t.cust_id)"},
      {"chain_corr_count",
       "SELECT c.id, (SELECT count(*) FROM st.t_base_orders t WHERE t.cust_id = c.id) AS n FROM "
       "customers c"},
      {"chain_lateral",
       "SELECT c.id, s.n, s.top FROM customers c LEFT JOIN LATERAL (SELECT count(*) AS n, "
       "max(t.amount) AS top FROM st.t_base_orders t WHERE t.cust_id = c.id) s ON true"},
  };
  OracleOptions options;
  options.seed = BaseSeed() + 1000;
  options.batches = Batches();
  options.verbose = std::getenv("TRICKLE_ORACLE_VERBOSE") != nullptr;
  std::vector<OracleStats> stats;
  std::vector<absl::Status> result = RunOracleSuite(**conn, MatrixDataset(), cases, options, &stats);
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_TRUE(result[i].ok()) << result[i].message();
    EXPECT_EQ(stats[i].batches, options.batches) << cases[i].name;
    EXPECT_GT(stats[i].changed_rows, 0) << cases[i].name;
  }
}

// At least 60 defining queries, as the engine's contract promises.
TEST(OracleMatrixTest, CoversAtLeastSixtyQueries) {
  size_t n = 0;
  for (const auto& g : Groups()) n += g.cases.size();
  EXPECT_GE(n, 60u);
}

}  // namespace
}  // namespace trickle::delta::testing
