// Differential refresh vs REFRESH MATERIALIZED VIEW of the same query, in the
// same run, on a throwaway PostgreSQL 15 with 1M source rows.
//
//   delta_benchmark [--rows=N] [--repeat=R] [--rates=0.01,0.1,1,10,25,50]
//                   [--out=DIR] [--queries=filter,group,join_agg,join3]
//
// For each query and change rate (percent of the 1M-row table changed):
//   1. apply a random batch (updates that change values, including join-key
//      changes, inserts and deletes; a matching share of dimension-table
//      updates) and capture the consolidated delta tables from it, the way
//      the refresh engine hands them to the delta SQL;
//   2. time the differential refresh: ANALYZE the delta tables, run the MERGE,
//      COMMIT;
//   3. time REFRESH MATERIALIZED VIEW of the same query on the same data;
//   4. check the stream table equals the query (not timed).
// Each point is the best of --repeat runs (after one untimed warm-up). Results go to DIR/delta.md,
// DIR/delta.csv and DIR/delta.png (gnuplot). The crossover rate is where the
// differential refresh stops being faster (interpolated on a log scale).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/pg_connection.h"
#include "delta/catalog_adapter.h"
#include "delta/delta_engine.h"
#include "tests/support/postgres_server.h"

namespace trickle::delta {
namespace {

struct Query {
  std::string name;
  std::string title;
  std::string sql;
};

const std::vector<Query>& Queries() {
  static const auto* q = new std::vector<Query>{
      {"filter", "filtered projection",
       "SELECT id, cust_id, amount * qty AS value FROM orders WHERE status = 'paid'"},
      {"group", "GROUP BY aggregate",
       "SELECT cust_id, count(*) AS n, sum(amount) AS total, avg(qty) AS avg_qty FROM orders GROUP "
       "BY cust_id"},
      {"join_agg", "2-table join + aggregate",
       "SELECT c.region, c.segment, count(*) AS n, sum(o.amount) AS total, avg(o.amount) AS mean "
       "FROM orders o JOIN customers c ON c.id = o.cust_id GROUP BY c.region, c.segment"},
      {"join3", "3-table join",
       "SELECT o.id, c.region, p.category, o.amount FROM orders o JOIN customers c ON c.id = "
       "o.cust_id "
       "JOIN products p ON p.id = o.product_id WHERE o.status <> 'void'"},
  };
  return *q;
}

struct Options {
  int64_t rows = 1000000;
  int repeat = 3;
  std::vector<double> rates = {0.01, 0.1, 1, 10, 25, 50};
  std::string out = "benchmarks/results";
  std::vector<std::string> queries;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "delta_benchmark: %s\n", what.c_str());
  std::exit(1);
}

void Exec(PgConnection& conn, const std::string& sql) {
  auto r = conn.Exec(sql);
  if (!r.ok()) Die(absl::StrCat(r.status().message(), "\nin: ", sql.substr(0, 2000)));
}

int64_t Scalar(PgConnection& conn, const std::string& sql) {
  auto r = conn.Exec(sql);
  if (!r.ok() || r->rows() != 1) Die(absl::StrCat("scalar query failed: ", sql));
  return std::stoll(std::string(r->Get(0, 0)));
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// The fastest of the timed runs: on a shared machine the least disturbed
// one, for both refreshes alike.
double Best(std::vector<double> v) { return *std::min_element(v.begin(), v.end()); }

void CreateData(PgConnection& conn, int64_t rows) {
  const int64_t customers = std::max<int64_t>(rows / 10, 10);
  const int64_t products = std::max<int64_t>(rows / 100, 10);
  Exec(conn,
       "DROP SCHEMA IF EXISTS bench CASCADE; CREATE SCHEMA bench; SET search_path = bench, public");
  Exec(conn,
       absl::StrCat(
           "CREATE TABLE customers (id int PRIMARY KEY, region text NOT NULL, segment text NOT "
           "NULL, name text);"
           "INSERT INTO customers SELECT g, 'region' || (g % 20), 'seg' || (g % 5), 'customer ' || "
           "g "
           "FROM generate_series(1, ",
           customers,
           ") g;"
           "CREATE TABLE products (id int PRIMARY KEY, category text NOT NULL, price int NOT NULL);"
           "INSERT INTO products SELECT g, 'cat' || (g % 50), 1 + g % 97 FROM generate_series(1, ",
           products,
           ") g;"
           "CREATE TABLE orders (id bigint PRIMARY KEY, cust_id int NOT NULL, product_id int NOT "
           "NULL, "
           "amount int NOT NULL, qty int NOT NULL, status text NOT NULL);"
           "INSERT INTO orders SELECT g, 1 + (g * 7919) % ",
           customers, ", 1 + (g * 104729) % ", products,
           ", (g * 31) % 1000, 1 + g % 9, (ARRAY['new','paid','shipped','void'])[1 + g % 4] "
           "FROM generate_series(1::bigint, ",
           rows,
           ") g;"
           "CREATE INDEX ON orders (cust_id); CREATE INDEX ON orders (product_id)"));
  Exec(conn, "VACUUM ANALYZE customers, products, orders");
}

// The consolidated delta tables for one random batch, filled from the batch
// itself: a changed row's old version as 'D', its new version as 'I'.
void ApplyBatch(PgConnection& conn, double rate, int64_t rows, std::mt19937_64& rng,
                int64_t* next_id) {
  const int64_t changed =
      std::max<int64_t>(1, static_cast<int64_t>(std::llround(rows * rate / 100.0)));
  const int64_t customers = Scalar(conn, "SELECT max(id) FROM customers");
  const int64_t products = Scalar(conn, "SELECT max(id) FROM products");
  // 70% updates (a third of them change the join key), 15% inserts, 15% deletes.
  const int64_t updates = changed * 70 / 100, deletes = changed * 15 / 100;
  const int64_t inserts = changed - updates - deletes;
  const int64_t cust_updates = std::max<int64_t>(changed / 100, 1);
  uint64_t seed = rng();
  Exec(conn, "TRUNCATE d_orders, d_customers, d_products");
  Exec(conn, "BEGIN");
  Exec(conn, absl::StrCat("SELECT setseed(", (seed % 1000) / 1000.0, ")"));
  Exec(conn,
       absl::StrCat(
           "CREATE TEMP TABLE pick ON COMMIT DROP AS SELECT id, row_number() OVER () AS rn FROM "
           "(SELECT id FROM orders TABLESAMPLE SYSTEM_ROWS(",
           updates + deletes, ")) s"));
  Exec(conn, "INSERT INTO d_orders SELECT 'D', o.* FROM orders o JOIN pick USING (id)");
  Exec(conn,
       absl::StrCat("DELETE FROM orders o USING pick p WHERE p.id = o.id AND p.rn > ", updates));
  Exec(conn, absl::StrCat("UPDATE orders o SET amount = o.amount + 1 + (p.rn % 50)::int, "
                          "status = (ARRAY['new','paid','shipped','void'])[1 + (p.rn % 4)::int], "
                          "cust_id = CASE WHEN p.rn % 3 = 0 THEN 1 + (o.cust_id + p.rn * 13) % ",
                          customers,
                          " ELSE o.cust_id END "
                          "FROM pick p WHERE p.id = o.id AND p.rn <= ",
                          updates));
  Exec(conn, absl::StrCat(
                 "INSERT INTO orders SELECT g, 1 + (g * 7919) % ", customers,
                 ", 1 + (g * 104729) % ", products,
                 ", (g * 37) % 1000, 1 + g % 9, (ARRAY['new','paid','shipped','void'])[1 + g % 4] "
                 "FROM generate_series(",
                 *next_id, "::bigint, ", *next_id + inserts - 1, ") g"));
  Exec(conn,
       absl::StrCat("INSERT INTO d_orders SELECT 'I', o.* FROM orders o WHERE o.id IN (SELECT id "
                    "FROM pick WHERE rn <= ",
                    updates, ") OR o.id BETWEEN ", *next_id, " AND ", *next_id + inserts - 1));
  *next_id += inserts;
  // Dimension changes: a customer's region moves (all its orders' join rows change).
  Exec(conn, absl::StrCat("CREATE TEMP TABLE cpick ON COMMIT DROP AS SELECT id FROM customers "
                          "TABLESAMPLE SYSTEM_ROWS(",
                          cust_updates, ")"));
  Exec(conn, "INSERT INTO d_customers SELECT 'D', c.* FROM customers c JOIN cpick USING (id)");
  Exec(conn,
       "UPDATE customers c SET region = 'region' || ((substr(region, 7)::int + 1) % 20) FROM cpick "
       "p WHERE p.id = c.id");
  Exec(conn, "INSERT INTO d_customers SELECT 'I', c.* FROM customers c JOIN cpick USING (id)");
  Exec(conn, "COMMIT");
}

struct Point {
  std::string query;
  double rate;
  int64_t delta_rows;
  double differential_s;
  double full_s;     // REFRESH MATERIALIZED VIEW
  double st_full_s;  // the stream table's own full refresh (TRUNCATE + INSERT)
};

}  // namespace
}  // namespace trickle::delta

