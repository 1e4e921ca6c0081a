// StreamTableManager's refreshes on demand, on the control connection:
// RefreshNow (admin API) and the refreshes of the lifecycle (initial, after
// a rebuild), fuse resets, and the scheduler's hooks into a refresh (fuse,
// AUTO cost model). Lifecycle is in lifecycle.cc, scheduling in
// coordinator.cc, the refresh transaction itself in refresh.cc.
#include "scheduler/stream_table_manager.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace trickle::scheduler {

StreamTableManager::StreamTableManager(ManagerOptions options, storage::ChangeLog* log, FenceFn fence)
    : options_(std::move(options)), log_(log), fence_(fence), refresher_(log, fence) {
  options_.max_parallel_workers = std::clamp(options_.max_parallel_workers, 0, 32);
  auto make_refresher = [this] { return std::make_unique<Refresher>(log_, fence_); };
  if (options_.max_parallel_workers > 0) {
    pool_ = std::make_unique<WorkerPool>(options_.max_parallel_workers, options_.dsn, make_refresher);
  } else {
    inline_worker_ = std::make_unique<Worker>();
    inline_worker_->dsn = options_.dsn;
    inline_worker_->refresher = make_refresher();
  }
}

StreamTableManager::~StreamTableManager() { pool_.reset(); }


absl::StatusOr<RefreshResult> StreamTableManager::RefreshNow(const std::string& name, RefreshKind kind) {
  absl::MutexLock lock(&mu_);
  TRICKLE_ASSIGN_OR_RETURN(Entry * entry, FindLocked(name));
  return RefreshLocked(entry, kind);
}


absl::StatusOr<RefreshResult> StreamTableManager::RefreshLocked(Entry* entry, RefreshKind kind,
                                                              const RefreshHooks* override_hooks) {
  if (!conn_->ok()) {
    TRICKLE_ASSIGN_OR_RETURN(conn_, PgConnection::Connect(options_.dsn));
  }
  StreamTableRow& row = entry->table.row;
  absl::Time start = absl::Now();
  int64_t blown_rows = 0;
  RefreshHooks hooks = override_hooks ? *override_hooks : MakeHooks(row, *conn_, &blown_rows);
  auto result = refresher_.Refresh(*conn_, entry->table, kind, &hooks);
  // A concurrent refresh of the same stream table (a worker) wins the row
  // lock; ours then fails its serializable check: retry a few times.
  for (int attempt = 0; attempt < 3 && !result.ok() && result.status().code() == absl::StatusCode::kAborted;
       ++attempt) {
    absl::SleepFor(absl::Milliseconds(50 * (attempt + 1)));
    result = refresher_.Refresh(*conn_, entry->table, kind, &hooks);
  }
  if (result.ok()) {
    if (result->committed) {
      row.frontier = result->frontier;
      row.needs_full = false;
      row.status = Status::kActive;
      row.consecutive_failures = 0;
      row.last_error.clear();
      // An interval counts from the last refresh, whoever asked for it.
      entry->last_start = start;
    }
    return result;
  }
  if (IsSchemaChange(result.status())) {
    spdlog::info("stream table {}: {}; rebuilding", row.QualifiedName(),
                 std::string(result.status().message()));
    TRICKLE_RETURN_IF_ERROR(ReinitLocked(entry));
    return RefreshResult{};
  }
  if (!conn_->ok()) {
    auto reconnected = PgConnection::Connect(options_.dsn);
    if (reconnected.ok()) conn_ = std::move(*reconnected);
  }
  if (IsFuseBlown(result.status())) {
    row.fuse_blown = true;
    row.status = Status::kSuspended;
    row.fuse_reason = std::string(result.status().message());
    row.fuse_delta_rows = blown_rows;
    absl::Status s = catalog::SetFuse(*conn_, row.id, true, row.fuse_reason, blown_rows);
    if (!s.ok()) spdlog::warn("recording the blown fuse: {}", s.ToString());
    spdlog::warn("fuse of {} blew: {}; reset it with apply, reinitialize or skip_changes",
                 row.QualifiedName(), row.fuse_reason);
    return result.status();
  }
  // A failed refresh: recorded, counted; the others keep running.
  HistoryRow history;
  history.action = kind == RefreshKind::kFull || !row.frontier ? "FULL" : "DIFFERENTIAL";
  history.error = std::string(result.status().message());
  history.duration_ms = absl::ToDoubleMilliseconds(absl::Now() - start);
  row.consecutive_failures++;
  row.last_error = history.error;
  int max_failures = FailuresBeforeError(result.status(), options_.max_consecutive_failures);
  if (row.consecutive_failures >= max_failures) row.status = Status::kError;
  absl::Status recorded = catalog::RecordFailure(*conn_, row.id, history, max_failures);
  if (!recorded.ok()) spdlog::warn("recording the failure: {}", recorded.ToString());
  spdlog::warn("refresh of {} failed ({} in a row): {}", row.QualifiedName(), row.consecutive_failures,
               result.status().ToString());
  return result.status();
}


