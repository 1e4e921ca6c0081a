// The status collector against a real catalog: what one collection publishes
// is one snapshot of it, and a scrape sees one collection whole.
#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "scheduler/catalog.h"
#include "service/status_collector.h"
#include "storage/change_log.h"
#include "tests/support/postgres_server.h"

namespace trickle::testing {
namespace {

TEST(StatusCollectorTest, ARefreshIsCountedOnlyWithTheStreamTableRowThatShowsIt) {
  auto conn = TestPostgres().Connect();
  ASSERT_TRUE(conn.ok()) << conn.status();
  ASSERT_TRUE(scheduler::catalog::Migrate(**conn).ok());
  storage::ChangeLogOptions log_options;
  log_options.path = MakeTempDir("trickle-status-log-");
  auto log = storage::ChangeLog::Open(log_options);
  ASSERT_TRUE(log.ok()) << log.status();

  service::StatusCollectorOptions options;
  options.dsn = TestPostgres().Dsn();
  options.slot_name = "no_slot";
  options.interval = absl::Hours(1);  // collections only when the test asks
  service::StatusCollector collector(options, log->get(), nullptr, nullptr);
  collector.SetCatalogReady();
  ASSERT_TRUE(collector.CollectOnce().ok());  // history read from here on

  // A stream table created and refreshed in one transaction that also holds
  // the refresh history locked: the collection reads the stream tables, then
  // waits for the history until the transaction commits.
  auto writer = TestPostgres().Connect();
  ASSERT_TRUE(writer.ok()) << writer.status();
  PgConnection& w = **writer;
  ASSERT_TRUE(w.Exec("BEGIN; LOCK TABLE pgtrickle.refresh_history IN ACCESS EXCLUSIVE MODE").ok());
  scheduler::StreamTableRow row;
  row.schema = "public";
  row.name = "snap_st";
  row.query = "SELECT 1 AS one";
  auto id = scheduler::catalog::Insert(w, row);
  ASSERT_TRUE(id.ok()) << id.status();
  scheduler::HistoryRow history;
  history.action = "FULL";
  history.rows_affected = 1;
  ASSERT_TRUE(scheduler::catalog::RecordRefresh(w, *id, scheduler::Frontier{}, history, std::nullopt, "now").ok());

  absl::Status collected;
  std::thread collection([&] { collected = collector.CollectOnce(); });
  bool waiting = false;
  for (int i = 0; i < 500 && !waiting; ++i) {
    auto r = (*conn)->Exec(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = 'trickle-status' AND wait_event_type = 'Lock'");
    waiting = r.ok() && r->Get(0, 0) == "1";
    if (!waiting) absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(waiting) << "the collection never waited for the refresh history";
  ASSERT_TRUE(w.Exec("COMMIT").ok());
  collection.join();
  ASSERT_TRUE(collected.ok()) << collected;

  const std::string status = "trickle_stream_table_status{stream_table=\"public.snap_st\",status=\"ACTIVE\"} 1\n";
  const std::string counted =
      "trickle_refreshes_total{stream_table=\"public.snap_st\",action=\"FULL\",outcome=\"success\"} 1\n";
  std::string metrics = collector.registry().Render();
  // Read before the commit: the stream table is not there, so neither is its
  // refresh (reading the history after the commit would count a refresh of a
  // stream table the same scrape does not show).
  EXPECT_FALSE(absl::StrContains(metrics, status)) << metrics;
  EXPECT_FALSE(absl::StrContains(metrics, "public.snap_st")) << metrics;

  // The next collection shows both, and counts the refresh once.
  ASSERT_TRUE(collector.CollectOnce().ok());
  metrics = collector.registry().Render();
  EXPECT_TRUE(absl::StrContains(metrics, status)) << metrics;
  EXPECT_TRUE(absl::StrContains(metrics, counted)) << metrics;
  EXPECT_TRUE(absl::StrContains(metrics, "trickle_stream_table_staleness_seconds{stream_table=\"public.snap_st\"} 0\n"))
      << metrics;
  ASSERT_TRUE(collector.CollectOnce().ok());
  EXPECT_TRUE(absl::StrContains(collector.registry().Render(), counted));
}

// Update() against Render(): a scrape never shows half of an update.
TEST(MetricsRegistryTest, ARenderSeesAnUpdateWholeOrNotAtAll) {
  service::MetricsRegistry registry;
  service::ValueFamily* a = registry.AddGauge("test_a", "first half");
  service::ValueFamily* b = registry.AddGauge("test_b", "second half");
  std::atomic<bool> stop{false};
  std::thread updater([&] {
    for (int i = 1; !stop.load(); ++i) {
      registry.Update([&] {
        a->Set({}, i);
        absl::SleepFor(absl::Microseconds(50));  // widen the window a render could fall into
        b->Set({}, i);
      });
    }
  });
  int torn = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string text = registry.Render();
    // The sample's value ("" before the first update).
    auto value = [&](const std::string& name) {
      std::string line = "\n" + name + " ";
      size_t at = text.find(line);
      if (at == std::string::npos) return std::string();
      at += line.size();
      return text.substr(at, text.find('\n', at) - at);
    };
    if (value("test_a") != value("test_b")) ++torn;
  }
  stop = true;
  updater.join();
  EXPECT_EQ(torn, 0);
}

}  // namespace
}  // namespace trickle::testing