int main(int argc, char** argv) {
  using namespace trickle::delta;
  using trickle::PgConnection;
  Options opt;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const std::string& prefix) { return a.substr(prefix.size()); };
    if (a.rfind("--rows=", 0) == 0)
      opt.rows = std::stoll(value("--rows="));
    else if (a.rfind("--repeat=", 0) == 0)
      opt.repeat = std::stoi(value("--repeat="));
    else if (a.rfind("--out=", 0) == 0)
      opt.out = value("--out=");
    else if (a.rfind("--rates=", 0) == 0) {
      opt.rates.clear();
      for (auto s : absl::StrSplit(value("--rates="), ','))
        opt.rates.push_back(std::stod(std::string(s)));
    } else if (a.rfind("--queries=", 0) == 0) {
      for (auto s : absl::StrSplit(value("--queries="), ',')) opt.queries.emplace_back(s);
    } else {
      Die(absl::StrCat("unknown argument ", a));
    }
  }
  trickle::testing::PostgresServerOptions server_options;
  server_options.settings = {
      {"shared_buffers", "'1GB'"},         {"work_mem", "'64MB'"},
      {"maintenance_work_mem", "'256MB'"}, {"max_wal_size", "'8GB'"},
      {"checkpoint_timeout", "'30min'"},   {"max_parallel_workers_per_gather", "2"},
      {"random_page_cost", "1.1"},         {"effective_cache_size", "'8GB'"}};
  trickle::testing::PostgresServer server(server_options);
  if (auto s = server.Start(); !s.ok()) Die(std::string(s.message()));
  auto conn_or = server.Connect();
  if (!conn_or.ok()) Die(std::string(conn_or.status().message()));
  PgConnection& conn = **conn_or;
  Exec(conn, "CREATE EXTENSION IF NOT EXISTS tsm_system_rows");
  std::fprintf(stderr, "creating %lld source rows...\n", static_cast<long long>(opt.rows));
  CreateData(conn, opt.rows);
  auto loadavg = []() {
    std::ifstream f("/proc/loadavg");
    std::string a, b, c;
    f >> a >> b >> c;
    return absl::StrCat(a, " ", b, " ", c);
  };
  const std::string load_before = loadavg();
  std::vector<Point> points;
  std::mt19937_64 rng(42);
  int64_t next_id = opt.rows + 1;
  std::string version;
  {
    auto r = conn.Exec(
        "SELECT version() || ', shared_buffers ' || current_setting('shared_buffers') || ', "
        "random_page_cost ' || current_setting('random_page_cost')");
    if (r.ok()) version = std::string(r->Get(0, 0));
  }

  for (const Query& q : Queries()) {
    if (!opt.queries.empty() &&
        std::find(opt.queries.begin(), opt.queries.end(), q.name) == opt.queries.end())
      continue;
    std::fprintf(stderr, "== %s: %s\n", q.name.c_str(), q.sql.c_str());
    auto facts = GatherCatalogFacts(conn, q.sql);
    if (!facts.ok()) Die(std::string(facts.status().message()));
    PlanOptions po;
    po.delta_tables = {{"bench.orders", "d_orders"},
                       {"bench.customers", "d_customers"},
                       {"bench.products", "d_products"}};
    StreamTableSpec spec{"bench", "st_" + q.name, q.sql, RefreshMode::kDifferential};
    auto plan = BuildDeltaPlan(spec, *facts, po);
    if (!plan.ok()) Die(std::string(plan.status().message()));
    std::fprintf(stderr, "%s", plan->explanation.c_str());
    Exec(
        conn,
        absl::StrCat(
            "DROP TABLE IF EXISTS d_orders, d_customers, d_products;"
            "CREATE TABLE d_orders AS SELECT 'I'::\"char\" AS __op, * FROM orders WITH NO DATA;"
            "CREATE TABLE d_customers AS SELECT 'I'::\"char\" AS __op, * FROM customers WITH NO "
            "DATA;"
            "CREATE TABLE d_products AS SELECT 'I'::\"char\" AS __op, * FROM products WITH NO DATA;"
            "DROP MATERIALIZED VIEW IF EXISTS mv_",
            q.name, "; CREATE MATERIALIZED VIEW mv_", q.name, " AS ", q.sql));
    Exec(conn, "SET search_path = bench, public");
    for (const auto& ddl : plan->storage_ddl) Exec(conn, ddl);
    Exec(conn, "BEGIN");
    for (const auto& s : plan->full_refresh_sql) Exec(conn, s);
    Exec(conn, "COMMIT");
    Exec(conn, absl::StrCat("VACUUM ANALYZE ", "st_", q.name));
    std::string cols;
    for (const auto& c : plan->columns) {
      if (!c.hidden) cols += (cols.empty() ? "" : ", ") + conn.QuoteIdentifier(c.name);
    }
    // The refresh engine analyzes the delta tables of the plan's sources.
    std::vector<std::string> analyzed;
    for (const auto& src : plan->sources) analyzed.push_back(src.delta_table);
    const std::string analyze = "ANALYZE " + absl::StrJoin(analyzed, ", ");
    for (double rate : opt.rates) {
      std::vector<double> diff, full, st_full;
      int64_t delta_rows = 0;
      // One untimed warm-up run per point (the service refreshes continually,
      // so its indexes are in cache), then --repeat timed runs.
      for (int rep = -1; rep < opt.repeat; ++rep) {
        ApplyBatch(conn, rate, opt.rows, rng, &next_id);
        delta_rows = Scalar(
            conn, "SELECT (SELECT count(*) FROM d_orders) + (SELECT count(*) FROM d_customers)");
        if (rep == 0 && std::getenv("TRICKLE_BENCH_EXPLAIN") != nullptr) {
          // The MERGE's plan on this batch (executed, then rolled back).
          Exec(conn, "BEGIN");
          Exec(conn, "ANALYZE d_orders, d_customers, d_products");
          auto r = conn.Exec("EXPLAIN (ANALYZE, COSTS OFF, TIMING ON) " + plan->merge_sql);
          if (r.ok()) {
            for (int i = 0; i < r->rows(); ++i)
              std::fprintf(stderr, "    | %s\n", std::string(r->Get(i, 0)).c_str());
          }
          Exec(conn, "ROLLBACK");
        }
        auto t0 = std::chrono::steady_clock::now();
        Exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ");
        Exec(conn, analyze);
        auto ta = std::chrono::steady_clock::now();
        Exec(conn, plan->merge_sql);
        auto tm = std::chrono::steady_clock::now();
        Exec(conn, "COMMIT");
        if (rep >= 0) diff.push_back(Seconds(t0));
        if (std::getenv("TRICKLE_BENCH_EXPLAIN") != nullptr) {
          std::fprintf(stderr, "    analyze %.4f s, merge %.4f s, commit %.4f s\n",
                       std::chrono::duration<double>(ta - t0).count(),
                       std::chrono::duration<double>(tm - ta).count(), Seconds(tm));
        }
        // Correctness of what was timed (not timed itself).
        int64_t bad =
            Scalar(conn, absl::StrCat("SELECT count(*) FROM ((SELECT ", cols, " FROM st_", q.name,
                                      " EXCEPT ALL SELECT * FROM (", q.sql,
                                      ") a) UNION ALL (SELECT * FROM (", q.sql,
                                      ") b EXCEPT ALL SELECT ", cols, " FROM st_", q.name, ")) x"));
        if (bad != 0)
          Die(absl::StrCat(q.name, " at ", rate, "%: stream table differs from the query by ", bad,
                           " rows"));
        auto t1 = std::chrono::steady_clock::now();
        Exec(conn, absl::StrCat("REFRESH MATERIALIZED VIEW mv_", q.name));
        if (rep >= 0) full.push_back(Seconds(t1));
        if (rep == 0) {
          // The stream table's own full refresh, for reference (once per rate).
          auto t2 = std::chrono::steady_clock::now();
          Exec(conn, "BEGIN");
          for (const auto& s : plan->full_refresh_sql) Exec(conn, s);
          Exec(conn, "COMMIT");
          st_full.push_back(Seconds(t2));
        }
        Exec(conn, absl::StrCat("VACUUM ANALYZE orders, customers, st_", q.name));
      }
      Point p{q.name, rate, delta_rows, Best(diff), Best(full), Best(st_full)};
      std::fprintf(
          stderr,
          "  %6.2f%%  delta rows %8lld  differential %8.4f s  REFRESH MV %8.4f s  speedup %8.1fx\n",
          rate, static_cast<long long>(delta_rows), p.differential_s, p.full_s,
          p.full_s / p.differential_s);
      points.push_back(p);
    }
  }

  // Results: CSV, markdown table with crossovers, and a gnuplot PNG.
  std::string csv =
      "query,rate_percent,delta_rows,differential_s,refresh_mv_s,st_full_refresh_s,speedup\n";
  for (const auto& p : points) {
    absl::StrAppend(&csv, p.query, ",", p.rate, ",", p.delta_rows, ",", p.differential_s, ",",
                    p.full_s, ",", p.st_full_s, ",", p.full_s / p.differential_s, "\n");
  }
  std::ofstream(opt.out + "/delta.csv") << csv;
  std::string md = absl::StrCat(
      "# Delta engine: differential refresh vs REFRESH MATERIALIZED VIEW\n\n",
      "Produced by `benchmarks/delta/delta_benchmark` (", opt.rows, " source rows in `orders`, ",
      opt.rows / 10, " customers, ", opt.rows / 100, " products; best of ", opt.repeat,
      " runs per point after an untimed warm-up; both refreshes on the same data in the same "
      "run).\n\n",
      "Server: ", version, "\n\n",
      "Differential = ANALYZE of the delta tables + the MERGE + COMMIT (the delta tables are "
      "filled beforehand, as the refresh engine's COPY does). Full = `REFRESH MATERIALIZED VIEW` "
      "of the same "
      "query. Change rate = changed rows of `orders` as a percent of its size (70% updates, a "
      "third of "
      "them moving the join key; 15% inserts; 15% deletes), plus 1% of that number of customer "
      "region "
      "changes.\n\n",
      "Machine: ", std::thread::hardware_concurrency(), " CPUs; load average (1/5/15 min) ",
      load_before, " at the start and ", loadavg(),
      " at the end of the run. Points are single "
      "transactions of a few milliseconds, so other work on the machine shows up in them; the "
      "ratios "
      "and crossovers are the stable result.\n\n");
  for (const Query& q : Queries()) {
    std::vector<const Point*> ps;
    for (const auto& p : points) {
      if (p.query == q.name) ps.push_back(&p);
    }
    if (ps.empty()) continue;
    absl::StrAppend(&md, "## ", q.title, " (`", q.name, "`)\n\n```sql\n", q.sql, "\n```\n\n",
                    "| change rate | delta rows | differential (s) | REFRESH MV (s) | stream table "
                    "full refresh (s) | speedup |\n",
                    "|---:|---:|---:|---:|---:|---:|\n");
    for (const Point* p : ps) {
      absl::StrAppend(&md, "| ", p->rate, "% | ", p->delta_rows, " | ",
                      absl::StrFormat("%.4f", p->differential_s), " | ",
                      absl::StrFormat("%.4f", p->full_s), " | ",
                      absl::StrFormat("%.4f", p->st_full_s), " | ",
                      absl::StrFormat("%.1fx", p->full_s / p->differential_s), " |\n");
    }
    // Where the differential refresh stops being faster, interpolated on a
    // log scale between the measured rates.
    auto crossover = [&](double Point::*full) -> std::string {
      if (ps[0]->*full <= ps[0]->differential_s) return "below the smallest measured rate";
      for (size_t i = 1; i < ps.size(); ++i) {
        const Point& a = *ps[i - 1];
        const Point& b = *ps[i];
        double ra = std::log(a.*full / a.differential_s), rb = std::log(b.*full / b.differential_s);
        if (ra > 0 && rb <= 0) {
          double t = ra / (ra - rb);
          double rate = std::exp(std::log(a.rate) + t * (std::log(b.rate) - std::log(a.rate)));
          return absl::StrFormat("about %.1f%%", rate);
        }
      }
      return "not reached";
    };
    absl::StrAppend(&md, "\nCrossover (full refresh wins above it): vs REFRESH MATERIALIZED VIEW ",
                    crossover(&Point::full_s),
                    " of the source rows changed; vs the stream table's own full refresh "
                    "(TRUNCATE + INSERT into the indexed table, what AUTO would otherwise run): ",
                    crossover(&Point::st_full_s), "\n\n");
  }
  absl::StrAppend(&md, "![differential vs full refresh](delta.png)\n");
  std::ofstream(opt.out + "/delta.md") << md;
  // gnuplot: time vs change rate, log-log, one pair of lines per query.
  std::string gp = absl::StrCat(
      "set terminal pngcairo size 1100,700 noenhanced\nset output '", opt.out, "/delta.png'\n",
      "set datafile separator ','\nset logscale xy\nset key outside right\nset grid\n",
      "set xlabel 'change rate (% of 1M source rows)'\nset ylabel 'refresh time (s)'\n",
      "set title 'Differential refresh (solid) vs REFRESH MATERIALIZED VIEW (dashed)'\nplot ");
  std::vector<std::string> plots;
  int color = 1;
  for (const Query& q : Queries()) {
    bool any = false;
    for (const auto& p : points) any |= p.query == q.name;
    if (!any) continue;
    std::string filter = absl::StrCat("(strcol(1) eq '", q.name, "' ? $2 : 1/0)");
    plots.push_back(absl::StrCat("'", opt.out, "/delta.csv' every ::1 using ", filter,
                                 ":4 with linespoints lw 2 lc ", color, " dt 1 title '", q.name,
                                 " differential'"));
    plots.push_back(absl::StrCat("'", opt.out, "/delta.csv' every ::1 using ", filter,
                                 ":5 with linespoints lw 2 lc ", color, " dt 2 title '", q.name,
                                 " REFRESH MV'"));
    ++color;
  }
  gp += absl::StrJoin(plots, ", \\\n  ") + "\n";
  std::ofstream(opt.out + "/delta.gnuplot") << gp;
  if (std::system(absl::StrCat("gnuplot ", opt.out, "/delta.gnuplot").c_str()) != 0) {
    std::fprintf(stderr, "gnuplot failed; the CSV and markdown are written\n");
  }
  std::fprintf(stderr, "%s", md.c_str());
  return 0;
}
