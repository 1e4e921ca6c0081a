// Crash test of the refresh engine: trickled (capture + refreshes) is killed
// with SIGKILL at random moments, >= 20 times, while writers commit; it is
// restarted each time. At the end every stream table must equal its query
// (the oracle), which an aggregate over counts and sums would not if any
// change had been lost or applied twice.
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <iterator>
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

// Creates stream tables in-process (the admin RPC arrives later), through a
// throwaway capture of `source` on slot `<name>_setup`; the frontier they get
// is a WAL position, valid for trickled's slot too. Publication pub_<name>.
void CreateStreamTables(const std::string& name, const std::string& source,
                        const std::vector<scheduler::CreateRequest>& requests) {
  CaptureRunner setup(name + "_setup");
  setup.Publish({source});
  setup.Start();
  service::FenceEmitter fences(TestPostgres().Dsn(), &setup.capture());
  scheduler::ManagerOptions options;
  options.dsn = TestPostgres().Dsn();
  options.publication_name = "pub_" + name;
  auto manager = scheduler::StreamTableManager::Open(options, &setup.log(), [&] { return fences.Emit(); });
  ASSERT_TRUE(manager.ok()) << manager.status();
  for (const scheduler::CreateRequest& r : requests) {
    auto created = (*manager)->Create(r);
    ASSERT_TRUE(created.ok()) << r.name << ": " << created.status();
  }
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

  const std::string q1 = "SELECT k, count(*) AS n, sum(v) AS s FROM rc_src GROUP BY k";
  const std::string q2 = "SELECT k, n * 2 AS n2 FROM rc_agg WHERE s > 0";
  ASSERT_NO_FATAL_FAILURE(CreateStreamTables("rcrash", "rc_src",
                                             {{"rc_agg", q1, delta::RefreshMode::kDifferential, "50ms", false},
                                              {"rc_chain", q2, delta::RefreshMode::kAuto, "50ms", false}}));

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
  std::vector<scheduler::CreateRequest> requests;
  for (const auto& [name, query] : tables) requests.push_back({name, query, delta::RefreshMode::kDifferential});
  ASSERT_NO_FATAL_FAILURE(CreateStreamTables("rterm", "rt_src", requests));

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

// A slot created anew (dropped while trickled was down, or invalidated by
// PostgreSQL past max_slot_wal_keep_size) sends nothing committed before it:
// the change log has a hole. The stream tables behind it must be refreshed
// in full, not left missing the changes in the hole.
class SlotGapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto conn = TestPostgres().Connect();
    ASSERT_TRUE(conn.ok());
    sql_ = std::move(*conn);
    ASSERT_TRUE(sql_->Exec("CREATE TABLE sg_src (id serial PRIMARY KEY, k int, v int);"
                           "ALTER TABLE sg_src REPLICA IDENTITY FULL;"
                           "INSERT INTO sg_src (k, v) SELECT g % 7, g FROM "
                           "generate_series(1, 300) g;"
                           "CREATE PUBLICATION pub_sgap")
                    .ok());
    ASSERT_TRUE(sql_->Exec("SELECT pg_create_logical_replication_slot('slot_sgap', "
                           "'pgoutput')")
                    .ok());
    std::vector<scheduler::CreateRequest> requests;
    for (const auto& [name, query] : tables_) requests.push_back({name, query, delta::RefreshMode::kDifferential});
    ASSERT_NO_FATAL_FAILURE(CreateStreamTables("sgap", "sg_src", requests));
    data_dir_ = MakeTempDir("trickle-sgap-");
    log_path_ = data_dir_ + ".log";
  }

  void Write(int round) {
    ASSERT_TRUE(sql_->Exec(absl::StrCat("INSERT INTO sg_src (k, v) SELECT g % 7, g * ", round,
                                        " FROM generate_series(1, 20) g;"
                                        "UPDATE sg_src SET v = v + ",
                                        round, ", k = (k + 1) % 7 WHERE id % 9 = ", round % 9,
                                        ";"
                                        "DELETE FROM sg_src WHERE id % 13 = ",
                                        round % 13))
                    .ok());
  }

  // Waits until every stream table's frontier passes the current WAL end.
  bool CaughtUp() {
    std::string end = std::string(sql_->Exec("SELECT pg_current_wal_lsn()::text")->Get(0, 0));
    for (int i = 0; i < 300; ++i) {
      if (Scalar(*sql_, absl::StrCat("SELECT count(*) FROM pgtrickle.stream_tables "
                                     "WHERE table_name LIKE 'sg\\_%'"
                                     " AND split_part(frontier, ';', 1)::pg_lsn >= '",
                                     end, "'")) == static_cast<int64_t>(tables_.size())) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  void Stop(pid_t pid) {
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "unclean stop";
  }

  // Starts trickled, writes, and stops it once the stream tables caught up.
  void RunOnce(int round, std::vector<std::string> extra = {}) {
    pid_t pid = StartTrickled(data_dir_, log_path_, "sgap", std::move(extra));
    Write(round);
    EXPECT_TRUE(CaughtUp()) << "stream tables did not catch up in round " << round;
    Stop(pid);
  }

  int64_t FullRefreshes() {
    return Scalar(*sql_, "SELECT count(*) FROM pgtrickle.refresh_history WHERE action = 'FULL'");
  }

  void ExpectEqualToQueries() {
    for (const auto& [name, query] : tables_) EXPECT_EQ(OracleDifferences(*sql_, name, query), 0) << name;
  }

  std::unique_ptr<PgConnection> sql_;
  std::string data_dir_, log_path_;
  const std::vector<std::pair<std::string, std::string>> tables_ = {
      {"sg_sums", "SELECT k, count(*) AS n, sum(v) AS s FROM sg_src GROUP BY k"},
      {"sg_rows", "SELECT id, k, v FROM sg_src WHERE v % 3 <> 0"},
  };
};

TEST_F(SlotGapTest, ASlotDroppedWhileStoppedLeadsToFullRefreshesNotAHole) {
  SCOPED_TRACE(absl::StrCat("trickled log ", log_path_));
  RunOnce(1);
  int64_t full_before = FullRefreshes();
  // The hole: the slot goes, changes commit with nobody capturing them.
  // trickled has exited; its walsender leaves the slot a moment later.
  for (int i = 0; i < 100 && Scalar(*sql_, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = "
                                           "'slot_sgap' AND active") > 0;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto dropped = sql_->Exec("SELECT pg_drop_replication_slot('slot_sgap')");
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  Write(2);
  Write(3);
  // trickled creates the slot anew; the stream tables are refreshed in full,
  // then differentially again.
  RunOnce(4);
  EXPECT_EQ(FullRefreshes(), full_before + static_cast<int64_t>(tables_.size()));
  ExpectEqualToQueries();
  RunOnce(5);
  EXPECT_EQ(FullRefreshes(), full_before + static_cast<int64_t>(tables_.size())) << "one full refresh each, no more";
  ExpectEqualToQueries();
}

TEST_F(SlotGapTest, ASlotPostgresInvalidatedIsRefusedThenReplacedOnRequest) {
  SCOPED_TRACE(absl::StrCat("trickled log ", log_path_));
  RunOnce(1);
  int64_t full_before = FullRefreshes();
  Write(2);
  // Past max_slot_wal_keep_size while trickled is down: PostgreSQL
  // invalidates the slot at the next checkpoint.
  ASSERT_TRUE(sql_->Exec("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'").ok() &&
              sql_->Exec("SELECT pg_reload_conf()").ok());
  ASSERT_TRUE(sql_->Exec("CREATE TABLE sg_filler (t text)").ok());
  std::string wal_status;
  for (int i = 0; i < 8 && wal_status != "lost"; ++i) {
    ASSERT_TRUE(sql_->Exec("INSERT INTO sg_filler SELECT repeat('x', 1000) "
                           "FROM generate_series(1, 3000);"
                           "SELECT pg_switch_wal(); CHECKPOINT")
                    .ok());
    auto r = sql_->Exec(
        "SELECT coalesce(wal_status, '') FROM "
        "pg_replication_slots WHERE slot_name = 'slot_sgap'");
    ASSERT_TRUE(r.ok() && r->rows() == 1);
    wal_status = std::string(r->Get(0, 0));
  }
  ASSERT_TRUE(sql_->Exec("ALTER SYSTEM RESET max_slot_wal_keep_size").ok() &&
              sql_->Exec("SELECT pg_reload_conf()").ok());
  ASSERT_EQ(wal_status, "lost") << "could not make PostgreSQL invalidate the slot";

  // By default trickled refuses, and says what to do.
  pid_t pid = StartTrickled(data_dir_, log_path_, "sgap");
  int status = 0;
  for (int i = 0; i < 300 && waitpid(pid, &status, WNOHANG) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(WIFEXITED(status)) << "trickled kept running on a lost slot";
  EXPECT_NE(WEXITSTATUS(status), 0);
  std::ifstream log(log_path_);
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"slot_sgap\" was invalidated by PostgreSQL"), std::string::npos) << text;
  EXPECT_NE(text.find("--recreate-lost-slot"), std::string::npos);

  RunOnce(3, {"--recreate-lost-slot"});
  EXPECT_EQ(FullRefreshes(), full_before + static_cast<int64_t>(tables_.size()));
  ExpectEqualToQueries();
  RunOnce(4);
  ExpectEqualToQueries();
}

}  // namespace
}  // namespace trickle::testing
