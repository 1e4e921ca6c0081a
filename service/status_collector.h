// What the service knows about itself, for /metrics, /readyz and the
// GetHealth RPC: capture positions (read live from atomics), and, every
// `interval` on a thread and a database connection of its own, the slot, the
// catalog's stream tables, new refresh-history rows and each stream table's
// staleness (from the change log). Scrapes and probes only read memory: a
// slow database or a long refresh never stalls them.
//
// Refresh counts and durations come from pgtrickle.refresh_history rows
// (written by whatever refreshes: the refresh loop, RefreshStreamTable, the
// scheduler's workers), read incrementally by id. Counters start at zero when
// the process starts, as Prometheus expects.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/pg_connection.h"
#include "pgoutput/replication_stream.h"
#include "scheduler/frontier.h"
#include "service/capture.h"
#include "service/http_server.h"
#include "service/metrics.h"
#include "storage/change_log.h"

namespace trickle::service {

inline constexpr char kTrickleVersion[] = "0.1.0";

struct SlotObservation {
  bool found = false;
  bool active = false;
  std::optional<Lsn> confirmed_flush;
  std::optional<Lsn> restart;
  Lsn current_wal = 0;
  std::string wal_status;
  int64_t lag_bytes = 0;           // current WAL - confirmed flush
  int64_t retained_wal_bytes = 0;  // current WAL - restart
  double lag_seconds = 0;          // PostgreSQL's flush_lag of the slot's WAL sender
};

struct StreamTableObservation {
  int64_t id = 0;
  std::string name;  // schema.name
  std::string status;
  std::string requested_mode;
  std::string effective_mode;
  int consecutive_failures = 0;
  std::optional<absl::Time> last_refresh;
  // Oldest change in the change log the stream table does not reflect yet;
  // nullopt when it is up to date (or before its first refresh).
  std::optional<absl::Time> oldest_pending_change;
  bool has_frontier = false;
  bool fuse_blown = false;  // catalog version 2 (the scheduler's fuse); false before
};

// One row of pgtrickle.refresh_history.
struct RefreshObservation {
  std::string stream_table;  // schema.name
  std::string action;        // FULL, DIFFERENTIAL
  bool success = false;
  double duration_ms = 0;
  int64_t delta_rows = 0;
  int64_t rows_affected = 0;
  std::string error;
};

// The database-side figures of the last collection. The stream tables and
// the refreshes are read in one snapshot: a refresh counted here is one whose
// stream table row shows it.
struct ServiceObservation {
  absl::Time collected_at = absl::InfinitePast();
  bool database_ok = false;
  std::string database_error;
  SlotObservation slot;
  std::vector<StreamTableObservation> stream_tables;
  // Refreshes this collection saw for the first time (added to the counters).
  std::vector<RefreshObservation> new_refreshes;
};

struct HealthCheckResult {
  std::string name;
  bool ok = false;
  std::string detail;
};

struct StatusCollectorOptions {
  // Target database. No default.
  std::string dsn;
  // The service's replication slot. No default.
  std::string slot_name;
  // How often the database-side figures are read. Default 2 s.
  absl::Duration interval = absl::Seconds(2);
};

class StatusCollector {
 public:
  // `log`, `capture` and `stream` are not owned and must outlive the
  // collector; `stream` may be null (tests).
  StatusCollector(StatusCollectorOptions options, storage::ChangeLog* log, const Capture* capture,
                  const pgoutput::ReplicationStream* stream);
  ~StatusCollector();  // stops the thread

  // Starts collecting every interval (the first collection runs before
  // Start returns, so the first scrape has figures).
  void Start();
  void Stop();
  // One collection now (also what the thread runs).
  absl::Status CollectOnce();

  // The catalog exists and is migrated (set once the manager opened it):
  // before that the catalog is not read and /readyz says not ready.
  void SetCatalogReady() { catalog_ready_ = true; }

  // Refresh workers configured (0 = as many as are connected). Busy ones
  // are sampled each collection from pg_stat_activity (worker connections,
  // named 'trickle-worker-N', that are not idle).
  void SetWorkers(int total) { workers_configured_ = total; }
  int workers_total() const { return workers_total_.load(); }
  int workers_busy() const { return workers_busy_.load(); }

