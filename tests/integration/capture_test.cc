// The capture pipeline end to end on a real PostgreSQL 15: slot -> pgoutput
// -> decoder -> change log. Expected values come from the database itself
// (each column's text form read back with SQL), never from hand-typed rows.
#include <atomic>
#include <map>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/capture_fixture.h"

namespace trickle::testing {
namespace {

using storage::ChangeRecord;

std::vector<std::optional<std::string>> Values(
    const google::protobuf::RepeatedPtrField<storage::v1::Datum>& datums) {
  std::vector<std::optional<std::string>> out;
  for (const auto& d : datums) {
    if (d.kind() == storage::v1::Datum::NULL_) out.push_back(std::nullopt);
    else out.push_back(d.value());
  }
  return out;
}

// Every row of `table` in text form, keyed by the first column.
std::map<std::string, std::vector<std::optional<std::string>>> TableRows(PgConnection& sql,
                                                                        const std::string& table) {
  std::map<std::string, std::vector<std::optional<std::string>>> rows;
  auto result = sql.Exec("SELECT * FROM " + table);
  EXPECT_TRUE(result.ok()) << result.status();
  for (int r = 0; r < result->rows(); ++r) {
    std::vector<std::optional<std::string>> row;
    for (int c = 0; c < result->columns(); ++c) row.push_back(result->GetOptional(r, c));
    rows[std::string(result->Get(r, 0))] = row;
  }
  return rows;
}

TEST(CaptureTest, ValuesOfEveryTypeArriveAsTheServerPrintsThem) {
  CaptureRunner runner("types");
  PgConnection& sql = runner.sql();
  ASSERT_TRUE(sql.Exec(R"(CREATE TABLE cap_types (
      id int PRIMARY KEY, b bigint, n numeric(30,10), t text, raw bytea, ts timestamptz,
      j jsonb, arr int[], big text))").ok());
  runner.Publish({"cap_types"});
  runner.Start();
  ASSERT_TRUE(sql.Exec(R"(INSERT INTO cap_types VALUES
      (1, 9223372036854775807, 12345678901234567890.0123456789, 'it''s "quoted"' || E'\nnew\tline',
       '\x00ff10'::bytea, '2024-02-29 12:34:56.789+05:30', '{"k": [1, null, "é"]}',
       ARRAY[1,NULL,3], repeat('toast-me ', 20000)),
      (2, NULL, NULL, 'unicode: 日本語 ✓ 𝄞', NULL, NULL, 'null', '{}', NULL),
      (3, -1, -0.5, '', '\x'::bytea, 'infinity', '[]', ARRAY[]::int[], ''))").ok());
  runner.Sync();
  auto inserted = TableRows(sql, "cap_types");
  auto rows = runner.Rows("cap_types");
  ASSERT_EQ(rows.size(), 3u);
  for (const LoggedRow& row : rows) {
    EXPECT_EQ(row.change.op(), ChangeRecord::INSERT);
    auto values = Values(row.change.new_values());
    ASSERT_TRUE(values[0].has_value());
    EXPECT_EQ(values, inserted[*values[0]]) << "row id " << *values[0];
  }

  // UPDATE that leaves the TOASTed column alone: pgoutput sends 'u' for it;
  // the stored new row must carry the full value, filled from the old row.
  ASSERT_TRUE(sql.Exec("UPDATE cap_types SET b = 42 WHERE id = 1").ok());
  ASSERT_TRUE(sql.Exec("DELETE FROM cap_types WHERE id = 2").ok());
  ASSERT_TRUE(sql.Exec("TRUNCATE cap_types").ok());
  runner.Sync();
  rows = runner.Rows("cap_types");
  ASSERT_EQ(rows.size(), 6u);
  const ChangeRecord& update = rows[3].change;
  ASSERT_EQ(update.op(), ChangeRecord::UPDATE);
  auto before = inserted["1"];
  auto after = before;
  after[1] = "42";
  EXPECT_EQ(Values(update.old_values()), before);
  EXPECT_EQ(Values(update.new_values()), after);
  EXPECT_EQ(Values(update.new_values())[8]->size(), 9u * 20000u);
  EXPECT_EQ(rows[4].change.op(), ChangeRecord::DELETE);
  EXPECT_EQ(Values(rows[4].change.old_values()), inserted["2"]);
  EXPECT_EQ(rows[5].change.op(), ChangeRecord::TRUNCATE);
}

TEST(CaptureTest, OnlyCommittedWorkArrivesInCommitOrder) {
  CaptureRunner runner("commits");
  PgConnection& sql = runner.sql();
  ASSERT_TRUE(sql.Exec("CREATE TABLE cap_commits (id int PRIMARY KEY, who text)").ok());
  runner.Publish({"cap_commits"});
  runner.Start();
  // A rolled-back transaction and a rolled-back subtransaction leave nothing.
  ASSERT_TRUE(sql.Exec("BEGIN; INSERT INTO cap_commits VALUES (100, 'rolled back'); ROLLBACK").ok());
  ASSERT_TRUE(sql.Exec("BEGIN; INSERT INTO cap_commits VALUES (1, 'a');"
                       " SAVEPOINT s; INSERT INTO cap_commits VALUES (101, 'sub rolled back');"
                       " ROLLBACK TO s; INSERT INTO cap_commits VALUES (2, 'a');"
                       " SAVEPOINT t; INSERT INTO cap_commits VALUES (3, 'sub kept'); RELEASE t;"
                       " COMMIT").ok());
  // Interleaved transactions: A starts first, B commits first.
  auto a = TestPostgres().Connect();
  auto b = TestPostgres().Connect();
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*a)->Exec("BEGIN; INSERT INTO cap_commits VALUES (10, 'A')").ok());
  ASSERT_TRUE((*b)->Exec("BEGIN; INSERT INTO cap_commits VALUES (20, 'B')").ok());
  ASSERT_TRUE((*a)->Exec("INSERT INTO cap_commits VALUES (11, 'A')").ok());
  ASSERT_TRUE((*b)->Exec("INSERT INTO cap_commits VALUES (21, 'B'); COMMIT").ok());
  ASSERT_TRUE((*a)->Exec("COMMIT").ok());
  runner.Sync();

