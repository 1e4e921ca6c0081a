// Every admin RPC against a real trickled (the binary, as a child process)
// and a real PostgreSQL: the lifecycle, every error path with its code and
// message, authentication, server reflection, and hostile requests.
#include <algorithm>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "admin.grpc.pb.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "reflection_subset.grpc.pb.h"
#include "tests/admin/trickled_process.h"
#include "tests/support/postgres_server.h"

namespace trickle::testing {
namespace {

namespace v1 = admin::v1;
using ::testing::HasSubstr;
using ::testing::Not;

#define ASSERT_RPC_OK(status) ASSERT_TRUE((status).ok()) << (status).error_code() << ": " << (status).error_message()

// The (sorted) rows of a query, each row's columns joined with '|'.
std::vector<std::string> Rows(PgConnection& sql, const std::string& query) {
  auto r = sql.Exec(query);
  EXPECT_TRUE(r.ok()) << r.status();
  std::vector<std::string> rows;
  if (!r.ok()) return rows;
  for (int i = 0; i < r->rows(); ++i) {
    std::string row;
    for (int c = 0; c < r->columns(); ++c) absl::StrAppend(&row, c ? "|" : "", r->Get(i, c));
    rows.push_back(row);
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

double Seconds(const google::protobuf::Duration& d) { return d.seconds() + d.nanos() / 1e9; }

class AdminRpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    prefix_ = absl::AsciiStrToLower(test.substr(0, 12));
    auto sql = TestPostgres().Connect();
    ASSERT_TRUE(sql.ok()) << sql.status();
    sql_ = std::move(*sql);
  }

  void StartService(TrickledOptions options = {}) {
    options.name = prefix_;
    auto started = TrickledProcess::Start(options);
    ASSERT_TRUE(started.ok()) << started.status();
    trickled_ = std::move(*started);
    stub_ = trickled_->Stub();
  }

  // A source table `<prefix>_orders` with REPLICA IDENTITY FULL and 3 rows.
  std::string MakeOrders() {
    std::string t = prefix_ + "_orders";
    EXPECT_TRUE(sql_->Exec(absl::StrCat("CREATE TABLE ", t, " (id int PRIMARY KEY, customer text, amount numeric);"
                                        "ALTER TABLE ", t, " REPLICA IDENTITY FULL;"
                                        "INSERT INTO ", t, " VALUES (1, 'ada', 10), (2, 'grace', 20), (3, 'ada', 5)"))
                    .ok());
    return t;
  }

  v1::StreamTable Get(const std::string& name, v1::GetStreamTableResponse* full = nullptr, int history = 0) {
    v1::GetStreamTableRequest req;
    req.set_name(name);
    req.set_history_limit(history);
    v1::GetStreamTableResponse resp;
    grpc::Status s = stub_->GetStreamTable(Context().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (full != nullptr) *full = resp;
    return resp.stream_table();
  }

  grpc::Status Create(const std::string& name, const std::string& query, v1::CreateStreamTableResponse* resp,
                      v1::RefreshMode mode = v1::REFRESH_MODE_UNSPECIFIED, const std::string& schedule = "downstream") {
    v1::CreateStreamTableRequest req;
    req.set_name(name);
    req.set_query(query);
    req.set_mode(mode);
    req.set_schedule(schedule);
    return stub_->CreateStreamTable(Context().get(), req, resp);
  }

  std::string prefix_;
  std::unique_ptr<PgConnection> sql_;
  std::unique_ptr<TrickledProcess> trickled_;
  std::unique_ptr<v1::TrickleAdmin::Stub> stub_;
};

TEST_F(AdminRpcTest, LifecycleCreateListGetRefreshAlterDrop) {
  std::string orders = MakeOrders();
  StartService();
  std::string st = prefix_ + "_totals";
  std::string query = absl::StrCat("SELECT customer, sum(amount) AS total, count(*) AS n FROM ", orders,
                                   " GROUP BY customer");

  v1::CreateStreamTableResponse created;
  grpc::Status s = Create(st, query, &created);
  ASSERT_RPC_OK(s);
  const v1::StreamTable& t = created.stream_table();
  EXPECT_EQ(t.name(), "public." + st);
  EXPECT_EQ(t.schema(), "public");
  EXPECT_EQ(t.table(), st);
  EXPECT_EQ(t.query(), query);
  EXPECT_EQ(t.status(), v1::STREAM_TABLE_STATUS_ACTIVE);
  EXPECT_EQ(t.requested_mode(), v1::REFRESH_MODE_AUTO);
  EXPECT_EQ(t.effective_mode(), v1::REFRESH_MODE_DIFFERENTIAL);
  EXPECT_EQ(t.schedule(), "downstream");
  EXPECT_TRUE(t.has_frontier());
  EXPECT_FALSE(t.frontier().lsn().empty());
  EXPECT_EQ(t.counts().full(), 1);
  EXPECT_EQ(t.counts().failures(), 0);
  ASSERT_EQ(t.sources_size(), 1);
  EXPECT_EQ(t.sources(0), "public." + orders);
  EXPECT_TRUE(t.has_last_refresh_time());
  EXPECT_TRUE(t.has_created_at());
  EXPECT_EQ(Seconds(t.staleness()), 0);
  EXPECT_EQ(Rows(*sql_, "SELECT customer, total, n FROM " + st), (std::vector<std::string>{"ada|15|2", "grace|20|1"}));

  v1::ListStreamTablesResponse listed;
  s = stub_->ListStreamTables(Context().get(), v1::ListStreamTablesRequest(), &listed);
  ASSERT_RPC_OK(s);
  ASSERT_EQ(listed.stream_tables_size(), 1);
  EXPECT_EQ(listed.stream_tables(0).name(), "public." + st);

  // A change the stream table does not reflect yet: staleness grows once
  // the change is in the change log (schedule downstream: nothing refreshes it on its own).
  ASSERT_TRUE(sql_->Exec(absl::StrCat("INSERT INTO ", orders, " VALUES (4, 'edsger', 7)")).ok());
  double staleness = 0;
  for (int i = 0; i < 100 && staleness == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    staleness = Seconds(Get(st).staleness());
  }
  EXPECT_GT(staleness, 0) << "the insert never showed up as pending";

  v1::RefreshStreamTableRequest refresh;
  refresh.set_name(st);
  v1::RefreshStreamTableResponse refreshed;
  s = stub_->RefreshStreamTable(Context().get(), refresh, &refreshed);
  ASSERT_RPC_OK(s);
  EXPECT_EQ(refreshed.refresh().action(), v1::REFRESH_ACTION_DIFFERENTIAL);
  EXPECT_EQ(refreshed.refresh().delta_rows(), 1);
  EXPECT_EQ(refreshed.refresh().transactions(), 1);
  EXPECT_EQ(refreshed.refresh().rows_affected(), 1);
  EXPECT_TRUE(refreshed.refresh().error().empty());
  EXPECT_FALSE(refreshed.frontier().lsn().empty());
  EXPECT_EQ(refreshed.refresh().frontier().substr(0, refreshed.frontier().lsn().size()), refreshed.frontier().lsn());
  EXPECT_EQ(Rows(*sql_, "SELECT customer, total, n FROM " + st),
            (std::vector<std::string>{"ada|15|2", "edsger|7|1", "grace|20|1"}));
  EXPECT_EQ(Seconds(Get(st).staleness()), 0);

  // Nothing changed since: nothing to do, nothing written.
  s = stub_->RefreshStreamTable(Context().get(), refresh, &refreshed);
  ASSERT_RPC_OK(s);
  EXPECT_EQ(refreshed.refresh().action(), v1::REFRESH_ACTION_NO_DATA);

  refresh.set_full(true);
  s = stub_->RefreshStreamTable(Context().get(), refresh, &refreshed);
  ASSERT_RPC_OK(s);
  EXPECT_EQ(refreshed.refresh().action(), v1::REFRESH_ACTION_FULL);
  EXPECT_EQ(refreshed.refresh().reason(), "requested");

  v1::GetStreamTableResponse detail;
  v1::StreamTable got = Get(st, &detail, 2);
  EXPECT_EQ(got.counts().refreshes(), 3);
  EXPECT_EQ(got.counts().full(), 2);
  EXPECT_EQ(got.counts().differential(), 1);
  ASSERT_EQ(detail.recent_refreshes_size(), 2);  // newest first
  EXPECT_EQ(detail.recent_refreshes(0).action(), v1::REFRESH_ACTION_FULL);
  EXPECT_EQ(detail.recent_refreshes(1).action(), v1::REFRESH_ACTION_DIFFERENTIAL);
  EXPECT_EQ(detail.recent_refreshes(1).delta_rows(), 1);
  EXPECT_TRUE(detail.recent_refreshes(0).has_finished_at());
  EXPECT_NEAR(got.cost_model().last_full_ms(), Seconds(detail.recent_refreshes(0).duration()) * 1000, 0.01);

  v1::AlterStreamTableRequest alter;
  alter.set_name(st);
  alter.set_schedule("2h");
  alter.set_verify(true);
  v1::AlterStreamTableResponse altered;
  s = stub_->AlterStreamTable(Context().get(), alter, &altered);
  ASSERT_RPC_OK(s);
  EXPECT_EQ(altered.stream_table().schedule(), "2h");
  EXPECT_TRUE(altered.stream_table().verify());

  alter.Clear();
  alter.set_name(st);
  alter.set_mode(v1::REFRESH_MODE_FULL);
  s = stub_->AlterStreamTable(Context().get(), alter, &altered);
  ASSERT_RPC_OK(s);
  EXPECT_EQ(altered.stream_table().requested_mode(), v1::REFRESH_MODE_FULL);
  EXPECT_EQ(altered.stream_table().effective_mode(), v1::REFRESH_MODE_FULL);

  // A new query rebuilds it.
  alter.Clear();
  alter.set_name(st);
  alter.set_query(absl::StrCat("SELECT customer, count(*) AS n FROM ", orders, " GROUP BY customer"));
  s = stub_->AlterStreamTable(Context().get(), alter, &altered);
  ASSERT_RPC_OK(s);
  EXPECT_EQ(altered.stream_table().query(), alter.query());
  EXPECT_EQ(Rows(*sql_, "SELECT customer, n FROM " + st),
            (std::vector<std::string>{"ada|2", "edsger|1", "grace|1"}));

  v1::DropStreamTableRequest drop;
  drop.set_name(st);
  v1::DropStreamTableResponse dropped;
  s = stub_->DropStreamTable(Context().get(), drop, &dropped);
  ASSERT_RPC_OK(s);
  ASSERT_EQ(dropped.dropped_size(), 1);
  EXPECT_EQ(dropped.dropped(0), "public." + st);
  s = stub_->ListStreamTables(Context().get(), v1::ListStreamTablesRequest(), &listed);
  ASSERT_RPC_OK(s);
  EXPECT_EQ(listed.stream_tables_size(), 0);
  EXPECT_EQ(Rows(*sql_, absl::StrCat("SELECT count(*) FROM pg_class WHERE relname = '", st, "'")),
            std::vector<std::string>{"0"});
}

TEST_F(AdminRpcTest, ErrorPathsCarryTheirCodeAndSayWhatToDo) {
  std::string orders = MakeOrders();
  std::string plain = prefix_ + "_plain";
  ASSERT_TRUE(sql_->Exec(absl::StrCat("CREATE TABLE ", plain, " (id int PRIMARY KEY, v int)")).ok());
  StartService();
  std::string st = prefix_ + "_st";
  v1::CreateStreamTableResponse resp;

  auto expect = [](const grpc::Status& s, grpc::StatusCode code, const std::string& fragment) {
    EXPECT_EQ(s.error_code(), code) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(fragment));
  };

  expect(Create("", "SELECT 1", &resp), grpc::StatusCode::INVALID_ARGUMENT, "needs a name and a query");
  expect(Create(st, "", &resp), grpc::StatusCode::INVALID_ARGUMENT, "needs a name and a query");
  expect(Create(".x", "SELECT 1", &resp), grpc::StatusCode::INVALID_ARGUMENT, "is not of the form name or schema.name");
  // An unsupported construct in DIFFERENTIAL mode names the construct.
  expect(Create(st, absl::StrCat("SELECT id, random() AS r FROM ", orders), &resp, v1::REFRESH_MODE_DIFFERENTIAL),
         grpc::StatusCode::INVALID_ARGUMENT, "random()");
  expect(Create(st, "SELEC nothing", &resp), grpc::StatusCode::INVALID_ARGUMENT, "syntax error");
  expect(Create(st, "SELECT * FROM no_such_table", &resp), grpc::StatusCode::NOT_FOUND, "no_such_table");
  expect(Create(st, absl::StrCat("SELECT id FROM ", orders), &resp, v1::REFRESH_MODE_UNSPECIFIED, "soon"),
         grpc::StatusCode::INVALID_ARGUMENT, "soon");
  // A source without full old rows: the statement that fixes it.
  expect(Create(st, absl::StrCat("SELECT id, v FROM ", plain), &resp), grpc::StatusCode::FAILED_PRECONDITION,
         "REPLICA IDENTITY FULL");
  expect(Create(orders, "SELECT 1 AS x", &resp), grpc::StatusCode::ALREADY_EXISTS, "already exists");

  ASSERT_RPC_OK(Create(st, absl::StrCat("SELECT id, customer FROM ", orders), &resp));
  expect(Create(st, absl::StrCat("SELECT id FROM ", orders), &resp), grpc::StatusCode::ALREADY_EXISTS,
         "already exists");
  std::string reader = prefix_ + "_reader";
  ASSERT_RPC_OK(Create(reader, absl::StrCat("SELECT customer, count(*) AS n FROM ", st, " GROUP BY customer"), &resp));

  // Unknown names: NOT_FOUND from every call that takes one.
  std::string missing = prefix_ + "_missing";
  {
    v1::GetStreamTableRequest req;
    req.set_name(missing);
    v1::GetStreamTableResponse r;
    expect(stub_->GetStreamTable(Context().get(), req, &r), grpc::StatusCode::NOT_FOUND, "no stream table named");
    req.set_name(st);
    req.set_history_limit(5000);
    expect(stub_->GetStreamTable(Context().get(), req, &r), grpc::StatusCode::INVALID_ARGUMENT, "history_limit");
  }
  {
    v1::RefreshStreamTableRequest req;
    req.set_name(missing);
    v1::RefreshStreamTableResponse r;
    expect(stub_->RefreshStreamTable(Context().get(), req, &r), grpc::StatusCode::NOT_FOUND, missing);
  }
  {
    v1::AlterStreamTableRequest req;
    req.set_name(missing);
    req.set_schedule("5s");
    v1::AlterStreamTableResponse r;
    expect(stub_->AlterStreamTable(Context().get(), req, &r), grpc::StatusCode::NOT_FOUND, missing);
    req.set_name(st);
    req.clear_schedule();
    expect(stub_->AlterStreamTable(Context().get(), req, &r), grpc::StatusCode::INVALID_ARGUMENT, "nothing to change");
    req.set_schedule("whenever");
    expect(stub_->AlterStreamTable(Context().get(), req, &r), grpc::StatusCode::INVALID_ARGUMENT, "whenever");
  }
  {
    v1::ExplainRequest req;
    req.set_name(missing);
    v1::ExplainResponse r;
    expect(stub_->Explain(Context().get(), req, &r), grpc::StatusCode::NOT_FOUND, missing);
  }
  {
    v1::ResetFuseRequest req;
    req.set_name(st);
    v1::ResetFuseResponse r;
    expect(stub_->ResetFuse(Context().get(), req, &r), grpc::StatusCode::INVALID_ARGUMENT, "APPLY, REINITIALIZE or SKIP_CHANGES");
    req.set_action(v1::FUSE_RESET_ACTION_APPLY);
    expect(stub_->ResetFuse(Context().get(), req, &r), grpc::StatusCode::FAILED_PRECONDITION, "is not blown");
    req.set_name(missing);
    expect(stub_->ResetFuse(Context().get(), req, &r), grpc::StatusCode::NOT_FOUND, missing);
  }
  {
    // A dependent blocks a drop; cascade drops both.
    v1::DropStreamTableRequest req;
    req.set_name(st);
    v1::DropStreamTableResponse r;
    expect(stub_->DropStreamTable(Context().get(), req, &r), grpc::StatusCode::FAILED_PRECONDITION,
           "public." + reader + " read it; drop them first or drop with cascade");
    req.set_name(missing);
    expect(stub_->DropStreamTable(Context().get(), req, &r), grpc::StatusCode::NOT_FOUND, missing);
    req.set_name(st);
    req.set_behavior(v1::DROP_BEHAVIOR_CASCADE);
    grpc::Status s = stub_->DropStreamTable(Context().get(), req, &r);
    ASSERT_RPC_OK(s);
    std::vector<std::string> dropped(r.dropped().begin(), r.dropped().end());
    std::sort(dropped.begin(), dropped.end());
    EXPECT_EQ(dropped, (std::vector<std::string>{"public." + reader, "public." + st}));
  }
  EXPECT_TRUE(trickled_->Alive());
}

TEST_F(AdminRpcTest, ExplainShowsThePlanAndAnalyzeRunsOnThePendingDeltaWithoutApplyingIt) {
  std::string orders = MakeOrders();
  StartService();
  std::string st = prefix_ + "_by_customer";
  v1::CreateStreamTableResponse created;
  ASSERT_RPC_OK(Create(st, absl::StrCat("SELECT customer, sum(amount) AS total FROM ", orders, " GROUP BY customer"),
                       &created));
  v1::ExplainRequest req;
  req.set_name(st);
  v1::ExplainResponse plan;
  grpc::Status s = stub_->Explain(Context().get(), req, &plan);
  ASSERT_RPC_OK(s);
  EXPECT_EQ(plan.maintained_mode(), v1::REFRESH_MODE_DIFFERENTIAL);
  EXPECT_THAT(plan.explanation(), HasSubstr("Aggregate"));
  EXPECT_FALSE(plan.tree().op().empty());
  EXPECT_FALSE(plan.tree().strategy().empty() && plan.tree().children().empty());
  EXPECT_FALSE(plan.delta_sql().empty());
  EXPECT_TRUE(absl::StartsWith(plan.merge_sql(), "MERGE INTO")) << plan.merge_sql();
  EXPECT_FALSE(plan.full_refresh_sql().empty());
  ASSERT_EQ(plan.sources_size(), 1);
  EXPECT_EQ(plan.sources(0).name(), "public." + orders);
  EXPECT_EQ(plan.sources(0).key(0), "id");
  EXPECT_FALSE(plan.sources(0).is_stream_table());
  EXPECT_TRUE(plan.analyze_json().empty());

  // Pending changes: 2 inserted rows and 1 update (a delete plus an insert).
  ASSERT_TRUE(sql_->Exec(absl::StrCat("INSERT INTO ", orders, " VALUES (10, 'alan', 1), (11, 'alan', 2)")).ok());
  ASSERT_TRUE(sql_->Exec(absl::StrCat("UPDATE ", orders, " SET amount = 30 WHERE id = 2")).ok());
  std::string frontier_before = Get(st).frontier().lsn();
  req.set_analyze(true);
  s = stub_->Explain(Context().get(), req, &plan);
  ASSERT_RPC_OK(s);
  EXPECT_EQ(plan.analyzed_delta_rows(), 4);
  EXPECT_EQ(plan.analyzed_transactions(), 2);
  EXPECT_THAT(plan.analyze_json(), HasSubstr("\"Plan\""));
  EXPECT_THAT(plan.analyze_json(), HasSubstr("\"Actual Rows\""));
  EXPECT_THAT(plan.analyze_json(), HasSubstr("\"Shared Hit Blocks\""));  // BUFFERS
  // Nothing was applied: same frontier, same rows; the next refresh applies it all.
  EXPECT_EQ(Get(st).frontier().lsn(), frontier_before);
  EXPECT_EQ(Rows(*sql_, "SELECT customer, total FROM " + st), (std::vector<std::string>{"ada|15", "grace|20"}));
  v1::RefreshStreamTableRequest refresh;
  refresh.set_name(st);
  v1::RefreshStreamTableResponse refreshed;
  ASSERT_RPC_OK(stub_->RefreshStreamTable(Context().get(), refresh, &refreshed));
  EXPECT_EQ(refreshed.refresh().delta_rows(), 4);
  EXPECT_EQ(Rows(*sql_, "SELECT customer, total FROM " + st),
            (std::vector<std::string>{"ada|15", "alan|3", "grace|30"}));

  // A FULL-only stream table has no delta SQL to analyze.
  std::string ranked = prefix_ + "_ranked";
  ASSERT_RPC_OK(Create(ranked, absl::StrCat("SELECT id, row_number() OVER (ORDER BY amount) AS r FROM ", orders),
                       &created));
  EXPECT_EQ(created.stream_table().effective_mode(), v1::REFRESH_MODE_FULL);
  EXPECT_THAT(created.stream_table().full_refresh_reason(), HasSubstr("row_number"));
  req.set_name(ranked);
  req.set_analyze(false);
  ASSERT_RPC_OK(stub_->Explain(Context().get(), req, &plan));
  EXPECT_EQ(plan.maintained_mode(), v1::REFRESH_MODE_FULL);
  EXPECT_TRUE(plan.delta_sql().empty());
  req.set_analyze(true);
  s = stub_->Explain(Context().get(), req, &plan);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("FULL refresh only"));
}

TEST_F(AdminRpcTest, FuseAndSlaSettingsAreKeptReportedAndResettable) {
  std::string orders = MakeOrders();
  StartService();
  std::string st = prefix_ + "_fused";
  v1::CreateStreamTableRequest req;
  req.set_name(st);
  req.set_query(absl::StrCat("SELECT id, amount FROM ", orders));
  req.set_schedule("downstream");
  req.mutable_fuse()->set_max_rows(5);
  req.mutable_sla()->mutable_freshness()->set_seconds(30);
  v1::CreateStreamTableResponse created;
  ASSERT_RPC_OK(stub_->CreateStreamTable(Context().get(), req, &created));
  v1::StreamTable t = created.stream_table();
  EXPECT_EQ(t.fuse().state(), v1::FUSE_STATE_ARMED);
  EXPECT_EQ(t.fuse().settings().max_rows(), 5);
  EXPECT_EQ(t.sla().freshness().seconds(), 30);

  // A delta over the ceiling blows the fuse: nothing applied, SUSPENDED.
  ASSERT_TRUE(sql_->Exec(absl::StrCat("INSERT INTO ", orders, " SELECT g, 'bulk', 1 FROM generate_series(100, 119) g")).ok());
  v1::RefreshStreamTableRequest refresh;
  refresh.set_name(st);
  v1::RefreshStreamTableResponse refreshed;
  grpc::Status s = stub_->RefreshStreamTable(Context().get(), refresh, &refreshed);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  t = Get(st);
  EXPECT_EQ(t.fuse().state(), v1::FUSE_STATE_BLOWN);
  EXPECT_FALSE(t.fuse().reason().empty());
  EXPECT_EQ(t.status(), v1::STREAM_TABLE_STATUS_SUSPENDED);
  EXPECT_EQ(Rows(*sql_, "SELECT count(*) FROM " + st), std::vector<std::string>{"3"});

  // Reset, discarding the big delta: the data stays, the fuse is armed again.
  v1::ResetFuseRequest reset;
  reset.set_name(st);
  reset.set_action(v1::FUSE_RESET_ACTION_SKIP_CHANGES);
  v1::ResetFuseResponse was_reset;
  ASSERT_RPC_OK(stub_->ResetFuse(Context().get(), reset, &was_reset));
  EXPECT_EQ(was_reset.refresh().action(), v1::REFRESH_ACTION_SKIPPED);
  EXPECT_EQ(was_reset.stream_table().fuse().state(), v1::FUSE_STATE_ARMED);
  EXPECT_EQ(was_reset.stream_table().status(), v1::STREAM_TABLE_STATUS_ACTIVE);
  EXPECT_EQ(Rows(*sql_, "SELECT count(*) FROM " + st), std::vector<std::string>{"3"});

  // Alter: a bigger ceiling and no SLA.
  v1::AlterStreamTableRequest alter;
  alter.set_name(st);
  alter.mutable_fuse()->set_max_rows(1000);
  alter.mutable_sla()->mutable_freshness()->set_seconds(0);
  v1::AlterStreamTableResponse altered;
  ASSERT_RPC_OK(stub_->AlterStreamTable(Context().get(), alter, &altered));
  EXPECT_EQ(altered.stream_table().fuse().settings().max_rows(), 1000);
  EXPECT_FALSE(altered.stream_table().sla().has_freshness());
  v1::CreateStreamTableRequest bad = req;
  bad.set_name(st + "_bad");
  bad.mutable_fuse()->set_max_rows(-1);
  s = stub_->CreateStreamTable(Context().get(), bad, &created);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("must not be negative"));
}

