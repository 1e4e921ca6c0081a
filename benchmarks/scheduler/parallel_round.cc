// parallel_round: wall time of one scheduler round over N independent stream
// tables (every source changed) with a worker pool against serial refresh
// (max_parallel_workers 0), in the same run on the same database.
//
// One process runs what trickled runs (benchmarks/refresh/in_process_capture:
// the capture thread and the fence emitter; a StreamTableManager whose
// RunScheduler is woken by the capture's commit listener) against a
// throwaway PostgreSQL 15 (fsync on, synchronous_commit on,
// track_commit_timestamp on, pg_stat_statements loaded). N sources
// src_00.. (id, g, v), each read by one stream table
// `SELECT g, count(*), sum(v) FROM src_NN GROUP BY g` (DIFFERENTIAL, on
// change). A round is one source transaction updating --changed_rows rows
// of every source; the round ends when all N stream tables committed their
// refresh.
//
// Configurations alternate: phase = a fresh manager with --workers workers
// or with 0 (serial); pairs of phases in the order P S, S P, P S, ...; each
// phase settles (the scheduler's start-up pass) and then runs
// --rounds_per_phase rounds, --gap apart.
//
// What is measured per round, with no observer in the loop (the driver
// polls refresh_history every 20 ms only to know when to go on; the times
// come from commit timestamps):
//   wall  = commit of the last refresh - commit of the source transaction
//   span  = commit of the last refresh - start of the first refresh
//   concurrency = sum over refreshes of (start -> commit) / span
// plus CPU time per role from /proc (PostgreSQL backends by
// pg_stat_activity role: refresh workers, walsender, fence connection,
// catalog connection, background processes; the service's threads), the
// fences (emit + wait, timed around the FenceFn), and server time per
// statement kind from pg_stat_statements (COMMIT's time is its WAL flush).
//
// Writes <out>.csv (one row per round) and <out>.json (summary per
// configuration, ratio, statement breakdown, machine load).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "benchmarks/refresh/in_process_capture.h"
#include "benchmarks/refresh/proc_cpu.h"
#include "common/pg_connection.h"
#include "scheduler/stream_table_manager.h"
#include "spdlog/spdlog.h"
#include "tests/support/postgres_server.h"

ABSL_FLAG(int, sources, 50, "Independent sources, one stream table each.");
ABSL_FLAG(int, source_rows, 10000, "Rows per source.");
ABSL_FLAG(int, groups, 100, "Groups per source (rows of each stream table).");
ABSL_FLAG(int, changed_rows, 1, "Rows of every source each round's transaction updates.");
ABSL_FLAG(int, workers, 4, "max_parallel_workers of the parallel configuration (the other is 0).");
ABSL_FLAG(int, pairs, 4, "Pairs of phases (one parallel, one serial), order alternated.");
ABSL_FLAG(int, rounds_per_phase, 3, "Rounds measured in each phase.");
ABSL_FLAG(absl::Duration, gap, absl::Seconds(11),
          "Idle time before each round. PostgreSQL 15 publishes an idle backend's statistics "
          "(pg_stat_wal) within 10 s, so each round's WAL flush counts are complete with >10 s.");
ABSL_FLAG(absl::Duration, debounce, absl::Milliseconds(10),
          "On-change debounce (trickled's default).");
ABSL_FLAG(bool, fsync, true, "PostgreSQL fsync (durable: on).");
ABSL_FLAG(std::string, out, "", "Output prefix for <out>.csv and <out>.json (none when empty).");
ABSL_FLAG(std::string, label, "", "Free-text label stored in the JSON.");

namespace trickle::bench {
namespace {

// Statements of the driver carry this comment so that pg_stat_statements'
// breakdown can leave them out.
constexpr char kDriverTag[] = "/*driver*/ ";

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * v.size()));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}
double Median(const std::vector<double>& v) {
  if (v.empty()) return 0;
  std::vector<double> s = v;
  std::sort(s.begin(), s.end());
  size_t n = s.size();
  return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}
double Mean(const std::vector<double>& v) {
  return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / v.size();
}

// CPU roles. PostgreSQL processes are named by pg_stat_activity at the end
// of each round; processes that exited are in the postmaster's reaped time.
const std::vector<std::string>& Roles() {
  static const auto* roles = new std::vector<std::string>{
      "pg_refresh_workers", "pg_walsender", "pg_fence", "pg_catalog_conn", "pg_driver",
      "pg_background",      "pg_exited",    "service",  "driver"};
  return *roles;
}

struct CpuSample {
  std::map<int, double> pg;  // postmaster's live children
  double postmaster = 0;     // its own time plus its reaped children's
  std::map<int, double> threads;
  std::pair<uint64_t, uint64_t> machine;
};

