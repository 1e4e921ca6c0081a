#include "tests/integration/capture_fixture.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace trickle::testing {

CaptureRunner::CaptureRunner(const std::string& name)
    : slot_("slot_" + name), publication_("pub_" + name) {
  data_dir_ = MakeTempDir("trickle-log-");
  auto conn = TestPostgres().Connect();
  EXPECT_TRUE(conn.ok()) << conn.status();
  sql_ = std::move(*conn);
  pgoutput::SourceSetupOptions setup;
  setup.slot_name = slot_;
  setup.publication_name = publication_;
  EXPECT_TRUE(pgoutput::EnsurePublication(*sql_, setup).ok());
  auto slot = pgoutput::EnsureSlot(*sql_, setup);
  EXPECT_TRUE(slot.ok()) << slot.status();
  ReopenLog();
}

CaptureRunner::~CaptureRunner() {
  Stop();
  capture_.reset();
  log_.reset();
  (void)sql_->ExecParams("SELECT pg_drop_replication_slot($1)", {slot_});
  (void)sql_->Exec("DROP PUBLICATION IF EXISTS " + sql_->QuoteIdentifier(publication_));
  std::error_code ec;
  std::filesystem::remove_all(data_dir_, ec);
}

void CaptureRunner::ReopenLog() {
  capture_.reset();
  log_.reset();
  storage::ChangeLogOptions options;
  options.path = data_dir_;
  auto log = storage::ChangeLog::Open(options);
  ASSERT_TRUE(log.ok()) << log.status();
  log_ = std::move(*log);
  auto capture = service::Capture::Create(log_.get());
  ASSERT_TRUE(capture.ok()) << capture.status();
  capture_ = std::move(*capture);
}

void CaptureRunner::Publish(const std::vector<std::string>& tables) {
  for (const std::string& t : tables) {
    ASSERT_TRUE(sql_->Exec(absl::StrCat("ALTER TABLE ", t, " REPLICA IDENTITY FULL")).ok());
    auto added = sql_->Exec(absl::StrCat("ALTER PUBLICATION ", sql_->QuoteIdentifier(publication_),
                                         " ADD TABLE ", t));
    ASSERT_TRUE(added.ok()) << added.status();
  }
}

void CaptureRunner::Start() {
  pgoutput::ReplicationOptions options;
  options.dsn = TestPostgres().Dsn();
  options.slot_name = slot_;
  options.publication_name = publication_;
  options.status_interval = absl::Milliseconds(200);
  stream_ = std::make_unique<pgoutput::ReplicationStream>(options, capture_.get());
  stop_ = false;
  thread_ = std::thread([this] {
    absl::Status s = stream_->Run(stop_);
    EXPECT_TRUE(s.ok()) << s;
  });
}

void CaptureRunner::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  thread_.join();
  stream_.reset();
  EXPECT_TRUE(log_->Sync().ok());
}

Lsn CaptureRunner::Sync() {
  std::string token = absl::StrCat(slot_, "-", ++fence_counter_);
  auto emitted = sql_->ExecParams("SELECT pg_logical_emit_message(true, $1, $2)",
                                  {std::string(service::kFencePrefix), token});
  EXPECT_TRUE(emitted.ok()) << emitted.status();
  auto lsn = capture_->WaitForFence(token, absl::Seconds(60));
  EXPECT_TRUE(lsn.ok()) << lsn.status();
  return lsn.ok() ? *lsn : 0;
}

std::vector<LoggedRow> CaptureRunner::Rows(const std::string& table) {
  std::vector<LoggedRow> rows;
  auto oid = sql_->Exec(absl::StrCat("SELECT ", sql_->QuoteLiteral(table), "::regclass::oid"));
  EXPECT_TRUE(oid.ok()) << oid.status();
  if (!oid.ok()) return rows;
  uint32_t relation = static_cast<uint32_t>(std::stoul(std::string(oid->Get(0, 0))));
  absl::Status s = log_->ReadChanges(relation, 0, ~Lsn{0}, [&](const storage::LoggedChange& c) {
    rows.push_back({c.transaction->commit_lsn(), c.transaction->xid(), c.sequence, *c.change});
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  return rows;
}

}  // namespace trickle::testing
