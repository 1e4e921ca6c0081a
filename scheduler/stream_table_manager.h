// Stream table lifecycle (create, alter, drop, refresh) and the interval
// refresh loop. Owns the stream tables' plans in memory; the catalog in the
// target database is the source of truth and survives restarts.
//
// Concurrency: every public method may be called from any thread; one mutex
// serialises lifecycle operations and refreshes (the parallel worker pool
// belongs to the scheduler issue).
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/pg_connection.h"
#include "scheduler/catalog.h"
#include "scheduler/refresh.h"
#include "storage/change_log.h"

namespace trickle::scheduler {

struct ManagerOptions {
  // Target database (where sources, stream tables and the catalog live).
  std::string dsn;
  // The service's publication; sources are added to it at create.
  std::string publication_name = "trickle_sources";
  // Set REPLICA IDENTITY FULL on sources lacking it (else refuse, naming the
  // table and the statement). Default false.
  bool set_replica_identity = false;
  // After this many consecutive failed refreshes a stream table is ERROR.
  int max_consecutive_failures = 5;
};

struct CreateRequest {
  std::string name;  // "name" (schema public) or "schema.name"
  std::string query;
  delta::RefreshMode mode = delta::RefreshMode::kAuto;
  std::string schedule = "1s";  // an interval: "500ms", "5s", "1m"
  bool verify = false;
};

struct AlterRequest {
  std::optional<std::string> schedule;
  std::optional<delta::RefreshMode> mode;
  std::optional<std::string> query;  // a new query rebuilds the stream table (REINIT)
  std::optional<bool> verify;
};

class StreamTableManager {
 public:
  // Connects, migrates the catalog and loads every stream table. `log` is
  // not owned and must outlive the manager.
  static absl::StatusOr<std::unique_ptr<StreamTableManager>> Open(ManagerOptions options,
                                                                  storage::ChangeLog* log,
                                                                  FenceFn fence);

  absl::StatusOr<StreamTableRow> Create(const CreateRequest& request);
  absl::StatusOr<StreamTableRow> Alter(const std::string& name, const AlterRequest& request);
  absl::Status Drop(const std::string& name, bool cascade);
  absl::StatusOr<RefreshResult> RefreshNow(const std::string& name, RefreshKind kind = RefreshKind::kAuto);
  absl::StatusOr<std::vector<StreamTableRow>> List();

  // Refreshes every ACTIVE stream table whose interval has elapsed, upstream
  // stream tables before the ones that read them; failures are recorded and
  // do not stop the others. Then trims the change log. Returns early, between
  // refreshes, once `stop` is set.
  void RunDueRefreshes(const std::atomic<bool>& stop);
  // Trims each source's changes below the lowest frontier of its readers.
  absl::Status TrimLog();

 private:
  struct Entry {
    StreamTable table;
    std::vector<int64_t> upstream_ids;  // stream tables it reads
    absl::Duration interval;
    absl::Time next_due = absl::InfinitePast();
  };
  StreamTableManager(ManagerOptions options, storage::ChangeLog* log, FenceFn fence);

  absl::StatusOr<delta::DeltaPlan> Plan(PgConnection& conn, const StreamTableRow& row)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::pair<std::string, std::string>> SplitName(const std::string& name);
  absl::StatusOr<Entry*> FindLocked(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status EnsureSourcesPublished(const delta::DeltaPlan& plan) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WaitForInFlightTransactions() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status DropLocked(Entry* entry, bool cascade) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<RefreshResult> RefreshLocked(Entry* entry, RefreshKind kind)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Rebuilds after a source's schema changed (or a new query): fresh plan,
  // storage table rebuilt when its columns differ, then a FULL refresh. When
  // the query no longer works the stream table goes to ERROR.
  absl::Status ReinitLocked(Entry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<Entry*> TopologicalOrderLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status UnpublishUnusedSourcesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ManagerOptions options_;
  storage::ChangeLog* log_;  // not owned
  absl::Mutex mu_;
  std::unique_ptr<PgConnection> conn_ ABSL_GUARDED_BY(mu_);
  Refresher refresher_ ABSL_GUARDED_BY(mu_);
  absl::btree_map<int64_t, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

// Parses an interval schedule ("500ms", "5s", "1m", "2h").
absl::StatusOr<absl::Duration> ParseSchedule(absl::string_view text);

}  // namespace trickle::scheduler