CpuSample SampleCpu(int postmaster) {
  CpuSample s;
  s.pg = ChildrenCpu(postmaster);
  ProcStat pm;
  if (ReadProcStat(absl::StrCat("/proc/", postmaster, "/stat"), &pm)) {
    s.postmaster = pm.cpu_ms + pm.children_cpu_ms;
  }
  s.threads = ThreadsCpu();
  s.machine = MachineJiffies();
  return s;
}

double Delta(const std::map<int, double>& from, const std::map<int, double>& to, int id) {
  auto t = to.find(id);
  if (t == to.end()) return 0;
  auto f = from.find(id);
  return t->second - (f == from.end() ? 0 : f->second);
}

struct Round {
  int workers = 0;
  int pair = 0;
  int phase_round = 0;
  int sequence = 0;
  double wall_ms = 0, first_start_ms = 0, span_ms = 0, refresh_txn_sum_ms = 0, concurrency = 0;
  int refreshes = 0;
  int64_t delta_rows = 0;
  std::map<std::string, double> cpu_ms;
  double machine_busy_pct = 0;
  int fences = 0;
  double fence_sum_ms = 0, fence_p50_ms = 0, fence_max_ms = 0;
  // Write transactions (xids assigned) and WAL from pg_stat_wal: flushes
  // (wal_sync) and the time spent in them. Commits wait for their flush
  // (synchronous_commit on); concurrent commits can share one.
  int xids = 0;
  double wal_syncs = 0, wal_sync_ms = 0, wal_writes = 0, wal_kb = 0;
  double server_sum_ms =
      0;  // every statement of the service pg_stat_statements saw (not COMMIT's flush)
  std::string loadavg;
};

struct Context {
  std::string dsn;
  PgConnection* sql;     // the driver's connection (application_name bench-driver)
  PgConnection* writer;  // the source workload (bench-writer)
  InProcessCapture* capture;
  storage::ChangeLog* log;  // the capture's: the manager reads and trims it as trickled does
  scheduler::FenceFn fence;
  std::mutex* listener_mu;
  scheduler::StreamTableManager** listener;  // guarded by *listener_mu
  int postmaster = 0;
  std::vector<std::string> names;
  // (workers, statement) -> (calls, total ms) over every round.
  std::map<std::pair<int, std::string>, std::pair<double, double>> statements;
};

absl::Status Check(const absl::StatusOr<PgResult>& r, const std::string& what) {
  if (!r.ok())
    return absl::Status(r.status().code(), absl::StrCat(what, ": ", r.status().message()));
  return absl::OkStatus();
}

std::string SourceName(int i) { return absl::StrFormat("src_%02d", i); }
std::string StreamName(int i) { return absl::StrFormat("st_%02d", i); }
std::string StreamQuery(PgConnection& c, int i) {
  return absl::StrCat("SELECT g, count(*) AS n, sum(v) AS total FROM ",
                      c.QuoteIdentifier(SourceName(i)), " GROUP BY g");
}

absl::Status LoadSources(PgConnection& sql, int sources, int rows, int groups) {
  for (int i = 0; i < sources; ++i) {
    std::string t = sql.QuoteIdentifier(SourceName(i));
    absl::Status s =
        Check(sql.Exec(absl::StrCat(
                  "CREATE TABLE ", t, " (id int PRIMARY KEY, g int NOT NULL, v bigint NOT NULL);",
                  "INSERT INTO ", t, " SELECT x, x % ", groups, ", x FROM generate_series(1, ",
                  rows, ") x;", "ALTER TABLE ", t, " REPLICA IDENTITY FULL")),
              absl::StrCat("loading ", SourceName(i)));
    if (!s.ok()) return s;
  }
  if (auto s = Check(sql.Exec("VACUUM ANALYZE"), "VACUUM ANALYZE"); !s.ok()) return s;
  return Check(sql.Exec("CREATE EXTENSION pg_stat_statements"),
               "CREATE EXTENSION pg_stat_statements");
}

