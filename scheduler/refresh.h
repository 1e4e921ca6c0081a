// The refresh transaction (DESIGN, consistency protocol). One call refreshes
// one stream table on one worker connection:
//
//   BEGIN ISOLATION LEVEL REPEATABLE READ
//   S = pg_current_snapshot(); lock the stream table's catalog row; read (L, E)
//   F = fence()            -- a transactional logical message on another
//                             connection, waited for in the change log
//   delta = logged txns with commit < F, visible in S, not applied by (L, E)
//   COPY the consolidated delta into temp tables; delta SQL + MERGE
//     (or the full-refresh SQL for FULL)
//   [verify: the oracle inside S]
//   write frontier (F, invisible txns < F) and a history row
//   COMMIT
//
// Frontier and data commit together: a crash at any point loses nothing and
// applies nothing twice.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/pg_connection.h"
#include "delta/delta_engine.h"
#include "scheduler/catalog.h"
#include "scheduler/frontier.h"
#include "scheduler/policy.h"
#include "storage/change_log.h"

namespace trickle::scheduler {

// Columns the delta engine keeps for itself in a stream table (row identity,
// aggregate state); readers of a stream table do not see them.
inline constexpr char kHiddenColumnPrefix[] = "__pgt_";

// Emits a fence whose commit follows the caller's snapshot and waits until
// the change log holds it; returns its commit LSN (F).
using FenceFn = std::function<absl::StatusOr<Lsn>()>;

enum class RefreshKind { kAuto, kFull };

struct RefreshResult {
  HistoryRow history;
  Frontier frontier;
  bool committed = false;  // false for a refresh that found nothing to do
};

// The scheduler's say in one refresh.
struct RefreshHooks {
  // Called once the delta is loaded (its size in rows, over all sources) and
  // before anything is applied: returns whether to refresh FULL instead (the
  // AUTO cost model), or an error (a blown fuse) that aborts the refresh
  // with nothing written.
  std::function<absl::StatusOr<AutoDecision>(int64_t delta_rows)> before_apply;
  // Fuse reset "skip_changes": advance the frontier past the delta without
  // applying it (history action SKIPPED).
  bool skip_changes = false;
  // A scheduled refresh: when the log holds nothing for the sources beyond
  // the frontier, it returns at once (nothing to do) without emitting a
  // fence. Safe because a change still on its way to the log makes the
  // stream table due again when it arrives. A manual refresh (false) always
  // fences, so that it applies everything committed before it started.
  bool scheduled = false;
};

// A stream table as the refresher needs it: its catalog row and its plan.
struct StreamTable {
  StreamTableRow row;
  delta::DeltaPlan plan;
  // Set when the data is known to predate a change of the sources' columns
  // the plan cannot see (found at start): the next refresh rebuilds.
  std::string rebuild_reason;
};

class Refresher {
 public:
  // `log` is not owned and must outlive the Refresher.
  Refresher(storage::ChangeLog* log, FenceFn fence) : log_(log), fence_(std::move(fence)) {}

  // Refreshes `st` on `conn` (which must not be inside a transaction).
  // kFull forces a full refresh; otherwise the mode, a pending
  // needs_full, or a TRUNCATE of a source decides. On error the transaction
  // is rolled back and nothing is written.
  absl::StatusOr<RefreshResult> Refresh(PgConnection& conn, const StreamTable& st,
                                        RefreshKind kind = RefreshKind::kAuto,
                                        const RefreshHooks* hooks = nullptr);

  // Explain (analyze) support: the first half of a refresh without the
  // second. Takes the snapshot, reads the frontier, fences, selects the
  // delta and COPYs the consolidated changes into the plan's delta tables,
  // then calls `inspect` inside that transaction and rolls back: nothing is
  // applied, the frontier does not move, no catalog row is written.
  // FailedPrecondition for a plan without delta SQL (FULL only) or when the
  // changes need a FULL refresh (a source truncated, or a change logged
  // without a value the plan reads).
  struct StagedDelta {
    int64_t delta_rows = 0;    // consolidated rows over all sources
    int64_t transactions = 0;  // source transactions they come from
  };
  absl::Status StageDelta(PgConnection& conn, const StreamTable& st,
                          const std::function<absl::Status(PgConnection&, const StagedDelta&)>& inspect);

