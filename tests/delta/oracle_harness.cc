#include "tests/delta/oracle_harness.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "delta/catalog_adapter.h"
#include "tests/delta/random_choice.h"

namespace trickle::delta::testing {
namespace {

// Value generators: small domains, so groups collide, duplicates and NULLs
// are common.
std::string OrNull(std::mt19937_64& rng, double p, const std::string& v) {
  return Chance(rng, p) ? "NULL" : v;
}
std::string Region(std::mt19937_64& rng) {
  return Pick<std::string>(rng, {"'north'", "'south'", "'east'", "'west'", "NULL"});
}
std::string Tier(std::mt19937_64& rng) {
  return OrNull(rng, 0.2, std::to_string(Uniform(rng, 1, 3)));
}
std::string CustId(std::mt19937_64& rng) {
  return OrNull(rng, 0.1, std::to_string(Uniform(rng, 1, 45)));
}
std::string Amount(std::mt19937_64& rng) {
  return OrNull(rng, 0.1, std::to_string(Uniform(rng, -10, 100)));
}
std::string Status(std::mt19937_64& rng) {
  return Pick<std::string>(rng, {"'new'", "'paid'", "'shipped'", "'void'"});
}
std::string Sku(std::mt19937_64& rng) {
  return OrNull(rng, 0.1, absl::StrCat("'s", Uniform(rng, 1, 12), "'"));
}
std::string Price(std::mt19937_64& rng) {
  return Pick<std::string>(rng, {"1.50", "2.00", "3.25", "10", "NULL", "0.10"});
}
std::string Category(std::mt19937_64& rng) {
  return Pick<std::string>(rng, {"'a'", "'b'", "'c'", "NULL"});
}
std::string SmallK(std::mt19937_64& rng) {
  return OrNull(rng, 0.15, std::to_string(Uniform(rng, 1, 8)));
}
std::string SmallV(std::mt19937_64& rng) {
  return Pick<std::string>(rng, {"'x'", "'y'", "'z'", "NULL"});
}

absl::Status Exec(PgConnection& conn, const std::string& sql, bool verbose = false) {
  if (verbose) std::fprintf(stderr, "SQL> %s\n", sql.c_str());
  auto r = conn.Exec(sql);
  if (!r.ok())
    return absl::Status(r.status().code(), absl::StrCat(r.status().message(), "\nin: ", sql));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> Column(PgConnection& conn, const std::string& sql) {
  TRICKLE_ASSIGN_OR_RETURN(PgResult r, conn.Exec(sql));
  std::vector<std::string> out;
  for (int i = 0; i < r.rows(); ++i)
    out.emplace_back(r.IsNull(i, 0) ? "NULL" : std::string(r.Get(i, 0)));
  return out;
}

absl::StatusOr<int64_t> Scalar(PgConnection& conn, const std::string& sql) {
  TRICKLE_ASSIGN_OR_RETURN(PgResult r, conn.Exec(sql));
  if (r.rows() != 1) return absl::InternalError(absl::StrCat("expected one row from: ", sql));
  return std::stoll(std::string(r.Get(0, 0)));
}

std::string CustomerRow(std::mt19937_64& rng, int id) {
  return absl::StrCat("(", id, ", 'c", id, "', ", Region(rng), ", ", Tier(rng), ")");
}
std::string OrderRow(std::mt19937_64& rng, int id) {
  return absl::StrCat("(", id, ", ", CustId(rng), ", ", Amount(rng), ", ", Status(rng), ", ",
                      Uniform(rng, 1, 5), ")");
}
std::string LineRow(std::mt19937_64& rng) {
  return absl::StrCat("(", OrNull(rng, 0.05, std::to_string(Uniform(rng, 1, 260))), ", ", Sku(rng),
                      ", ", Price(rng), ", ", Uniform(rng, 1, 3), ")");
}
std::string ProductRow(std::mt19937_64& rng, int n) {
  return absl::StrCat("('s", n, "', ", Category(rng), ", ",
                      OrNull(rng, 0.1, std::to_string(Uniform(rng, 1, 20))), ")");
}
std::string SmallRow(std::mt19937_64& rng) {
  return absl::StrCat("(", SmallK(rng), ", ", SmallV(rng), ")");
}
// Composite values: every NULL shape a composite can take. ROW(NULL, NULL)
// IS NULL and yet is a value (not a NULL datum): equal to itself, one group,
// counted by count(x).
std::string Pair(std::mt19937_64& rng) {
  return Pick<std::string>(rng, {"ROW(1, 'x')::src.pair", "ROW(1, NULL)::src.pair",
                                 "ROW(NULL, 'x')::src.pair", "ROW(NULL, NULL)::src.pair",
                                 "ROW(2, 'y')::src.pair", "ROW(NULL, NULL)::src.pair", "NULL"});
}
std::string AccountCode(std::mt19937_64& rng) {
  return absl::StrFormat("'AC-%03d'", Uniform(rng, 1, 30));
}
// Money as numeric(12,2): cents, large values, zero, NULL.
std::string Money(std::mt19937_64& rng) {
  return Pick<std::string>(rng, {"12.50", "-3.75", "0.00", "1000000.01", "99.99", "7", "NULL",
                                 absl::StrFormat("%d.%02d", Uniform(rng, 0, 500), Uniform(rng, 0, 99))});
}
std::string Kind(std::mt19937_64& rng) {
  return Pick<std::string>(rng, {"'checking'", "'savings'", "'loan'", "NULL"});
}
std::string AccountRow(std::mt19937_64& rng, int n) {
  return absl::StrFormat("('AC-%03d', %s, %s, %s)", n, Pair(rng), Money(rng), Kind(rng));
}
std::string LedgerRow(std::mt19937_64& rng) {
  return absl::StrCat("(", OrNull(rng, 0.1, AccountCode(rng)), ", ", Money(rng), ", ", Pair(rng),
                      ", ", Pick<std::string>(rng, {"'a'", "'b'", "NULL"}), ")");
}

std::string WeirdRow(std::mt19937_64& rng, int id) {
  return absl::StrCat("(", id, ", ", Pick<std::string>(rng, {"'p'", "'q'", "NULL"}), ", ",
                      OrNull(rng, 0.2, std::to_string(Uniform(rng, 1, 4))), ")");
}

std::string Values(const std::vector<std::string>& rows) { return absl::StrJoin(rows, ", "); }

// Changes to a keyless table: new rows and copies of existing ones (up to
// max + 2), then updates (`set_clause`) and deletes of up to `max` single rows
// picked by ctid.
void KeylessChanges(std::mt19937_64& rng, const std::string& table, int max,
                    const std::function<std::string()>& new_row,
                    const std::function<std::string()>& set_clause, std::vector<std::string>* sql) {
  const std::string pick =
      absl::StrCat("ctid = (SELECT ctid FROM ", table, " ORDER BY random() LIMIT 1)");
  for (int i = Uniform(rng, 0, max + 2); i > 0; --i) {
    if (Chance(rng, 0.3)) {
      sql->push_back(
          absl::StrCat("INSERT INTO ", table, " SELECT * FROM ", table, " ORDER BY random() LIMIT 1"));
    } else {
      sql->push_back(absl::StrCat("INSERT INTO ", table, " VALUES ", new_row()));
    }
  }
  for (int i = Uniform(rng, 0, max); i > 0; --i)
    sql->push_back(absl::StrCat("UPDATE ", table, " SET ", set_clause(), " WHERE ", pick));
  for (int i = Uniform(rng, 0, max); i > 0; --i)
    sql->push_back(absl::StrCat("DELETE FROM ", table, " WHERE ", pick));
}

}  // namespace

absl::Status CreateSourceTables(PgConnection& conn, std::mt19937_64& rng) {
  TRICKLE_RETURN_IF_ERROR(Exec(conn, R"sql(
    DROP SCHEMA IF EXISTS src CASCADE;
    DROP SCHEMA IF EXISTS "Odd Schema" CASCADE;
    DROP SCHEMA IF EXISTS st CASCADE;
    CREATE SCHEMA src;
    CREATE SCHEMA "Odd Schema";
    CREATE SCHEMA st;
    CREATE TABLE src.customers (id int PRIMARY KEY, name text NOT NULL, region text, tier int);
    CREATE TABLE src.orders (id int PRIMARY KEY, cust_id int, amount int, status text NOT NULL, qty int NOT NULL);
    CREATE INDEX ON src.orders (cust_id);
    CREATE TABLE src.lines (order_id int, sku text, price numeric(8,2), n int NOT NULL);
    CREATE INDEX ON src.lines (order_id);
    CREATE TABLE src.products (sku text PRIMARY KEY, category text, cost int);
    CREATE TABLE src.events (k int, v text);
    CREATE TABLE src.audit (k int, v text);
    CREATE TABLE "Odd Schema"."we""ird" ("select" int PRIMARY KEY, "a""b" text, "Group" int);
    CREATE TYPE src.pair AS (a int, b text);
    CREATE DOMAIN src.money12 AS numeric(12,2) CHECK (VALUE > -100000000);
    CREATE DOMAIN src.kind AS text CHECK (VALUE <> '');
    CREATE TABLE src.accounts (code text PRIMARY KEY, owner src.pair, balance numeric(12,2), kind src.kind);
    CREATE TABLE src.ledger (acct text, amount src.money12, ref src.pair, memo text);
    CREATE INDEX ON src.ledger (acct);
    ALTER TABLE src.customers REPLICA IDENTITY FULL;
    ALTER TABLE src.orders REPLICA IDENTITY FULL;
    ALTER TABLE src.lines REPLICA IDENTITY FULL;
    ALTER TABLE src.products REPLICA IDENTITY FULL;
    ALTER TABLE src.events REPLICA IDENTITY FULL;
    ALTER TABLE src.audit REPLICA IDENTITY FULL;
    ALTER TABLE src.accounts REPLICA IDENTITY FULL;
    ALTER TABLE src.ledger REPLICA IDENTITY FULL;
  )sql"));
  std::vector<std::string> rows;
  for (int id = 1; id <= 30; ++id) rows.push_back(CustomerRow(rng, id));
  TRICKLE_RETURN_IF_ERROR(Exec(conn, "INSERT INTO src.customers VALUES " + Values(rows)));
  rows.clear();
  for (int id = 1; id <= 150; ++id) rows.push_back(OrderRow(rng, id));
  TRICKLE_RETURN_IF_ERROR(Exec(conn, "INSERT INTO src.orders VALUES " + Values(rows)));
  rows.clear();
  for (int i = 0; i < 200; ++i) rows.push_back(LineRow(rng));
  for (int i = 0; i < 20; ++i)
    rows.push_back(rows[Uniform(rng, 0, rows.size() - 1)]);  // duplicates
  TRICKLE_RETURN_IF_ERROR(Exec(conn, "INSERT INTO src.lines VALUES " + Values(rows)));
  rows.clear();
  for (int n = 1; n <= 12; ++n) {
    if (Chance(rng, 0.85)) rows.push_back(ProductRow(rng, n));
  }
  TRICKLE_RETURN_IF_ERROR(Exec(conn, "INSERT INTO src.products VALUES " + Values(rows)));
  for (const char* t : {"src.events", "src.audit"}) {
    rows.clear();
    for (int i = 0; i < 50; ++i) rows.push_back(SmallRow(rng));
    TRICKLE_RETURN_IF_ERROR(Exec(conn, absl::StrCat("INSERT INTO ", t, " VALUES ", Values(rows))));
  }
  rows.clear();
  for (int id = 1; id <= 20; ++id) rows.push_back(WeirdRow(rng, id));
  TRICKLE_RETURN_IF_ERROR(
      Exec(conn, "INSERT INTO \"Odd Schema\".\"we\"\"ird\" VALUES " + Values(rows)));
  rows.clear();
  for (int n = 1; n <= 25; ++n) rows.push_back(AccountRow(rng, n));
  TRICKLE_RETURN_IF_ERROR(Exec(conn, "INSERT INTO src.accounts VALUES " + Values(rows)));
  rows.clear();
  for (int i = 0; i < 80; ++i) rows.push_back(LedgerRow(rng));
  for (int i = 0; i < 10; ++i) rows.push_back(rows[Uniform(rng, 0, rows.size() - 1)]);
  TRICKLE_RETURN_IF_ERROR(Exec(conn, "INSERT INTO src.ledger VALUES " + Values(rows)));
  return Exec(conn, "ANALYZE");
}

absl::Status ApplyRandomBatch(PgConnection& conn, std::mt19937_64& rng) {
  std::vector<std::string> sql;
  auto ids = [&](const std::string& q) { return Column(conn, q); };
  TRICKLE_ASSIGN_OR_RETURN(auto cust, ids("SELECT id FROM src.customers ORDER BY id"));
  TRICKLE_ASSIGN_OR_RETURN(auto ord, ids("SELECT id FROM src.orders ORDER BY id"));
  TRICKLE_ASSIGN_OR_RETURN(int64_t max_c,
                           Scalar(conn, "SELECT coalesce(max(id), 0) FROM src.customers"));
  TRICKLE_ASSIGN_OR_RETURN(int64_t max_o,
                           Scalar(conn, "SELECT coalesce(max(id), 0) FROM src.orders"));
  TRICKLE_ASSIGN_OR_RETURN(
      int64_t max_w,
      Scalar(conn, "SELECT coalesce(max(\"select\"), 0) FROM \"Odd Schema\".\"we\"\"ird\""));
  int next_c = std::max<int64_t>(max_c, 45) + 1, next_o = max_o + 1, next_w = max_w + 1;
  auto some = [&](const std::vector<std::string>& v) {
    return v.empty() ? std::string("0") : Pick(rng, v);
  };

  // customers
  for (int i = Uniform(rng, 0, 3); i > 0; --i) {
    // Reuse a deleted id now and then: a key that leaves and comes back.
    int id = Chance(rng, 0.3) ? Uniform(rng, 1, 30) : next_c++;
    sql.push_back(absl::StrCat("INSERT INTO src.customers VALUES ", CustomerRow(rng, id),
                               " ON CONFLICT DO NOTHING"));
  }
  for (int i = Uniform(rng, 0, 4); i > 0; --i) {
    sql.push_back(absl::StrCat("UPDATE src.customers SET region = ", Region(rng),
                               ", tier = ", Tier(rng), " WHERE id = ", some(cust)));
  }
  if (Chance(rng, 0.3)) {  // primary key change
    sql.push_back(
        absl::StrCat("UPDATE src.customers SET id = ", next_c++, " WHERE id = ", some(cust)));
  }
  for (int i = Uniform(rng, 0, 2); i > 0; --i) {
    sql.push_back(absl::StrCat("DELETE FROM src.customers WHERE id = ", some(cust)));
  }
  if (Chance(rng, 0.3)) {
    // A join partner deleted in the same batch as the key change pointing at it.
    std::string c = some(cust);
    sql.push_back(absl::StrCat("UPDATE src.orders SET cust_id = ", c, " WHERE id = ", some(ord)));
    sql.push_back(absl::StrCat("DELETE FROM src.customers WHERE id = ", c));
  }
  // orders
  for (int i = Uniform(rng, 0, 6); i > 0; --i) {
    sql.push_back(absl::StrCat("INSERT INTO src.orders VALUES ", OrderRow(rng, next_o++)));
  }
  for (int i = Uniform(rng, 0, 6); i > 0; --i) {
    switch (Uniform(rng, 0, 3)) {
      case 0:
        sql.push_back(absl::StrCat("UPDATE src.orders SET amount = ", Amount(rng),
                                   " WHERE id = ", some(ord)));
        break;
      case 1:  // join-key change
        sql.push_back(absl::StrCat("UPDATE src.orders SET cust_id = ", CustId(rng),
                                   " WHERE id = ", some(ord)));
        break;
      case 2:
        sql.push_back(absl::StrCat("UPDATE src.orders SET status = ", Status(rng),
                                   ", qty = ", Uniform(rng, 1, 5), " WHERE id = ", some(ord)));
        break;
      default:  // an update that changes nothing
        sql.push_back(absl::StrCat("UPDATE src.orders SET amount = amount WHERE id = ", some(ord)));
    }
  }
  if (Chance(rng, 0.2)) {
    sql.push_back(absl::StrCat("UPDATE src.orders SET id = ", next_o++, " WHERE id = ", some(ord)));
  }
  for (int i = Uniform(rng, 0, 5); i > 0; --i) {
    sql.push_back(absl::StrCat("DELETE FROM src.orders WHERE id = ", some(ord)));
  }
  if (Chance(rng, 0.25)) {
    // A group emptied and refilled in one batch.
    std::string s = Status(rng);
    sql.push_back(absl::StrCat("DELETE FROM src.orders WHERE status = ", s));
    for (int i = Uniform(rng, 0, 3); i > 0; --i) {
      sql.push_back(absl::StrCat("INSERT INTO src.orders VALUES (", next_o++, ", ", CustId(rng),
                                 ", ", Amount(rng), ", ", s, ", ", Uniform(rng, 1, 5), ")"));
    }
  }
  if (Chance(rng, 0.1)) {
    sql.push_back("UPDATE src.orders SET cust_id = NULL WHERE id % 7 = 3");
  }
  // lines (no key: duplicates, ctid-addressed changes)
  KeylessChanges(
      rng, "src.lines", 4, [&] { return LineRow(rng); },
      [&] {
        return Pick<std::string>(rng, {"price = " + Price(rng), "sku = " + Sku(rng),
                                       "order_id = " + std::to_string(Uniform(rng, 1, 260)),
                                       "n = " + std::to_string(Uniform(rng, 1, 3))});
      },
      &sql);
  // products
  if (Chance(rng, 0.5)) {
    int n = Uniform(rng, 1, 14);
    sql.push_back(absl::StrCat("INSERT INTO src.products VALUES ", ProductRow(rng, n),
                               " ON CONFLICT (sku) DO UPDATE SET category = EXCLUDED.category"));
  }
  if (Chance(rng, 0.4)) {
    sql.push_back(absl::StrCat(
        "UPDATE src.products SET cost = ", OrNull(rng, 0.1, std::to_string(Uniform(rng, 1, 20))),
        ", category = ", Category(rng), " WHERE sku = 's", Uniform(rng, 1, 14), "'"));
  }
  if (Chance(rng, 0.2))
    sql.push_back(
        absl::StrCat("DELETE FROM src.products WHERE sku = 's", Uniform(rng, 1, 14), "'"));
  // events / audit: small domains, NULLs, duplicates; occasionally emptied.
  for (const char* t : {"src.events", "src.audit"}) {
    for (int i = Uniform(rng, 0, 4); i > 0; --i)
      sql.push_back(absl::StrCat("INSERT INTO ", t, " VALUES ", SmallRow(rng)));
    for (int i = Uniform(rng, 0, 3); i > 0; --i) {
      sql.push_back(absl::StrCat("DELETE FROM ", t, " WHERE ctid = (SELECT ctid FROM ", t,
                                 " ORDER BY random() LIMIT 1)"));
    }
    if (Chance(rng, 0.3)) {
      sql.push_back(absl::StrCat("UPDATE ", t, " SET v = ", SmallV(rng),
                                 " WHERE k IS NOT DISTINCT FROM ", SmallK(rng)));
    }
    if (Chance(rng, 0.04)) sql.push_back(absl::StrCat("DELETE FROM ", t));
  }
  // the hostile table
  if (Chance(rng, 0.6))
    sql.push_back(
        absl::StrCat("INSERT INTO \"Odd Schema\".\"we\"\"ird\" VALUES ", WeirdRow(rng, next_w++)));
  if (Chance(rng, 0.5)) {
    sql.push_back(absl::StrCat("UPDATE \"Odd Schema\".\"we\"\"ird\" SET \"Group\" = ",
                               OrNull(rng, 0.2, std::to_string(Uniform(rng, 1, 4))),
                               " WHERE \"select\" = ", Uniform(rng, 1, next_w)));
  }
  if (Chance(rng, 0.3)) {
    sql.push_back(absl::StrCat("DELETE FROM \"Odd Schema\".\"we\"\"ird\" WHERE \"select\" = ",
                               Uniform(rng, 1, next_w)));
  }
  // accounts (text key, composite, domain, money) and ledger (keyless).
  for (int i = Uniform(rng, 0, 2); i > 0; --i) {
    sql.push_back(absl::StrCat("INSERT INTO src.accounts VALUES ",
                               AccountRow(rng, Uniform(rng, 1, 32)), " ON CONFLICT DO NOTHING"));
  }
  for (int i = Uniform(rng, 0, 3); i > 0; --i) {
    sql.push_back(absl::StrCat(
        "UPDATE src.accounts SET ",
        Pick<std::string>(rng, {"owner = " + Pair(rng), "balance = " + Money(rng),
                                "kind = " + Kind(rng),
                                "balance = balance + 0.01, owner = " + Pair(rng)}),
        " WHERE code = ", AccountCode(rng)));
  }
  if (Chance(rng, 0.2)) {  // key change
    const int to = Uniform(rng, 1, 40);
    sql.push_back(absl::StrFormat(
        "UPDATE src.accounts SET code = 'AC-%03d' WHERE code = %s AND NOT EXISTS "
        "(SELECT 1 FROM src.accounts WHERE code = 'AC-%03d')",
        to, AccountCode(rng), to));
  }
  if (Chance(rng, 0.3))
    sql.push_back(absl::StrCat("DELETE FROM src.accounts WHERE code = ", AccountCode(rng)));
  KeylessChanges(
      rng, "src.ledger", 3, [&] { return LedgerRow(rng); },
      [&] {
        return Pick<std::string>(rng, {"ref = " + Pair(rng), "amount = " + Money(rng),
                                       "acct = " + AccountCode(rng)});
      },
      &sql);
  if (Chance(rng, 0.15)) {  // every row with one composite value at once
    sql.push_back(absl::StrCat("DELETE FROM src.ledger WHERE ref IS NOT DISTINCT FROM ", Pair(rng)));
  }
  // random() above only picks rows; the seed makes it repeatable.
  TRICKLE_RETURN_IF_ERROR(
      Exec(conn, absl::StrCat("SELECT setseed(", (rng() % 1000000) / 1000000.0, ")")));
  for (const auto& s : sql) TRICKLE_RETURN_IF_ERROR(Exec(conn, s));
  return absl::OkStatus();
}

namespace {

std::string QuotedColumns(PgConnection& conn, const DeltaPlan& plan, bool hidden_too) {
  std::vector<std::string> cols;
  for (const auto& c : plan.columns) {
    if (!c.hidden || hidden_too) cols.push_back(conn.QuoteIdentifier(c.name));
  }
  return absl::StrJoin(cols, ", ");
}

absl::Status RunStatements(PgConnection& conn, const std::vector<std::string>& sql, bool verbose) {
  for (const auto& s : sql) TRICKLE_RETURN_IF_ERROR(Exec(conn, s, verbose));
  return absl::OkStatus();
}

// The plan's full refresh, in a transaction of its own.
absl::Status RunFullRefresh(PgConnection& conn, const DeltaPlan& plan, bool verbose) {
  TRICKLE_RETURN_IF_ERROR(Exec(conn, "BEGIN"));
  TRICKLE_RETURN_IF_ERROR(RunStatements(conn, plan.full_refresh_sql, verbose));
  return Exec(conn, "COMMIT");
}

// Rows that differ between the stream table and the query, as text.
absl::StatusOr<std::string> OracleDiff(PgConnection& conn, const std::string& st,
                                       const std::string& cols, const std::string& query) {
  std::string q = absl::StrCat("SELECT * FROM (", query, ") q");
  std::string s = absl::StrCat("SELECT ", cols, " FROM ", st);
  std::string sql = absl::StrCat(
      "SELECT 'only in stream table' AS side, x::text FROM (", s, " EXCEPT ALL ", q,
      ") x UNION ALL SELECT 'only in query', y::text FROM (", q, " EXCEPT ALL ", s, ") y LIMIT 30");
  TRICKLE_ASSIGN_OR_RETURN(PgResult r, conn.Exec(sql));
  std::string out;
  for (int i = 0; i < r.rows(); ++i)
    absl::StrAppend(&out, "  ", r.Get(i, 0), ": ", r.Get(i, 1), "\n");
  return out;
}

}  // namespace

OracleDataset MatrixDataset() {
  return OracleDataset{"src, public", CreateSourceTables, ApplyRandomBatch};
}

absl::Status RunOracleCase(PgConnection& conn, const OracleCase& c, const OracleOptions& options,
                           OracleStats* stats) {
  std::vector<OracleStats> all;
  std::vector<absl::Status> result = RunOracleSuite(conn, MatrixDataset(), {c}, options, &all);
  if (stats != nullptr) *stats = all[0];
  return result[0];
}

namespace {

// A relation some stream table reads: its rows before each batch are copied,
// and its delta table is the difference.
struct TrackedRelation {
  std::string name;     // quoted schema.name
  std::string columns;  // quoted, as the plans read them
  bool delta_ready = false;
};

// One case of a suite while it runs.
struct SuiteCase {
  const OracleCase* c = nullptr;
  DeltaPlan plan;
  bool differential = false;
  bool active = false;       // still refreshed (not refused, not failed)
  std::string st;            // st.<quoted name>
  std::string cols;          // its visible columns, quoted
  std::vector<int> sources;  // TrackedRelation indexes, in plan.sources order
  absl::Status status;
  OracleStats stats;
};

}  // namespace

std::vector<absl::Status> RunOracleSuite(PgConnection& conn, const OracleDataset& data,
                                         const std::vector<OracleCase>& cases,
                                         const OracleOptions& options,
                                         std::vector<OracleStats>* stats) {
  std::mt19937_64 rng(options.seed);
  std::vector<SuiteCase> run(cases.size());
  std::vector<TrackedRelation> tracked;
  auto finish = [&]() {
    std::vector<absl::Status> out;
    if (stats != nullptr) stats->clear();
    for (auto& r : run) {
      out.push_back(r.status);
      if (stats != nullptr) stats->push_back(r.stats);
    }
    return out;
  };
  auto fail = [&](const OracleCase& c, const std::string& what) {
    return absl::InternalError(
        absl::StrCat("case ", c.name, " seed ", options.seed, ": ", what, "\nquery: ", c.query,
                     "\nreplay: TRICKLE_ORACLE_SEED=", options.seed,
                     " TRICKLE_ORACLE_CASE=", c.name, " ", options.replay_command));
  };
  auto fail_all = [&](const std::string& what) {
    for (size_t i = 0; i < run.size(); ++i) {
      if (run[i].status.ok() && (run[i].active || run[i].c == nullptr))
        run[i].status = fail(cases[i], what);
      run[i].active = false;
    }
    return finish();
  };
  auto setup = [&]() -> absl::Status {
    TRICKLE_RETURN_IF_ERROR(Exec(conn, absl::StrCat("SET search_path = ", data.search_path)));
    TRICKLE_RETURN_IF_ERROR(data.create(conn, rng));
    return Exec(conn, "DROP SCHEMA IF EXISTS st CASCADE; CREATE SCHEMA st");
  };
  if (auto s = setup(); !s.ok()) return fail_all(absl::StrCat("creating the data: ", s.ToString()));

  // The stream tables, in order.
  std::set<std::string> stream_tables;  // "st.t_<name>" of the cases so far
  for (size_t i = 0; i < cases.size(); ++i) {
    const OracleCase& c = cases[i];
    SuiteCase& r = run[i];
    r.c = &c;
    auto step = [&]() -> absl::Status {
      auto facts = GatherCatalogFacts(conn, c.query);
      if (!facts.ok()) return fail(c, absl::StrCat("gathering facts: ", facts.status().ToString()));
      PlanOptions plan_options;
      for (auto& rel : facts->relations) {
        if (stream_tables.count(absl::StrCat(rel.schema, ".", rel.name))) {
          // An upstream stream table: read by its visible columns, no key.
          std::erase_if(rel.columns,
                        [](const ColumnFacts& col) { return col.name.rfind("__pgt_", 0) == 0; });
          rel.key.clear();
        }
        std::string name =
            absl::StrCat(conn.QuoteIdentifier(rel.schema), ".", conn.QuoteIdentifier(rel.name));
        int k = -1;
        for (size_t t = 0; t < tracked.size(); ++t) {
          if (tracked[t].name == name) k = t;
        }
        if (k < 0) {
          std::vector<std::string> cols;
          for (const auto& col : rel.columns) cols.push_back(conn.QuoteIdentifier(col.name));
          tracked.push_back({name, absl::StrJoin(cols, ", ")});
          k = tracked.size() - 1;
        }
        plan_options.delta_tables[absl::StrCat(rel.schema, ".", rel.name)] =
            absl::StrCat("pg_temp.delta_", k);
      }
      StreamTableSpec spec{"st", "t_" + c.name, c.query, c.mode};
      auto plan = BuildDeltaPlan(spec, *facts, plan_options);
      if (!plan.ok()) {
        if (!c.expect_differential && c.mode == RefreshMode::kDifferential &&
            absl::IsInvalidArgument(plan.status()) &&
            plan.status().message().find("cannot be maintained differentially") !=
                std::string::npos &&
            plan.status().message().find(c.refused_because) != std::string::npos) {
          r.stats.refused = true;
          r.stats.explanation = std::string(plan.status().message());
          return absl::OkStatus();
        }
        return fail(c, absl::StrCat("planning: ", plan.status().ToString()));
      }
      r.plan = std::move(*plan);
      r.differential = r.plan.maintained_mode == RefreshMode::kDifferential;
      if (r.differential != c.expect_differential) {
        return fail(c, absl::StrCat("expected a ",
                                    c.expect_differential ? "differential" : "full-refresh-only",
                                    " plan, got: ", r.plan.explanation));
      }
      if (!r.differential &&
          r.plan.full_refresh_reason.find(c.refused_because) == std::string::npos) {
        return fail(c, absl::StrCat("expected the full-refresh reason to name \"",
                                    c.refused_because, "\", got: ", r.plan.full_refresh_reason));
      }
      r.stats.explanation = r.plan.explanation;
      for (const auto& src : r.plan.sources) {
        std::string name =
            absl::StrCat(conn.QuoteIdentifier(src.schema), ".", conn.QuoteIdentifier(src.name));
        for (size_t t = 0; t < tracked.size(); ++t) {
          if (tracked[t].name == name) r.sources.push_back(t);
        }
      }
      r.st = absl::StrCat("st.", conn.QuoteIdentifier(spec.name));
      r.cols = QuotedColumns(conn, r.plan, false);
      for (const auto& ddl : r.plan.storage_ddl) {
        if (auto s = Exec(conn, ddl, options.verbose); !s.ok())
          return fail(c, absl::StrCat("storage DDL: ", s.ToString()));
      }
      stream_tables.insert(absl::StrCat("st.", spec.name));
      if (auto s = RunFullRefresh(conn, r.plan, options.verbose); !s.ok()) {
        (void)conn.Exec("ROLLBACK");
        return fail(c, absl::StrCat("full refresh: ", s.ToString()));
      }
      auto diff = OracleDiff(conn, r.st, r.cols, c.query);
      if (!diff.ok())
        return fail(c, absl::StrCat("oracle query failed: ", diff.status().ToString()));
      if (!diff->empty()) {
        return fail(c, absl::StrCat("after the initial full refresh: stream table differs from the "
                                    "query:\n",
                                    *diff));
      }
      r.active = true;
      return absl::OkStatus();
    };
    r.status = step();
  }

  for (int batch = 1; batch <= options.batches; ++batch) {
    const std::string when = absl::StrCat("batch ", batch);
    bool any = false;
    for (const auto& r : run) any |= r.active;
    if (!any) break;
    // 1. The pre-state copies.
    for (size_t t = 0; t < tracked.size(); ++t) {
      tracked[t].delta_ready = false;
      auto s = Exec(conn, absl::StrCat("DROP TABLE IF EXISTS pg_temp.before_", t,
                                       "; CREATE TEMP TABLE before_", t, " AS SELECT ",
                                       tracked[t].columns, " FROM ", tracked[t].name));
      if (!s.ok()) return fail_all(absl::StrCat(when, ": copying the pre-state: ", s.ToString()));
    }
    // 2. The batch, committed.
    if (auto s = Exec(conn, "BEGIN"); !s.ok()) return fail_all(s.ToString());
    if (auto s = data.apply_batch(conn, rng); !s.ok()) {
      (void)conn.Exec("ROLLBACK");
      return fail_all(absl::StrCat(when, ": applying the batch: ", s.ToString()));
    }
    if (auto s = Exec(conn, "COMMIT"); !s.ok()) return fail_all(s.ToString());
    // 3. Refresh and check each stream table, in one snapshot.
    if (auto s = Exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ"); !s.ok())
      return fail_all(s.ToString());
    for (size_t i = 0; i < run.size(); ++i) {
      SuiteCase& r = run[i];
      if (!r.active) continue;
      const OracleCase& c = *r.c;
      // The delta tables of its sources (an upstream stream table's after
      // that one's refresh, earlier in this transaction).
      if (r.differential) {
        for (int t : r.sources) {
          if (tracked[t].delta_ready) continue;
          const TrackedRelation& tr = tracked[t];
          auto s = Exec(
              conn,
              absl::StrCat(
                  "CREATE TEMP TABLE delta_", t,
                  " ON COMMIT DROP AS SELECT 'D'::\"char\" AS __op, * FROM (SELECT * FROM before_",
                  t, " EXCEPT ALL SELECT ", tr.columns, " FROM ", tr.name,
                  ") x UNION ALL SELECT 'I'::\"char\", * FROM (SELECT ", tr.columns, " FROM ",
                  tr.name, " EXCEPT ALL SELECT * FROM before_", t, ") y; ANALYZE delta_", t));
          if (!s.ok()) {
            (void)conn.Exec("ROLLBACK");
            return fail_all(absl::StrCat(when, ": filling a delta table: ", s.ToString()));
          }
          tracked[t].delta_ready = true;
        }
      }
      if (auto s = Exec(conn, "SAVEPOINT oracle_case"); !s.ok()) return fail_all(s.ToString());
      const absl::Time start = absl::Now();
      absl::Status s = [&]() -> absl::Status {
        if (!r.differential) {
          TRICKLE_RETURN_IF_ERROR(RunStatements(conn, r.plan.full_refresh_sql, options.verbose));
          r.stats.refresh_ms += absl::ToDoubleMilliseconds(absl::Now() - start);
          return absl::OkStatus();
        }
        for (int t : r.sources) {
          TRICKLE_ASSIGN_OR_RETURN(int64_t n,
                                   Scalar(conn, absl::StrCat("SELECT count(*) FROM delta_", t)));
          r.stats.changed_rows += n;
        }
        // No-op updates are suppressed: the MERGE touches exactly the rows
        // whose stored values change (an update counts once, as a delete plus
        // an insert in the difference of the table's contents).
        const std::string all = QuotedColumns(conn, r.plan, true);
        TRICKLE_RETURN_IF_ERROR(
            Exec(conn, absl::StrCat("CREATE TEMP TABLE st_before_", i, " ON COMMIT DROP AS SELECT ",
                                    all, " FROM ", r.st)));
        if (options.verbose) std::fprintf(stderr, "SQL> %s\n", r.plan.merge_sql.c_str());
        const absl::Time merge_start = absl::Now();
        TRICKLE_ASSIGN_OR_RETURN(PgResult merged, conn.Exec(r.plan.merge_sql));
        r.stats.refresh_ms += absl::ToDoubleMilliseconds(absl::Now() - merge_start);
        const std::string before = absl::StrCat("st_before_", i);
        TRICKLE_ASSIGN_OR_RETURN(
            int64_t changed,
            Scalar(conn, absl::StrCat("SELECT count(*) FROM ((SELECT ", all, " FROM ", before,
                                      " EXCEPT ALL SELECT ", all, " FROM ", r.st,
                                      ") UNION ALL (SELECT ", all, " FROM ", r.st,
                                      " EXCEPT ALL SELECT ", all, " FROM ", before, ")) x")));
        const int64_t affected = merged.AffectedRows();
        if (affected > changed || affected < (changed + 1) / 2) {
          return absl::InternalError(
              absl::StrCat("the MERGE touched ", affected, " rows but ", changed,
                           " stored rows differ (inserted + deleted, an update counting "
                           "twice): no-op updates were not suppressed"));
        }
        return absl::OkStatus();
      }();
      if (!s.ok()) {
        r.status = fail(c, absl::StrCat(when, ": refresh failed: ", s.ToString(),
                                        "\nexplanation:\n", r.plan.explanation));
      } else {
        auto diff = OracleDiff(conn, r.st, r.cols, c.query);
        if (!diff.ok()) {
          r.status =
              fail(c, absl::StrCat(when, ": oracle query failed: ", diff.status().ToString()));
        } else if (!diff->empty()) {
          r.status = fail(c, absl::StrCat(when, ": stream table differs from the query:\n", *diff,
                                          "explanation:\n", r.plan.explanation, "delta SQL:\n",
                                          r.plan.delta_sql));
        }
      }
      if (!r.status.ok()) {
        r.active = false;
        if (auto x = Exec(conn, "ROLLBACK TO SAVEPOINT oracle_case"); !x.ok())
          return fail_all(x.ToString());
      }
      if (auto x = Exec(conn, "RELEASE SAVEPOINT oracle_case"); !x.ok())
        return fail_all(x.ToString());
      if (r.active) r.stats.batches = batch;
    }
    if (auto s = Exec(conn, "COMMIT"); !s.ok()) return fail_all(s.ToString());
  }

  for (SuiteCase& r : run) {
    if (!r.active || !r.differential) continue;
    // Hidden state too: the maintained table equals a fresh full refresh.
    const std::string all = QuotedColumns(conn, r.plan, true);
    absl::Status s =
        Exec(conn,
             absl::StrCat(
                 "DROP TABLE IF EXISTS pg_temp.maintained; CREATE TEMP TABLE maintained AS SELECT ",
                 all, " FROM ", r.st));
    if (s.ok()) s = RunFullRefresh(conn, r.plan, options.verbose);
    if (!s.ok()) {
      (void)conn.Exec("ROLLBACK");
      r.status = fail(*r.c, absl::StrCat("final full refresh: ", s.ToString()));
      continue;
    }
    auto diff =
        OracleDiff(conn, "pg_temp.maintained", all, absl::StrCat("SELECT ", all, " FROM ", r.st));
    if (!diff.ok()) {
      r.status = fail(*r.c, diff.status().ToString());
    } else if (!diff->empty()) {
      r.status =
          fail(*r.c,
               absl::StrCat(
                   "hidden state drifted from a fresh full refresh (\"stream table\" = maintained, "
                   "\"query\" = fresh):\n",
                   *diff, "explanation:\n", r.plan.explanation));
    }
  }
  return finish();
}

}  // namespace trickle::delta::testing