  std::vector<std::string> ids;
  std::vector<Lsn> commits;
  for (const LoggedRow& row : runner.Rows("cap_commits")) {
    ids.push_back(*Values(row.change.new_values())[0]);
    commits.push_back(row.commit_lsn);
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"1", "2", "3", "20", "21", "10", "11"}));
  EXPECT_TRUE(std::is_sorted(commits.begin(), commits.end()));
  // Three transactions, each with one commit LSN.
  EXPECT_EQ(commits[0], commits[2]);
  EXPECT_EQ(commits[3], commits[4]);
  EXPECT_EQ(commits[5], commits[6]);
  EXPECT_LT(commits[2], commits[3]);
  EXPECT_LT(commits[4], commits[5]);
}

TEST(CaptureTest, AlterTableMidStreamKeepsEachChangeWithItsSchema) {
  CaptureRunner runner("alter");
  PgConnection& sql = runner.sql();
  ASSERT_TRUE(sql.Exec("CREATE TABLE cap_alter (id int PRIMARY KEY, a text)").ok());
  runner.Publish({"cap_alter"});
  runner.Start();
  ASSERT_TRUE(sql.Exec("INSERT INTO cap_alter VALUES (1, 'x')").ok());
  ASSERT_TRUE(sql.Exec("ALTER TABLE cap_alter ADD COLUMN c numeric DEFAULT 7").ok());
  ASSERT_TRUE(sql.Exec("INSERT INTO cap_alter VALUES (2, 'y', 8.5)").ok());
  ASSERT_TRUE(sql.Exec("ALTER TABLE cap_alter DROP COLUMN a").ok());
  ASSERT_TRUE(sql.Exec("UPDATE cap_alter SET c = 9 WHERE id = 1").ok());
  runner.Sync();
  auto rows = runner.Rows("cap_alter");
  ASSERT_EQ(rows.size(), 3u);
  auto oid = sql.Exec("SELECT 'cap_alter'::regclass::oid");
  uint32_t relation = std::stoul(std::string(oid->Get(0, 0)));
  std::vector<std::vector<std::string>> names;
  for (const LoggedRow& row : rows) {
    auto schema = runner.log().GetRelation(relation, row.change.schema_version());
    ASSERT_TRUE(schema.ok()) << schema.status();
    std::vector<std::string> cols;
    for (const auto& c : schema->columns()) cols.push_back(c.name());
    names.push_back(cols);
    EXPECT_EQ(static_cast<int>(cols.size()), row.change.new_values_size());
  }
  EXPECT_EQ(names[0], (std::vector<std::string>{"id", "a"}));
  EXPECT_EQ(names[1], (std::vector<std::string>{"id", "a", "c"}));
  EXPECT_EQ(names[2], (std::vector<std::string>{"id", "c"}));
  EXPECT_LT(rows[0].change.schema_version(), rows[1].change.schema_version());
  EXPECT_LT(rows[1].change.schema_version(), rows[2].change.schema_version());
  EXPECT_EQ(*Values(rows[2].change.new_values())[1], "9");
  EXPECT_EQ(*Values(rows[2].change.old_values())[1], "7");
}

