// The catalog in the target database (schema `pgtrickle`): stream table
// definitions, status, frontier, dependencies and refresh history, in plain
// tables the service creates and migrates (no extension). Migrations are
// versioned and idempotent: a second start changes nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/pg_connection.h"
#include "delta/delta_engine.h"
#include "scheduler/frontier.h"
#include "scheduler/policy.h"

namespace trickle::scheduler {

inline constexpr char kCatalogSchema[] = "pgtrickle";

enum class Status { kActive, kError, kSuspended, kReinit };
const char* StatusName(Status s);
const char* ModeName(delta::RefreshMode m);
absl::StatusOr<delta::RefreshMode> ParseMode(absl::string_view text);

struct StreamTableRow {
  int64_t id = 0;
  std::string schema;
  std::string name;
  std::string query;
  delta::RefreshMode requested_mode = delta::RefreshMode::kAuto;
  delta::RefreshMode effective_mode = delta::RefreshMode::kDifferential;
  std::string full_refresh_reason;
  std::string schedule = "1s";
  Status status = Status::kActive;
  bool verify = false;
  std::optional<Frontier> frontier;  // none before the first refresh
  bool needs_full = true;
  std::string last_error;
  int consecutive_failures = 0;
  FuseSettings fuse;
  bool fuse_blown = false;
  std::string fuse_reason;
  int64_t fuse_delta_rows = 0;
  std::optional<absl::Duration> sla;  // freshness deadline; none = no SLA tier
  // The PostgreSQL publication the service created for this stream table
  // (publisher/); empty when it has none.
  std::string downstream_publication;

  std::string QualifiedName() const { return schema + "." + name; }
};

// What the scheduler shows about a stream table besides its definition.
struct SchedulerState {
  std::optional<Tier> tier;
  absl::Duration effective_interval = absl::ZeroDuration();  // 0 = the schedule's own
  CostModel cost;
  std::optional<absl::Time> next_retry_at;
};

struct Dependency {
  uint32_t source_oid = 0;
  std::string source_schema;
  std::string source_name;
  std::optional<int64_t> source_stream_table_id;
  // ColumnsDigest() of the source as the stream table was last built on;
  // empty when recorded before catalog version 4.
  std::string source_columns;
};

struct HistoryRow {
  std::string action;  // FULL, DIFFERENTIAL, NO_DATA
  int64_t delta_rows = 0;
  int64_t transactions = 0;
  int64_t rows_affected = 0;
  double duration_ms = 0;
  std::string reason;
  std::string error;  // empty on success
};

namespace catalog {

// Creates or upgrades the catalog. Safe to run concurrently and repeatedly.
// Returns the schema version now in place.
absl::StatusOr<int> Migrate(PgConnection& conn);

absl::StatusOr<std::vector<StreamTableRow>> LoadAll(PgConnection& conn);
absl::StatusOr<std::optional<StreamTableRow>> Find(PgConnection& conn, const std::string& schema,
                                                   const std::string& name);
// Inserts the definition; returns its id.
absl::StatusOr<int64_t> Insert(PgConnection& conn, const StreamTableRow& row);
absl::Status ReplaceDependencies(PgConnection& conn, int64_t id, const std::vector<Dependency>& deps);
absl::StatusOr<std::vector<Dependency>> Dependencies(PgConnection& conn, int64_t id);
absl::Status SetSourceColumns(PgConnection& conn, int64_t id, uint32_t source_oid, const std::string& columns);
// Stream tables that read `id` (directly), as "schema.name".
absl::StatusOr<std::vector<std::string>> Dependents(PgConnection& conn, int64_t id);

// Inside the refresh transaction: the new frontier, status ACTIVE, failures
// reset, and a history row, all committed with the data.
absl::Status RecordRefresh(PgConnection& conn, int64_t id, const Frontier& frontier,
                           const HistoryRow& history, std::optional<int64_t> last_change_commit_time,
                           absl::string_view started_at);
// In its own transaction after a failed refresh: history row with the
// error, consecutive failures + 1, status ERROR once `max_failures` is reached.
absl::Status RecordFailure(PgConnection& conn, int64_t id, const HistoryRow& history,
                           int max_failures);
// A refresh that found nothing to apply, when NO_DATA rows are asked for.
absl::Status RecordNoData(PgConnection& conn, int64_t id, double duration_ms);
absl::Status SetStatus(PgConnection& conn, int64_t id, Status status, absl::string_view error);
absl::Status SetNeedsFull(PgConnection& conn, int64_t id, bool needs_full);
// Blows (status SUSPENDED, reason, delta size) or clears the fuse.
absl::Status SetFuse(PgConnection& conn, int64_t id, bool blown, absl::string_view reason,
                     int64_t delta_rows);
absl::Status WriteSchedulerState(PgConnection& conn, int64_t id, const SchedulerState& state);
// Successful DIFFERENTIAL refreshes within `window` (delta rows, duration),
// and the duration of the last successful FULL refresh.
struct CostHistory {
  std::vector<CostSample> samples;
  std::optional<double> last_full_ms;
  double average_delta_rows = 0;  // over the recent samples (for the fuse)
};
absl::StatusOr<CostHistory> LoadCostHistory(PgConnection& conn, int64_t id, absl::Duration window);
absl::Status UpdateDefinition(PgConnection& conn, const StreamTableRow& row);
// Records (or, with an empty name, clears) the stream table's downstream publication.
absl::Status SetDownstreamPublication(PgConnection& conn, int64_t id, absl::string_view publication);
absl::Status Delete(PgConnection& conn, int64_t id);

}  // namespace catalog
}  // namespace trickle::scheduler
