// The event-driven scheduler on a real PostgreSQL: change arrival wakes it,
// the DAG orders refreshes across a worker pool, failures back off and
// recover, the fuse blows and resets, AUTO switches to FULL under a spike,
// and an SLA tier is promoted when its deadline is missed.
#include <limits>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "scheduler/history_retention.h"
#include "scheduler/stream_table_manager.h"
#include "service/fence.h"
#include "tests/integration/capture_fixture.h"
#include "tests/support/oracle.h"

namespace trickle::testing {
namespace {

using scheduler::CreateRequest;
using scheduler::FuseAction;
using scheduler::StreamTableManager;

class SchedulerTest : public ::testing::Test {
 protected:
  void Start(const std::string& name, scheduler::ManagerOptions options,
             absl::Duration fence_timeout = absl::Seconds(30)) {
    runner_ = std::make_unique<CaptureRunner>(name);
    runner_->capture().SetCommitListener([this](const storage::TransactionRecord& txn) {
      if (auto* m = listener_.load()) m->OnSourceCommitted(txn);
    });
    runner_->Start();
    fences_ = std::make_unique<service::FenceEmitter>(TestPostgres().Dsn(), &runner_->capture(), fence_timeout);
    options.dsn = TestPostgres().Dsn();
    options.publication_name = runner_->publication();
    options.set_replica_identity = true;
    auto manager = StreamTableManager::Open(options, &runner_->log(), [this] { return fences_->Emit(); });
    ASSERT_TRUE(manager.ok()) << manager.status();
    manager_ = std::move(*manager);
    listener_ = manager_.get();
    scheduler_ = std::thread([this] { manager_->RunScheduler(stop_); });
  }
  void TearDown() override {
    stop_ = true;
    if (scheduler_.joinable()) scheduler_.join();
    listener_ = nullptr;
    manager_.reset();
    fences_.reset();
    runner_.reset();
  }
  PgConnection& sql() { return runner_->sql(); }
  void Exec(const std::string& q) {
    auto r = sql().Exec(q);
    ASSERT_TRUE(r.ok()) << q << ": " << r.status();
  }
  int64_t Scalar(const std::string& q) {
    auto r = sql().Exec(q);
    EXPECT_TRUE(r.ok()) << q << ": " << r.status();
    return r.ok() && !r->IsNull(0, 0) ? std::stoll(std::string(r->Get(0, 0))) : -1;
  }
  std::string Text(const std::string& q) {
    auto r = sql().Exec(q);
    EXPECT_TRUE(r.ok()) << q << ": " << r.status();
    return r.ok() && r->rows() > 0 ? std::string(r->Get(0, 0)) : "";
  }
  int64_t OracleDifferences(const std::string& st, const std::string& query) {
    return trickle::testing::OracleDifferences(sql(), st, query);
  }
  // Waits until every stream table's frontier passes the WAL position of now
  // (so every change committed so far is applied), by change arrival alone.
  bool WaitCaughtUp(absl::Duration timeout = absl::Seconds(60)) {
    return WaitFrontiersPast(Text("SELECT pg_current_wal_lsn()::text"), timeout);
  }
  // Waits until every stream table's frontier passes `lsn`.
  bool WaitFrontiersPast(const std::string& lsn, absl::Duration timeout = absl::Seconds(60)) {
    absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (Scalar(absl::StrCat("SELECT count(*) FROM pgtrickle.stream_tables WHERE status = 'ACTIVE' AND "
                              "(frontier IS NULL OR split_part(frontier, ';', 1)::pg_lsn < '", lsn, "')")) == 0) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  std::unique_ptr<CaptureRunner> runner_;
  std::unique_ptr<service::FenceEmitter> fences_;
  std::unique_ptr<StreamTableManager> manager_;
  std::atomic<StreamTableManager*> listener_{nullptr};
  std::atomic<bool> stop_{false};
  std::thread scheduler_;
};

TEST_F(SchedulerTest, DiamondWithFourWorkersIsExactAfterEveryRound) {
  scheduler::ManagerOptions options;
  options.max_parallel_workers = 4;
  Start("sc_diamond", options);
  Exec("CREATE TABLE sc_base (id serial PRIMARY KEY, k int, v int);"
       "INSERT INTO sc_base (k, v) SELECT g % 9, g % 17 FROM generate_series(1, 300) g;");
  struct St { std::string name, query; };
  std::vector<St> sts = {
      {"sc_top", "SELECT id, k, v FROM sc_base WHERE v IS NOT NULL"},
      {"sc_left", "SELECT k, sum(v) AS s FROM sc_top GROUP BY k"},
      {"sc_right", "SELECT k, count(*) AS n FROM sc_top WHERE v % 2 = 0 GROUP BY k"},
      {"sc_bottom", "SELECT k, s AS x FROM sc_left UNION ALL SELECT k, n FROM sc_right"},
      {"sc_other", "SELECT v, count(*) AS n FROM sc_base GROUP BY v"},
  };
  for (const St& st : sts) {
    auto c = manager_->Create({st.name, st.query, delta::RefreshMode::kAuto, "", false});
    ASSERT_TRUE(c.ok()) << st.name << ": " << c.status();
  }
  std::mt19937 rng(11);
  for (int round = 0; round < 8; ++round) {
    std::string batch = "BEGIN;";
    for (int i = 0; i < 6; ++i) {
      absl::StrAppend(&batch, "INSERT INTO sc_base (k, v) VALUES (", rng() % 9, ", ", rng() % 17, ");",
                      "UPDATE sc_base SET v = ", rng() % 17, ", k = ", rng() % 9, " WHERE id = ", 1 + rng() % 300, ";",
                      "DELETE FROM sc_base WHERE id = ", 1 + rng() % 300, ";");
    }
    batch += "COMMIT";
    Exec(batch);
    ASSERT_TRUE(WaitCaughtUp()) << "round " << round;
    for (const St& st : sts) ASSERT_EQ(OracleDifferences(st.name, st.query), 0) << st.name << " round " << round;
  }
  // Nothing changed: nothing refreshes.
  int64_t before = Scalar("SELECT count(*) FROM pgtrickle.refresh_history");
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(Scalar("SELECT count(*) FROM pgtrickle.refresh_history"), before);
  EXPECT_EQ(Scalar("SELECT count(*) FROM pgtrickle.refresh_history WHERE error IS NOT NULL"), 0);
}

TEST_F(SchedulerTest, IntervalScheduleCountsFromTheLastRefresh) {
  scheduler::ManagerOptions options;
  options.max_parallel_workers = 1;
  Start("sc_interval", options);
  Exec("CREATE TABLE sc_i (id serial PRIMARY KEY, v int)");
  const std::string q = "SELECT count(*) AS n, sum(v) AS s FROM sc_i";
  absl::Time created = absl::Now();  // the interval counts from the initial refresh's start
  ASSERT_TRUE(manager_->Create({"sc_interval_st", q, delta::RefreshMode::kAuto, "2s", false}).ok());
  Exec("INSERT INTO sc_i (v) VALUES (1)");
  absl::SleepFor(absl::Milliseconds(700));
  // Only the initial FULL refresh so far: the change waits for the interval.
  EXPECT_EQ(Scalar("SELECT count(*) FROM pgtrickle.refresh_history"), 1);
  ASSERT_TRUE(WaitCaughtUp(absl::Seconds(10)));
  EXPECT_GE(absl::Now() - created, absl::Milliseconds(1900));
  EXPECT_EQ(OracleDifferences("sc_interval_st", q), 0);
}

TEST_F(SchedulerTest, KilledWorkerBackendsAreRetriedAndOthersKeepTheirPace) {
  scheduler::ManagerOptions options;
  options.max_parallel_workers = 2;
  options.backoff_base = absl::Milliseconds(50);
  options.backoff_cap = absl::Milliseconds(400);
  options.max_consecutive_failures = 1000;
  Start("sc_kill", options);
  Exec("CREATE TABLE sc_k (id serial PRIMARY KEY, k int, v int);"
       "INSERT INTO sc_k (k, v) SELECT g % 5, g FROM generate_series(1, 20000) g;");
  const std::string q1 = "SELECT k, count(*) AS n, sum(v) AS s FROM sc_k GROUP BY k";
  const std::string q2 = "SELECT k, max(v) AS m FROM sc_k GROUP BY k";
  // verify makes each refresh long enough to be killed in the middle.
  ASSERT_TRUE(manager_->Create({"sc_kill_1", q1, delta::RefreshMode::kDifferential, "", true}).ok());
  ASSERT_TRUE(manager_->Create({"sc_kill_2", q2, delta::RefreshMode::kDifferential, "", false}).ok());
  int killed = 0;
  for (int i = 0; i < 40; ++i) {
    Exec("UPDATE sc_k SET v = v + 1 WHERE id % 50 = " + std::to_string(i % 50));
    absl::SleepFor(absl::Milliseconds(15));
    killed += Scalar("SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     " WHERE application_name LIKE 'trickle-worker-%' AND state = 'active'"
                     " AND query NOT LIKE '%pg_logical_emit_message%') t");
  }
  ASSERT_TRUE(WaitCaughtUp()) << "did not recover after " << killed << " killed backends";
  EXPECT_GT(killed, 0) << "no refresh was caught in flight";
  EXPECT_EQ(OracleDifferences("sc_kill_1", q1), 0);
  EXPECT_EQ(OracleDifferences("sc_kill_2", q2), 0);
  EXPECT_GT(Scalar("SELECT count(*) FROM pgtrickle.refresh_history WHERE error IS NOT NULL"), 0);
  EXPECT_EQ(Text("SELECT string_agg(status, ',') FROM pgtrickle.stream_tables"), "ACTIVE,ACTIVE");
}

// The replication stream goes away (here: stopped; in life a lost
// connection, a restart of PostgreSQL, a full disk under the change log)
// while stream tables have changes pending. Their refreshes cannot get a
// fence: each fails with an error that says the stream is not connected and
// is retried, but an outage is not the stream tables' fault and must not
// park them in ERROR (it did after max_consecutive_failures fence timeouts,
// 2 here; 5 x 30 s by default, so a few minutes without the stream stopped
// every stream table with changes pending for good). Once the stream is
// back they catch up on their own.
TEST_F(SchedulerTest, StreamOutageIsRetriedAndNeverParksStreamTablesInError) {
  scheduler::ManagerOptions options;
  options.max_parallel_workers = 2;
  options.backoff_base = absl::Milliseconds(50);
  options.max_consecutive_failures = 2;
  Start("sc_outage", options, /*fence_timeout=*/absl::Milliseconds(500));
  Exec("CREATE TABLE sc_o (id serial PRIMARY KEY, k int, v int);"
       "INSERT INTO sc_o (k, v) SELECT g % 7, g FROM generate_series(1, 500) g;");
  const std::string q1 = "SELECT k, count(*) AS n, sum(v) AS s FROM sc_o GROUP BY k";
  const std::string q2 = "SELECT id, v FROM sc_o WHERE v % 3 = 0";
  // An interval schedule: the changes below are logged (so both stream
  // tables are dirty) before the refresh that should apply them starts.
  ASSERT_TRUE(manager_->Create({"sc_outage_1", q1, delta::RefreshMode::kDifferential, "1s", false}).ok());
  ASSERT_TRUE(manager_->Create({"sc_outage_2", q2, delta::RefreshMode::kDifferential, "1s", false}).ok());
  Exec("UPDATE sc_o SET v = v + 1 WHERE id % 10 = 0; INSERT INTO sc_o (k, v) VALUES (1, 1)");
  runner_->Sync();  // in the log, and both stream tables marked dirty
  runner_->Stop();
  Exec("UPDATE sc_o SET v = v + 2 WHERE id % 10 = 1; DELETE FROM sc_o WHERE id % 10 = 2");
  // Taken while no refresh can commit: the refreshes after the outage pass it.
  const std::string last_change = Text("SELECT pg_current_wal_lsn()::text");

  const std::string failures =
      "SELECT count(*) FROM pgtrickle.refresh_history WHERE error LIKE '%replication stream is not connected%'";
  const std::string parked = "SELECT count(*) FROM pgtrickle.stream_tables WHERE status <> 'ACTIVE'";
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (Scalar(failures) < 6 && Scalar(parked) == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  // None counted toward ERROR, although each stream table failed more often
  // in a row than max_consecutive_failures; every failure said why.
  ASSERT_EQ(Text("SELECT string_agg(status, ',') FROM pgtrickle.stream_tables"), "ACTIVE,ACTIVE");
  ASSERT_GE(Scalar(failures), 6) << "refreshes did not fail for the missing stream";
  EXPECT_EQ(Scalar("SELECT count(*) FROM pgtrickle.refresh_history WHERE error IS NOT NULL"), Scalar(failures));
  EXPECT_GE(Scalar("SELECT max(consecutive_failures) FROM pgtrickle.stream_tables"), 3);

  runner_->Start();
  ASSERT_TRUE(WaitFrontiersPast(last_change)) << "did not catch up after the stream came back";
  EXPECT_EQ(OracleDifferences("sc_outage_1", q1), 0);
  EXPECT_EQ(OracleDifferences("sc_outage_2", q2), 0);
  EXPECT_EQ(Text("SELECT string_agg(status, ',') FROM pgtrickle.stream_tables"), "ACTIVE,ACTIVE");
  EXPECT_EQ(Scalar("SELECT max(consecutive_failures) FROM pgtrickle.stream_tables"), 0);
}

// An on-change stream table whose source is rewritten by ALTER COLUMN ...
// TYPE and then sees no change at all: nothing arrives in the stream, so the
// coordinator's periodic comparison of source columns with the plans is what
// makes it refresh (and rebuild).
TEST_F(SchedulerTest, AlteredColumnTypeRebuildsAnOnChangeStreamTableWithoutAnyChange) {
  scheduler::ManagerOptions options;
  options.max_parallel_workers = 2;
  options.source_columns_check_interval = absl::Milliseconds(200);
  Start("sc_alter", options);
  Exec("CREATE TABLE sc_a (id serial PRIMARY KEY, k int, v int);"
       "INSERT INTO sc_a (k, v) SELECT g % 5, g FROM generate_series(1, 100) g;");
  const std::string q = "SELECT k, sum(v) AS s FROM sc_a GROUP BY k";
  ASSERT_TRUE(manager_->Create({"sc_alter_st", q, delta::RefreshMode::kDifferential, "", false}).ok());
  Exec("ALTER TABLE sc_a ALTER COLUMN v TYPE bigint USING v * 1000");
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (OracleDifferences("sc_alter_st", q) != 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(OracleDifferences("sc_alter_st", q), 0) << "still built on the old column type";
  EXPECT_EQ(Text("SELECT status FROM pgtrickle.stream_tables WHERE table_name = 'sc_alter_st'"), "ACTIVE");
  // Rebuilt once: the check finds nothing more to do.
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(Scalar("SELECT count(*) FROM pgtrickle.refresh_history WHERE action = 'FULL'"), 2);
}

// What counts as an outage: a connection that cannot be made (Connect marks
// it), not a connection lost in the middle of the work, which may be the
// work's own doing and still counts toward ERROR.
TEST(OutageTest, OnlyAConnectionNotMadeIsAnOutage) {
  auto refused = PgConnection::Connect("host=127.0.0.1 port=1 connect_timeout=2 dbname=x user=x");
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(IsOutage(refused.status())) << refused.status();
  EXPECT_EQ(scheduler::FailuresBeforeError(refused.status(), 5), std::numeric_limits<int>::max());
  EXPECT_EQ(scheduler::RetryDelay(refused.status(), 20, absl::Seconds(1), absl::Minutes(5)), absl::Seconds(10));

  absl::Status lost = absl::UnavailableError("server closed the connection unexpectedly");
  EXPECT_FALSE(IsOutage(lost));
  EXPECT_EQ(scheduler::FailuresBeforeError(lost, 5), 5);
  EXPECT_EQ(scheduler::RetryDelay(lost, 20, absl::Seconds(1), absl::Minutes(5)), absl::Minutes(5));
  EXPECT_EQ(scheduler::FailuresBeforeError(absl::InvalidArgumentError("relation does not exist"), 5), 1);
}

TEST_F(SchedulerTest, FuseBlowsAndEachResetWorks) {
  scheduler::ManagerOptions options;
  options.max_parallel_workers = 1;
  Start("sc_fuse", options);
  Exec("CREATE TABLE sc_f (id serial PRIMARY KEY, k int, v int);"
       "INSERT INTO sc_f (k, v) SELECT g % 4, g FROM generate_series(1, 100) g;");
  const std::string q = "SELECT k, count(*) AS n, sum(v) AS s FROM sc_f GROUP BY k";
  CreateRequest req{"sc_fuse_st", q, delta::RefreshMode::kDifferential, "", false};
  req.fuse.max_rows = 50;
  ASSERT_TRUE(manager_->Create(req).ok());
  auto blow = [&] {
    Exec("INSERT INTO sc_f (k, v) SELECT g % 4, g FROM generate_series(1, 80) g");
    for (int i = 0; i < 300 && Text("SELECT status FROM pgtrickle.stream_tables") != "SUSPENDED"; ++i) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    ASSERT_EQ(Text("SELECT status FROM pgtrickle.stream_tables"), "SUSPENDED");
    ASSERT_EQ(Text("SELECT fuse_state FROM pgtrickle.stream_tables"), "BLOWN");
    EXPECT_EQ(Scalar("SELECT fuse_delta_rows FROM pgtrickle.stream_tables"), 80);
    EXPECT_NE(Text("SELECT fuse_reason FROM pgtrickle.stream_tables").find("80 rows"), std::string::npos);
    // While blown: nothing applied.
    EXPECT_NE(OracleDifferences("sc_fuse_st", q), 0);
  };
  // Small changes pass.
  Exec("INSERT INTO sc_f (k, v) VALUES (1, 1)");
  ASSERT_TRUE(WaitCaughtUp());
  EXPECT_EQ(OracleDifferences("sc_fuse_st", q), 0);

  blow();
  auto apply = manager_->ResetFuse("sc_fuse_st", FuseAction::kApply);
  ASSERT_TRUE(apply.ok()) << apply.status();
  EXPECT_EQ(apply->history.action, "DIFFERENTIAL");
  EXPECT_EQ(OracleDifferences("sc_fuse_st", q), 0);
  EXPECT_EQ(Text("SELECT status || '/' || fuse_state FROM pgtrickle.stream_tables"), "ACTIVE/OK");

  blow();
  auto reinit = manager_->ResetFuse("sc_fuse_st", FuseAction::kReinitialize);
  ASSERT_TRUE(reinit.ok()) << reinit.status();
  EXPECT_EQ(reinit->history.action, "FULL");
  EXPECT_EQ(OracleDifferences("sc_fuse_st", q), 0);

  blow();
  auto skip = manager_->ResetFuse("sc_fuse_st", FuseAction::kSkipChanges);
  ASSERT_TRUE(skip.ok()) << skip.status();
  EXPECT_EQ(skip->history.action, "SKIPPED");
  EXPECT_GT(Scalar("SELECT count(*) FROM pgtrickle.refresh_history WHERE action = 'SKIPPED'"
                   " AND reason LIKE '%80 delta rows%discarded%'"), 0);
  EXPECT_NE(OracleDifferences("sc_fuse_st", q), 0) << "skip_changes must not apply the delta";
  ASSERT_TRUE(manager_->RefreshNow("sc_fuse_st", scheduler::RefreshKind::kFull).ok());
  EXPECT_EQ(OracleDifferences("sc_fuse_st", q), 0);
  EXPECT_EQ(manager_->ResetFuse("sc_fuse_st", FuseAction::kApply).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(SchedulerTest, AutoSwitchesToFullUnderASpike) {
  scheduler::ManagerOptions options;
  options.max_parallel_workers = 1;
  Start("sc_auto", options);
  Exec("CREATE TABLE sc_a (id serial PRIMARY KEY, k int, v int);"
       "INSERT INTO sc_a (k, v) SELECT g % 100, g FROM generate_series(1, 30000) g;");
  const std::string q = "SELECT k, count(*) AS n, sum(v) AS s FROM sc_a GROUP BY k";
  ASSERT_TRUE(manager_->Create({"sc_auto_st", q, delta::RefreshMode::kAuto, "", false}).ok());
  // Real differential refreshes first, then a synthetic history that fixes
  // the cost line (1 ms + 0.01 ms/row) and the last FULL cost (50 ms), so the
  // decision below does not depend on this machine's speed.
  for (int rows : {5, 20}) {
    Exec("UPDATE sc_a SET v = v + 1 WHERE id <= " + std::to_string(rows));
    ASSERT_TRUE(WaitCaughtUp());
  }
  Exec("INSERT INTO pgtrickle.refresh_history (stream_table_id, started_at, action, delta_rows, duration_ms)"
       " SELECT id, now(), 'DIFFERENTIAL', g * 250, 1 + 0.01 * g * 250"
       " FROM pgtrickle.stream_tables, generate_series(1, 20) g;"
       "INSERT INTO pgtrickle.refresh_history (stream_table_id, started_at, action, duration_ms)"
       " SELECT id, now(), 'FULL', 50 FROM pgtrickle.stream_tables");
  // A small change stays differential: predicted ~1.4 ms < 1.5 x 50 ms.
  Exec("UPDATE sc_a SET v = v + 1 WHERE id <= 20");
  ASSERT_TRUE(WaitCaughtUp());
  EXPECT_EQ(Text("SELECT action FROM pgtrickle.refresh_history ORDER BY id DESC LIMIT 1"), "DIFFERENTIAL");
  // The spike: every row changes.
  Exec("UPDATE sc_a SET v = v + 1");
  ASSERT_TRUE(WaitCaughtUp());
  EXPECT_EQ(Text("SELECT action || ':' || coalesce(reason, '') FROM pgtrickle.refresh_history ORDER BY id DESC LIMIT 1"),
            "FULL:predicted_cost_exceeds_full");
  EXPECT_EQ(OracleDifferences("sc_auto_st", q), 0);
  auto status = manager_->GetStatus("sc_auto_st");
  ASSERT_TRUE(status.ok());
  EXPECT_GE(status->scheduler.cost.samples, 5);
  EXPECT_GT(status->scheduler.cost.slope_ms_per_row, 0);
  EXPECT_GE(Scalar("SELECT cost_samples FROM pgtrickle.pg_stat_stream_tables"), 5);
}

TEST_F(SchedulerTest, SlaTierIsPromotedWithinThreeCyclesWhenDeadlinesAreMissed) {
  scheduler::ManagerOptions options;
  options.max_parallel_workers = 1;
  options.injected_refresh_delay = absl::Milliseconds(800);
  Start("sc_sla", options);
  Exec("CREATE TABLE sc_s (id serial PRIMARY KEY, v int)");
  CreateRequest req{"sc_sla_st", "SELECT count(*) AS n FROM sc_s", delta::RefreshMode::kAuto, "", false};
  req.sla = absl::Milliseconds(1500);  // warm (1 s gap) fits on paper; with the delay it misses
  ASSERT_TRUE(manager_->Create(req).ok());
  auto tier = [&] { return manager_->GetStatus("sc_sla_st")->scheduler.tier; };
  ASSERT_TRUE(tier().has_value());
  EXPECT_EQ(*tier(), scheduler::Tier::kWarm);
  int cycles = 0;
  while (cycles < 3 && *tier() != scheduler::Tier::kHot) {
    Exec("INSERT INTO sc_s (v) VALUES (1)");
    ASSERT_TRUE(WaitCaughtUp());
    ++cycles;
  }
  EXPECT_EQ(*tier(), scheduler::Tier::kHot) << "not promoted after " << cycles << " cycles";
  EXPECT_EQ(Text("SELECT tier FROM pgtrickle.stream_tables"), "hot");
}

// An interval stream table that waits idle for its next change is not
// falling behind: the time between "due" and the change's arrival used to
// count as lateness, so at a steady trickle of changes (one every 600 ms
// here, interval 200 ms) the effective interval doubled again and again.
TEST_F(SchedulerTest, IdleTimeBetweenChangesDoesNotStretchTheInterval) {
  Start("sc_pace", scheduler::ManagerOptions{});
  Exec("CREATE TABLE sc_pace_src (id serial PRIMARY KEY, v int);"
       "INSERT INTO sc_pace_src (v) SELECT g FROM generate_series(1, 100) g;");
  const std::string q = "SELECT id, v FROM sc_pace_src";
  ASSERT_TRUE(manager_->Create({"sc_pace_st", q, delta::RefreshMode::kDifferential, "200ms", false}).ok());
  int64_t before = Scalar("SELECT count(*) FROM pgtrickle.refresh_history");
  for (int i = 0; i < 8; ++i) {
    Exec(absl::StrCat("INSERT INTO sc_pace_src (v) VALUES (", i, ")"));
    absl::SleepFor(absl::Milliseconds(600));
  }
  for (int i = 0; i < 500 && OracleDifferences("sc_pace_st", q) != 0; ++i) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_GE(Scalar("SELECT count(*) FROM pgtrickle.refresh_history") - before, 6);
  auto status = manager_->GetStatus("sc_pace_st");
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->scheduler.effective_interval, absl::ZeroDuration())
      << "stretched to " << absl::FormatDuration(status->scheduler.effective_interval);
  EXPECT_EQ(OracleDifferences("sc_pace_st", q), 0);
}

// A transaction can be decoded, logged and announced while it still runs in
// a refresh's snapshot (its commit record is flushed before it leaves the
// proc array; a synchronous standby makes that window as long as it waits).
// The refresh that its arrival dispatched then finds it invisible, applies
// nothing, and must leave the stream table dirty: nothing else would refresh
// it until the next change of a source. The window is held open here with a
// synchronous standby that never answers, for the writer's session only.
TEST_F(SchedulerTest, ChangeStillRunningInTheSnapshotIsAppliedWithoutAnotherChange) {
  {
    auto admin = TestPostgres().Connect();
    ASSERT_TRUE(admin.ok());
    // New sessions commit locally; only the writer waits for the standby.
    // One statement per call: ALTER SYSTEM refuses a transaction block.
    for (const char* statement :
         {"ALTER SYSTEM SET synchronous_standby_names = 'nobody'",
          "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = local', current_database()); END $$",
          "SELECT pg_reload_conf()"}) {
      auto r = (*admin)->Exec(statement);
      ASSERT_TRUE(r.ok()) << statement << ": " << r.status();
    }
  }
  struct Restore {
    ~Restore() {
      auto admin = TestPostgres().Connect();
      if (!admin.ok()) return;
      (void)(*admin)->Exec("ALTER SYSTEM RESET synchronous_standby_names");
      (void)(*admin)->Exec(
          "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I RESET synchronous_commit', current_database()); END $$");
      (void)(*admin)->Exec("SELECT pg_reload_conf()");
    }
  } restore;
  scheduler::ManagerOptions options;
  options.record_no_data = true;  // shows that the refresh ran and found nothing
  Start("sc_xip", options);
  Exec("CREATE TABLE sc_xip_src (id serial PRIMARY KEY, v int);"
       "INSERT INTO sc_xip_src (v) SELECT g FROM generate_series(1, 10) g;");
  const std::string q = "SELECT id, v FROM sc_xip_src";
  auto created = manager_->Create({"sc_xip_st", q, delta::RefreshMode::kDifferential, "", false});
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string no_data =
      "SELECT count(*) FROM pgtrickle.refresh_history h JOIN pgtrickle.stream_tables st ON st.id = "
      "h.stream_table_id WHERE st.table_name = 'sc_xip_st' AND h.action = 'NO_DATA'";
  absl::SleepFor(absl::Milliseconds(300));  // the start-up round (nothing to do) is over
  int64_t idle_rounds = Scalar(no_data);

  auto writer = TestPostgres().Connect();
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Exec("SET synchronous_commit = on").ok());
  int writer_pid = (*writer)->BackendPid();
  std::thread insert([&] {
    // Flushed and decoded at once; visible only once its wait is cancelled.
    auto r = (*writer)->Exec("INSERT INTO sc_xip_src (v) VALUES (1000)");
    EXPECT_TRUE(r.ok()) << r.status();
  });
  // The refresh its arrival dispatched runs and finds it invisible.
  for (int i = 0; i < 500 && Scalar(no_data) == idle_rounds; ++i) absl::SleepFor(absl::Milliseconds(20));
  bool refreshed_in_vain = Scalar(no_data) > idle_rounds;
  ASSERT_TRUE(sql().Exec(absl::StrCat("SELECT pg_cancel_backend(", writer_pid, ")")).ok());
  insert.join();
  ASSERT_TRUE(refreshed_in_vain) << "no refresh ran while the change was invisible";
  EXPECT_EQ(Scalar("SELECT count(*) FROM sc_xip_src WHERE v = 1000"), 1);
  // No other change follows: the stream table must still get it.
  int64_t differences = -1;
  for (int i = 0; i < 250 && differences != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
    differences = OracleDifferences("sc_xip_st", q);
  }
  EXPECT_EQ(differences, 0) << "the change stayed unapplied";
}

TEST_F(SchedulerTest, HistoryRetentionTrimsByRowsAndAgeInTheBackgroundAndKeepsTheCounters) {
  Start("sc_retention", {});
  Exec("CREATE TABLE sc_ret_src (id serial PRIMARY KEY, v int);"
       "INSERT INTO sc_ret_src (v) SELECT g FROM generate_series(1, 20) g;");
  for (const char* st : {"sc_ret_a", "sc_ret_b"}) {
    ASSERT_TRUE(manager_->Create({st, "SELECT v % 3 AS k, sum(v) AS s FROM sc_ret_src GROUP BY 1",
                                  delta::RefreshMode::kDifferential, "1h", false}).ok());
  }
  // 12 differential refreshes each, after the initial FULL.
  for (int i = 0; i < 12; ++i) {
    Exec(absl::StrCat("INSERT INTO sc_ret_src (v) VALUES (", i, ")"));
    for (const char* st : {"sc_ret_a", "sc_ret_b"}) ASSERT_TRUE(manager_->RefreshNow(st).ok());
  }
  const std::string counters =
      "SELECT string_agg(table_name || ':' || refresh_count || '/' || full_count || '/' || differential_count"
      " || '/' || failure_count, ' ' ORDER BY table_name) FROM pgtrickle.pg_stat_stream_tables";
  std::string before = Text(counters);
  EXPECT_EQ(before, "sc_ret_a:13/1/12/0 sc_ret_b:13/1/12/0");
  const std::string rows_per_st =
      "SELECT string_agg(n::text, ',' ORDER BY n) FROM (SELECT count(*) AS n FROM pgtrickle.refresh_history"
      " GROUP BY stream_table_id) c";
  EXPECT_EQ(Text(rows_per_st), "13,13");

  // At most 5 rows each: the newest 5, and the FULL that AUTO compares with.
  scheduler::HistoryRetentionOptions retention;
  retention.dsn = TestPostgres().Dsn();
  retention.max_age = absl::ZeroDuration();
  retention.max_rows_per_stream_table = 5;
  retention.batch_rows = 4;  // several batches
  auto trimmed = scheduler::TrimHistory(sql(), retention);
  ASSERT_TRUE(trimmed.ok()) << trimmed.status();
  EXPECT_EQ(*trimmed, 2 * (13 - 6));
  EXPECT_EQ(Text(rows_per_st), "6,6");
  EXPECT_EQ(Scalar("SELECT count(*) FROM pgtrickle.refresh_history WHERE action = 'FULL'"), 2);
  EXPECT_EQ(Text(counters), before) << "trimming history must not change the counters";

  // By age, in the background: rows finished 8 days ago go (a 7-day limit),
  // except each stream table's last FULL; the newest rows stay.
  Exec("UPDATE pgtrickle.refresh_history SET finished_at = now() - interval '8 days',"
       " started_at = now() - interval '8 days'"
       " WHERE id NOT IN (SELECT max(id) FROM pgtrickle.refresh_history GROUP BY stream_table_id)");
  retention.max_age = absl::Hours(7 * 24);
  retention.max_rows_per_stream_table = 0;
  retention.interval = absl::Milliseconds(50);
  std::atomic<bool> stop{false};
  scheduler::HistoryRetention background(retention);
  std::thread trimmer([&] { background.Run(stop); });
  int64_t left = -1;
  for (int i = 0; i < 500 && left != 4; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
    left = Scalar("SELECT count(*) FROM pgtrickle.refresh_history");
  }
  stop = true;
  trimmer.join();
  EXPECT_EQ(left, 4) << "each stream table keeps its newest row and its last FULL";
  EXPECT_EQ(Scalar("SELECT count(*) FROM pgtrickle.refresh_history WHERE action = 'FULL'"), 2);
  EXPECT_EQ(Text(counters), before);
  // Refreshes go on counting from there.
  Exec("INSERT INTO sc_ret_src (v) VALUES (100)");
  ASSERT_TRUE(manager_->RefreshNow("sc_ret_a").ok());
  EXPECT_EQ(Text(counters), "sc_ret_a:14/1/13/0 sc_ret_b:13/1/12/0");
}

}  // namespace
}  // namespace trickle::testing