TEST_F(AdminRpcTest, HealthNeedsNoTokenEverythingElseDoes) {
  const std::string token = "s3cret-token";
  TrickledOptions options;
  options.auth_token = token;
  StartService(options);
  v1::GetHealthResponse health;
  grpc::Status s = stub_->GetHealth(Context().get(), v1::GetHealthRequest(), &health);
  ASSERT_RPC_OK(s);
  EXPECT_TRUE(health.ready());
  ASSERT_EQ(health.checks_size(), 3);
  for (const auto& c : health.checks()) EXPECT_TRUE(c.ok()) << c.name() << ": " << c.detail();
  EXPECT_TRUE(health.capture().streaming());
  EXPECT_NE(health.capture().received_lsn(), "0/0");
  EXPECT_TRUE(health.slot().active());
  EXPECT_FALSE(health.slot().confirmed_flush_lsn().empty());
  EXPECT_GE(health.slot().retained_wal_bytes(), 0);
  EXPECT_GT(health.change_log().approximate_bytes(), 0u);
  EXPECT_GE(health.workers().total(), 1);
  EXPECT_EQ(health.version(), "0.1.0");
  EXPECT_TRUE(health.has_started_at());
  EXPECT_TRUE(health.has_collected_at());

  // Every other call: UNAUTHENTICATED without the token, or with a wrong one.
  auto check_all = [&](const std::string& presented, const std::string& scheme) {
    auto ctx = [&] {
      auto c = Context();
      if (!scheme.empty()) c->AddMetadata("authorization", scheme + presented);
      return c;
    };
    std::vector<grpc::Status> statuses;
    {
      v1::CreateStreamTableResponse r;
      v1::CreateStreamTableRequest q;
      q.set_name("x");
      q.set_query("SELECT 1");
      statuses.push_back(stub_->CreateStreamTable(ctx().get(), q, &r));
    }
    {
      v1::AlterStreamTableResponse r;
      statuses.push_back(stub_->AlterStreamTable(ctx().get(), v1::AlterStreamTableRequest(), &r));
    }
    {
      v1::DropStreamTableResponse r;
      statuses.push_back(stub_->DropStreamTable(ctx().get(), v1::DropStreamTableRequest(), &r));
    }
    {
      v1::RefreshStreamTableResponse r;
      statuses.push_back(stub_->RefreshStreamTable(ctx().get(), v1::RefreshStreamTableRequest(), &r));
    }
    {
      v1::ListStreamTablesResponse r;
      statuses.push_back(stub_->ListStreamTables(ctx().get(), v1::ListStreamTablesRequest(), &r));
    }
    {
      v1::GetStreamTableResponse r;
      statuses.push_back(stub_->GetStreamTable(ctx().get(), v1::GetStreamTableRequest(), &r));
    }
    {
      v1::ExplainResponse r;
      statuses.push_back(stub_->Explain(ctx().get(), v1::ExplainRequest(), &r));
    }
    {
      v1::ResetFuseResponse r;
      statuses.push_back(stub_->ResetFuse(ctx().get(), v1::ResetFuseRequest(), &r));
    }
    return statuses;
  };
  for (const auto& [presented, scheme] : std::vector<std::pair<std::string, std::string>>{
           {"", ""}, {"wrong-token!", "Bearer "}, {token + "x", "Bearer "}, {token, "Basic "}, {token.substr(1), "Bearer "}}) {
    for (const grpc::Status& st : check_all(presented, scheme)) {
      EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << "token \"" << scheme << presented << "\": " << st.error_message();
    }
  }
  grpc::Status missing = check_all("", "")[4];
  EXPECT_THAT(missing.error_message(), HasSubstr("authorization: Bearer <token>"));
  // With the token (either case of the scheme) the calls go through.
  v1::ListStreamTablesResponse listed;
  ASSERT_RPC_OK(stub_->ListStreamTables(Context(token).get(), v1::ListStreamTablesRequest(), &listed));
  auto lower = Context();
  lower->AddMetadata("authorization", "bearer " + token);
  ASSERT_RPC_OK(stub_->ListStreamTables(lower.get(), v1::ListStreamTablesRequest(), &listed));
}

