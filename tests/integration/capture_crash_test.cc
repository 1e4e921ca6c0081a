// Crash test of the capture: trickled is killed with SIGKILL at random points
// (>= 10 times) while writer threads commit, roll back and use
// subtransactions; it is restarted each time. At the end the change log must
// hold every committed change exactly once and nothing else, compared with
// what the writers saw committed.
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "storage/change_log.h"
#include "tests/support/postgres_server.h"
#include "tests/support/process.h"

namespace trickle::testing {
namespace {

pid_t StartTrickled(const std::string& data_dir, const std::string& log_path) {
  std::vector<std::string> args = {TRICKLED_PATH,
                                   "--dsn=" + TestPostgres().Dsn(),
                                   "--data-dir=" + data_dir,
                                   "--slot-name=slot_crash",
                                   "--publication-name=pub_crash",
                                   "--status-interval=200ms",
                                   "--log-level=warn"};
  for (std::string& a : FreeListenAddressArgs()) args.push_back(std::move(a));
  return SpawnLogged(args, log_path);
}

// (op, id) pairs the writers saw committed.
struct Ledger {
  std::mutex mu;
  std::multiset<std::pair<char, int64_t>> committed;
};

void Writer(int writer, std::atomic<bool>& stop, Ledger& ledger, uint32_t seed) {
  auto conn = TestPostgres().Connect();
  ASSERT_TRUE(conn.ok()) << conn.status();
  std::mt19937 rng(seed);
  int64_t next_id = static_cast<int64_t>(writer) * 1'000'000'000;
  std::vector<int64_t> live;
  while (!stop.load()) {
    std::vector<std::pair<char, int64_t>> txn;
    std::string sql = "BEGIN;";
    int rows = 1 + rng() % 20;
    for (int i = 0; i < rows; ++i) {
      int64_t id = ++next_id;
      absl::StrAppend(&sql, "INSERT INTO crash_src VALUES (", id, ", ", writer, ", 'w", writer, "');");
      txn.push_back({'I', id});
    }
    if (rng() % 3 == 0) {  // a subtransaction that is rolled back leaves nothing
      absl::StrAppend(&sql, "SAVEPOINT s; INSERT INTO crash_src VALUES (", -(++next_id), ", ",
                      writer, ", 'gone'); ROLLBACK TO s;");
    }
    std::vector<int64_t> deleted;
    if (!live.empty() && rng() % 2 == 0) {
      int64_t victim = live[rng() % live.size()];
      absl::StrAppend(&sql, "DELETE FROM crash_src WHERE id = ", victim, ";");
      txn.push_back({'D', victim});
      deleted.push_back(victim);
    }
    bool rollback = rng() % 5 == 0;
    sql += rollback ? "ROLLBACK" : "COMMIT";
    auto result = (*conn)->Exec(sql);
    ASSERT_TRUE(result.ok()) << result.status();
    if (rollback) continue;
    std::lock_guard<std::mutex> lock(ledger.mu);
    for (const auto& change : txn) ledger.committed.insert(change);
    for (const auto& change : txn) {
      if (change.first == 'I') live.push_back(change.second);
    }
    for (int64_t d : deleted) live.erase(std::find(live.begin(), live.end(), d));
  }
}

Lsn ConfirmedFlush(PgConnection& sql) {
  auto r = sql.Exec("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'slot_crash'");
  if (!r.ok() || r->rows() == 0 || r->IsNull(0, 0)) return 0;
  return ParseLsn(r->Get(0, 0)).value_or(0);
}

TEST(CaptureCrashTest, SigkillAtRandomPointsLosesNothingAndDuplicatesNothing) {
  auto sql = TestPostgres().Connect();
  ASSERT_TRUE(sql.ok());
  ASSERT_TRUE((*sql)->Exec("CREATE TABLE crash_src (id bigint PRIMARY KEY, writer int, payload text);"
                           "ALTER TABLE crash_src REPLICA IDENTITY FULL;"
                           "CREATE PUBLICATION pub_crash FOR TABLE crash_src").ok());
  // The slot exists before the first write: the log must hold everything
  // committed from here on.
  ASSERT_TRUE((*sql)->Exec("SELECT pg_create_logical_replication_slot('slot_crash', 'pgoutput')").ok());
  std::string data_dir = MakeTempDir("trickle-crash-");
  std::string log_path = data_dir + ".log";
  uint32_t seed = std::random_device{}();
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);

  Ledger ledger;
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 1; w <= 3; ++w) writers.emplace_back(Writer, w, std::ref(stop), std::ref(ledger), seed + w);

  constexpr int kKills = 12;
  for (int i = 0; i < kKills; ++i) {
    pid_t pid = StartTrickled(data_dir, log_path);
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 1200));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "trickled exited by itself; see " << log_path;
  }
  stop = true;
  for (auto& t : writers) t.join();

  // A last, clean run drains the slot: wait until everything written is confirmed.
  auto end = (*sql)->Exec("SELECT pg_current_wal_lsn()::text");
  Lsn target = *ParseLsn(end->Get(0, 0));
  pid_t pid = StartTrickled(data_dir, log_path);
  for (int i = 0; i < 600 && ConfirmedFlush(**sql) < target; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GE(ConfirmedFlush(**sql), target) << "trickled did not catch up; see " << log_path;
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "unclean stop; see " << log_path;

  storage::ChangeLogOptions options;
  options.path = data_dir;
  auto log = storage::ChangeLog::Open(options);
  ASSERT_TRUE(log.ok()) << log.status();
  auto oid = (*sql)->Exec("SELECT 'crash_src'::regclass::oid");
  uint32_t relation = std::stoul(std::string(oid->Get(0, 0)));
  std::multiset<std::pair<char, int64_t>> logged;
  std::set<Lsn> transactions;
  ASSERT_TRUE((*log)->ReadChanges(relation, 0, ~Lsn{0}, [&](const storage::LoggedChange& c) {
    transactions.insert(c.transaction->commit_lsn());
    if (c.change->op() == storage::ChangeRecord::INSERT) {
      logged.insert({'I', std::stoll(c.change->new_values(0).value())});
    } else if (c.change->op() == storage::ChangeRecord::DELETE) {
      logged.insert({'D', std::stoll(c.change->old_values(0).value())});
    } else {
      ADD_FAILURE() << "unexpected op " << c.change->op();
    }
    return absl::OkStatus();
  }).ok());
  EXPECT_GT(ledger.committed.size(), 100u) << "the writers did too little to prove anything";
  EXPECT_EQ(logged.size(), ledger.committed.size());
  std::vector<std::pair<char, int64_t>> missing, extra;
  std::set_difference(ledger.committed.begin(), ledger.committed.end(), logged.begin(), logged.end(),
                      std::back_inserter(missing));
  std::set_difference(logged.begin(), logged.end(), ledger.committed.begin(), ledger.committed.end(),
                      std::back_inserter(extra));
  EXPECT_TRUE(missing.empty()) << missing.size() << " committed changes missing, first id "
                               << missing.front().second;
  EXPECT_TRUE(extra.empty()) << extra.size() << " changes in the log that nobody committed (or twice), first id "
                             << extra.front().second;
  std::printf("crash test: %d kills, %zu committed changes, %zu logged in %zu transactions\n",
              kKills, ledger.committed.size(), logged.size(), transactions.size());
}

}  // namespace
}  // namespace trickle::testing
