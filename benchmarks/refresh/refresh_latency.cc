// refresh_latency: end-to-end latency of Trickle, from a commit on a source
// table to the moment the change is visible in a stream table.
//
// One process runs what trickled runs (the capture thread, the fence
// emitter, a StreamTableManager and its refresh driver) against a throwaway
// PostgreSQL 15 with durable defaults (fsync on, synchronous_commit on) and
// track_commit_timestamp on. The refresh driver is either trickled's
// event-driven scheduler (--loop=scheduler: the capture's commit listener
// wakes RunScheduler; --workers, --debounce) or the polling loop trickled
// ran before it (--loop=interval: RunDueRefreshes, then sleep --loop_sleep).
// A writer thread commits --rate transactions per second on a fixed clock;
// each transaction inserts one order and its three order lines.
//
// How latency is measured (no observer in the loop): every writer
// transaction makes exactly one new row in each stream table, and no later
// refresh rewrites that row. So after the run,
//   latency = pg_xact_commit_timestamp(stream table row's xmin)
//           - pg_xact_commit_timestamp(source row's xmin)
// i.e. commit record of the refresh that made the row visible minus commit
// record of the source transaction, both stamped by the same server clock.
// Nobody polls the stream tables while the clock runs, so the measurement
// adds no load. The refresh_history row written by the same refresh has the
// same xmin, which splits the latency into "waiting for a refresh to start"
// (its started_at = now() of the refresh) and "the refresh itself".
//
// Writes <out>.csv (one row per source transaction and stream table) and
// <out>.json (percentiles, the refresh loop's rounds, fence waits, machine
// load) and prints a summary.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "benchmarks/refresh/in_process_capture.h"
#include "benchmarks/refresh/proc_cpu.h"
#include "common/pg_connection.h"
#include "scheduler/stream_table_manager.h"
#include "spdlog/spdlog.h"
#include "tests/support/postgres_server.h"

ABSL_FLAG(double, rate, 10, "Source transactions committed per second (fixed clock).");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(120), "Measured time (after the warm-up).");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(10), "Writer runs this long before measuring.");
ABSL_FLAG(std::string, stream_tables, "projection,join_agg",
          "Comma-separated stream tables to create and maintain together: projection "
          "(filtered projection of orders), join_agg (order_lines JOIN products GROUP BY order).");
ABSL_FLAG(std::string, schedule, "1ms",
          "Schedule of every stream table: an interval (\"1ms\") or on_change.");
ABSL_FLAG(std::string, baseline_schedule, "",
          "When set, every stream table is also created as <name>_baseline with this schedule (e.g. "
          "1s): both copies read the same source transactions in the same run, so the event-driven "
          "schedule and the baseline share the machine's noise.");
ABSL_FLAG(std::string, loop, "scheduler",
          "scheduler: the event-driven coordinator trickled runs (RunScheduler, woken by the "
          "capture); interval: the polling loop of trickled before it (RunDueRefreshes, sleep).");
ABSL_FLAG(int, workers, 2, "--loop=scheduler: refresh workers (trickled's default 2; 0 = serial).");
ABSL_FLAG(absl::Duration, debounce, absl::Milliseconds(10),
          "--loop=scheduler: on-change debounce (trickled's default 10ms).");
ABSL_FLAG(absl::Duration, loop_sleep, absl::Milliseconds(20),
          "--loop=interval: sleep between RunDueRefreshes calls (trickled slept 20ms).");
ABSL_FLAG(bool, fsync, true, "PostgreSQL fsync (the test harness default is off; durable is on).");
ABSL_FLAG(int, seed_orders, 100000, "Orders (with 3 lines each) loaded before the run.");
ABSL_FLAG(std::string, out, "", "Output prefix for <out>.csv and <out>.json (none when empty).");
ABSL_FLAG(std::string, pg_log, "",
          "Diagnostics: log every statement with its duration (log_min_duration_statement=0) and "
          "copy the server log here at the end. Distorts the latency; use in a separate run.");
