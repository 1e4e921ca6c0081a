#include "service/status_collector.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"
#include "trickle_service_status_sql.h"

namespace trickle::service {
namespace {

constexpr int64_t kPgEpochUnixMicros = 946684800LL * 1000000LL;
// History rows are read by id; a refresh transaction that took its id
// earlier may commit after a later one was read. Ids this far below the
// highest seen are read again (and de-duplicated), so late commits count.
constexpr int64_t kLateHistoryWindow = 1000;
constexpr int kHistoryBatch = 10000;
const char* const kStatuses[] = {"ACTIVE", "ERROR", "SUSPENDED", "REINIT"};

double UnixSeconds(absl::Time t) { return absl::ToDoubleSeconds(t - absl::UnixEpoch()); }

int64_t ToInt64(absl::string_view text) {
  int64_t n = 0;
  return absl::SimpleAtoi(text, &n) ? n : 0;
}

double ToDouble(absl::string_view text) {
  double d = 0;
  return absl::SimpleAtod(text, &d) ? d : 0;
}

std::optional<double> OptionalDouble(const PgResult& r, int row, int col) {
  if (r.IsNull(row, col)) return std::nullopt;
  double v = 0;
  if (!absl::SimpleAtod(r.Get(row, col), &v)) return std::nullopt;
  return v;
}

}  // namespace

absl::Time FromPgMicros(int64_t micros) { return absl::FromUnixMicros(micros + kPgEpochUnixMicros); }

absl::StatusOr<std::optional<int64_t>> OldestPendingCommitTime(const storage::ChangeLog& log,
                                                               const scheduler::Frontier& frontier,
                                                               const std::vector<uint32_t>& sources) {
  std::optional<int64_t> oldest;
  const absl::Status kFound = absl::CancelledError("found");
  for (uint32_t oid : sources) {
    absl::Status s = log.ReadChanges(
        oid, scheduler::LowestNeeded(frontier), ~Lsn{0}, [&](const storage::LoggedChange& c) {
          Lsn commit = c.transaction->commit_lsn();
          bool applied = commit < frontier.lsn &&
                         !std::binary_search(frontier.exceptions.begin(), frontier.exceptions.end(), commit);
          if (applied) return absl::OkStatus();
          int64_t t = c.transaction->commit_time();
          oldest = oldest ? std::min(*oldest, t) : t;
          return kFound;  // the first pending change of this source is its oldest
        });
    if (!s.ok() && !absl::IsCancelled(s)) return s;
  }
  return oldest;
}

struct StatusCollector::Families {
  // Service
  ValueFamily* build_info;
  ValueFamily* start_time;
  ValueFamily* ready;
  ValueFamily* database_up;
  // Capture
  ValueFamily* streaming;
  ValueFamily* received_lsn;
  ValueFamily* written_lsn;
  ValueFamily* durable_lsn;
  ValueFamily* transactions;
  ValueFamily* skipped_transactions;
  ValueFamily* changes;
  ValueFamily* connects;
  ValueFamily* received_bytes;
  // Slot
  ValueFamily* slot_active;
  ValueFamily* slot_lag_bytes;
  ValueFamily* slot_retained_bytes;
  ValueFamily* slot_lag_seconds;
  // Change log
  ValueFamily* log_bytes;
  ValueFamily* log_transactions;
  ValueFamily* log_oldest_lsn;
  // Workers
  ValueFamily* workers;
  ValueFamily* workers_busy;
  ValueFamily* worker_busy_seconds;
  // Stream tables (first label: stream_table)
  ValueFamily* st_status;
  ValueFamily* st_info;
  ValueFamily* st_staleness;
  ValueFamily* st_failures;
  ValueFamily* st_last_refresh;
  ValueFamily* st_fuse_blown;
  ValueFamily* refreshes;
  HistogramFamily* refresh_duration;
  ValueFamily* delta_rows;
  ValueFamily* rows_affected;
};

StatusCollector::StatusCollector(StatusCollectorOptions options, storage::ChangeLog* log,
                                 const Capture* capture, const pgoutput::ReplicationStream* stream)
    : options_(std::move(options)), log_(log), capture_(capture), stream_(stream),
      m_(std::make_unique<Families>()) {
  MetricsRegistry& r = registry_;
  // The full list, with meanings, is docs/metrics.md; keep the two in step.
  m_->build_info = r.AddGauge("trickle_build_info", "Always 1; the version of trickled.", {"version"});
  m_->start_time = r.AddGauge("trickle_start_time_seconds", "When trickled started (Unix time).");
  m_->ready = r.AddGauge("trickle_ready", "1 when /readyz is OK: database reachable, slot streaming, catalog migrated.");
  m_->database_up = r.AddGauge("trickle_database_up", "1 when the last status collection reached the database.");
  m_->streaming = r.AddGauge("trickle_capture_streaming", "1 while the replication connection is streaming.");
  m_->received_lsn = r.AddGauge("trickle_capture_received_lsn", "WAL position received from the slot (LSN as a byte offset).");
  m_->written_lsn = r.AddGauge("trickle_capture_written_lsn", "Commit LSN of the last transaction stored in the change log.");
  m_->durable_lsn = r.AddGauge("trickle_capture_durable_lsn", "End LSN synced in the change log and confirmed to PostgreSQL as flushed.");
  m_->transactions = r.AddCounter("trickle_capture_transactions_total", "Source transactions stored in the change log.");
  m_->skipped_transactions = r.AddCounter("trickle_capture_skipped_transactions_total", "Transactions received again after a reconnect and skipped (already stored).");
  m_->changes = r.AddCounter("trickle_capture_changes_total", "Row changes stored in the change log.");
  m_->connects = r.AddCounter("trickle_capture_connects_total", "Replication connections made (1 + reconnects).");
  m_->received_bytes = r.AddCounter("trickle_capture_received_bytes_total", "Bytes of pgoutput messages received.");
  m_->slot_active = r.AddGauge("trickle_slot_active", "1 when the replication slot exists and is in use.");
  m_->slot_lag_bytes = r.AddGauge("trickle_slot_lag_bytes", "WAL bytes between the server's current position and the slot's confirmed flush position.");
  m_->slot_retained_bytes = r.AddGauge("trickle_slot_retained_wal_bytes", "WAL bytes the slot makes PostgreSQL keep (current position - restart_lsn).");
  m_->slot_lag_seconds = r.AddGauge("trickle_slot_lag_seconds", "PostgreSQL's flush_lag for the slot's WAL sender, seconds (0 when caught up).");
  m_->log_bytes = r.AddGauge("trickle_change_log_bytes", "Approximate size of the RocksDB change log (SST + memtables).");
  m_->log_transactions = r.AddGauge("trickle_change_log_transactions", "Transactions retained in the change log (estimate).");
  m_->log_oldest_lsn = r.AddGauge("trickle_change_log_oldest_lsn", "Commit LSN of the oldest transaction retained in the change log (0 when empty).");
  m_->workers = r.AddGauge("trickle_refresh_workers", "Refresh workers (configured, or connected when more).");
  m_->workers_busy = r.AddGauge("trickle_refresh_workers_busy", "Refresh connections inside a refresh or statement (sampled every collection).");
  m_->worker_busy_seconds = r.AddCounter("trickle_refresh_worker_busy_seconds_total", "Refresh connections busy x time, from the samples (rate = average busy workers).");
  m_->st_status = r.AddGauge("trickle_stream_table_status", "1 for the stream table's current status, 0 for the others.", {"stream_table", "status"});
  m_->st_info = r.AddGauge("trickle_stream_table_info", "Always 1; the stream table's refresh modes.", {"stream_table", "requested_mode", "effective_mode"});
  m_->st_staleness = r.AddGauge("trickle_stream_table_staleness_seconds", "Age of the oldest source change in the change log not yet applied to the stream table (0 when up to date).", {"stream_table"});
  m_->st_failures = r.AddGauge("trickle_stream_table_consecutive_failures", "Refreshes that failed in a row.", {"stream_table"});
  m_->st_last_refresh = r.AddGauge("trickle_stream_table_last_refresh_timestamp_seconds", "When the last refresh that wrote something committed (Unix time).", {"stream_table"});
  m_->st_fuse_blown = r.AddGauge("trickle_stream_table_fuse_blown", "1 while the stream table's fuse is blown (refreshes stopped until reset).", {"stream_table"});
  m_->refreshes = r.AddCounter("trickle_refreshes_total", "Refreshes that wrote something or failed, by action (FULL, DIFFERENTIAL) and outcome (success, failure).", {"stream_table", "action", "outcome"});
  m_->refresh_duration = r.AddHistogram("trickle_refresh_duration_seconds", "Duration of refreshes, by action.", {"stream_table", "action"},
                                        {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300});
  m_->delta_rows = r.AddCounter("trickle_refresh_delta_rows_total", "Consolidated source change rows applied by differential refreshes.", {"stream_table"});
  m_->rows_affected = r.AddCounter("trickle_refresh_rows_affected_total", "Stream table rows written by refreshes.", {"stream_table"});

  m_->build_info->Set({kTrickleVersion}, 1);
  m_->start_time->Set({}, UnixSeconds(started_at_));
  r.AddScrapeHook([this] { UpdateLiveGauges(); });
}

StatusCollector::~StatusCollector() { Stop(); }

void StatusCollector::Start() {
  absl::Status first = CollectOnce();
  if (!first.ok()) spdlog::warn("status collection: {}", first.ToString());
  thread_ = std::thread([this] {
    while (!stop_.WaitForNotificationWithTimeout(options_.interval)) {
      absl::Status s = CollectOnce();
      if (!s.ok()) spdlog::debug("status collection: {}", s.ToString());
    }
  });
}

void StatusCollector::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void StatusCollector::RecordError(const std::string& error) {
  absl::MutexLock lock(&mu_);
  last_error_ = error;
  last_error_time_ = absl::Now();
}

std::pair<std::string, absl::Time> StatusCollector::LastError() const {
  absl::MutexLock lock(&mu_);
  return {last_error_, last_error_time_};
}

ServiceObservation StatusCollector::Latest() const {
  absl::MutexLock lock(&mu_);
  return latest_;
}

std::vector<HealthCheckResult> StatusCollector::ReadinessChecks() const {
  std::vector<HealthCheckResult> checks;
  ServiceObservation obs = Latest();
  // A collection older than three intervals means the collector is stuck
  // on the database: not ready.
  bool fresh = absl::Now() - obs.collected_at < 3 * options_.interval + absl::Seconds(1);
  HealthCheckResult db{"database", obs.database_ok && fresh, ""};
  if (!obs.database_ok) db.detail = obs.database_error.empty() ? "not reached yet" : obs.database_error;
  else if (!fresh) db.detail = "no answer from the database for " + absl::FormatDuration(absl::Now() - obs.collected_at);
  checks.push_back(db);
  bool streaming = stream_ != nullptr && stream_->stats().streaming.load();
  checks.push_back({"slot_streaming", streaming,
                    streaming ? "" : absl::StrCat("not streaming from slot \"", options_.slot_name, "\"")});
  bool catalog = catalog_ready_.load();
  checks.push_back({"catalog", catalog, catalog ? "" : "catalog pgtrickle not migrated yet"});
  return checks;
}

bool StatusCollector::Ready() const {
  for (const HealthCheckResult& c : ReadinessChecks()) {
    if (!c.ok) return false;
  }
  return true;
}

absl::Status StatusCollector::CollectOnce() {
  absl::MutexLock collect_lock(&collect_mu_);
  ServiceObservation obs;
  obs.collected_at = absl::Now();
  absl::Status status = CollectFromDatabase(&obs);
  if (!status.ok()) {
    obs.database_error = std::string(status.message());
    if (!obs.database_ok) RecordError(absl::StrCat("status collection: ", status.message()));
  }
  if (!obs.database_ok || !status.ok()) {
    // Keep the last known stream tables: a database hiccup should not make
    // their series vanish.
    absl::MutexLock lock(&mu_);
    if (obs.stream_tables.empty()) obs.stream_tables = latest_.stream_tables;
    if (!obs.database_ok) obs.slot = latest_.slot;
  }
  // Staleness is computed at scrape time from latest_: it changes with the
  // other series, in one update.
  registry_.Update([&] {
    collect_mu_.AssertHeld();
    Publish(obs);
    absl::MutexLock lock(&mu_);
    latest_ = std::move(obs);
  });
  return status;
}

absl::Status StatusCollector::CollectFromDatabase(ServiceObservation* obs) {
  if (conn_ == nullptr || !conn_->ok()) {
    conn_.reset();
    TRICKLE_ASSIGN_OR_RETURN(conn_, PgConnection::Connect(options_.dsn));
    TRICKLE_RETURN_IF_ERROR(
        conn_->Exec("SET application_name = 'trickle-status'; SET statement_timeout = '10s'").status());
  }
  TRICKLE_RETURN_IF_ERROR(CollectSlot(*conn_, &obs->slot));
  obs->database_ok = true;
  if (catalog_ready_.load()) {
    // One snapshot, so that no refresh is counted for a stream table whose
    // row (status, last refresh) does not show it yet.
    TRICKLE_RETURN_IF_ERROR(InTransaction(
        *conn_,
        [&]() -> absl::Status {
          collect_mu_.AssertHeld();
          TRICKLE_RETURN_IF_ERROR(CollectStreamTables(*conn_, &obs->stream_tables));
          return CollectHistory(*conn_, &obs->new_refreshes);
        },
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  }
  return CollectWorkers(*conn_);
}

absl::Status StatusCollector::CollectSlot(PgConnection& conn, SlotObservation* slot) {
  TRICKLE_ASSIGN_OR_RETURN(PgResult r, conn.ExecParams(std::string(sql::kSlotStatus), {options_.slot_name}));
  if (r.rows() == 0) return absl::OkStatus();
  slot->found = true;
  slot->active = r.Get(0, 0) == "t";
  if (!r.IsNull(0, 1)) slot->confirmed_flush = ParseLsn(r.Get(0, 1)).value_or(0);
  if (!r.IsNull(0, 2)) slot->restart = ParseLsn(r.Get(0, 2)).value_or(0);
  slot->current_wal = ParseLsn(r.Get(0, 3)).value_or(0);
  slot->wal_status = std::string(r.Get(0, 4));
  slot->lag_bytes = ToInt64(r.Get(0, 5));
  slot->retained_wal_bytes = ToInt64(r.Get(0, 6));
  slot->lag_seconds = OptionalDouble(r, 0, 7).value_or(0);
  return absl::OkStatus();
}

absl::Status StatusCollector::CollectStreamTables(PgConnection& conn,
                                                  std::vector<StreamTableObservation>* out) {
  TRICKLE_ASSIGN_OR_RETURN(PgResult r, conn.Exec(sql::kStreamTableStatus));
  std::vector<std::optional<scheduler::Frontier>> frontiers;
  std::vector<std::vector<uint32_t>> sources;
  for (int i = 0; i < r.rows(); ++i) {
    int64_t id = ToInt64(r.Get(i, 0));
    if (out->empty() || out->back().id != id) {
      StreamTableObservation st;
      st.id = id;
      st.name = std::string(r.Get(i, 1));
      st.status = std::string(r.Get(i, 2));
      st.requested_mode = std::string(r.Get(i, 3));
      st.effective_mode = std::string(r.Get(i, 4));
      std::optional<scheduler::Frontier> frontier;
      if (!r.IsNull(i, 5)) {
        auto f = scheduler::Frontier::Decode(r.Get(i, 5));
        if (f.ok()) frontier = *f;
      }
      st.has_frontier = frontier.has_value();
      st.consecutive_failures = static_cast<int>(ToInt64(r.Get(i, 6)));
      st.fuse_blown = r.Get(i, 9) == "BLOWN";
      if (auto t = OptionalDouble(r, i, 7)) st.last_refresh = absl::FromUnixMicros(static_cast<int64_t>(*t * 1e6));
      out->push_back(std::move(st));
      frontiers.push_back(frontier);
      sources.emplace_back();
    }
    if (!r.IsNull(i, 8)) {
      sources.back().push_back(static_cast<uint32_t>(ToInt64(r.Get(i, 8))));
    }
  }
  for (size_t i = 0; i < out->size(); ++i) {
    if (!frontiers[i]) continue;
    auto oldest = OldestPendingCommitTime(*log_, *frontiers[i], sources[i]);
    if (!oldest.ok()) return oldest.status();
    if (*oldest) (*out)[i].oldest_pending_change = FromPgMicros(**oldest);
  }
  return absl::OkStatus();
}

absl::Status StatusCollector::CollectHistory(PgConnection& conn, std::vector<RefreshObservation>* out) {
  if (!history_watermark_) {
    TRICKLE_ASSIGN_OR_RETURN(PgResult r, conn.Exec(sql::kRefreshHistoryMaxId));
    int64_t max_id = ToInt64(r.Get(0, 0));
    history_watermark_ = max_id;
    history_start_ = max_id;
    return absl::OkStatus();
  }
  int64_t from = std::max<int64_t>(history_start_, *history_watermark_ - kLateHistoryWindow);
  TRICKLE_ASSIGN_OR_RETURN(PgResult r, conn.ExecParams(std::string(sql::kRefreshHistorySince),
                                                       {std::to_string(from), std::to_string(kHistoryBatch)}));
  for (int i = 0; i < r.rows(); ++i) {
    int64_t id = ToInt64(r.Get(i, 0));
    // A row at or below the watermark was either counted already (in the
    // set) or committed late (count it now).
    if (recent_history_ids_.contains(id)) continue;
    if (id > *history_watermark_) history_watermark_ = id;
    recent_history_ids_.insert(id);
    RefreshObservation refresh;
    refresh.stream_table = std::string(r.Get(i, 1));
    refresh.action = std::string(r.Get(i, 2));
    refresh.success = r.Get(i, 3) == "t";
    refresh.duration_ms = ToDouble(r.Get(i, 4));
    refresh.delta_rows = ToInt64(r.Get(i, 5));
    refresh.rows_affected = ToInt64(r.Get(i, 6));
    refresh.error = std::string(r.Get(i, 7));
    out->push_back(std::move(refresh));
  }
  for (auto it = recent_history_ids_.begin(); it != recent_history_ids_.end();) {
    auto current = it++;
    if (*current < *history_watermark_ - kLateHistoryWindow) recent_history_ids_.erase(current);
  }
  return absl::OkStatus();
}

absl::Status StatusCollector::CollectWorkers(PgConnection& conn) {
  TRICKLE_ASSIGN_OR_RETURN(PgResult r, conn.Exec(sql::kRefreshWorkers));
  int busy = static_cast<int>(ToInt64(r.Get(0, 0)));
  int open = static_cast<int>(ToInt64(r.Get(0, 1)));
  absl::Time now = absl::Now();
  if (last_worker_sample_ != absl::InfinitePast()) {
    worker_busy_seconds_ = worker_busy_seconds_.load() +
                           workers_busy_.load() * absl::ToDoubleSeconds(now - last_worker_sample_);
  }
  last_worker_sample_ = now;
  workers_busy_ = busy;
  workers_total_ = std::max(workers_configured_.load(), open);
  return absl::OkStatus();
}

void StatusCollector::Publish(const ServiceObservation& obs) {
  m_->database_up->Set({}, obs.database_ok ? 1 : 0);
  if (obs.database_ok) {
    m_->slot_active->Set({}, obs.slot.found && obs.slot.active ? 1 : 0);
    m_->slot_lag_bytes->Set({}, static_cast<double>(obs.slot.lag_bytes));
    m_->slot_retained_bytes->Set({}, static_cast<double>(obs.slot.retained_wal_bytes));
    m_->slot_lag_seconds->Set({}, obs.slot.lag_seconds);
  }
  std::map<LabelValues, double> status, info, failures, last_refresh, fuse;
  std::vector<std::string> names;
  for (const StreamTableObservation& st : obs.stream_tables) {
    names.push_back(st.name);
    for (const char* s : kStatuses) status[{st.name, s}] = st.status == s ? 1 : 0;
    info[{st.name, st.requested_mode, st.effective_mode}] = 1;
    failures[{st.name}] = st.consecutive_failures;
    if (st.last_refresh) last_refresh[{st.name}] = UnixSeconds(*st.last_refresh);
    fuse[{st.name}] = st.fuse_blown ? 1 : 0;
  }
  m_->st_status->ReplaceAll(std::move(status));
  m_->st_info->ReplaceAll(std::move(info));
  m_->st_failures->ReplaceAll(std::move(failures));
  m_->st_last_refresh->ReplaceAll(std::move(last_refresh));
  m_->st_fuse_blown->ReplaceAll(std::move(fuse));
  // A dropped stream table takes its counters and histograms with it.
  for (const std::string& old : known_tables_) {
    if (std::find(names.begin(), names.end(), old) == names.end()) {
      m_->refreshes->RemoveMatchingFirstLabel(old);
      m_->refresh_duration->RemoveMatchingFirstLabel(old);
      m_->delta_rows->RemoveMatchingFirstLabel(old);
      m_->rows_affected->RemoveMatchingFirstLabel(old);
    }
  }
  known_tables_ = std::move(names);
  for (const RefreshObservation& refresh : obs.new_refreshes) {
    const std::string& table = refresh.stream_table;
    m_->refreshes->Add({table, refresh.action, refresh.success ? "success" : "failure"}, 1);
    m_->refresh_duration->Observe({table, refresh.action}, refresh.duration_ms / 1000.0);
    if (refresh.success) {
      m_->delta_rows->Add({table}, static_cast<double>(refresh.delta_rows));
      m_->rows_affected->Add({table}, static_cast<double>(refresh.rows_affected));
    } else {
      RecordError(absl::StrCat("refresh of ", table, " failed: ", refresh.error));
    }
  }
}

void StatusCollector::UpdateLiveGauges() {
  absl::Time now = absl::Now();
  m_->ready->Set({}, Ready() ? 1 : 0);
  if (capture_ != nullptr) {
    const CaptureStats& s = capture_->stats();
    m_->transactions->Set({}, static_cast<double>(s.transactions.load()));
    m_->skipped_transactions->Set({}, static_cast<double>(s.skipped_transactions.load()));
    m_->changes->Set({}, static_cast<double>(s.changes.load()));
  }
  if (stream_ != nullptr) {
    const pgoutput::StreamStats& s = stream_->stats();
    m_->streaming->Set({}, s.streaming.load() ? 1 : 0);
    m_->received_lsn->Set({}, static_cast<double>(s.received_lsn.load()));
    m_->connects->Set({}, static_cast<double>(s.connects.load()));
    m_->received_bytes->Set({}, static_cast<double>(s.bytes.load()));
  }
  m_->written_lsn->Set({}, static_cast<double>(log_->high_water_lsn()));
  m_->durable_lsn->Set({}, static_cast<double>(log_->durable_lsn()));
  storage::ChangeLogStats stats = log_->Stats();
  m_->log_bytes->Set({}, static_cast<double>(stats.approximate_bytes));
  m_->log_transactions->Set({}, static_cast<double>(stats.transaction_count));
  m_->log_oldest_lsn->Set({}, static_cast<double>(stats.oldest_commit_lsn));
  m_->workers->Set({}, workers_total_.load());
  m_->workers_busy->Set({}, workers_busy_.load());
  m_->worker_busy_seconds->Set({}, worker_busy_seconds_.load());
  // Staleness grows between collections: computed from the oldest pending
  // change's commit time at scrape time.
  std::map<LabelValues, double> staleness;
  for (const StreamTableObservation& st : Latest().stream_tables) {
    if (!st.has_frontier) continue;
    staleness[{st.name}] =
        st.oldest_pending_change ? std::max(0.0, absl::ToDoubleSeconds(now - *st.oldest_pending_change)) : 0;
  }
  m_->st_staleness->ReplaceAll(std::move(staleness));
}

std::map<std::string, HttpHandler> StatusRoutes(StatusCollector* status) {
  std::map<std::string, HttpHandler> routes;
  routes["/metrics"] = [status] {
    return HttpResponse{200, MetricsRegistry::kContentType, status->registry().Render()};
  };
  routes["/healthz"] = [] { return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"}; };
  routes["/readyz"] = [status] {
    bool ready = true;
    std::string body;
    for (const HealthCheckResult& c : status->ReadinessChecks()) {
      ready = ready && c.ok;
      absl::StrAppend(&body, c.name, ": ", c.ok ? "ok" : "FAIL", c.detail.empty() ? "" : " (",
                      c.detail, c.detail.empty() ? "" : ")", "\n");
    }
    return HttpResponse{ready ? 200 : 503, "text/plain; charset=utf-8",
                        absl::StrCat(ready ? "ready\n" : "not ready\n", body)};
  };
  return routes;
}

}  // namespace trickle::service
