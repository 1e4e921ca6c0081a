// Crash test of the refresh engine: trickled (capture + refreshes) is killed
// with SIGKILL at random moments, >= 20 times, while writers commit; it is
// restarted each time. At the end every stream table must equal its query
// (the oracle), which an aggregate over counts and sums would not if any
// change had been lost or applied twice.
#include <signal.h>
#include <sys/wait.h>

#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "scheduler/stream_table_manager.h"
#include "service/fence.h"
#include "tests/integration/capture_fixture.h"
#include "tests/support/oracle.h"
#include "tests/support/process.h"

namespace trickle::testing {
namespace {

pid_t StartTrickled(const std::string& data_dir, const std::string& log_path,
                    const std::string& name = "rcrash", std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {TRICKLED_PATH,
                                   "--dsn=" + TestPostgres().Dsn(),
                                   "--data-dir=" + data_dir,
                                   "--slot-name=slot_" + name,
                                   "--publication-name=pub_" + name,
                                   "--status-interval=200ms",
                                   "--log-level=warn"};
  for (std::string& a : FreeListenAddressArgs()) args.push_back(std::move(a));
  for (std::string& a : extra) args.push_back(std::move(a));
  return SpawnLogged(args, log_path);
}

int64_t Scalar(PgConnection& sql, const std::string& q) {
  auto r = sql.Exec(q);
  EXPECT_TRUE(r.ok()) << q << ": " << r.status();
  return r.ok() && !r->IsNull(0, 0) ? std::stoll(std::string(r->Get(0, 0))) : -1;
}

TEST(RefreshCrashTest, SigkillDuringCaptureAndRefreshNeverLosesOrDoublesAChange) {
  auto conn = TestPostgres().Connect();
  ASSERT_TRUE(conn.ok());
  PgConnection& sql = **conn;
  ASSERT_TRUE(sql.Exec("CREATE TABLE rc_src (id serial PRIMARY KEY, k int, v int);"
                       "ALTER TABLE rc_src REPLICA IDENTITY FULL;"
                       "INSERT INTO rc_src (k, v) SELECT g % 10, g FROM generate_series(1, 500) g;"
                       "CREATE PUBLICATION pub_rcrash").ok());
  ASSERT_TRUE(sql.Exec("SELECT pg_create_logical_replication_slot('slot_rcrash', 'pgoutput')").ok());

  // Create the stream tables in-process (the admin RPC arrives later); the
  // frontier they get is a WAL position, valid for trickled's slot too.
  const std::string q1 = "SELECT k, count(*) AS n, sum(v) AS s FROM rc_src GROUP BY k";
  const std::string q2 = "SELECT k, n * 2 AS n2 FROM rc_agg WHERE s > 0";
  {
    CaptureRunner setup("rcrash_setup");
    setup.Publish({"rc_src"});
    setup.Start();
    service::FenceEmitter fences(TestPostgres().Dsn(), &setup.capture());
    scheduler::ManagerOptions options;
    options.dsn = TestPostgres().Dsn();
    options.publication_name = "pub_rcrash";
    auto manager = scheduler::StreamTableManager::Open(options, &setup.log(), [&] { return fences.Emit(); });
    ASSERT_TRUE(manager.ok()) << manager.status();
    ASSERT_TRUE((*manager)->Create({"rc_agg", q1, delta::RefreshMode::kDifferential, "50ms", false}).ok());
    ASSERT_TRUE((*manager)->Create({"rc_chain", q2, delta::RefreshMode::kAuto, "50ms", false}).ok());
  }

  std::string data_dir = MakeTempDir("trickle-rcrash-");
  std::string log_path = data_dir + ".log";
  uint32_t seed = std::random_device{}();
  SCOPED_TRACE(absl::StrCat("seed ", seed, ", trickled log ", log_path));
  std::mt19937 rng(seed);
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; ++w) {
    writers.emplace_back([&, w] {
      auto c = TestPostgres().Connect();
      ASSERT_TRUE(c.ok());
      std::mt19937 r(seed + w);
      while (!stop.load()) {
        std::string s = absl::StrCat("BEGIN; INSERT INTO rc_src (k, v) VALUES (", r() % 10, ", ", r() % 50, ");",
                                     "UPDATE rc_src SET v = v + 1, k = ", r() % 10, " WHERE id = ", 1 + r() % 500, ";");
        if (r() % 3 == 0) absl::StrAppend(&s, "DELETE FROM rc_src WHERE id = (SELECT max(id) FROM rc_src WHERE k = ", r() % 10, ");");
        s += r() % 5 == 0 ? "ROLLBACK" : "COMMIT";
        auto res = (*c)->Exec(s);
        if (!res.ok()) {
          ASSERT_EQ(SqlStateOf(res.status()), "40P01") << res.status();
          ASSERT_TRUE((*c)->Exec("ROLLBACK").ok());
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
  }
  constexpr int kKills = 20;
  for (int i = 0; i < kKills; ++i) {
    pid_t pid = StartTrickled(data_dir, log_path);
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + rng() % 1300));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "trickled exited by itself";
  }
  stop = true;
  for (auto& t : writers) t.join();

  std::string end = std::string(sql.Exec("SELECT pg_current_wal_lsn()::text")->Get(0, 0));
  pid_t pid = StartTrickled(data_dir, log_path);
  bool caught_up = false;
  for (int i = 0; i < 600 && !caught_up; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    caught_up = Scalar(sql, absl::StrCat("SELECT count(*) FROM pgtrickle.stream_tables WHERE "
                                         "split_part(frontier, ';', 1)::pg_lsn >= '", end, "'")) == 2;
  }
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "unclean stop";
  ASSERT_TRUE(caught_up) << "stream tables did not catch up";

  EXPECT_EQ(OracleDifferences(sql, "rc_agg", q1), 0);
  EXPECT_EQ(OracleDifferences(sql, "rc_chain", q2), 0);
  int64_t differential = Scalar(sql, "SELECT count(*) FROM pgtrickle.refresh_history WHERE action = 'DIFFERENTIAL'");
  EXPECT_GT(differential, 10) << "too few refreshes ran to prove anything";
  std::printf("refresh crash test: %d kills, %lld differential refreshes, %lld source rows\n", kKills,
              static_cast<long long>(differential), static_cast<long long>(Scalar(sql, "SELECT count(*) FROM rc_src")));
}

// SIGTERM finishes the refreshes in flight and stops cleanly. It used to stop
// the replication stream at once, so a refresh waiting for its fence (or the
// next one the coordinator started) failed after the 30 s fence timeout,
// recorded as a failed refresh. Refreshes run back to back here (writers
// commit continuously, three stream tables), so every SIGTERM meets some.
TEST(RefreshCrashTest, SigtermWhileRefreshingStopsPromptlyWithoutAFailedRefresh) {
  auto conn = TestPostgres().Connect();
  ASSERT_TRUE(conn.ok());
  PgConnection& sql = **conn;
  ASSERT_TRUE(sql.Exec("CREATE TABLE rt_src (id serial PRIMARY KEY, k int, v int);"
                       "ALTER TABLE rt_src REPLICA IDENTITY FULL;"
                       "INSERT INTO rt_src (k, v) SELECT g % 10, g FROM generate_series(1, 2000) g;"
                       "CREATE PUBLICATION pub_rterm").ok());
  ASSERT_TRUE(sql.Exec("SELECT pg_create_logical_replication_slot('slot_rterm', 'pgoutput')").ok());
  const std::vector<std::pair<std::string, std::string>> tables = {
      {"rt_sums", "SELECT k, count(*) AS n, sum(v) AS s FROM rt_src GROUP BY k"},
      {"rt_max", "SELECT k, max(v) AS m FROM rt_src GROUP BY k"},
      {"rt_even", "SELECT id, v FROM rt_src WHERE v % 2 = 0"},
  };
  {
    CaptureRunner setup("rterm_setup");
    setup.Publish({"rt_src"});
    setup.Start();
    service::FenceEmitter fences(TestPostgres().Dsn(), &setup.capture());
    scheduler::ManagerOptions options;
    options.dsn = TestPostgres().Dsn();
    options.publication_name = "pub_rterm";
    auto manager = scheduler::StreamTableManager::Open(options, &setup.log(), [&] { return fences.Emit(); });
    ASSERT_TRUE(manager.ok()) << manager.status();
    for (const auto& [name, query] : tables) {
      ASSERT_TRUE((*manager)->Create({name, query, delta::RefreshMode::kDifferential, "", false}).ok());
    }
  }

  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      auto c = TestPostgres().Connect();
      ASSERT_TRUE(c.ok());
      std::mt19937 r(w);
      while (!stop.load()) {
        auto res = (*c)->Exec(absl::StrCat("INSERT INTO rt_src (k, v) VALUES (", r() % 10, ", ", r() % 100,
                                           "); UPDATE rt_src SET v = v + 1 WHERE id = ", 1 + r() % 2000));
        ASSERT_TRUE(res.ok()) << res.status();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  }
  const std::string names = "('rt_sums', 'rt_max', 'rt_even')";
  auto refreshes = [&] {
    return Scalar(sql, absl::StrCat("SELECT count(*) FROM pgtrickle.refresh_history h JOIN pgtrickle.stream_tables st"
                                    " ON st.id = h.stream_table_id WHERE st.table_name IN ", names));
  };
  std::string data_dir = MakeTempDir("trickle-rterm-");
  std::string log_path = data_dir + ".log";
  SCOPED_TRACE(absl::StrCat("trickled log ", log_path));
  std::mt19937 rng(std::random_device{}());
  constexpr int kStops = 6;
  for (int i = 0; i < kStops; ++i) {
    // Serial refreshes in the coordinator and a worker pool, alternately.
    std::string workers = absl::StrCat("--max-parallel-workers=", i % 2 == 0 ? 0 : 2);
    int64_t before = refreshes();
    pid_t pid = StartTrickled(data_dir, log_path, "rterm", {workers});
    for (int t = 0; t < 600 && refreshes() < before + 10; ++t) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_GE(refreshes(), before + 10) << "trickled did not refresh (" << workers << ")";
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 100));
    auto sent = std::chrono::steady_clock::now();
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    int status = 0;
    waitpid(pid, &status, 0);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "unclean stop, " << workers;
    EXPECT_LT(seconds, 5.0) << "SIGTERM took " << seconds << " s to stop trickled, " << workers;
  }
  stop = true;
  for (auto& t : writers) t.join();

  auto failed = sql.Exec(absl::StrCat(
      "SELECT coalesce(string_agg(st.table_name || ': ' || h.error, '; '), '') FROM pgtrickle.refresh_history h"
      " JOIN pgtrickle.stream_tables st ON st.id = h.stream_table_id WHERE h.error IS NOT NULL"
      " AND st.table_name IN ", names));
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_EQ(std::string(failed->Get(0, 0)), "") << "failed refreshes were recorded";
  EXPECT_EQ(Scalar(sql, "SELECT count(*) FROM pgtrickle.stream_tables WHERE status <> 'ACTIVE'"), 0);
  std::printf("SIGTERM test: %d stops, %lld refreshes\n", kStops, static_cast<long long>(refreshes()));
}

}  // namespace
}  // namespace trickle::testing
