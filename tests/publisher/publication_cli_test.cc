// Downstream publications through the real trickled: the RPCs
// (CreatePublication, DropPublication, ListPublications, the field in
// GetStreamTable) and the CLI (publish, publications, status, unpublish)
// with their exit codes.
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/admin/trickled_process.h"
#include "tests/support/postgres_server.h"

namespace trickle::testing {
namespace {

namespace v1 = admin::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class PublicationCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto sql = TestPostgres().Connect();
    ASSERT_TRUE(sql.ok()) << sql.status();
    sql_ = std::move(*sql);
    TrickledOptions options;
    options.name = "pubcli";
    auto started = TrickledProcess::Start(options);
    ASSERT_TRUE(started.ok()) << started.status();
    trickled_ = std::move(*started);
  }
  CliResult Cli(std::vector<std::string> args) {
    return RunCli(args, {{"TRICKLE_ADDRESS", trickled_->grpc_address()}});
  }
  void Sql(const std::string& statement) { ASSERT_TRUE(sql_->Exec(statement).ok()) << statement; }

  std::unique_ptr<PgConnection> sql_;
  std::unique_ptr<TrickledProcess> trickled_;
};

TEST_F(PublicationCliTest, PublishListStatusUnpublish) {
  Sql("CREATE TABLE pcli_orders (id int PRIMARY KEY, customer text NOT NULL, amount int);"
      "ALTER TABLE pcli_orders REPLICA IDENTITY FULL;"
      "INSERT INTO pcli_orders VALUES (1, 'ada', 10), (2, 'grace', 20);"
      "CREATE PUBLICATION pcli_someone_elses");
  CliResult r = Cli({"create", "pcli_totals",
                     "SELECT customer, sum(amount) AS total FROM pcli_orders GROUP BY customer",
                     "--schedule=downstream"});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  r = Cli({"publish", "pcli_totals"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("published public.pcli_totals as publication pcli_totals_pub"));
  EXPECT_THAT(r.out, HasSubstr("columns:         customer, total"));
  EXPECT_THAT(r.out, HasSubstr("identity:        primary key (customer)"));
  EXPECT_THAT(r.out, HasSubstr("operations:      insert, update, delete, truncate"));

  r = Cli({"publish", "pcli_totals"});
  EXPECT_EQ(r.exit_code, 5) << r.out;  // already published
  EXPECT_THAT(r.err, HasSubstr("already published as \"pcli_totals_pub\""));

  r = Cli({"publications"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("pcli_totals_pub"));
  EXPECT_THAT(r.out, HasSubstr("primary key (customer)"));

  r = Cli({"status", "pcli_totals"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("publication:     pcli_totals_pub"));

  // The RPCs themselves.
  auto stub = trickled_->Stub();
  v1::ListPublicationsResponse list;
  ASSERT_TRUE(stub->ListPublications(Context().get(), v1::ListPublicationsRequest(), &list).ok());
  ASSERT_EQ(list.publications_size(), 1);
  const v1::Publication& p = list.publications(0);
  EXPECT_EQ(p.name(), "pcli_totals_pub");
  EXPECT_EQ(p.stream_table(), "public.pcli_totals");
  EXPECT_THAT(p.columns(), ElementsAre("customer", "total"));
  EXPECT_EQ(p.replica_identity(), "PRIMARY KEY");
  EXPECT_THAT(p.primary_key(), ElementsAre("customer"));
  v1::GetStreamTableRequest get;
  get.set_name("pcli_totals");
  v1::GetStreamTableResponse got;
  ASSERT_TRUE(stub->GetStreamTable(Context().get(), get, &got).ok());
  EXPECT_EQ(got.stream_table().downstream_publication(), "pcli_totals_pub");

  // Someone else's publication: refused, exit 5, untouched.
  r = Cli({"create", "pcli_ids", "SELECT id, amount FROM pcli_orders", "--schedule=downstream"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Cli({"publish", "pcli_ids", "--publication=pcli_someone_elses"});
  EXPECT_EQ(r.exit_code, 5) << r.out;
  EXPECT_THAT(r.err, HasSubstr("not created by trickle"));
  r = Cli({"publish", "pcli_ids", "--publication=pcli_ids_changes", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"name\": \"pcli_ids_changes\""));

  r = Cli({"unpublish", "pcli_totals"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("dropped publication pcli_totals_pub of pcli_totals"));
  r = Cli({"unpublish", "pcli_totals"});
  EXPECT_EQ(r.exit_code, 3) << r.out;  // has none
  r = Cli({"unpublish", "nope"});
  EXPECT_EQ(r.exit_code, 3) << r.out;

  auto left = sql_->Exec(
      "SELECT string_agg(pubname, ',' ORDER BY pubname) FROM pg_publication WHERE pubname LIKE 'pcli%'");
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->Get(0, 0), "pcli_ids_changes,pcli_someone_elses");
  r = Cli({"drop", "pcli_ids"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  left = sql_->Exec("SELECT string_agg(pubname, ',') FROM pg_publication WHERE pubname LIKE 'pcli%'");
  EXPECT_EQ(left->Get(0, 0), "pcli_someone_elses");

  r = Cli({"publish", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("Usage: trickle publish NAME"));
}

// The running service's own scheduler refreshes a published stream table
// on change, and a consumer of the publication gets the rows with the
// refresh's boundary message.
TEST_F(PublicationCliTest, ScheduledRefreshReachesTheConsumer) {
  Sql("CREATE TABLE pcli_events (id int PRIMARY KEY, kind text NOT NULL);"
      "ALTER TABLE pcli_events REPLICA IDENTITY FULL;"
      "INSERT INTO pcli_events VALUES (1, 'a')");
  CliResult r = Cli({"create", "pcli_kinds", "SELECT kind, count(*) AS n FROM pcli_events GROUP BY kind"});
  ASSERT_EQ(r.exit_code, 0) << r.err;  // on change
  r = Cli({"publish", "pcli_kinds"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Sql("SELECT pg_create_logical_replication_slot('pcli_consumer', 'pgoutput')");
  Sql("INSERT INTO pcli_events VALUES (2, 'a'), (3, 'b')");
  std::string seen;
  for (int i = 0; i < 200 && seen.find("trickle.refresh") == std::string::npos; ++i) {
    auto got = sql_->Exec(
        "SELECT coalesce(string_agg(encode(data, 'escape'), ' '), '') FROM pg_logical_slot_get_binary_changes("
        "'pcli_consumer', NULL, NULL, 'proto_version', '1', 'publication_names', 'pcli_kinds_pub',"
        " 'messages', 'true') WHERE position('trickle.fence' in encode(data, 'escape')) = 0");
    ASSERT_TRUE(got.ok()) << got.status();
    seen += std::string(got->Get(0, 0));
    if (seen.find("trickle.refresh") == std::string::npos) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_THAT(seen, HasSubstr("\"inserted\" : 1, \"updated\" : 1, \"deleted\" : 0")) << seen;
  Sql("SELECT pg_drop_replication_slot('pcli_consumer')");
  r = Cli({"drop", "pcli_kinds"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
}  // namespace trickle::testing
