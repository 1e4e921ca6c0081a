#include "scheduler/history_retention.h"

#include <algorithm>

#include "common/status_macros.h"
#include "spdlog/spdlog.h"
#include "trickle_scheduler_sql.h"

namespace trickle::scheduler {

absl::StatusOr<int64_t> TrimHistory(PgConnection& conn, const HistoryRetentionOptions& options) {
  if (options.max_rows_per_stream_table <= 0 && options.max_age <= absl::ZeroDuration()) return 0;
  int64_t deleted = 0;
  const std::string max_rows = std::to_string(std::max<int64_t>(options.max_rows_per_stream_table, 0));
  const std::string max_age = std::to_string(std::max(0.0, absl::ToDoubleSeconds(options.max_age)));
  const std::string batch = std::to_string(std::max<int64_t>(options.batch_rows, 1));
  while (true) {
    TRICKLE_ASSIGN_OR_RETURN(PgResult r, conn.ExecParams(sql::kTrimHistory, {max_rows, max_age, batch}));
    deleted += r.rows();
    if (r.rows() < options.batch_rows) return deleted;
  }
}

void HistoryRetention::Run(const std::atomic<bool>& stop) {
  if (options_.max_rows_per_stream_table <= 0 && options_.max_age <= absl::ZeroDuration()) return;
  absl::Time next = absl::Now();
  while (!stop.load()) {
    if (absl::Now() < next) {
      absl::SleepFor(std::min(next - absl::Now(), absl::Milliseconds(100)));
      continue;
    }
    next = absl::Now() + options_.interval;
    if (conn_ == nullptr || !conn_->ok()) {
      auto connected = PgConnection::Connect(options_.dsn);
      if (!connected.ok()) {
        spdlog::warn("refresh-history retention: {}", connected.status().ToString());
        continue;
      }
      conn_ = std::move(*connected);
      (void)conn_->Exec("SET application_name = 'trickle-history-retention'");
    }
    auto trimmed = TrimHistory(*conn_, options_);
    if (!trimmed.ok()) {
      spdlog::warn("refresh-history retention: {}", trimmed.status().ToString());
    } else if (*trimmed > 0) {
      spdlog::debug("refresh-history retention deleted {} rows", *trimmed);
    }
  }
}

}  // namespace trickle::scheduler