  // The newest error worth an operator's attention (refresh failures seen in
  // the history, collection errors).
  void RecordError(const std::string& error);
  std::pair<std::string, absl::Time> LastError() const;

  ServiceObservation Latest() const;
  // /readyz: database reachable (recently), slot streaming, catalog migrated.
  std::vector<HealthCheckResult> ReadinessChecks() const;
  bool Ready() const;

  MetricsRegistry& registry() { return registry_; }
  const Capture* capture() const { return capture_; }
  const pgoutput::ReplicationStream* stream() const { return stream_; }
  storage::ChangeLog* log() const { return log_; }
  absl::Time started_at() const { return started_at_; }

 private:
  // The database-side figures into `obs` (database_ok once reached).
  absl::Status CollectFromDatabase(ServiceObservation* obs) ABSL_EXCLUSIVE_LOCKS_REQUIRED(collect_mu_);
  absl::Status CollectSlot(PgConnection& conn, SlotObservation* slot);
  absl::Status CollectStreamTables(PgConnection& conn, std::vector<StreamTableObservation>* out);
  absl::Status CollectHistory(PgConnection& conn, std::vector<RefreshObservation>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(collect_mu_);
  absl::Status CollectWorkers(PgConnection& conn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(collect_mu_);
  // Sets every series from `obs` (gauges, and counters for its new
  // refreshes); a scrape sees all of one collection or none of it.
  void Publish(const ServiceObservation& obs) ABSL_EXCLUSIVE_LOCKS_REQUIRED(collect_mu_);
  void UpdateLiveGauges();

  StatusCollectorOptions options_;
  storage::ChangeLog* log_;                    // not owned
  const Capture* capture_;                     // not owned
  const pgoutput::ReplicationStream* stream_;  // not owned, may be null
  const absl::Time started_at_ = absl::Now();
  std::atomic<bool> catalog_ready_{false};

  MetricsRegistry registry_;
  // Families, owned by registry_.
  struct Families;
  std::unique_ptr<Families> m_;

  // Only the collection (one thread at a time, under collect_mu_) touches these.
  absl::Mutex collect_mu_;
  std::unique_ptr<PgConnection> conn_ ABSL_GUARDED_BY(collect_mu_);
  std::optional<int64_t> history_watermark_ ABSL_GUARDED_BY(collect_mu_);  // highest id seen
  int64_t history_start_ ABSL_GUARDED_BY(collect_mu_) = 0;  // rows up to it predate this process
  absl::flat_hash_set<int64_t> recent_history_ids_ ABSL_GUARDED_BY(collect_mu_);
  std::vector<std::string> known_tables_ ABSL_GUARDED_BY(collect_mu_);

  mutable absl::Mutex mu_;
  ServiceObservation latest_ ABSL_GUARDED_BY(mu_);
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  absl::Time last_error_time_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();

  std::atomic<int> workers_configured_{0};
  std::atomic<int> workers_total_{0};
  std::atomic<int> workers_busy_{0};
  std::atomic<double> worker_busy_seconds_{0};  // busy x time between samples
  absl::Time last_worker_sample_ ABSL_GUARDED_BY(collect_mu_) = absl::InfinitePast();

  absl::Notification stop_;
  std::thread thread_;
};

// Commit time of the oldest transaction in `log` that touches one of
// `sources` and is not applied by `frontier` (PostgreSQL-epoch
// microseconds); nullopt when the stream table has everything the log holds.
absl::StatusOr<std::optional<int64_t>> OldestPendingCommitTime(const storage::ChangeLog& log,
                                                               const scheduler::Frontier& frontier,
                                                               const std::vector<uint32_t>& sources);

// The HTTP routes: /metrics (the registry), /healthz (200 while the
// process serves), /readyz (200 when every readiness check passes, else 503
// naming the failing ones). `status` must outlive the server.
std::map<std::string, HttpHandler> StatusRoutes(StatusCollector* status);

// PostgreSQL-epoch microseconds (pgoutput's timestamps) to absl::Time.
absl::Time FromPgMicros(int64_t micros);

}  // namespace trickle::service