TEST(CaptureTest, RestartResumesWithoutLossOrDuplicates) {
  CaptureRunner runner("restart");
  PgConnection& sql = runner.sql();
  ASSERT_TRUE(sql.Exec("CREATE TABLE cap_restart (id int PRIMARY KEY)").ok());
  runner.Publish({"cap_restart"});
  runner.Start();
  ASSERT_TRUE(sql.Exec("INSERT INTO cap_restart SELECT g FROM generate_series(1, 500) g").ok());
  runner.Sync();
  runner.Stop();
  // Written while the capture is down: must arrive after the restart.
  for (int i = 501; i <= 600; i += 10) {
    ASSERT_TRUE(sql.Exec(absl::StrCat("INSERT INTO cap_restart SELECT g FROM generate_series(",
                                      i, ", ", i + 9, ") g")).ok());
  }
  runner.ReopenLog();
  runner.Start();
  ASSERT_TRUE(sql.Exec("INSERT INTO cap_restart SELECT g FROM generate_series(601, 700) g").ok());
  runner.Sync();
  std::vector<int> ids;
  for (const LoggedRow& row : runner.Rows("cap_restart")) {
    ids.push_back(std::stoi(*Values(row.change.new_values())[0]));
  }
  std::vector<int> expected(700);
  for (int i = 0; i < 700; ++i) expected[i] = i + 1;
  EXPECT_EQ(ids, expected);
}

TEST(CaptureTest, LostConnectionReconnectsWithoutLossOrDuplicates) {
  CaptureRunner runner("lost");
  PgConnection& sql = runner.sql();
  ASSERT_TRUE(sql.Exec("CREATE TABLE cap_lost (id int PRIMARY KEY)").ok());
  runner.Publish({"cap_lost"});
  runner.Start();
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(sql.Exec(absl::StrCat("INSERT INTO cap_lost SELECT g FROM generate_series(", round * 100 + 1,
                                      ", ", round * 100 + 100, ") g")).ok());
    runner.Sync();
    // Kill the walsender serving the slot: the stream must reconnect by itself.
    auto killed = sql.ExecParams(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1",
        {runner.slot()});
    ASSERT_TRUE(killed.ok()) << killed.status();
    ASSERT_EQ(killed->rows(), 1);
  }
  ASSERT_TRUE(sql.Exec("INSERT INTO cap_lost SELECT g FROM generate_series(301, 400) g").ok());
  runner.Sync();
  std::vector<int> ids;
  for (const LoggedRow& row : runner.Rows("cap_lost")) {
    ids.push_back(std::stoi(*Values(row.change.new_values())[0]));
  }
  std::vector<int> expected(400);
  for (int i = 0; i < 400; ++i) expected[i] = i + 1;
  EXPECT_EQ(ids, expected);
}