 private:
  struct SourceDelta {
    std::string copy_data;  // COPY text rows: __op, then the plan's source columns
    int64_t rows = 0;
  };
  absl::StatusOr<RefreshResult> RefreshInTransaction(PgConnection& conn, const StreamTable& st,
                                                     RefreshKind kind, const RefreshHooks* hooks,
                                                     const std::string& snapshot_text,
                                                     const std::string& started_at);
  // Reads and consolidates one source's changes of the selected transactions.
  // Sets *full_reason (when empty) and stops reading when they cannot be
  // applied differentially: a selected transaction truncated the source, or
  // a change was logged without a value of a column the plan reads
  // (Datum UNAVAILABLE: an old row without REPLICA IDENTITY FULL).
  absl::StatusOr<SourceDelta> LoadSourceDelta(const delta::SourceRelation& source,
                                              const std::vector<storage::v1::TransactionRecord>& txns,
                                              std::string* full_reason);
  absl::StatusOr<std::vector<int>> ColumnMap(const delta::SourceRelation& source, uint32_t version);
  // Whether the log holds a transaction on `st`'s sources that `frontier`
  // has not applied (the check before a fence: without one, nothing to do).
  absl::StatusOr<bool> HasPendingChanges(const StreamTable& st, const Frontier& frontier);
  // Makes the plan's delta tables exist, empty, in this session and fills
  // them (COPY, ANALYZE) with `deltas`. See session_delta_tables_.
  absl::Status LoadDeltaTables(PgConnection& conn, const StreamTable& st,
                               const std::vector<SourceDelta>& deltas);
  // After the transaction: keeps (committed) or forgets (rolled back) the
  // delta tables it created.
  void EndDeltaTableTransaction(bool committed);

  storage::ChangeLog* log_;  // not owned
  FenceFn fence_;
  // (relation oid, schema version) -> index in the logged tuple of each plan column.
  absl::flat_hash_map<std::pair<uint32_t, uint32_t>, std::vector<int>> column_maps_;

  // Delta tables are temp tables created once per session (ON COMMIT DELETE
  // ROWS, so empty at the start of every transaction), not per refresh: a
  // CREATE and a DROP per source and refresh cost ~2 ms and catalog churn.
  // The session they live in (a reconnect starts a new one, with none):
  const PGconn* session_ = nullptr;
  int session_pid_ = 0;
  // Delta table name -> the CREATE that made it, committed in this session.
  absl::flat_hash_map<std::string, std::string> session_delta_tables_;
  // Created (or re-created) by the open transaction; kept only if it commits.
  std::vector<std::pair<std::string, std::string>> created_delta_tables_;
};

// A source's columns changed since the plan was built: the stream table
// must be rebuilt (REINIT) from a fresh plan.
inline constexpr char kSchemaChangedPayload[] = "trickle.schema_changed";
absl::Status SchemaChangedError(absl::string_view message);
bool IsSchemaChange(const absl::Status& status);
// Source relation OID -> its visible columns (name, format_type) in attnum order.
using LiveColumns = absl::flat_hash_map<uint32_t, std::vector<std::pair<std::string, std::string>>>;
// The live columns of `oids`, as the caller's snapshot sees the catalog.
absl::StatusOr<LiveColumns> ReadSourceColumns(PgConnection& conn, const std::vector<uint32_t>& oids);
// The schema change (if any) between a source as a plan saw it and `live`: a
// column gone, added, or of another type, or the source dropped (a
// SchemaChangedError).
absl::Status CompareSourceColumns(const delta::SourceRelation& source, const LiveColumns& live);
// The plan's side of the column string refresh_snapshot.sql reads: equal
// when every source still has the plan's columns and types (and its OID).
std::string ColumnsDigest(const std::vector<delta::SourceRelation>& sources);
// One source's part of it, recorded with the dependency as the columns the
// stream table was built on (catalog version 4).
std::string ColumnsDigest(const delta::SourceRelation& source);
// Both, for every source of a plan.
absl::Status CheckSourceColumns(PgConnection& conn, const std::vector<delta::SourceRelation>& sources);


// The oracle (DESIGN): inside the current snapshot,
// (ST EXCEPT ALL Q) UNION ALL (Q EXCEPT ALL ST) over the visible columns.
// Returns the number of differing rows (0 = exact).
absl::StatusOr<int64_t> CountOracleDifferences(PgConnection& conn, const StreamTable& st);

}  // namespace trickle::scheduler