absl::StatusOr<RefreshResult> StreamTableManager::ResetFuse(const std::string& name, FuseAction action) {
  absl::MutexLock lock(&mu_);
  TRICKLE_ASSIGN_OR_RETURN(Entry * e, FindLocked(name));
  StreamTableRow& row = e->table.row;
  if (!row.fuse_blown) {
    return absl::FailedPreconditionError(absl::StrCat("the fuse of ", row.QualifiedName(), " is not blown"));
  }
  // Let the refresh run: the fuse is what is being reset.
  row.fuse_blown = false;
  row.status = Status::kActive;
  RefreshHooks bypass;
  absl::StatusOr<RefreshResult> result;
  switch (action) {
    case FuseAction::kApply:
      result = RefreshLocked(e, RefreshKind::kAuto, &bypass);
      break;
    case FuseAction::kReinitialize:
      result = RefreshLocked(e, RefreshKind::kFull, &bypass);
      break;
    case FuseAction::kSkipChanges:
      bypass.skip_changes = true;
      spdlog::warn("fuse reset of {} with skip_changes: its pending changes are discarded unapplied; "
                   "the stream table no longer matches its query until a FULL refresh",
                   row.QualifiedName());
      result = RefreshLocked(e, RefreshKind::kAuto, &bypass);
      break;
  }
  if (!result.ok()) {
    row.fuse_blown = true;
    row.status = Status::kSuspended;
    return result.status();
  }
  TRICKLE_RETURN_IF_ERROR(catalog::SetFuse(*conn_, row.id, false, "", 0));
  row.fuse_reason.clear();
  row.fuse_delta_rows = 0;
  Wake();
  return result;
}


RefreshHooks StreamTableManager::MakeHooks(const StreamTableRow& row, PgConnection& conn,
                                           int64_t* blown_rows) {
  RefreshHooks hooks;
  bool auto_mode = row.requested_mode == delta::RefreshMode::kAuto;
  bool fuse_on = row.fuse.max_rows > 0 || row.fuse.max_multiple > 0;
  if (!auto_mode && !fuse_on) return hooks;
  int64_t id = row.id;
  FuseSettings fuse = row.fuse;
  ManagerOptions options = options_;
  hooks.before_apply = [id, fuse, fuse_on, auto_mode, options, &conn,
                        blown_rows](int64_t delta_rows) -> absl::StatusOr<AutoDecision> {
    // Inside the refresh transaction: history as of its snapshot.
    TRICKLE_ASSIGN_OR_RETURN(catalog::CostHistory history,
                             catalog::LoadCostHistory(conn, id, options.cost_window));
    if (fuse_on) {
      if (auto verdict = FuseVerdict(fuse, delta_rows, history.average_delta_rows)) {
        *blown_rows = delta_rows;
        return FuseBlownError(*verdict);
      }
    }
    if (!auto_mode) return AutoDecision{};
    TRICKLE_ASSIGN_OR_RETURN(
        PgResult size, conn.ExecParams("SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint"
                                       " FROM pgtrickle.dependencies d JOIN pg_class c ON c.oid = d.source_oid"
                                       " WHERE d.stream_table_id = $1",
                                       {std::to_string(id)}));
    int64_t source_rows = 0;
    absl::SimpleAtoi(size.Get(0, 0), &source_rows);
    return DecideAuto(FitCostModel(history.samples), delta_rows, history.last_full_ms,
                      options.auto_full_ratio, source_rows, options.cold_start_threshold);
  };
  return hooks;
}


}  // namespace trickle::scheduler