// Passes everything to the capture but fails one XLogData, as a storage
// error would: the stream must drop the connection (dropping what is still
// queued), the capture forget the partial transaction, and the server send it
// again.
class FailOnceConsumer : public pgoutput::StreamConsumer {
 public:
  FailOnceConsumer(service::Capture* capture, int fail_at) : capture_(capture), fail_at_(fail_at) {}
  absl::Status OnXLogData(Lsn wal_start, Lsn wal_end, std::string_view payload) override {
    if (++messages_ == fail_at_) {
      failed_ = true;
      return absl::UnavailableError("injected failure");
    }
    return capture_->OnXLogData(wal_start, wal_end, payload);
  }
  void OnKeepalive(Lsn wal_end) override { capture_->OnKeepalive(wal_end); }
  absl::Status OnIdle(bool stopping) override { return capture_->OnIdle(stopping); }
  Lsn WrittenLsn() override { return capture_->WrittenLsn(); }
  Lsn FlushedLsn() override { return capture_->FlushedLsn(); }
  void OnDisconnect() override { capture_->OnDisconnect(); }
  void OnStreaming() override { capture_->OnStreaming(); }
  bool failed() const { return failed_.load(); }

 private:
  service::Capture* capture_;
  const int fail_at_;
  int messages_ = 0;  // apply thread only
  std::atomic<bool> failed_{false};
};

