#include "gtest/gtest.h"
#include "tests/support/postgres_server.h"

namespace trickle::testing {
namespace {

TEST(HarnessTest, ServerIsPostgres15WithLogicalWal) {
  auto conn = TestPostgres().Connect();
  ASSERT_TRUE(conn.ok()) << conn.status();
  auto version = (*conn)->Exec("SELECT current_setting('server_version_num')::int / 10000");
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(version->Get(0, 0), "15");
  auto wal = (*conn)->Exec("SHOW wal_level");
  ASSERT_TRUE(wal.ok());
  EXPECT_EQ(wal->Get(0, 0), "logical");
}

// Like a long-lived production database, the test cluster is past 2^32
// transactions: 64-bit xids (snapshots) and pgoutput's 32-bit ones differ.
TEST(HarnessTest, ClusterStartsAtANonzeroXidEpoch) {
  auto conn = TestPostgres().Connect();
  ASSERT_TRUE(conn.ok()) << conn.status();
  auto xid = (*conn)->Exec("SELECT pg_current_xact_id()::text::numeric / 4294967296 >= 1");
  ASSERT_TRUE(xid.ok()) << xid.status();
  EXPECT_EQ(xid->Get(0, 0), "t");
}

// Near the wrap: a server started just below 2^32 crosses it and keeps
// initdb's rows visible (they are frozen first).
TEST(HarnessTest, ServerNearTheXidWrapCrossesIt) {
  PostgresServerOptions options;
  options.next_xid = 4294967295u - 20;
  PostgresServer server(options);
  ASSERT_TRUE(server.Start().ok());
  auto conn = server.Connect();
  ASSERT_TRUE(conn.ok()) << conn.status();
  auto before = (*conn)->Exec("SELECT pg_current_xact_id()::text::numeric");
  ASSERT_TRUE(before.ok()) << before.status();
  for (int i = 0; i < 40; ++i) ASSERT_TRUE((*conn)->Exec("SELECT txid_current()").ok());
  auto after = (*conn)->Exec(
      "SELECT pg_current_xact_id()::text::numeric / 4294967296 >= 2, "
      "(SELECT count(*) FROM pg_database WHERE datname = 'postgres')");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->Get(0, 0), "t") << "started at " << before->Get(0, 0);
  EXPECT_EQ(after->Get(0, 1), "1");
}

TEST(HarnessTest, ErrorsCarrySqlStateAndRetryClass) {
  auto conn = TestPostgres().Connect();
  ASSERT_TRUE(conn.ok());
  auto bad = (*conn)->Exec("SELECT * FROM no_such_table");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SqlStateOf(bad.status()), "42P01");
  EXPECT_NE(bad.status().message().find("no_such_table"), std::string::npos);
  EXPECT_FALSE(IsTransient(bad.status()));
}

TEST(HarnessTest, QuotingSurvivesHostileNames) {
  auto conn = TestPostgres().Connect();
  ASSERT_TRUE(conn.ok());
  std::string name = "a\"b Mixed;drop";
  auto st = (*conn)->Exec("CREATE TEMP TABLE " + (*conn)->QuoteIdentifier(name) + " (v text)");
  ASSERT_TRUE(st.ok()) << st.status();
  auto ins = (*conn)->ExecParams("INSERT INTO " + (*conn)->QuoteIdentifier(name) + " VALUES ($1)",
                                 {std::string("it's\n")});
  ASSERT_TRUE(ins.ok()) << ins.status();
  auto sel = (*conn)->Exec("SELECT v = " + (*conn)->QuoteLiteral("it's\n") + " FROM " +
                           (*conn)->QuoteIdentifier(name));
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(sel->Get(0, 0), "t");
}

TEST(HarnessTest, CopyInLoadsEscapedText) {
  auto conn = TestPostgres().Connect();
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE((*conn)->Exec("CREATE TEMP TABLE c (v text)").ok());
  std::string data;
  AppendCopyText("tab\there\\back\nline", &data);
  data += "\n\\N\n";
  ASSERT_TRUE((*conn)->CopyIn("COPY c FROM STDIN", data).ok());
  auto sel = (*conn)->Exec("SELECT count(*), count(v), max(v) = E'tab\\there\\\\back\\nline' FROM c");
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(sel->Get(0, 0), "2");
  EXPECT_EQ(sel->Get(0, 1), "1");
  EXPECT_EQ(sel->Get(0, 2), "t");
}

}  // namespace
}  // namespace trickle::testing
