// StreamTableManager's scheduling: when stream tables refresh. The
// event-driven coordinator (RunScheduler) marks readers of changed sources
// dirty, dispatches the due ones to the worker pool, and takes in their
// outcomes (backoff, ERROR, fuse, rebuild); the polling round
// (RunDueRefreshes); the periodic comparison of the plans with the sources'
// live columns; the trim of the change log.
#include <algorithm>
#include <deque>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "common/status_macros.h"
#include "scheduler/stream_table_manager.h"
#include "spdlog/spdlog.h"

namespace trickle::scheduler {

void StreamTableManager::OnSourceCommitted(const storage::v1::TransactionRecord& txn) {
  if (txn.relation_oids_size() == 0) return;  // a fence: nothing to refresh
  absl::Time now = absl::Now();
  absl::MutexLock lock(&notify_mu_);
  for (uint32_t oid : txn.relation_oids()) {
    changed_oids_.emplace(oid, now);
    if (wake_on_.contains(oid)) wake_ = true;
  }
}


void StreamTableManager::Wake() {
  absl::MutexLock lock(&notify_mu_);
  wake_ = true;
}


bool StreamTableManager::NeedsRefreshLocked(const Entry& e) const {
  const StreamTableRow& row = e.table.row;
  return row.status == Status::kActive && !row.fuse_blown && !e.running &&
         (e.dirty || row.needs_full || !row.frontier);
}


absl::Time StreamTableManager::DueAtLocked(const Entry& e) const {
  absl::Time due = absl::InfiniteFuture();
  const StreamTableRow& row = e.table.row;
  bool forced = row.needs_full || !row.frontier;
  switch (e.schedule.kind) {
    case Schedule::kOnChange:
      due = forced ? absl::InfinitePast()
                   : e.dirty_since + (row.sla ? TierGap(e.tier.tier) : options_.debounce);
      break;
    case Schedule::kInterval:
      due = e.last_start + e.pace.Interval(e.interval);
      break;
    case Schedule::kCron:
      due = forced ? absl::InfinitePast() : e.next_cron;
      break;
    case Schedule::kDownstream:
      due = forced ? absl::InfinitePast() : absl::InfiniteFuture();  // pulled in by readers
      break;
  }
  return std::max(due, e.next_retry);
}


StreamTableManager::Outcome StreamTableManager::RunOnWorker(Worker& worker, const StreamTable& table,
                                                            absl::Time due, absl::Time dirty_since) {
  Outcome o{table.row.id, absl::UnknownError("not run"), due, absl::Now(), absl::Now(), dirty_since, std::nullopt};
  auto conn = worker.Connection();
  if (!conn.ok()) {
    o.result = conn.status();
    o.finished = absl::Now();
    return o;
  }
  PgConnection& c = **conn;
  if (options_.injected_refresh_delay > absl::ZeroDuration()) absl::SleepFor(options_.injected_refresh_delay);
  int64_t blown_rows = 0;
  RefreshHooks hooks = MakeHooks(table.row, c, &blown_rows);
  hooks.scheduled = true;  // nothing logged for it: no fence, nothing to do
  o.result = worker.refresher->Refresh(c, table, RefreshKind::kAuto, &hooks);
  for (int attempt = 0; attempt < 3 && !o.result.ok() && o.result.status().code() == absl::StatusCode::kAborted;
       ++attempt) {
    o.result = worker.refresher->Refresh(c, table, RefreshKind::kAuto, &hooks);
  }
  o.finished = absl::Now();
  if (!c.ok()) {
    // The backend died (killed, restarted): the next task gets a new one.
    worker.conn.reset();
    auto again = worker.Connection();
    if (!again.ok()) return o;
  }
  PgConnection& record = *worker.conn;
  if (!o.result.ok()) {
    absl::Status s;
    if (IsFuseBlown(o.result.status())) {
      s = catalog::SetFuse(record, table.row.id, true, o.result.status().message(), blown_rows);
    } else if (!IsSchemaChange(o.result.status())) {
      HistoryRow h;
      h.action = table.row.frontier ? "DIFFERENTIAL" : "FULL";
      h.error = std::string(o.result.status().message());
      h.duration_ms = absl::ToDoubleMilliseconds(o.finished - o.started);
      int max_failures = FailuresBeforeError(o.result.status(), options_.max_consecutive_failures);
      s = catalog::RecordFailure(record, table.row.id, h, max_failures);
    }
    if (!s.ok()) spdlog::warn("recording the outcome of {}: {}", table.row.QualifiedName(), s.ToString());
    return o;
  }
  if (o.result->committed) {
    auto history = catalog::LoadCostHistory(record, table.row.id, options_.cost_window);
    if (history.ok()) o.cost = FitCostModel(history->samples);
  } else if (options_.record_no_data) {
    (void)catalog::RecordNoData(record, table.row.id, absl::ToDoubleMilliseconds(o.finished - o.started));
  }
  return o;
}


void StreamTableManager::CompleteLocked(Outcome& o) {
  auto it = entries_.find(o.id);
  if (it == entries_.end()) return;  // dropped meanwhile
  Entry& e = it->second;
  StreamTableRow& row = e.table.row;
  e.running = false;
  SchedulerState shown = e.shown;
  if (o.result.ok() && !o.result->frontier.exceptions.empty()) {
    // Logged transactions its snapshot did not see yet (E: committed, and
    // decoded, while still running in the snapshot) are pending work, and
    // their arrival was consumed by this refresh's dispatch: without this
    // they waited for the next change of a source (at 10 changes/s, a
    // 100 ms latency mode; at the end of a burst, indefinitely). Whether or
    // not the refresh committed: one that found nothing else to apply
    // commits nothing.
    e.dirty = true;
    e.dirty_since = std::min(e.dirty_since, o.finished);
  }
  if (o.result.ok()) {
    if (o.result->committed) {
      row.frontier = o.result->frontier;
      row.needs_full = false;
      row.status = Status::kActive;
      row.consecutive_failures = 0;
      row.last_error.clear();
      e.next_retry = absl::InfinitePast();
      shown.next_retry_at.reset();
      if (e.schedule.kind == Schedule::kInterval) {
        // Measured from when it was due *and* had something to do: the time
        // an idle stream table waited for its next change is not falling
        // behind (counting it stretched a 200 ms interval to 400 ms with a
        // change every 600 ms).
        absl::Time needed_from = o.due;
        if (o.dirty_since != absl::InfiniteFuture() && o.dirty_since != absl::InfinitePast()) {
          needed_from = std::max(needed_from, o.dirty_since);
        }
        e.pace.Record(e.interval, o.finished - needed_from, options_.pace_cap);
        if (e.pace.behind(e.interval) != (e.shown.effective_interval > absl::ZeroDuration())) {
          spdlog::info("stream table {} {} its {} schedule; effective interval {}", row.QualifiedName(),
                       e.pace.behind(e.interval) ? "is falling behind" : "caught up with", row.schedule,
                       absl::FormatDuration(e.pace.Interval(e.interval)));
        }
        shown.effective_interval = e.pace.behind(e.interval) ? e.pace.effective : absl::ZeroDuration();
      }
      if (row.sla && o.dirty_since != absl::InfiniteFuture() && o.dirty_since != absl::InfinitePast()) {
        Tier before = e.tier.tier;
        UpdateTier(&e.tier, *row.sla, o.finished - o.dirty_since, o.finished - o.started);
        if (e.tier.tier != before) {
          spdlog::info("stream table {} moves from tier {} to {} (SLA {})", row.QualifiedName(),
                       TierName(before), TierName(e.tier.tier), absl::FormatDuration(*row.sla));
        }
      }
      if (o.cost) shown.cost = *o.cost;
    }
  } else if (IsFuseBlown(o.result.status())) {
    row.fuse_blown = true;
    row.status = Status::kSuspended;
    row.fuse_reason = std::string(o.result.status().message());
    spdlog::warn("fuse of {} blew: {}; reset it with apply, reinitialize or skip_changes",
                 row.QualifiedName(), row.fuse_reason);
  } else if (IsSchemaChange(o.result.status())) {
    spdlog::info("stream table {}: {}; rebuilding", row.QualifiedName(), std::string(o.result.status().message()));
    absl::Status s = ReinitLocked(&e);
    if (!s.ok()) spdlog::warn("rebuilding {}: {}", row.QualifiedName(), s.ToString());
  } else {
    row.consecutive_failures++;
    row.last_error = std::string(o.result.status().message());
    int max_failures = FailuresBeforeError(o.result.status(), options_.max_consecutive_failures);
    if (row.consecutive_failures >= max_failures) row.status = Status::kError;
    absl::Duration delay =
        RetryDelay(o.result.status(), row.consecutive_failures, options_.backoff_base, options_.backoff_cap);
    e.next_retry = o.finished + delay;
    shown.next_retry_at = e.next_retry;
    e.dirty = true;  // what it did not apply is still pending
    if (e.dirty_since == absl::InfiniteFuture()) e.dirty_since = o.dirty_since;
    spdlog::warn("refresh of {} failed ({} in a row, retry in {}): {}", row.QualifiedName(),
                 row.consecutive_failures, absl::FormatDuration(delay), o.result.status().ToString());
  }
  if (row.sla) shown.tier = e.tier.tier;
  bool changed = shown.tier != e.shown.tier || shown.effective_interval != e.shown.effective_interval ||
                 shown.cost.samples != e.shown.cost.samples ||
                 shown.cost.slope_ms_per_row != e.shown.cost.slope_ms_per_row ||
                 shown.next_retry_at != e.shown.next_retry_at;
  e.shown = shown;
  if (changed && conn_->ok()) {
    absl::Status s = catalog::WriteSchedulerState(*conn_, row.id, shown);
    if (!s.ok()) spdlog::warn("writing scheduler state of {}: {}", row.QualifiedName(), s.ToString());
  }
}


void StreamTableManager::RunScheduler(const std::atomic<bool>& stop) {
  {
    absl::MutexLock lock(&mu_);
    absl::Time now = absl::Now();
    // Changes may have arrived while the service was down.
    for (auto& [id, e] : entries_) {
      e.dirty = true;
      e.dirty_since = now;
    }
  }
  absl::Time last_trim = absl::Now();
  absl::Time last_columns_check = absl::Now();
  absl::flat_hash_set<uint32_t> wake_on;  // the next wake_on_, built under mu_
  while (!stop.load()) {
    absl::flat_hash_map<uint32_t, absl::Time> changed;
    std::vector<Outcome> outcomes;
    {
      absl::MutexLock lock(&notify_mu_);
      changed.swap(changed_oids_);
      outcomes.swap(outcomes_);
      wake_ = false;
    }
    struct Task {
      StreamTable table;
      absl::Time due;
      absl::Time dirty_since;
    };
    std::vector<Task> tasks;
    absl::Time next_wake = absl::Now() + absl::Milliseconds(100);
    {
      absl::MutexLock lock(&mu_);
      bool committed = false;
      for (Outcome& o : outcomes) {
        committed = committed || (o.result.ok() && o.result->committed);
        CompleteLocked(o);
      }
      for (const auto& [oid, at] : changed) {
        auto readers = readers_.find(oid);
        if (readers == readers_.end()) continue;
        for (int64_t id : readers->second) {
          Entry& e = entries_.at(id);
          e.dirty = true;
          e.dirty_since = std::min(e.dirty_since, at);
        }
      }
      if (absl::Now() - last_columns_check >= options_.source_columns_check_interval) {
        absl::Status checked = MarkAlteredSourcesLocked();
        if (!checked.ok()) spdlog::warn("comparing source columns with the plans: {}", checked.ToString());
        last_columns_check = absl::Now();
      }
      absl::Time now = absl::Now();
      std::vector<DispatchCandidate> candidates;
      candidates.reserve(entries_.size());
      for (auto& [id, e] : entries_) {
        DispatchCandidate c;
        c.id = id;
        c.running = e.running;
        c.needs_refresh = NeedsRefreshLocked(e);
        c.pulled_by_readers = e.schedule.kind == Schedule::kDownstream;
        if (c.needs_refresh) c.due = DueAtLocked(e);
        if (c.pulled_by_readers && c.needs_refresh && e.next_retry > now) c.needs_refresh = false;
        candidates.push_back(c);
      }
      // Capacity from the coordinator's own books (dispatched, outcome not
      // processed yet), not pool_->busy(): a worker counts as busy until its
      // task returns, after it reported its outcome, and nothing wakes the
      // coordinator when it then goes idle. Two refreshes finishing together
      // left a dirty stream table waiting for the 100 ms timeout.
      int in_flight = 0;
      for (const auto& [id, e] : entries_) in_flight += e.running ? 1 : 0;
      int capacity = pool_ ? pool_->size() - in_flight : 1;
      for (int64_t id : ChooseDispatch(candidates, dag_, now, capacity, &next_wake)) {
        Entry& e = entries_.at(id);
        tasks.push_back({e.table, std::max(DueAtLocked(e), e.last_start), e.dirty_since});
        e.running = true;
        e.dirty = false;
        e.dirty_since = absl::InfiniteFuture();
        e.last_start = now;
        if (e.schedule.cron) e.next_cron = e.schedule.cron->Next(now);
      }
      wake_on.clear();
      for (const auto& [oid, ids] : readers_) {
        for (int64_t id : ids) {
          const Entry& e = entries_.at(id);
          if (!e.dirty && !e.running) {
            wake_on.insert(oid);
            break;
          }
        }
      }
      if (committed && absl::Now() - last_trim > absl::Seconds(1)) {
        absl::Status trimmed = TrimLogLocked();
        if (!trimmed.ok()) spdlog::warn("trimming the change log: {}", trimmed.ToString());
        last_trim = absl::Now();
      }
    }
    for (Task& t : tasks) {
      if (pool_) {
        pool_->Submit([this, t](Worker& w) {
          Outcome o = RunOnWorker(w, t.table, t.due, t.dirty_since);
          absl::MutexLock lock(&notify_mu_);
          outcomes_.push_back(std::move(o));
          wake_ = true;
        });
      } else {
        // Serial mode: the coordinator refreshes, one stream table at a time.
        // At a stop, the refresh in flight finishes and the rest of the
        // batch is left pending (it has not started: nothing to undo).
        if (stop.load()) {
          absl::MutexLock lock(&mu_);
          auto it = entries_.find(t.table.row.id);
          if (it != entries_.end()) {
            it->second.running = false;
            it->second.dirty = true;
            it->second.dirty_since = std::min(it->second.dirty_since, t.dirty_since);
          }
          continue;
        }
        Outcome o = RunOnWorker(*inline_worker_, t.table, t.due, t.dirty_since);
        absl::MutexLock lock(&notify_mu_);
        outcomes_.push_back(std::move(o));
        wake_ = true;
      }
    }
    absl::MutexLock lock(&notify_mu_);
    wake_on_.swap(wake_on);
    // A change that arrived since this turn read changed_oids_, while the
    // previous wake_on_ was in force, must not wait for the timeout.
    for (const auto& [oid, at] : changed_oids_) {
      if (wake_on_.contains(oid)) {
        wake_ = true;
        break;
      }
    }
    absl::Duration wait = std::clamp(next_wake - absl::Now(), absl::ZeroDuration(), absl::Milliseconds(100));
    notify_mu_.AwaitWithTimeout(absl::Condition(&wake_), wait);
  }
}


absl::Status StreamTableManager::MarkAlteredSourcesLocked() {
  std::vector<uint32_t> oids;
  for (const auto& [oid, ids] : readers_) oids.push_back(oid);
  TRICKLE_ASSIGN_OR_RETURN(LiveColumns live, ReadSourceColumns(*conn_, oids));
  const absl::Time now = absl::Now();
  for (auto& [id, e] : entries_) {
    if (e.table.row.status != Status::kActive || e.dirty) continue;
    for (const delta::SourceRelation& source : e.table.plan.sources) {
      absl::Status fits = CompareSourceColumns(source, live);
      if (fits.ok()) continue;
      spdlog::info("stream table {}: {}; refreshing it to rebuild", e.table.row.QualifiedName(),
                   std::string(fits.message()));
      e.dirty = true;
      e.dirty_since = std::min(e.dirty_since, now);
      break;
    }
  }
  return absl::OkStatus();
}


std::vector<StreamTableManager::Entry*> StreamTableManager::TopologicalOrderLocked() {
  absl::flat_hash_map<int64_t, int> pending;
  absl::flat_hash_map<int64_t, std::vector<int64_t>> readers;
  for (auto& [id, e] : entries_) {
    int n = 0;
    for (int64_t up : e.upstream_ids) {
      if (entries_.contains(up)) {
        readers[up].push_back(id);
        ++n;
      }
    }
    pending[id] = n;
  }
  std::deque<int64_t> ready;
  for (auto& [id, e] : entries_) {
    if (pending[id] == 0) ready.push_back(id);
  }
  std::vector<Entry*> order;
  while (!ready.empty()) {
    int64_t id = ready.front();
    ready.pop_front();
    order.push_back(&entries_.at(id));
    for (int64_t r : readers[id]) {
      if (--pending[r] == 0) ready.push_back(r);
    }
  }
  return order;
}


void StreamTableManager::RunDueRefreshes(const std::atomic<bool>& stop) {
  absl::MutexLock lock(&mu_);
  absl::Time now = absl::Now();
  bool any = false;
  for (Entry* entry : TopologicalOrderLocked()) {
    if (stop.load()) break;
    if (entry->table.row.status != Status::kActive || now < entry->next_due) continue;
    entry->next_due = now + entry->interval;
    auto result = RefreshLocked(entry, RefreshKind::kAuto);
    any = any || (result.ok() && result->committed);
  }
  if (any) {
    absl::Status trimmed = TrimLogLocked();
    if (!trimmed.ok()) spdlog::warn("trimming the change log: {}", trimmed.ToString());
  }
}


absl::Status StreamTableManager::TrimLogLocked() {
  // Each source is trimmed below the lowest point any reader still needs.
  absl::flat_hash_map<uint32_t, Lsn> lowest;
  for (const auto& [id, e] : entries_) {
    for (const delta::SourceRelation& s : e.table.plan.sources) {
      Lsn need = e.table.row.frontier ? LowestNeeded(*e.table.row.frontier) : 0;
      auto [it, inserted] = lowest.emplace(s.oid, need);
      if (!inserted) it->second = std::min(it->second, need);
    }
  }
  TRICKLE_ASSIGN_OR_RETURN(std::vector<storage::RelationSchema> relations, log_->LatestRelations());
  for (const storage::RelationSchema& r : relations) {
    auto it = lowest.find(r.relation_oid());
    // Nobody reads it any more: everything stored can go.
    Lsn below = it == lowest.end() ? log_->high_water_lsn() + 1 : it->second;
    // Only points that moved: most rounds move few of them.
    Lsn& trimmed = trimmed_below_[r.relation_oid()];
    if (below <= trimmed) continue;
    TRICKLE_RETURN_IF_ERROR(log_->Trim(r.relation_oid(), below));
    trimmed = below;
  }
  return absl::OkStatus();
}


}  // namespace trickle::scheduler