// Waits until the scheduler has nothing running or pending (its start-up
// pass refreshes every stream table once).
absl::Status Settle(scheduler::StreamTableManager& m, const std::vector<std::string>& names) {
  absl::Time deadline = absl::Now() + absl::Minutes(5);
  while (absl::Now() < deadline) {
    bool busy = false;
    for (const std::string& n : names) {
      auto st = m.GetStatus(n);
      if (!st.ok()) return st.status();
      busy = busy || st->running || st->dirty;
    }
    if (!busy) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError("the scheduler did not settle within 5 minutes");
}

// pid -> role of every PostgreSQL process pg_stat_activity shows.
absl::StatusOr<std::map<int, std::string>> PgRoles(PgConnection& sql) {
  auto r = sql.Exec(absl::StrCat(
      kDriverTag,
      "SELECT pid, backend_type, coalesce(application_name, '') FROM pg_stat_activity"));
  if (!r.ok()) return r.status();
  std::map<int, std::string> roles;
  for (int i = 0; i < r->rows(); ++i) {
    int pid = 0;
    (void)absl::SimpleAtoi(r->Get(i, 0), &pid);
    std::string type(r->Get(i, 1)), app(r->Get(i, 2));
    std::string role = "pg_background";
    if (type == "walsender") {
      role = "pg_walsender";
    } else if (type == "client backend") {
      if (absl::StartsWith(app, "trickle-worker-"))
        role = "pg_refresh_workers";
      else if (app == "trickle")
        role = "pg_catalog_conn";
      else if (absl::StartsWith(app, "bench-"))
        role = "pg_driver";
      else if (app.empty())
        role = "pg_fence";  // the fence emitter's connection sets no name
    }
    roles[pid] = role;
  }
  return roles;
}

absl::StatusOr<Round> RunRound(Context& ctx, int workers, int round_index) {
  const int sources = absl::GetFlag(FLAGS_sources);
  const int changed = absl::GetFlag(FLAGS_changed_rows);
  const int rows = absl::GetFlag(FLAGS_source_rows);
  PgConnection& sql = *ctx.sql;
  Round out;
  out.workers = workers;
  auto before = sql.Exec(
      absl::StrCat(kDriverTag, "SELECT coalesce(max(id), 0) FROM pgtrickle.refresh_history"));
  if (!before.ok()) return before.status();
  std::string history_from(before->Get(0, 0));
  if (auto s =
          Check(sql.Exec(absl::StrCat(kDriverTag, "SELECT pg_stat_statements_reset()")), "reset");
      !s.ok()) {
    return s;
  }
  out.loadavg = LoadAverage();
  auto xmax0 =
      sql.Exec(absl::StrCat(kDriverTag, "SELECT txid_snapshot_xmax(txid_current_snapshot())"));
  if (!xmax0.ok()) return xmax0.status();
  absl::Time t0 = absl::Now();
  CpuSample cpu0 = SampleCpu(ctx.postmaster);

  // The round's source transaction: --changed_rows rows of every source.
  int from = (round_index * changed) % std::max(1, rows - changed);
  std::string updates;
  for (int i = 0; i < sources; ++i) {
    absl::StrAppend(&updates, kDriverTag, "UPDATE ", ctx.writer->QuoteIdentifier(SourceName(i)),
                    " SET v = v + 1 WHERE id > ", from, " AND id <= ", from + changed, ";");
  }
  PgConnection& w = *ctx.writer;
  if (auto s = Check(w.Exec(absl::StrCat(kDriverTag, "BEGIN")), "BEGIN"); !s.ok()) return s;
  auto xid = w.Exec(absl::StrCat(kDriverTag, "SELECT txid_current()"));
  if (!xid.ok()) return xid.status();
  std::string source_xid(xid->Get(0, 0));
  if (auto s = Check(w.Exec(updates), "updating the sources"); !s.ok()) return s;
  if (auto s = Check(w.Exec(absl::StrCat(kDriverTag, "COMMIT")), "COMMIT"); !s.ok()) return s;

  // Wait for every stream table's refresh (polling only to know when).
  absl::Time deadline = absl::Now() + absl::Minutes(5);
  for (;;) {
    auto r = sql.ExecParams(absl::StrCat(kDriverTag,
                                         "SELECT count(*) FILTER (WHERE error IS NULL),"
                                         " count(*) FILTER (WHERE error IS NOT NULL)"
                                         " FROM pgtrickle.refresh_history WHERE id > $1"),
                            {history_from});
    if (!r.ok()) return r.status();
    int ok = 0, failed = 0;
    (void)absl::SimpleAtoi(r->Get(0, 0), &ok);
    (void)absl::SimpleAtoi(r->Get(0, 1), &failed);
    if (failed > 0)
      return absl::InternalError(absl::StrCat(failed, " refreshes failed in the round"));
    if (ok >= sources) break;
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("only ", ok, " of ", sources, " refreshed in 5 minutes"));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  CpuSample cpu1 = SampleCpu(ctx.postmaster);
  absl::Time t1 = absl::Now();
  auto xmax1 =
      sql.Exec(absl::StrCat(kDriverTag, "SELECT txid_snapshot_xmax(txid_current_snapshot())"));
  if (!xmax1.ok()) return xmax1.status();
  {
    int64_t a = 0, b = 0;
    (void)absl::SimpleAtoi(xmax0->Get(0, 0), &a);
    (void)absl::SimpleAtoi(xmax1->Get(0, 0), &b);
    out.xids = static_cast<int>(b - a);
  }

  // CPU by role.
  auto roles = PgRoles(sql);
  if (!roles.ok()) return roles.status();
  for (const std::string& role : Roles()) out.cpu_ms[role] = 0;
  for (const auto& [pid, ms] : cpu1.pg) {
    auto role = roles->find(pid);
    out.cpu_ms[role == roles->end() ? "pg_exited" : role->second] += Delta(cpu0.pg, cpu1.pg, pid);
  }
  out.cpu_ms["pg_exited"] += cpu1.postmaster - cpu0.postmaster;
  const int main_tid = getpid();
  for (const auto& [tid, ms] : cpu1.threads) {
    out.cpu_ms[tid == main_tid ? "driver" : "service"] += Delta(cpu0.threads, cpu1.threads, tid);
  }
  uint64_t busy = cpu1.machine.first - cpu0.machine.first,
           total = cpu1.machine.second - cpu0.machine.second;
  out.machine_busy_pct = total ? 100.0 * busy / total : 0;

  // Fences in the window.
  {
    std::vector<double> f;
    for (const auto& [at, ms] : ctx.capture->fence_times()) {
      if (at >= t0 && at < t1) f.push_back(ms);
    }
    out.fences = f.size();
    out.fence_sum_ms = std::accumulate(f.begin(), f.end(), 0.0);
    out.fence_p50_ms = Percentile(f, 50);
    out.fence_max_ms = f.empty() ? 0 : *std::max_element(f.begin(), f.end());
  }

  // The round from commit timestamps.
  auto m = sql.ExecParams(
      absl::StrCat(
          kDriverTag,
          "WITH s AS (SELECT pg_xact_commit_timestamp($2::text::xid) AS c),"
          " h AS (SELECT started_at, pg_xact_commit_timestamp(xmin) AS c, delta_rows"
          "       FROM pgtrickle.refresh_history WHERE id > $1 AND error IS NULL)"
          " SELECT 1000 * extract(epoch FROM max(h.c) - s.c),"
          " 1000 * extract(epoch FROM min(h.started_at) - s.c),"
          " 1000 * extract(epoch FROM max(h.c) - min(h.started_at)),"
          " sum(1000 * extract(epoch FROM h.c - h.started_at)), count(*), sum(h.delta_rows)"
          " FROM h, s GROUP BY s.c"),
      {history_from, source_xid});
  if (!m.ok()) return m.status();
  if (m->rows() != 1) return absl::InternalError("no refresh history for the round");
  (void)absl::SimpleAtod(m->Get(0, 0), &out.wall_ms);
  (void)absl::SimpleAtod(m->Get(0, 1), &out.first_start_ms);
  (void)absl::SimpleAtod(m->Get(0, 2), &out.span_ms);
  (void)absl::SimpleAtod(m->Get(0, 3), &out.refresh_txn_sum_ms);
  (void)absl::SimpleAtoi(m->Get(0, 4), &out.refreshes);
  (void)absl::SimpleAtoi(m->Get(0, 5), &out.delta_rows);
  out.concurrency = out.span_ms > 0 ? out.refresh_txn_sum_ms / out.span_ms : 0;

  // Server time per statement kind (the driver's own statements left out).
  auto st = sql.Exec(absl::StrCat(kDriverTag,
                                  "SELECT regexp_replace(left(regexp_replace(query, '\\s+', ' ', "
                                  "'g'), 48), '[0-9]+', 'N', 'g'),"
                                  " sum(calls), sum(total_exec_time) FROM pg_stat_statements"
                                  " WHERE query NOT LIKE '/*driver*/%' GROUP BY 1"));
  if (!st.ok()) return st.status();
  for (int i = 0; i < st->rows(); ++i) {
    double calls = 0, ms = 0;
    (void)absl::SimpleAtod(st->Get(i, 1), &calls);
    (void)absl::SimpleAtod(st->Get(i, 2), &ms);
    std::string q(st->Get(i, 0));
    auto& acc = ctx.statements[{workers, q}];
    acc.first += calls;
    acc.second += ms;
    out.server_sum_ms += ms;
  }
  return out;
}

absl::Status RunPhase(Context& ctx, int workers, int pair, int* sequence, int* round_index,
                      std::vector<Round>* rounds) {
  scheduler::ManagerOptions options;
  options.dsn = ctx.dsn;
  options.publication_name = "trickle_parallel";
  options.max_parallel_workers = workers;
  options.debounce = absl::GetFlag(FLAGS_debounce);
  auto manager = scheduler::StreamTableManager::Open(options, ctx.log, ctx.fence);
  if (!manager.ok()) return manager.status();
  {
    std::lock_guard<std::mutex> lock(*ctx.listener_mu);
    *ctx.listener = manager->get();
  }
  std::atomic<bool> stop{false};
  std::thread coordinator([&] { (*manager)->RunScheduler(stop); });
  absl::Status status = Settle(**manager, ctx.names);
  // pg_stat_wal before each round and after the last (a gap later): round
  // r's WAL is the difference of reads r and r + 1.
  std::vector<std::vector<double>> wal;
  auto read_wal = [&]() -> absl::Status {
    auto r = ctx.sql->Exec(absl::StrCat(
        kDriverTag,
        "SELECT wal_sync, wal_sync_time, wal_write, wal_bytes / 1024.0 FROM pg_stat_wal"));
    if (!r.ok()) return r.status();
    std::vector<double> v(4);
    for (int i = 0; i < 4; ++i) (void)absl::SimpleAtod(r->Get(0, i), &v[i]);
    wal.push_back(v);
    return absl::OkStatus();
  };
  const size_t first_round = rounds->size();
  for (int r = 0; status.ok() && r < absl::GetFlag(FLAGS_rounds_per_phase); ++r) {
    absl::SleepFor(absl::GetFlag(FLAGS_gap));
    if (status = read_wal(); !status.ok()) break;
    auto round = RunRound(ctx, workers, (*round_index)++);
    if (!round.ok()) {
      status = round.status();
      break;
    }
    round->pair = pair;
    round->phase_round = r;
    round->sequence = (*sequence)++;
    std::printf(
        "pair %d workers %d round %d: wall %.1f ms (first start %.1f, span %.1f, concurrency "
        "%.2f), "
        "cpu workers %.0f walsender %.0f catalog %.0f service %.0f ms, fences %d (p50 %.1f ms), "
        "write xacts %d, load %s\n",
        pair, workers, r, round->wall_ms, round->first_start_ms, round->span_ms, round->concurrency,
        round->cpu_ms["pg_refresh_workers"], round->cpu_ms["pg_walsender"],
        round->cpu_ms["pg_catalog_conn"], round->cpu_ms["service"], round->fences,
        round->fence_p50_ms, round->xids, round->loadavg.c_str());
    std::fflush(stdout);
    rounds->push_back(*round);
  }
  if (status.ok()) {
    absl::SleepFor(absl::GetFlag(FLAGS_gap));
    status = read_wal();
  }
  for (size_t i = first_round; status.ok() && i < rounds->size(); ++i) {
    const auto& a = wal[i - first_round];
    const auto& b = wal[i - first_round + 1];
    Round& r = (*rounds)[i];
    r.wal_syncs = b[0] - a[0];
    r.wal_sync_ms = b[1] - a[1];
    r.wal_writes = b[2] - a[2];
    r.wal_kb = b[3] - a[3];
    std::printf("  round %d WAL: %.0f flushes (%.1f ms in fsync), %.0f writes, %.0f kB\n",
                r.phase_round, r.wal_syncs, r.wal_sync_ms, r.wal_writes, r.wal_kb);
  }
  stop = true;
  coordinator.join();
  {
    std::lock_guard<std::mutex> lock(*ctx.listener_mu);
    *ctx.listener = nullptr;
  }
  manager->reset();
  return status;
}

std::string JsonList(const std::vector<double>& v) {
  std::vector<std::string> s;
  for (double x : v) s.push_back(absl::StrFormat("%.2f", x));
  return absl::StrCat("[", absl::StrJoin(s, ", "), "]");
}

absl::Status Run() {
  const int sources = absl::GetFlag(FLAGS_sources);
  const int workers = absl::GetFlag(FLAGS_workers);
  if (workers <= 0)
    return absl::InvalidArgumentError("--workers must be at least 1 (serial is the baseline)");

  testing::PostgresServerOptions pg_options;
  pg_options.settings = {{"fsync", absl::GetFlag(FLAGS_fsync) ? "on" : "off"},
                         {"track_commit_timestamp", "on"},
                         {"shared_preload_libraries", "'pg_stat_statements'"},
                         {"track_wal_io_timing", "on"}};
  testing::PostgresServer pg(pg_options);
  if (auto s = pg.Start(); !s.ok()) return s;
  const std::string dsn = pg.Dsn();
  auto sql_conn = PgConnection::Connect(dsn);
  if (!sql_conn.ok()) return sql_conn.status();
  PgConnection& sql = **sql_conn;
  if (auto s = Check(sql.Exec("SET application_name = 'bench-driver'"), "naming"); !s.ok())
    return s;
  auto writer_conn = PgConnection::Connect(dsn);
  if (!writer_conn.ok()) return writer_conn.status();
  if (auto s = Check((*writer_conn)->Exec("SET application_name = 'bench-writer'"), "naming");
      !s.ok())
    return s;
  std::printf("loading %d sources of %d rows\n", sources, absl::GetFlag(FLAGS_source_rows));
  if (auto s =
          LoadSources(sql, sources, absl::GetFlag(FLAGS_source_rows), absl::GetFlag(FLAGS_groups));
      !s.ok()) {
    return s;
  }
  int postmaster = 0;
  {
    auto pid = sql.Exec("SELECT pg_backend_pid()");
    if (!pid.ok()) return pid.status();
    ProcStat backend;
    if (!ReadProcStat(absl::StrCat("/proc/", pid->Get(0, 0), "/stat"), &backend)) {
      return absl::InternalError("cannot read the driver backend's /proc stat");
    }
    postmaster = backend.ppid;
  }

  std::string log_dir = testing::MakeTempDir("trickle-parallel-log-");
  std::mutex listener_mu;
  scheduler::StreamTableManager* listener = nullptr;
  InProcessCaptureOptions capture_options;
  capture_options.commit_listener = [&](const storage::TransactionRecord& txn) {
    std::lock_guard<std::mutex> lock(listener_mu);
    if (listener != nullptr) listener->OnSourceCommitted(txn);
  };
  capture_options.dsn = dsn;
  capture_options.slot_name = "trickle_parallel";
  capture_options.publication_name = "trickle_parallel";
  capture_options.data_dir = log_dir;
  auto capture = InProcessCapture::Start(capture_options);
  if (!capture.ok()) return capture.status();

  scheduler::FenceFn timed_fence = (*capture)->fence_fn();
  Context ctx;
  ctx.dsn = dsn;
  ctx.sql = &sql;
  ctx.writer = writer_conn->get();
  ctx.capture = capture->get();
  ctx.log = &(*capture)->log();
  ctx.fence = timed_fence;
  ctx.listener_mu = &listener_mu;
  ctx.listener = &listener;
  ctx.postmaster = postmaster;

  // The stream tables (each with its initial FULL refresh), by a manager
  // that only creates.
  {
    scheduler::ManagerOptions options;
    options.dsn = dsn;
    options.publication_name = capture_options.publication_name;
    auto creator = scheduler::StreamTableManager::Open(options, ctx.log, timed_fence);
    if (!creator.ok()) return creator.status();
    for (int i = 0; i < sources; ++i) {
      scheduler::CreateRequest request;
      request.name = StreamName(i);
      request.query = StreamQuery(sql, i);
      request.mode = delta::RefreshMode::kDifferential;
      auto created = (*creator)->Create(request);
      if (!created.ok()) return created.status();
      ctx.names.push_back(request.name);
    }
    std::printf("created %d stream tables\n", sources);
  }

  std::vector<Round> rounds;
  int sequence = 0, round_index = 0;
  std::string load_start = LoadAverage();
  absl::Time run_start = absl::Now();
  for (int p = 0; p < absl::GetFlag(FLAGS_pairs); ++p) {
    std::vector<int> order =
        p % 2 == 0 ? std::vector<int>{workers, 0} : std::vector<int>{0, workers};
    for (int w : order) {
      if (auto s = RunPhase(ctx, w, p, &sequence, &round_index, &rounds); !s.ok()) return s;
    }
  }
  std::string load_end = LoadAverage();
  double run_s = absl::ToDoubleSeconds(absl::Now() - run_start);

  // The oracle: every stream table equals its query at the end.
  int64_t differing = 0;
  for (int i = 0; i < sources; ++i) {
    std::string q = StreamQuery(sql, i);
    std::string t = sql.QuoteIdentifier(StreamName(i));
    auto diff = sql.Exec(absl::StrCat("SELECT count(*) FROM ((SELECT g, n, total FROM ", t,
                                      " EXCEPT ALL ", q, ") UNION ALL (", q,
                                      " EXCEPT ALL SELECT g, n, total FROM ", t, ")) d"));
    if (!diff.ok()) return diff.status();
    int64_t d = 0;
    (void)absl::SimpleAtoi(diff->Get(0, 0), &d);
    differing += d;
  }
  std::printf("oracle: %lld differing rows over %d stream tables\n",
              static_cast<long long>(differing), sources);
  // The change log at the end: the manager's trims keep it small.
  storage::ChangeLogStats log_stats = ctx.log->Stats();
  std::printf("change log at the end: %llu bytes, %llu transactions retained\n",
              static_cast<unsigned long long>(log_stats.approximate_bytes),
              static_cast<unsigned long long>(log_stats.transaction_count));

  // Per configuration and per pair.
  std::string csv =
      "sequence,pair,workers,phase_round,wall_ms,first_start_ms,span_ms,refresh_txn_sum_ms,"
      "concurrency,"
      "refreshes,delta_rows,machine_busy_pct,fences,fence_sum_ms,fence_p50_ms,fence_max_ms,write_"
      "xacts,"
      "wal_syncs,wal_sync_ms,wal_writes,wal_kb,server_sum_ms";
  for (const std::string& role : Roles()) absl::StrAppend(&csv, ",cpu_", role, "_ms");
  absl::StrAppend(&csv, ",loadavg\n");
  for (const Round& r : rounds) {
    absl::StrAppend(
        &csv, absl::StrFormat(
                  "%d,%d,%d,%d,%.3f,%.3f,%.3f,%.3f,%.3f,%d,%d,%.1f,%d,%.3f,%.3f,%.3f,%d,"
                  "%.0f,%.3f,%.0f,%.1f,%.3f",
                  r.sequence, r.pair, r.workers, r.phase_round, r.wall_ms, r.first_start_ms,
                  r.span_ms, r.refresh_txn_sum_ms, r.concurrency, r.refreshes, r.delta_rows,
                  r.machine_busy_pct, r.fences, r.fence_sum_ms, r.fence_p50_ms, r.fence_max_ms,
                  r.xids, r.wal_syncs, r.wal_sync_ms, r.wal_writes, r.wal_kb, r.server_sum_ms));
    for (const std::string& role : Roles())
      absl::StrAppend(&csv, absl::StrFormat(",%.0f", r.cpu_ms.at(role)));
    absl::StrAppend(&csv, ",", r.loadavg, "\n");
  }

  auto collect = [&](int w, auto field) {
    std::vector<double> v;
    for (const Round& r : rounds) {
      if (r.workers == w) v.push_back(field(r));
    }
    return v;
  };
  std::string json = absl::StrCat(
      "{\n  \"label\": \"", absl::GetFlag(FLAGS_label), "\",\n  \"sources\": ", sources,
      ",\n  \"source_rows\": ", absl::GetFlag(FLAGS_source_rows),
      ",\n  \"groups\": ", absl::GetFlag(FLAGS_groups),
      ",\n  \"changed_rows_per_source\": ", absl::GetFlag(FLAGS_changed_rows),
      ",\n  \"workers\": ", workers, ",\n  \"pairs\": ", absl::GetFlag(FLAGS_pairs),
      ",\n  \"rounds_per_phase\": ", absl::GetFlag(FLAGS_rounds_per_phase),
      ",\n  \"debounce_ms\": ", absl::ToDoubleMilliseconds(absl::GetFlag(FLAGS_debounce)),
      ",\n  \"fsync\": ", absl::GetFlag(FLAGS_fsync) ? "true" : "false",
      ",\n  \"run_s\": ", absl::StrFormat("%.0f", run_s), ",\n  \"loadavg_start\": \"", load_start,
      "\",\n  \"loadavg_end\": \"", load_end, "\",\n  \"oracle_differing_rows\": ", differing,
      ",\n  \"change_log_end\": {\"approximate_bytes\": ", log_stats.approximate_bytes,
      ", \"retained_transactions\": ", log_stats.transaction_count, "}",
      ",\n  \"configurations\": {\n");
  std::printf("\n%-10s %6s %10s %10s %10s %8s %8s %8s %8s %8s %8s %8s\n", "workers", "rounds",
              "wall p50", "wall min", "wall max", "span p50", "conc.", "cpu pg", "cpu svc",
              "busy %", "xacts", "flushes");
  std::vector<int> configs = {workers, 0};
  for (size_t k = 0; k < configs.size(); ++k) {
    int w = configs[k];
    auto wall = collect(w, [](const Round& r) { return r.wall_ms; });
    auto span = collect(w, [](const Round& r) { return r.span_ms; });
    auto first = collect(w, [](const Round& r) { return r.first_start_ms; });
    auto conc = collect(w, [](const Round& r) { return r.concurrency; });
    auto busy = collect(w, [](const Round& r) { return r.machine_busy_pct; });
    auto fences = collect(w, [](const Round& r) { return static_cast<double>(r.fences); });
    auto fence_p50 = collect(w, [](const Round& r) { return r.fence_p50_ms; });
    auto fence_sum = collect(w, [](const Round& r) { return r.fence_sum_ms; });
    auto xids = collect(w, [](const Round& r) { return static_cast<double>(r.xids); });
    auto syncs = collect(w, [](const Round& r) { return r.wal_syncs; });
    auto sync_ms = collect(w, [](const Round& r) { return r.wal_sync_ms; });
    auto server = collect(w, [](const Round& r) { return r.server_sum_ms; });
    std::string cpu_json;
    double cpu_pg = 0, cpu_service = 0;
    for (const std::string& role : Roles()) {
      auto v = collect(w, [&](const Round& r) { return r.cpu_ms.at(role); });
      absl::StrAppend(&cpu_json, cpu_json.empty() ? "" : ", ", "\"", role,
                      "\": ", absl::StrFormat("%.0f", Mean(v)));
      if (absl::StartsWith(role, "pg_")) cpu_pg += Mean(v);
      if (role == "service") cpu_service += Mean(v);
    }
    std::printf("%-10d %6zu %10.1f %10.1f %10.1f %8.1f %8.2f %8.0f %8.0f %8.1f %8.0f %8.0f\n", w,
                wall.size(), Median(wall), *std::min_element(wall.begin(), wall.end()),
                *std::max_element(wall.begin(), wall.end()), Median(span), Median(conc), cpu_pg,
                cpu_service, Median(busy), Median(xids), Median(syncs));
    // The statements of this configuration, most server time first.
    std::vector<std::tuple<double, double, std::string>> stmts;
    for (const auto& [key, acc] : ctx.statements) {
      if (key.first == w) stmts.emplace_back(acc.second, acc.first, key.second);
    }
    std::sort(stmts.rbegin(), stmts.rend());
    std::string stmt_json;
    for (size_t i = 0; i < stmts.size() && i < 12; ++i) {
      auto [ms, calls, q] = stmts[i];
      std::string escaped;
      for (char c : q) {
        if (c == '"' || c == '\\') escaped.push_back('\\');
        escaped.push_back(c);
      }
      absl::StrAppend(
          &stmt_json, i ? ",\n        " : "",
          absl::StrFormat(
              "{\"statement\": \"%s\", \"calls_per_round\": %.1f, \"ms_per_round\": %.2f, "
              "\"ms_per_call\": %.3f}",
              escaped, calls / wall.size(), ms / wall.size(), calls ? ms / calls : 0));
    }
    absl::StrAppend(
        &json, "    \"", w == 0 ? "serial" : absl::StrCat("workers_", w),
        "\": {\n      \"workers\": ", w, ",\n      \"rounds\": ", wall.size(),
        ",\n      \"wall_ms\": ", JsonList(wall),
        ",\n      \"wall_ms_median\": ", absl::StrFormat("%.2f", Median(wall)),
        ",\n      \"span_ms_median\": ", absl::StrFormat("%.2f", Median(span)),
        ",\n      \"first_start_ms_median\": ", absl::StrFormat("%.2f", Median(first)),
        ",\n      \"concurrency_median\": ", absl::StrFormat("%.2f", Median(conc)),
        ",\n      \"machine_busy_pct_median\": ", absl::StrFormat("%.1f", Median(busy)),
        ",\n      \"cpu_ms_per_round_mean\": {", cpu_json,
        "},\n      \"fences_per_round_median\": ", absl::StrFormat("%.0f", Median(fences)),
        ",\n      \"fence_ms_p50_median\": ", absl::StrFormat("%.2f", Median(fence_p50)),
        ",\n      \"fence_ms_sum_per_round_median\": ", absl::StrFormat("%.1f", Median(fence_sum)),
        ",\n      \"write_xacts_per_round_median\": ", absl::StrFormat("%.0f", Median(xids)),
        ",\n      \"wal_flushes_per_round_median\": ", absl::StrFormat("%.0f", Median(syncs)),
        ",\n      \"wal_flush_ms_per_round_median\": ", absl::StrFormat("%.1f", Median(sync_ms)),
        ",\n      \"server_ms_per_round_median\": ", absl::StrFormat("%.1f", Median(server)),
        ",\n      \"statements\": [\n        ", stmt_json, "\n      ]\n    }",
        k + 1 < configs.size() ? "," : "", "\n");
  }
  // The ratio: serial over parallel, overall and within each pair.
  std::vector<double> pair_ratios;
  for (int p = 0; p < absl::GetFlag(FLAGS_pairs); ++p) {
    std::vector<double> par, ser;
    for (const Round& r : rounds) {
      if (r.pair != p) continue;
      (r.workers == 0 ? ser : par).push_back(r.wall_ms);
    }
    if (!par.empty() && !ser.empty()) pair_ratios.push_back(Median(ser) / Median(par));
  }
  double ratio = Median(collect(0, [](const Round& r) { return r.wall_ms; })) /
                 Median(collect(workers, [](const Round& r) { return r.wall_ms; }));
  double span_ratio = Median(collect(0, [](const Round& r) { return r.span_ms; })) /
                      Median(collect(workers, [](const Round& r) { return r.span_ms; }));
  absl::StrAppend(&json,
                  "  },\n  \"serial_over_parallel_wall_ratio\": ", absl::StrFormat("%.3f", ratio),
                  ",\n  \"serial_over_parallel_span_ratio\": ", absl::StrFormat("%.3f", span_ratio),
                  ",\n  \"pair_wall_ratios\": ", JsonList(pair_ratios), "\n}\n");
  std::printf("serial / %d workers: wall %.2fx (pairs: %s), span %.2fx\n", workers, ratio,
              JsonList(pair_ratios).c_str(), span_ratio);

  const std::string out = absl::GetFlag(FLAGS_out);
  if (!out.empty()) {
    std::ofstream(out + ".csv") << csv;
    std::ofstream(out + ".json") << json;
    std::printf("wrote %s.csv and %s.json\n", out.c_str(), out.c_str());
  }
  capture->reset();
  (void)testing::RunCommand(absl::StrCat("rm -rf '", log_dir, "'"));
  return absl::OkStatus();
}

}  // namespace
}  // namespace trickle::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Wall time of a scheduler round over independent stream tables: worker pool vs serial, same "
      "run.");
  absl::ParseCommandLine(argc, argv);
  spdlog::set_level(spdlog::level::warn);
  absl::Status s = trickle::bench::Run();
  if (!s.ok()) {
    std::fprintf(stderr, "parallel_round: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