// A fence waited for while the stream is down: waited through a drop shorter
// than fence_outage_grace (5 s), an outage error soon after a longer one
// (not the whole timeout: the refresh behind the wait holds a snapshot on
// the source), and still delivered once the stream is back.
TEST(CaptureTest, FenceWaitRidesOutAShortDropAndEndsEarlyInALongOne) {
  CaptureRunner runner("fenceout");
  PgConnection& sql = runner.sql();
  runner.Start();
  runner.Sync();
  auto emit = [&](const std::string& token) {
    ASSERT_TRUE(sql.ExecParams("SELECT pg_logical_emit_message(true, $1, $2)",
                               {std::string(service::kFencePrefix), token})
                    .ok());
  };

  runner.Stop();
  emit("fenceout-short");
  std::thread back([&] {
    absl::SleepFor(absl::Milliseconds(500));
    runner.Start();
  });
  auto short_drop = runner.capture().WaitForFence("fenceout-short", absl::Seconds(60));
  back.join();
  ASSERT_TRUE(short_drop.ok()) << short_drop.status();

  runner.Stop();
  emit("fenceout-long");
  const absl::Time started = absl::Now();
  auto long_drop = runner.capture().WaitForFence("fenceout-long", absl::Seconds(60));
  const absl::Duration waited = absl::Now() - started;
  ASSERT_FALSE(long_drop.ok());
  EXPECT_TRUE(IsOutage(long_drop.status())) << long_drop.status();
  EXPECT_TRUE(absl::StrContains(long_drop.status().message(), "the replication stream is not connected (down for"))
      << long_drop.status();
  EXPECT_LT(waited, absl::Seconds(30)) << "waited out the 60 s timeout instead of the 5 s grace";

  // Until the stream has connected again, a wait still ends as an outage
  // (the scheduler retries); then the fence is there.
  runner.Start();
  absl::StatusOr<Lsn> after;
  for (int i = 0; i < 100; ++i) {
    after = runner.capture().WaitForFence("fenceout-long", absl::Seconds(60));
    if (after.ok() || !IsOutage(after.status())) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_GT(*after, *short_drop);
}

TEST(CaptureTest, ConsumerFailureMidTransactionReceivesItAgainWithoutDuplicates) {
  CaptureRunner runner("fail");
  PgConnection& sql = runner.sql();
  ASSERT_TRUE(sql.Exec("CREATE TABLE cap_fail (id int PRIMARY KEY)").ok());
  runner.Publish({"cap_fail"});
  // Both transactions are committed before streaming starts, so the failure
  // hits a queue full of messages, in the middle of the first one.
  ASSERT_TRUE(sql.Exec("INSERT INTO cap_fail SELECT g FROM generate_series(1, 3000) g").ok());
  ASSERT_TRUE(sql.Exec("INSERT INTO cap_fail SELECT g FROM generate_series(3001, 4000) g").ok());

  FailOnceConsumer consumer(&runner.capture(), /*fail_at=*/1500);
  pgoutput::ReplicationOptions options;
  options.dsn = TestPostgres().Dsn();
  options.slot_name = runner.slot();
  options.publication_name = runner.publication();
  options.status_interval = absl::Milliseconds(200);
  options.reconnect_min = absl::Milliseconds(10);
  pgoutput::ReplicationStream stream(options, &consumer);
  std::atomic<bool> stop{false};
  std::thread thread([&] { EXPECT_TRUE(stream.Run(stop).ok()); });
  runner.Sync();
  stop = true;
  thread.join();
  ASSERT_TRUE(runner.log().Sync().ok());

  EXPECT_TRUE(consumer.failed());
  EXPECT_GE(stream.stats().connects.load(), 2u);
  std::vector<int> ids;
  for (const LoggedRow& row : runner.Rows("cap_fail")) {
    ids.push_back(std::stoi(*Values(row.change.new_values())[0]));
  }
  std::vector<int> expected(4000);
  for (int i = 0; i < 4000; ++i) expected[i] = i + 1;
  EXPECT_EQ(ids, expected);
}

TEST(CaptureTest, FlushPositionNeverPassesDurableLog) {
  CaptureRunner runner("flush");
  PgConnection& sql = runner.sql();
  ASSERT_TRUE(sql.Exec("CREATE TABLE cap_flush (id int)").ok());
  runner.Publish({"cap_flush"});
  runner.Start();
  ASSERT_TRUE(sql.Exec("INSERT INTO cap_flush SELECT g FROM generate_series(1, 1000) g").ok());
  Lsn fence = runner.Sync();
  // The slot's confirmed position reaches the fence's transaction once synced...
  Lsn confirmed = 0;
  for (int i = 0; i < 100 && confirmed <= fence; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto slot = sql.ExecParams(
        "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
        {runner.slot()});
    ASSERT_TRUE(slot.ok());
    confirmed = *ParseLsn(slot->Get(0, 0));
  }
  EXPECT_GT(confirmed, fence);
  // ... and never beyond what the log has made durable (or idle keepalives).
  EXPECT_GE(runner.log().durable_lsn(), fence);
}

TEST(CaptureTest, ReplicaIdentityCheckNamesTheTableAndTheFix) {
  CaptureRunner runner("identity");
  PgConnection& sql = runner.sql();
  ASSERT_TRUE(sql.Exec("CREATE TABLE \"Cap Ident\" (id int PRIMARY KEY)").ok());
  ASSERT_TRUE(sql.Exec("ALTER PUBLICATION " + sql.QuoteIdentifier(runner.publication()) +
                       " ADD TABLE \"Cap Ident\"").ok());
  pgoutput::SourceSetupOptions setup;
  setup.publication_name = runner.publication();
  absl::Status check = pgoutput::CheckReplicaIdentity(sql, setup);
  ASSERT_EQ(check.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(check.message().find("\"public.Cap Ident\" has REPLICA IDENTITY DEFAULT"),
            std::string::npos) << check;
  EXPECT_NE(check.message().find("ALTER TABLE \"public\".\"Cap Ident\" REPLICA IDENTITY FULL"),
            std::string::npos) << check;
  setup.set_replica_identity = true;
  EXPECT_TRUE(pgoutput::CheckReplicaIdentity(sql, setup).ok());
  setup.set_replica_identity = false;
  EXPECT_TRUE(pgoutput::CheckReplicaIdentity(sql, setup).ok());
}

TEST(CaptureTest, SlotOfTheWrongPluginIsRefusedWithAFix) {
  auto conn = TestPostgres().Connect();
  ASSERT_TRUE(conn.ok()) << conn.status();
  PgConnection& sql = **conn;
  ASSERT_TRUE(sql.Exec("SELECT pg_create_logical_replication_slot('cap_wrong', 'test_decoding')").ok());
  pgoutput::SourceSetupOptions setup;
  setup.slot_name = "cap_wrong";
  auto slot = pgoutput::EnsureSlot(sql, setup);
  ASSERT_EQ(slot.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(slot.status().message().find("plugin \"test_decoding\""), std::string::npos);
  EXPECT_NE(slot.status().message().find("pg_drop_replication_slot('cap_wrong')"), std::string::npos);
  ASSERT_TRUE(sql.Exec("SELECT pg_drop_replication_slot('cap_wrong')").ok());
}

}  // namespace
}  // namespace trickle::testing