TEST_F(AdminRpcTest, ServerReflectionDescribesTheAdminService) {
  StartService();
  auto channel = grpc::CreateChannel(trickled_->grpc_address(), grpc::InsecureChannelCredentials());
  auto stub = grpc::reflection::v1alpha::ServerReflection::NewStub(channel);
  auto context = Context();
  auto stream = stub->ServerReflectionInfo(context.get());
  grpc::reflection::v1alpha::ServerReflectionRequest request;
  request.set_list_services("");
  ASSERT_TRUE(stream->Write(request));
  grpc::reflection::v1alpha::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  std::vector<std::string> services;
  for (const auto& s : response.list_services_response().service()) services.push_back(s.name());
  EXPECT_THAT(services, ::testing::Contains("trickle.admin.v1.TrickleAdmin"));
  EXPECT_THAT(services, ::testing::Contains("grpc.health.v1.Health"));

  request.set_file_containing_symbol("trickle.admin.v1.TrickleAdmin");
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_GT(response.file_descriptor_response().file_descriptor_proto_size(), 0)
      << response.error_response().error_message();
  bool found = false;
  for (const std::string& bytes : response.file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto file;
    ASSERT_TRUE(file.ParseFromString(bytes));
    if (file.package() != "trickle.admin.v1" || file.service_size() == 0) continue;
    found = true;
    std::vector<std::string> methods;
    for (const auto& m : file.service(0).method()) methods.push_back(m.name());
    EXPECT_EQ(methods, (std::vector<std::string>{"CreateStreamTable", "AlterStreamTable", "DropStreamTable",
                                                  "RefreshStreamTable", "ListStreamTables", "GetStreamTable",
                                                  "Explain", "GetHealth", "ResetFuse", "CreatePublication",
                                                  "DropPublication", "ListPublications"}));
  }
  EXPECT_TRUE(found);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(AdminRpcTest, OversizedAndMalformedGrpcRequestsNeverCrashTheService) {
  MakeOrders();
  StartService();
  // Over the 4 MiB limit: refused before any handler runs.
  v1::CreateStreamTableResponse resp;
  grpc::Status s = Create(prefix_ + "_huge", "SELECT '" + std::string(5 << 20, 'x') + "' AS x", &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  // Just under it: reaches the handler, which refuses the query politely.
  s = Create(prefix_ + "_big", "SELECT '" + std::string(3 << 20, 'x') + "' AS x FROM nowhere", &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();

  // Bytes that are not a valid request message, through a generic stub.
  auto channel = grpc::CreateChannel(trickled_->grpc_address(), grpc::InsecureChannelCredentials());
  grpc::GenericStub generic(channel);
  for (const std::string& junk : std::vector<std::string>{
           std::string("\x0a\xff\xff\xff\xff\x0f", 6),  // a length far past the end
           std::string("\x0f\x01", 2),                   // wire type 7 does not exist
           std::string(1000, '\xff')}) {
    for (const char* method : {"/trickle.admin.v1.TrickleAdmin/CreateStreamTable",
                               "/trickle.admin.v1.TrickleAdmin/GetStreamTable",
                               "/trickle.admin.v1.TrickleAdmin/NoSuchMethod", "/no.such.Service/Call"}) {
      grpc::Slice slice(junk);
      grpc::ByteBuffer request(&slice, 1), response;
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      absl::Notification done;
      grpc::Status status;
      generic.UnaryCall(&context, method, grpc::StubOptions(), &request, &response, [&](grpc::Status st) {
        status = st;
        done.Notify();
      });
      done.WaitForNotification();
      EXPECT_FALSE(status.ok()) << method;
    }
  }
  // Raw bytes on the gRPC port that are not HTTP/2 at all.
  for (const std::string& raw : {std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), std::string(64 * 1024, '\0'),
                                 std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + std::string(5000, '\x7f')}) {
    SendRaw(trickled_->grpc_port(), raw, absl::Seconds(2));
  }
  // Still serving.
  v1::GetHealthResponse health;
  ASSERT_RPC_OK(stub_->GetHealth(Context().get(), v1::GetHealthRequest(), &health));
  EXPECT_TRUE(trickled_->Alive()) << trickled_->Log();
}

TEST_F(AdminRpcTest, AnAddressInUseIsADefiniteErrorAtStartup) {
  StartService();
  // A second trickled asked to listen on the first one's admin port.
  TrickledOptions options;
  options.name = prefix_ + "_second";
  options.fresh_catalog = false;
  options.extra_args = {"--grpc-address=" + trickled_->grpc_address()};
  auto second = TrickledProcess::Start(options);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("cannot listen for gRPC on " + trickled_->grpc_address()));
  EXPECT_TRUE(trickled_->Alive());
}

TEST_F(AdminRpcTest, AHotStandbyAsTheTargetIsRefusedAtStartWithItsOwnMessage) {
  // A read replica of the test server (pg_basebackup -R), streaming from it.
  PostgresServerOptions options;
  options.standby_of = &TestPostgres();
  PostgresServer standby(options);
  ASSERT_TRUE(standby.Start().ok());
  auto replica = standby.Connect();
  ASSERT_TRUE(replica.ok()) << replica.status();
  auto in_recovery = (*replica)->Exec("SELECT pg_is_in_recovery()");
  ASSERT_TRUE(in_recovery.ok());
  ASSERT_EQ(in_recovery->Get(0, 0), "t");

  TrickledOptions trickled;
  trickled.name = prefix_ + "_standby";
  trickled.dsn = standby.Dsn();
  trickled.fresh_catalog = false;
  auto started = TrickledProcess::Start(trickled);
  ASSERT_FALSE(started.ok());
  std::string log(started.status().message());
  EXPECT_THAT(log, HasSubstr("is a hot standby (read replica)"));
  EXPECT_THAT(log, HasSubstr("point --dsn at the primary"));
  // Not PostgreSQL's own message leaking through.
  EXPECT_THAT(log, Not(HasSubstr("recovery is in progress")));
  EXPECT_THAT(log, Not(HasSubstr("read-only transaction")));
}

}  // namespace
}  // namespace trickle::testing