ABSL_FLAG(std::string, label, "", "Free-text label stored in the JSON.");

namespace trickle::bench {
namespace {

struct StreamTableDef {
  std::string key;     // flag name
  std::string name;    // stream table
  std::string query;
  std::string source;  // the source table whose rows the writer creates
  std::string id_column;  // column of the stream table holding the order id
  std::string source_id_column;
};

const std::vector<StreamTableDef>& Definitions() {
  static const auto* defs = new std::vector<StreamTableDef>{
      {"projection", "lat_open_orders",
       "SELECT id, customer_id, amount, created_at FROM orders WHERE status <> 'cancelled'", "orders",
       "id", "id"},
      {"join_agg", "lat_order_totals",
       "SELECT ol.order_id, count(*) AS lines, sum(ol.qty * p.price) AS total "
       "FROM order_lines ol JOIN products p ON p.id = ol.product_id GROUP BY ol.order_id",
       "order_lines", "order_id", "order_id"},
  };
  return *defs;
}

// Nearest-rank percentile of a sorted vector.
double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * sorted.size()));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

struct Summary {
  size_t n = 0;
  double mean = 0, p50 = 0, p90 = 0, p99 = 0, max = 0, min = 0;
};

Summary Summarize(std::vector<double> v) {
  Summary s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.n = v.size();
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
  s.p50 = Percentile(v, 50);
  s.p90 = Percentile(v, 90);
  s.p99 = Percentile(v, 99);
  s.max = v.back();
  s.min = v.front();
  return s;
}

std::string Json(const Summary& s) {
  return absl::StrFormat(
      "{\"n\": %d, \"mean\": %.3f, \"min\": %.3f, \"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, "
      "\"max\": %.3f}",
      s.n, s.mean, s.min, s.p50, s.p90, s.p99, s.max);
}


absl::Status Check(const absl::StatusOr<PgResult>& r, const std::string& what) {
  if (!r.ok()) return absl::Status(r.status().code(), absl::StrCat(what, ": ", r.status().message()));
  return absl::OkStatus();
}

absl::Status LoadSchema(PgConnection& sql, int orders) {
  absl::Status loaded = Check(sql.Exec(absl::StrCat(
                   "CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2) "
                   "NOT NULL, category int NOT NULL);"
                   "INSERT INTO products SELECT g, 'product ' || g, (g % 97) + 0.99, g % 20 "
                   "FROM generate_series(1, 1000) g;"
                   "CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL, "
                   "status text NOT NULL, amount numeric(12,2) NOT NULL, "
                   "created_at timestamptz NOT NULL DEFAULT now());"
                   "INSERT INTO orders (customer_id, status, amount) SELECT g % 5000, "
                   "CASE WHEN g % 10 = 0 THEN 'cancelled' ELSE 'open' END, (g % 500) + 0.5 "
                   "FROM generate_series(1, ", orders, ") g;"
                   "CREATE TABLE order_lines (order_id bigint NOT NULL, line_no int NOT NULL, "
                   "product_id int NOT NULL REFERENCES products, qty int NOT NULL, "
                   "PRIMARY KEY (order_id, line_no));"
                   "INSERT INTO order_lines SELECT o, l, (o * 7 + l * 13) % 1000 + 1, 1 + (o + l) % 5 "
                   "FROM generate_series(1, ", orders, ") o, generate_series(1, 3) l;"
                   "ALTER TABLE products REPLICA IDENTITY FULL;"
                   "ALTER TABLE orders REPLICA IDENTITY FULL;"
                   "ALTER TABLE order_lines REPLICA IDENTITY FULL")),
               "loading the schema");
  if (!loaded.ok()) return loaded;
  return Check(sql.Exec("VACUUM ANALYZE"), "VACUUM ANALYZE");
}

struct WriterTxn {
  int64_t order_id;
  absl::Time sent;
  absl::Time acked;
};

