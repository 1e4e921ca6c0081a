// Refresh-history retention: keeps pgtrickle.refresh_history small by
// deleting, in the background, rows older than a number of days and rows
// beyond the newest N of each stream table. The newest successful FULL
// refresh of each stream table is always kept (the AUTO cost model compares
// with it); the refresh counters live in pgtrickle.stream_tables and do not
// change when history goes (catalog version 5).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/pg_connection.h"

namespace trickle::scheduler {

struct HistoryRetentionOptions {
  // Target database (where the catalog lives). No default.
  std::string dsn;
  // Rows older than this are deleted; zero keeps rows of any age.
  // trickled's --history-retention-days (default 7 days).
  absl::Duration max_age = absl::Hours(7 * 24);
  // Rows beyond the newest this many of a stream table are deleted; 0 keeps
  // any number. trickled's --history-max-rows (default 1000).
  int64_t max_rows_per_stream_table = 1000;
  // How often the background trim runs. Default 1 minute.
  absl::Duration interval = absl::Minutes(1);
  // Rows deleted per statement, so that no delete holds its locks long.
  int64_t batch_rows = 10000;
};

// Deletes what the options no longer keep, in batches, each in its own
// transaction; returns the number of rows deleted.
absl::StatusOr<int64_t> TrimHistory(PgConnection& conn, const HistoryRetentionOptions& options);

class HistoryRetention {
 public:
  explicit HistoryRetention(HistoryRetentionOptions options) : options_(std::move(options)) {}

  // Trims every `interval` until `stop`, on a connection of its own
  // (reconnecting after a failure, which is logged and retried at the next
  // turn). Does nothing when both limits are off.
  void Run(const std::atomic<bool>& stop);

 private:
  HistoryRetentionOptions options_;
  std::unique_ptr<PgConnection> conn_;  // Run's thread only
};

}  // namespace trickle::scheduler