absl::Status Run() {
  const double rate = absl::GetFlag(FLAGS_rate);
  const absl::Duration warmup = absl::GetFlag(FLAGS_warmup);
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  const absl::Duration loop_sleep = absl::GetFlag(FLAGS_loop_sleep);
  const std::string schedule = absl::GetFlag(FLAGS_schedule);
  std::vector<StreamTableDef> defs;
  for (absl::string_view key : absl::StrSplit(absl::GetFlag(FLAGS_stream_tables), ',')) {
    bool found = false;
    for (const StreamTableDef& d : Definitions()) {
      if (d.key == key) {
        defs.push_back(d);
        found = true;
      }
    }
    if (!found) return absl::InvalidArgumentError(absl::StrCat("unknown stream table \"", key, "\""));
  }
  // Each stream table's schedule; the baseline copies come last.
  std::vector<std::string> schedules(defs.size(), schedule);
  const std::string baseline_schedule = absl::GetFlag(FLAGS_baseline_schedule);
  if (!baseline_schedule.empty()) {
    const size_t n = defs.size();
    for (size_t k = 0; k < n; ++k) {
      StreamTableDef copy = defs[k];
      copy.name += "_baseline";
      defs.push_back(copy);
      schedules.push_back(baseline_schedule);
    }
  }

  testing::PostgresServerOptions pg_options;
  pg_options.settings = {{"fsync", absl::GetFlag(FLAGS_fsync) ? "on" : "off"},
                         {"track_commit_timestamp", "on"}};
  const std::string pg_log = absl::GetFlag(FLAGS_pg_log);
  if (!pg_log.empty()) {
    pg_options.settings["log_min_duration_statement"] = "0";
    pg_options.settings["log_min_messages"] = "log";
    pg_options.settings["log_line_prefix"] = "'%m [%p] %a: '";
  }
  testing::PostgresServer pg(pg_options);
  if (auto s = pg.Start(); !s.ok()) return s;
  const std::string dsn = pg.Dsn();
  auto sql_conn = PgConnection::Connect(dsn);
  if (!sql_conn.ok()) return sql_conn.status();
  PgConnection& sql = **sql_conn;
  if (auto s = LoadSchema(sql, absl::GetFlag(FLAGS_seed_orders)); !s.ok()) return s;

  const std::string loop = absl::GetFlag(FLAGS_loop);
  if (loop != "scheduler" && loop != "interval") {
    return absl::InvalidArgumentError(absl::StrCat("--loop=", loop, ": use scheduler or interval"));
  }
  std::string log_dir = testing::MakeTempDir("trickle-latency-log-");
  // Change arrival wakes the scheduler, as in trickled's main: the manager
  // exists only once the stream runs, hence the pointer.
  std::atomic<scheduler::StreamTableManager*> listener{nullptr};
  InProcessCaptureOptions capture_options;
  if (loop == "scheduler") {
    capture_options.commit_listener = [&listener](const storage::TransactionRecord& txn) {
      if (auto* m = listener.load()) m->OnSourceCommitted(txn);
    };
  }
  capture_options.dsn = dsn;
  capture_options.slot_name = "trickle_latency";
  capture_options.publication_name = "trickle_latency";
  capture_options.data_dir = log_dir;
  auto capture = InProcessCapture::Start(capture_options);
  if (!capture.ok()) return capture.status();

  scheduler::ManagerOptions manager_options;
  manager_options.dsn = dsn;
  manager_options.publication_name = capture_options.publication_name;
  manager_options.max_parallel_workers = absl::GetFlag(FLAGS_workers);
  manager_options.debounce = absl::GetFlag(FLAGS_debounce);
  auto manager = scheduler::StreamTableManager::Open(manager_options, &(*capture)->log(), (*capture)->fence_fn());
  if (!manager.ok()) return manager.status();
  for (size_t k = 0; k < defs.size(); ++k) {
    const StreamTableDef& d = defs[k];
    scheduler::CreateRequest request;
    request.name = d.name;
    request.query = d.query;
    request.mode = delta::RefreshMode::kDifferential;
    request.schedule = schedules[k];
    auto created = (*manager)->Create(request);
    if (!created.ok()) return created.status();
    spdlog::info("created {} ({})", d.name, scheduler::ModeName(created->effective_mode));
  }

  // The refresh driver. Interval: trickled's former loop, timed per round.
  std::atomic<bool> stop_refresh{false};
  std::vector<std::pair<absl::Time, double>> rounds;  // start, duration (ms); refresh thread only
  listener = manager->get();
  std::thread refresh_thread([&] {
    if (loop == "scheduler") {
      (*manager)->RunScheduler(stop_refresh);
      return;
    }
    while (!stop_refresh.load()) {
      absl::Time t0 = absl::Now();
      (*manager)->RunDueRefreshes(stop_refresh);
      rounds.emplace_back(t0, absl::ToDoubleMilliseconds(absl::Now() - t0));
      absl::SleepFor(loop_sleep);
    }
  });

  // The writer: one transaction (an order and its three lines) per tick of a
  // fixed clock; a slow commit does not shift the ticks after it.
  auto writer_conn = PgConnection::Connect(dsn);
  if (!writer_conn.ok()) return writer_conn.status();
  std::vector<WriterTxn> txns;
  const absl::Duration period = absl::Seconds(1) / rate;
  const absl::Time begin = absl::Now();
  const absl::Time measure_from = begin + warmup;
  const absl::Time measure_to = measure_from + duration;
  std::pair<uint64_t, uint64_t> cpu_from{0, 0};
  std::string load_from;
  absl::Status writer_status;
  for (int64_t i = 0;; ++i) {
    absl::Time tick = begin + i * period;
    if (tick >= measure_to) break;
    if (cpu_from.second == 0 && tick >= measure_from) {
      cpu_from = MachineJiffies();
      load_from = LoadAverage();
    }
    absl::SleepFor(tick - absl::Now());
    absl::Time sent = absl::Now();
    auto r = (*writer_conn)->Exec(absl::StrCat(
        "WITH o AS (INSERT INTO orders (customer_id, status, amount) VALUES (", i % 5000, ", 'open', ",
        (i % 500) + 0.25, ") RETURNING id) INSERT INTO order_lines SELECT o.id, l, (", i * 7,
        " + l * 13) % 1000 + 1, 1 + l FROM o, generate_series(1, 3) l RETURNING order_id"));
    absl::Time acked = absl::Now();
    if (!r.ok()) {
      writer_status = r.status();
      break;
    }
    int64_t id = 0;
    (void)absl::SimpleAtoi(r->Get(0, 0), &id);
    txns.push_back({id, sent, acked});
  }
  std::pair<uint64_t, uint64_t> cpu_to = MachineJiffies();
  std::string load_to = LoadAverage();
  double machine_busy = cpu_to.second > cpu_from.second
                            ? 100.0 * (cpu_to.first - cpu_from.first) / (cpu_to.second - cpu_from.second)
                            : 0;

  // Let the last transactions arrive, then stop the loop.
  if (!txns.empty()) {
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    for (const StreamTableDef& d : defs) {
      while (absl::Now() < deadline) {
        auto seen = sql.Exec(absl::StrCat("SELECT count(*) FROM ", d.name, " WHERE ", d.id_column, " = ",
                                          txns.back().order_id));
        if (seen.ok() && seen->Get(0, 0) != "0") break;
        absl::SleepFor(absl::Milliseconds(50));
      }
    }
  }
  stop_refresh = true;
  refresh_thread.join();
  listener = nullptr;
  if (!writer_status.ok()) return writer_status;

  // The window's writer transactions.
  int64_t first_id = -1, last_id = -1;
  std::vector<double> client_commit_ms;  // statement sent -> commit acknowledged
  for (const WriterTxn& t : txns) {
    if (t.sent < measure_from) continue;
    if (first_id < 0) first_id = t.order_id;
    last_id = t.order_id;
    client_commit_ms.push_back(absl::ToDoubleMilliseconds(t.acked - t.sent));
  }
  if (first_id < 0) return absl::FailedPreconditionError("no writer transaction in the measured window");

  std::string json = absl::StrCat("{\n  \"label\": \"", absl::GetFlag(FLAGS_label), "\",\n",
                                  "  \"rate_per_s\": ", rate, ",\n  \"schedule\": \"", schedule, "\",\n",
                                  "  \"baseline_schedule\": \"", baseline_schedule, "\",\n",
                                  "  \"loop\": \"", loop, "\",\n  \"workers\": ", absl::GetFlag(FLAGS_workers),
                                  ",\n  \"debounce_ms\": ", absl::ToDoubleMilliseconds(absl::GetFlag(FLAGS_debounce)),
                                  ",\n",
                                  "  \"loop_sleep_ms\": ", absl::ToDoubleMilliseconds(loop_sleep), ",\n",
                                  "  \"stream_tables\": \"", absl::GetFlag(FLAGS_stream_tables), "\",\n",
                                  "  \"fsync\": ", absl::GetFlag(FLAGS_fsync) ? "true" : "false", ",\n",
                                  "  \"duration_s\": ", absl::ToDoubleSeconds(duration), ",\n",
                                  "  \"machine_busy_pct\": ", absl::StrFormat("%.1f", machine_busy), ",\n",
                                  "  \"loadavg_start\": \"", load_from, "\",\n  \"loadavg_end\": \"", load_to,
                                  "\",\n", "  \"source_commit_ms\": ", Json(Summarize(client_commit_ms)),
                                  ",\n  \"stream_tables_result\": {\n");
  std::string csv = "stream_table,order_id,latency_ms,wait_ms,refresh_ms,commit_s\n";
  std::printf("%-26s %6s %8s %8s %8s %8s %8s   %s\n", "stream table", "n", "p50", "p90", "p99", "max",
              "mean", "(ms; wait p50 / refresh p50)");
  for (size_t k = 0; k < defs.size(); ++k) {
    const StreamTableDef& d = defs[k];
    auto r = sql.Exec(absl::StrCat(
        "SELECT s.id, 1000 * extract(epoch FROM pg_xact_commit_timestamp(st.xmin) - pg_xact_commit_timestamp(s.xmin)),"
        " 1000 * extract(epoch FROM h.started_at - pg_xact_commit_timestamp(s.xmin)),"
        " 1000 * extract(epoch FROM pg_xact_commit_timestamp(st.xmin) - h.started_at),"
        " extract(epoch FROM pg_xact_commit_timestamp(s.xmin) - min(pg_xact_commit_timestamp(s.xmin)) OVER ())"
        " FROM (SELECT DISTINCT ON (", d.source_id_column, ") ", d.source_id_column, " AS id, xmin FROM ",
        d.source, " WHERE ", d.source_id_column, " BETWEEN ", first_id, " AND ", last_id, ") s",
        " LEFT JOIN ", d.name, " st ON st.", d.id_column, " = s.id",
        " LEFT JOIN pgtrickle.refresh_history h ON h.xmin = st.xmin AND h.error IS NULL"
        " ORDER BY s.id"));
    if (!r.ok()) return r.status();
    std::vector<double> latency, wait, refresh;
    int missing = 0;
    for (int i = 0; i < r->rows(); ++i) {
      if (r->IsNull(i, 1)) {
        ++missing;
        continue;
      }
      double l = 0, w = 0, f = 0;
      (void)absl::SimpleAtod(r->Get(i, 1), &l);
      latency.push_back(l);
      bool has_history = !r->IsNull(i, 2);
      if (has_history) {
        (void)absl::SimpleAtod(r->Get(i, 2), &w);
        (void)absl::SimpleAtod(r->Get(i, 3), &f);
        wait.push_back(w);
        refresh.push_back(f);
      }
      absl::StrAppend(&csv, d.name, ",", r->Get(i, 0), ",", absl::StrFormat("%.3f", l), ",",
                      has_history ? absl::StrFormat("%.3f", w) : "", ",",
                      has_history ? absl::StrFormat("%.3f", f) : "", ",", r->Get(i, 4), "\n");
    }
    // The refreshes of this stream table in the window (history is written
    // only by refreshes that applied something).
    auto h = sql.Exec(absl::StrCat(
        "SELECT h.duration_ms, 1000 * extract(epoch FROM pg_xact_commit_timestamp(h.xmin) - h.started_at),"
        " h.transactions, h.frontier LIKE '%;%' FROM pgtrickle.refresh_history h JOIN pgtrickle.stream_tables t"
        " ON t.id = h.stream_table_id WHERE t.table_name = '", d.name, "' AND h.action = 'DIFFERENTIAL'"
        " AND h.error IS NULL AND h.started_at >= (SELECT min(pg_xact_commit_timestamp(xmin)) FROM ", d.source,
        " WHERE ", d.source_id_column, " >= ", first_id, ")"));
    if (!h.ok()) return h.status();
    std::vector<double> engine_ms, txn_ms, txns_per_refresh;
    // Refreshes that left logged transactions for later (their frontier has
    // exceptions: committed before the fence, invisible in the snapshot).
    int with_exceptions = 0;
    for (int i = 0; i < h->rows(); ++i) {
      if (h->Get(i, 3) == "t") ++with_exceptions;
      double a = 0, b = 0, c = 0;
      (void)absl::SimpleAtod(h->Get(i, 0), &a);
      (void)absl::SimpleAtod(h->Get(i, 1), &b);
      (void)absl::SimpleAtod(h->Get(i, 2), &c);
      engine_ms.push_back(a);
      txn_ms.push_back(b);
      txns_per_refresh.push_back(c);
    }
    Summary ls = Summarize(latency), ws = Summarize(wait), rs = Summarize(refresh);
    std::printf("%-26s %6zu %8.1f %8.1f %8.1f %8.1f %8.1f   (%.1f / %.1f)%s\n", d.name.c_str(), ls.n, ls.p50,
                ls.p90, ls.p99, ls.max, ls.mean, ws.p50, rs.p50,
                missing ? absl::StrCat("  MISSING ", missing).c_str() : "");
    absl::StrAppend(&json, "    \"", d.name, "\": {\n      \"schedule\": \"", schedules[k], "\",\n",
                    "      \"query\": \"", d.query, "\",\n",
                    "      \"latency_ms\": ", Json(ls), ",\n      \"wait_for_refresh_ms\": ", Json(ws),
                    ",\n      \"refresh_txn_ms\": ", Json(rs), ",\n      \"missing\": ", missing, ",\n",
                    "      \"refreshes\": ", h->rows(), ",\n      \"refreshes_leaving_exceptions\": ",
                    with_exceptions, ",\n      \"refresh_engine_duration_ms\": ",
                    Json(Summarize(engine_ms)), ",\n      \"refresh_start_to_commit_ms\": ",
                    Json(Summarize(txn_ms)), ",\n      \"source_txns_per_refresh\": ",
                    Json(Summarize(txns_per_refresh)), "\n    }", k + 1 < defs.size() ? "," : "", "\n");
  }

  // Rounds of the loop and fences inside the window.
  std::vector<double> round_ms, fences;
  for (const auto& [t, ms] : rounds) {
    if (t >= measure_from && t < measure_to) round_ms.push_back(ms);
  }
  for (const auto& [t, ms] : (*capture)->fence_times()) {
    if (t >= measure_from && t < measure_to) fences.push_back(ms);
  }
  Summary round_summary = Summarize(round_ms);
  double seconds = absl::ToDoubleSeconds(duration);
  absl::StrAppend(&json, "  },\n  \"rounds_per_s\": ", absl::StrFormat("%.1f", round_ms.size() / seconds),
                  ",\n  \"round_ms\": ", Json(round_summary), ",\n  \"fences_per_s\": ",
                  absl::StrFormat("%.1f", fences.size() / seconds), ",\n  \"fence_ms\": ",
                  Json(Summarize(fences)), ",\n");
  // The change log at the end: trimming keeps it small.
  storage::ChangeLogStats log_stats = (*capture)->log().Stats();
  absl::StrAppend(&json, "  \"change_log_end\": {\"approximate_bytes\": ", log_stats.approximate_bytes,
                  ", \"retained_transactions\": ", log_stats.transaction_count, "},\n");
  std::printf("change log at the end: %llu bytes, %llu transactions retained\n",
              static_cast<unsigned long long>(log_stats.approximate_bytes),
              static_cast<unsigned long long>(log_stats.transaction_count));
  if (loop == "interval") {
    std::printf("loop: %.1f rounds/s (round p50 %.2f ms, p99 %.2f ms, + %.0f ms sleep)\n",
                round_ms.size() / seconds, round_summary.p50, round_summary.p99,
                absl::ToDoubleMilliseconds(loop_sleep));
  }
  std::printf("fences %.1f/s (emit+wait p50 %.2f ms, p99 %.2f ms)\n", fences.size() / seconds,
              Summarize(fences).p50, Summarize(fences).p99);
  std::printf("machine busy %.1f%% during the window; load average %s -> %s\n", machine_busy,
              load_from.c_str(), load_to.c_str());

  // The oracle: each stream table equals its query at the end.
  std::string oracle_json;
  for (const StreamTableDef& d : defs) {
    auto cols = sql.ExecParams(
        "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute"
        " WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped"
        " AND attname NOT LIKE '\\_\\_pgt\\_%'",
        {d.name});
    if (!cols.ok()) return cols.status();
    std::string c(cols->Get(0, 0));
    auto diff = sql.Exec(absl::StrCat("SELECT count(*) FROM ((SELECT ", c, " FROM ", d.name,
                                      " EXCEPT ALL SELECT * FROM (", d.query, ") q) UNION ALL (SELECT * FROM (",
                                      d.query, ") q EXCEPT ALL SELECT ", c, " FROM ", d.name, ")) d"));
    if (!diff.ok()) return diff.status();
    std::printf("oracle %s: %s differing rows\n", d.name.c_str(), std::string(diff->Get(0, 0)).c_str());
    absl::StrAppend(&oracle_json, oracle_json.empty() ? "" : ", ", "\"", d.name, "\": ", diff->Get(0, 0));
  }
  absl::StrAppend(&json, "  \"oracle_differences\": {", oracle_json, "}\n}\n");

  const std::string out = absl::GetFlag(FLAGS_out);
  if (!out.empty()) {
    std::ofstream(out + ".csv") << csv;
    std::ofstream(out + ".json") << json;
    std::printf("wrote %s.csv and %s.json\n", out.c_str(), out.c_str());
  }
  manager->reset();
  capture->reset();
  if (!pg_log.empty()) {
    (void)testing::RunCommand(absl::StrCat("cp '", pg.socket_dir(), "/server.log' '", pg_log, "'"));
  }
  (void)testing::RunCommand(absl::StrCat("rm -rf '", log_dir, "'"));
  return absl::OkStatus();
}

}  // namespace
}  // namespace trickle::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "End-to-end latency (source commit -> visible in a stream table) on a throwaway PostgreSQL.");
  absl::ParseCommandLine(argc, argv);
  spdlog::set_level(spdlog::level::warn);
  absl::Status s = trickle::bench::Run();
  if (!s.ok()) {
    std::fprintf(stderr, "refresh_latency: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
