#include "scheduler/refresh.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "publisher/publication.h"
#include "trickle_scheduler_sql.h"

namespace trickle::scheduler {
namespace {

bool Touches(const storage::v1::TransactionRecord& t, uint32_t oid) {
  return std::find(t.relation_oids().begin(), t.relation_oids().end(), oid) != t.relation_oids().end();
}

std::string QualifiedStreamTable(PgConnection& conn, const StreamTableRow& row) {
  return absl::StrCat(conn.QuoteIdentifier(row.schema), ".", conn.QuoteIdentifier(row.name));
}

std::string VisibleColumnList(PgConnection& conn, const delta::DeltaPlan& plan) {
  std::vector<std::string> cols;
  for (const delta::StorageColumn& c : plan.columns) {
    if (!c.hidden) cols.push_back(conn.QuoteIdentifier(c.name));
  }
  return absl::StrJoin(cols, ", ");
}

// Appends one tuple's plan columns as tab-separated COPY text. A column the
// capture could not know (UNAVAILABLE) stops it: *unavailable names it.
absl::Status AppendTuple(const google::protobuf::RepeatedPtrField<storage::v1::Datum>& values,
                         const std::vector<int>& map, const delta::SourceRelation& source,
                         std::string* out, std::string* unavailable) {
  for (size_t i = 0; i < map.size(); ++i) {
    if (i > 0) out->push_back('\t');
    int idx = map[i];
    if (idx >= values.size()) {
      return absl::DataLossError(absl::StrCat("logged row of ", source.schema, ".", source.name,
                                              " has ", values.size(), " columns, expected more"));
    }
    const storage::v1::Datum& d = values[idx];
    switch (d.kind()) {
      case storage::v1::Datum::NULL_: out->append("\\N"); break;
      case storage::v1::Datum::TEXT: AppendCopyText(d.value(), out); break;
      case storage::v1::Datum::UNAVAILABLE:
        *unavailable = source.columns[i];
        return absl::OkStatus();
      default:
        return absl::DataLossError(absl::StrCat(
            "logged row of ", source.schema, ".", source.name, " column ", source.columns[i],
            " is not in text form (kind ", d.kind(), ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SchemaChangedError(absl::string_view message) {
  absl::Status status = absl::FailedPreconditionError(message);
  status.SetPayload(kSchemaChangedPayload, absl::Cord("1"));
  return status;
}

bool IsSchemaChange(const absl::Status& status) {
  return status.GetPayload(kSchemaChangedPayload).has_value();
}

absl::StatusOr<LiveColumns> ReadSourceColumns(PgConnection& conn, const std::vector<uint32_t>& oids) {
  LiveColumns live;
  if (oids.empty()) return live;
  TRICKLE_ASSIGN_OR_RETURN(PgResult r,
                           conn.ExecParams(sql::kSourceColumns, {absl::StrCat("{", absl::StrJoin(oids, ","), "}")}));
  for (int i = 0; i < r.rows(); ++i) {
    uint32_t oid = 0;
    if (!absl::SimpleAtoi(r.Get(i, 0), &oid)) continue;
    // Hidden columns of an upstream stream table are not part of what its
    // readers see (as in ColumnMap).
    if (absl::StartsWith(r.Get(i, 1), kHiddenColumnPrefix)) continue;
    live[oid].emplace_back(r.Get(i, 1), r.Get(i, 2));
  }
  return live;
}

absl::Status CompareSourceColumns(const delta::SourceRelation& s, const LiveColumns& live) {
  auto found = live.find(s.oid);
  if (found == live.end()) {
    // Dropped, perhaps created again under the same name: a new table whose
    // changes arrive under its own OID. The rebuild plans by name (and fails,
    // naming the table, when there is none).
    return SchemaChangedError(absl::StrCat("source table \"", s.schema, ".", s.name, "\" (OID ", s.oid,
                                           ") was dropped"));
  }
  if (s.column_types.size() != s.columns.size()) return absl::OkStatus();
  const auto& now = found->second;
  size_t visible = 0;
  for (size_t c = 0; c < s.columns.size(); ++c) {
    if (absl::StartsWith(s.columns[c], kHiddenColumnPrefix)) continue;  // not in `live` either
    ++visible;
    auto it = std::find_if(now.begin(), now.end(), [&](const auto& col) { return col.first == s.columns[c]; });
    if (it == now.end()) {
      return SchemaChangedError(absl::StrCat("source table \"", s.schema, ".", s.name, "\" no longer has column \"",
                                             s.columns[c], "\" (ALTER TABLE)"));
    }
    if (it->second != s.column_types[c]) {
      return SchemaChangedError(absl::StrCat("source table \"", s.schema, ".", s.name, "\" changed the type of column \"",
                                             s.columns[c], "\" from ", s.column_types[c], " to ", it->second,
                                             " (ALTER TABLE; the rewritten rows are not in the stream)"));
    }
  }
  if (now.size() != visible) {
    return SchemaChangedError(
        absl::StrCat("source table \"", s.schema, ".", s.name, "\" changed its columns (ALTER TABLE)"));
  }
  return absl::OkStatus();
}

std::string ColumnsDigest(const delta::SourceRelation& source) {
  std::string out;
  for (size_t c = 0; c < source.columns.size(); ++c) {
    if (absl::StartsWith(source.columns[c], kHiddenColumnPrefix)) continue;
    if (!out.empty()) out.push_back('\n');
    absl::StrAppend(&out, source.oid, " \"", absl::StrReplaceAll(source.columns[c], {{"\"", "\"\""}}), "\" ",
                    c < source.column_types.size() ? source.column_types[c] : "");
  }
  return out;
}

std::string ColumnsDigest(const std::vector<delta::SourceRelation>& sources) {
  std::vector<const delta::SourceRelation*> by_oid;
  for (const delta::SourceRelation& s : sources) by_oid.push_back(&s);
  std::sort(by_oid.begin(), by_oid.end(), [](auto* a, auto* b) { return a->oid < b->oid; });
  std::string out;
  uint32_t last = 0;
  for (const delta::SourceRelation* s : by_oid) {
    if (s->oid == last) continue;
    last = s->oid;
    std::string one = ColumnsDigest(*s);
    if (one.empty()) continue;
    if (!out.empty()) out.push_back('\n');
    out += one;
  }
  return out;
}

absl::Status CheckSourceColumns(PgConnection& conn, const std::vector<delta::SourceRelation>& sources) {
  std::vector<uint32_t> oids;
  for (const delta::SourceRelation& s : sources) oids.push_back(s.oid);
  TRICKLE_ASSIGN_OR_RETURN(LiveColumns live, ReadSourceColumns(conn, oids));
  for (const delta::SourceRelation& s : sources) TRICKLE_RETURN_IF_ERROR(CompareSourceColumns(s, live));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int>> Refresher::ColumnMap(const delta::SourceRelation& source,
                                                      uint32_t version) {
  auto key = std::make_pair(source.oid, version);
  if (auto it = column_maps_.find(key); it != column_maps_.end()) return it->second;
  TRICKLE_ASSIGN_OR_RETURN(storage::RelationSchema schema, log_->GetRelation(source.oid, version));
  std::vector<int> map;
  for (const std::string& column : source.columns) {
    int found = -1;
    for (int i = 0; i < schema.columns_size(); ++i) {
      if (schema.columns(i).name() == column) found = i;
    }
    if (found < 0) {
      return SchemaChangedError(absl::StrCat(
          "source table \"", source.schema, ".", source.name, "\" no longer has column \"", column,
          "\" (ALTER TABLE seen in the stream)"));
    }
    map.push_back(found);
  }
  // Hidden columns of an upstream stream table are not part of what its
  // readers see; any other column added or dropped means a rebuild.
  int logged = 0;
  for (const auto& c : schema.columns()) {
    if (!absl::StartsWith(c.name(), kHiddenColumnPrefix)) ++logged;
  }
  if (logged != static_cast<int>(source.columns.size())) {
    return SchemaChangedError(absl::StrCat("source table \"", source.schema, ".", source.name,
                                           "\" changed its columns (ALTER TABLE seen in the stream)"));
  }
  column_maps_[key] = map;
  return map;
}

absl::StatusOr<Refresher::SourceDelta> Refresher::LoadSourceDelta(
    const delta::SourceRelation& source, const std::vector<storage::v1::TransactionRecord>& txns,
    std::string* full_reason) {
  absl::flat_hash_set<Lsn> selected;
  Lsn from = ~Lsn{0}, to = 0;
  for (const auto& t : txns) {
    if (!Touches(t, source.oid)) continue;
    selected.insert(t.commit_lsn());
    from = std::min<Lsn>(from, t.commit_lsn());
    to = std::max<Lsn>(to, t.commit_lsn() + 1);
  }
  SourceDelta out;
  if (selected.empty()) return out;
  // Net effect: +1 per inserted row image, -1 per deleted one; an exact row
  // that comes and goes cancels. Keyed by the row's COPY text.
  absl::flat_hash_map<std::string, int64_t> net;
  std::string key, unavailable;
  const absl::Status kFull = absl::CancelledError("needs a FULL refresh");
  absl::Status read = log_->ReadChanges(
      source.oid, from, to, [&](const storage::LoggedChange& c) -> absl::Status {
        if (!selected.contains(c.transaction->commit_lsn())) return absl::OkStatus();
        const storage::ChangeRecord& ch = *c.change;
        if (ch.op() == storage::ChangeRecord::TRUNCATE) {
          if (full_reason->empty()) *full_reason = "source truncated";
          return kFull;
        }
        TRICKLE_ASSIGN_OR_RETURN(std::vector<int> map, ColumnMap(source, ch.schema_version()));
        const bool old_row = ch.op() == storage::ChangeRecord::DELETE || ch.op() == storage::ChangeRecord::UPDATE;
        if (old_row) {
          key.clear();
          TRICKLE_RETURN_IF_ERROR(AppendTuple(ch.old_values(), map, source, &key, &unavailable));
          net[key]--;
        }
        if (unavailable.empty() &&
            (ch.op() == storage::ChangeRecord::INSERT || ch.op() == storage::ChangeRecord::UPDATE)) {
          key.clear();
          TRICKLE_RETURN_IF_ERROR(AppendTuple(ch.new_values(), map, source, &key, &unavailable));
          net[key]++;
        }
        if (!unavailable.empty()) {
          if (full_reason->empty()) {
            *full_reason = absl::StrCat(
                "source table \"", source.schema, ".", source.name, "\": the ", storage::ChangeRecord::Op_Name(ch.op()),
                " committed at ", FormatLsn(c.transaction->commit_lsn()), " was logged without the ",
                old_row && ch.op() == storage::ChangeRecord::DELETE ? "old" : "old or unchanged TOASTed",
                " value of column \"", unavailable,
                "\" (its old row arrived without it: REPLICA IDENTITY not FULL and no image of the source "
                "holds the column)");
          }
          return kFull;
        }
        return absl::OkStatus();
      });
  if (!read.ok() && !(absl::IsCancelled(read) && !full_reason->empty())) return read;
  if (!full_reason->empty()) return out;  // a FULL refresh: the delta is not used
  for (const auto& [row, count] : net) {
    for (int64_t i = 0; i < std::abs(count); ++i) {
      out.copy_data.append(count < 0 ? "D\t" : "I\t");
      out.copy_data.append(row);
      out.copy_data.push_back('\n');
      out.rows++;
    }
  }
  return out;
}

absl::StatusOr<RefreshResult> Refresher::Refresh(PgConnection& conn, const StreamTable& st,
                                                 RefreshKind kind, const RefreshHooks* hooks) {
  column_maps_.clear();  // keyed by source and version only; plans differ per stream table
  TRICKLE_RETURN_IF_ERROR(conn.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ").status());
  // The snapshot is taken by this first statement, which also reads the
  // sources' columns in it.
  std::vector<uint32_t> oids;
  for (const delta::SourceRelation& s : st.plan.sources) oids.push_back(s.oid);
  auto snap = conn.ExecParams(sql::kRefreshSnapshot, {absl::StrCat("{", absl::StrJoin(oids, ","), "}")});
  if (!snap.ok()) {
    (void)conn.Exec("ROLLBACK");
    return snap.status();
  }
  // The plan must still fit its sources as this snapshot sees them: a column
  // type changed by ALTER TABLE rewrote rows without a change in the stream.
  // On any difference (or a source gone) the details, in the same snapshot.
  if (snap->Get(0, 2) != ColumnsDigest(st.plan.sources)) {
    absl::Status fits = CheckSourceColumns(conn, st.plan.sources);
    if (!fits.ok()) {
      (void)conn.Exec("ROLLBACK");
      return fits;
    }
  }
  auto result = RefreshInTransaction(conn, st, kind, hooks, std::string(snap->Get(0, 0)),
                                     std::string(snap->Get(0, 1)));
  if (!result.ok() || !result->committed) {
    (void)conn.Exec("ROLLBACK");
    EndDeltaTableTransaction(/*committed=*/false);
    return result;
  }
  absl::Status committed = conn.Exec("COMMIT").status();
  EndDeltaTableTransaction(committed.ok());
  TRICKLE_RETURN_IF_ERROR(committed);
  return result;
}

absl::StatusOr<bool> Refresher::HasPendingChanges(const StreamTable& st, const Frontier& frontier) {
  TRICKLE_ASSIGN_OR_RETURN(std::vector<storage::v1::TransactionRecord> logged,
                           log_->ReadTransactions(LowestNeeded(frontier), ~Lsn{0}));
  for (const auto& t : logged) {
    bool applied = t.commit_lsn() < frontier.lsn &&
                   !std::binary_search(frontier.exceptions.begin(), frontier.exceptions.end(),
                                       t.commit_lsn());
    if (applied) continue;
    for (const auto& s : st.plan.sources) {
      if (Touches(t, s.oid)) return true;
    }
  }
  return false;
}

namespace {
// The session-long form of a delta table's DDL: ON COMMIT DELETE ROWS
// instead of the plan's ON COMMIT DROP. Empty when the DDL does not end as
// expected (then the table is created per transaction, as the plan says).
std::string SessionDeltaTableDdl(const std::string& ddl) {
  constexpr absl::string_view kDrop = " ON COMMIT DROP";
  if (!absl::EndsWith(ddl, kDrop)) return "";
  return absl::StrCat(ddl.substr(0, ddl.size() - kDrop.size()), " ON COMMIT DELETE ROWS");
}
}  // namespace

absl::Status Refresher::LoadDeltaTables(PgConnection& conn, const StreamTable& st,
                                        const std::vector<SourceDelta>& deltas) {
  if (conn.raw() != session_ || conn.BackendPid() != session_pid_) {
    session_ = conn.raw();
    session_pid_ = conn.BackendPid();
    session_delta_tables_.clear();
  }
  for (size_t i = 0; i < st.plan.sources.size(); ++i) {
    const delta::SourceRelation& source = st.plan.sources[i];
    std::string ddl = SessionDeltaTableDdl(source.delta_table_ddl);
    bool created = false;
    if (ddl.empty()) {
      TRICKLE_RETURN_IF_ERROR(conn.Exec(source.delta_table_ddl).status());
      created = true;
    } else {
      auto it = session_delta_tables_.find(source.delta_table);
      if (it == session_delta_tables_.end() || it->second != ddl) {
        if (it != session_delta_tables_.end()) {
          // Another shape (the source's columns changed): replace it. Always
          // in pg_temp, never a permanent table of the same name.
          std::string name = source.delta_table.find('.') != std::string::npos
                                 ? source.delta_table
                                 : absl::StrCat("pg_temp.", source.delta_table);
          TRICKLE_RETURN_IF_ERROR(conn.Exec(absl::StrCat("DROP TABLE ", name)).status());
        }
        TRICKLE_RETURN_IF_ERROR(conn.Exec(ddl).status());
        created_delta_tables_.emplace_back(source.delta_table, ddl);
        created = true;
      }
    }
    // An empty delta needs neither COPY nor ANALYZE: the table is empty at
    // the start of every transaction, and once analyzed the planner reads
    // its actual (zero) size. A new table is analyzed once even if empty.
    if (deltas[i].rows > 0) {
      TRICKLE_RETURN_IF_ERROR(
          conn.CopyIn(absl::StrCat("COPY ", source.delta_table, " FROM STDIN"), deltas[i].copy_data));
    }
    if (deltas[i].rows > 0 || created) {
      TRICKLE_RETURN_IF_ERROR(conn.Exec(absl::StrCat("ANALYZE ", source.delta_table)).status());
    }
  }
  return absl::OkStatus();
}

void Refresher::EndDeltaTableTransaction(bool committed) {
  if (committed) {
    for (auto& [name, ddl] : created_delta_tables_) session_delta_tables_[name] = std::move(ddl);
  } else {
    // Rolled back: the tables it created are gone (and a table it dropped
    // is back, but forgetting it only costs a DROP and CREATE next time).
    for (const auto& [name, ddl] : created_delta_tables_) session_delta_tables_.erase(name);
  }
  created_delta_tables_.clear();
}

absl::StatusOr<RefreshResult> Refresher::RefreshInTransaction(PgConnection& conn,
                                                              const StreamTable& st,
                                                              RefreshKind kind,
                                                              const RefreshHooks* hooks,
                                                              const std::string& snapshot_text,
                                                              const std::string& started_at) {
  absl::Time start = absl::Now();
  TRICKLE_ASSIGN_OR_RETURN(Snapshot snapshot, Snapshot::Parse(snapshot_text));
  // The authoritative frontier, locked: a second refresher of the same
  // stream table waits here, then fails its serializable check and retries.
  TRICKLE_ASSIGN_OR_RETURN(
      PgResult locked,
      conn.ExecParams("SELECT frontier, needs_full FROM pgtrickle.stream_tables WHERE id = $1 FOR UPDATE",
                      {std::to_string(st.row.id)}));
  if (locked.rows() == 0) {
    return absl::NotFoundError(absl::StrCat("stream table ", st.row.QualifiedName(), " was dropped"));
  }
  std::optional<Frontier> frontier;
  if (!locked.IsNull(0, 0)) {
    TRICKLE_ASSIGN_OR_RETURN(Frontier f, Frontier::Decode(locked.Get(0, 0)));
    frontier = f;
  }
  if (!st.rebuild_reason.empty()) return SchemaChangedError(st.rebuild_reason);
  // Forced: requested, the first refresh, or a rebuild. Otherwise a FULL
  // refresh happens only when something changed.
  bool forced_full = kind == RefreshKind::kFull || locked.Get(0, 1) == "t" || !frontier;
  bool full = forced_full || st.plan.maintained_mode == delta::RefreshMode::kFull ||
              st.row.effective_mode == delta::RefreshMode::kFull;
  std::string reason;
  if (kind == RefreshKind::kFull) reason = "requested";
  else if (!frontier) reason = "initial";
  else if (locked.Get(0, 1) == "t") reason = "reinitialize";
  else if (full) reason = st.plan.full_refresh_reason.empty() ? "mode FULL" : st.plan.full_refresh_reason;

  Frontier base = frontier.value_or(Frontier{});
  if (!forced_full && hooks != nullptr && hooks->scheduled) {
    TRICKLE_ASSIGN_OR_RETURN(bool pending, HasPendingChanges(st, base));
    if (!pending) {
      RefreshResult nothing;
      nothing.frontier = base;
      return nothing;  // no fence, no write
    }
  }
  TRICKLE_ASSIGN_OR_RETURN(Lsn fence, fence_());

  TRICKLE_ASSIGN_OR_RETURN(std::vector<storage::v1::TransactionRecord> logged,
                           log_->ReadTransactions(LowestNeeded(base), fence));
  // Only transactions that touch this stream table's sources matter.
  std::erase_if(logged, [&](const storage::v1::TransactionRecord& t) {
    for (const auto& s : st.plan.sources) {
      if (Touches(t, s.oid)) return false;
    }
    return true;
  });
  DeltaSelection selection = SelectDelta(logged, base, snapshot, fence);

  RefreshResult result;
  result.frontier = selection.next;
  result.history.transactions = static_cast<int64_t>(selection.apply.size());
  std::optional<int64_t> newest_commit_time;
  for (const auto& t : selection.apply) {
    newest_commit_time = std::max(newest_commit_time.value_or(t.commit_time()), t.commit_time());
  }

  if (!forced_full && selection.apply.empty()) return result;  // nothing to do: no write
  // A published stream table: its row counters before anything is applied,
  // for the refresh-boundary message (publisher/).
  publisher::StreamTableRef published{st.row.schema, st.row.name, &st.plan};
  bool is_published = !st.row.downstream_publication.empty();
  publisher::RowCounts counts_before;
  if (is_published) {
    TRICKLE_ASSIGN_OR_RETURN(counts_before, publisher::ReadTransactionCounts(conn, published));
  }
  if (!full) {
    std::vector<SourceDelta> deltas;
    std::string full_reason;
    for (const delta::SourceRelation& source : st.plan.sources) {
      TRICKLE_ASSIGN_OR_RETURN(SourceDelta d, LoadSourceDelta(source, selection.apply, &full_reason));
      if (!full_reason.empty()) break;
      result.history.delta_rows += d.rows;
      deltas.push_back(std::move(d));
    }
    if (full_reason.empty() && hooks != nullptr && hooks->before_apply) {
      TRICKLE_ASSIGN_OR_RETURN(AutoDecision decision, hooks->before_apply(result.history.delta_rows));
      if (decision.full) {
        full = true;
        reason = decision.reason;
      }
    }
    if (!full_reason.empty()) {
      full = true;
      reason = full_reason;
    } else if (hooks != nullptr && hooks->skip_changes) {
      result.history.action = "SKIPPED";
      result.history.reason = absl::StrCat("fuse reset skip_changes: ", result.history.delta_rows,
                                           " delta rows of ", selection.apply.size(),
                                           " transactions discarded without applying");
    } else if (!full) {
      TRICKLE_RETURN_IF_ERROR(LoadDeltaTables(conn, st, deltas));
      TRICKLE_ASSIGN_OR_RETURN(PgResult merged, conn.Exec(st.plan.merge_sql));
      result.history.rows_affected = merged.AffectedRows();
      result.history.action = "DIFFERENTIAL";
    }
  }
  bool truncated = false;
  if (full) {
    int64_t affected = 0;
    // Published: diffed against the stored rows, so subscribers see only
    // what changed (TRUNCATE + INSERT when the plan has no identity).
    std::vector<std::string> statements;
    if (is_published) statements = publisher::FullRefreshDiffSql(conn, published);
    if (statements.empty()) {
      statements = st.plan.full_refresh_sql;
      truncated = true;
    }
    for (const std::string& statement : statements) {
      TRICKLE_ASSIGN_OR_RETURN(PgResult r, conn.Exec(statement));
      affected += r.AffectedRows();
    }
    result.history.action = "FULL";
    result.history.rows_affected = affected;
    result.history.reason = reason;
  }

  if (is_published && result.history.action != "SKIPPED") {
    publisher::RefreshBoundary boundary;
    boundary.action = result.history.action;
    boundary.frontier_lsn = FormatLsn(result.frontier.lsn);
    for (Lsn e : result.frontier.exceptions) boundary.exceptions.push_back(FormatLsn(e));
    boundary.truncated = truncated;
    TRICKLE_RETURN_IF_ERROR(
        publisher::EmitRefreshBoundary(conn, published, counts_before, boundary).status());
  }

  if (st.row.verify && result.history.action != "SKIPPED") {
    TRICKLE_ASSIGN_OR_RETURN(int64_t differences, CountOracleDifferences(conn, st));
    if (differences != 0) {
      return absl::DataLossError(absl::StrCat(
          "verify: stream table ", st.row.QualifiedName(), " differs from its query by ", differences,
          " rows after a ", result.history.action, " refresh; nothing was committed"));
    }
  }
  result.history.duration_ms = absl::ToDoubleMilliseconds(absl::Now() - start);
  TRICKLE_RETURN_IF_ERROR(catalog::RecordRefresh(conn, st.row.id, result.frontier, result.history,
                                                 newest_commit_time, started_at));
  result.committed = true;
  return result;
}

absl::StatusOr<int64_t> CountOracleDifferences(PgConnection& conn, const StreamTable& st) {
  std::string table = QualifiedStreamTable(conn, st.row);
  std::string cols = VisibleColumnList(conn, st.plan);
  std::string q = absl::StrCat(
      "SELECT count(*) FROM ((SELECT ", cols, " FROM ", table, " EXCEPT ALL SELECT * FROM (",
      st.row.query, ") q1) UNION ALL (SELECT * FROM (", st.row.query, ") q2 EXCEPT ALL SELECT ", cols,
      " FROM ", table, ")) d");
  TRICKLE_ASSIGN_OR_RETURN(PgResult r, conn.Exec(q));
  int64_t n = 0;
  absl::SimpleAtoi(r.Get(0, 0), &n);
  return n;
}

absl::Status Refresher::StageDelta(
    PgConnection& conn, const StreamTable& st,
    const std::function<absl::Status(PgConnection&, const StagedDelta&)>& inspect) {
  if (st.plan.delta_sql.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "stream table ", st.row.QualifiedName(), " is maintained by FULL refresh only (",
        st.plan.full_refresh_reason, "): it has no delta SQL to analyze"));
  }
  column_maps_.clear();
  TRICKLE_RETURN_IF_ERROR(conn.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ").status());
  absl::Status status = [&]() -> absl::Status {
    // The same first steps as RefreshInTransaction, without the row lock:
    // this transaction never writes the catalog.
    TRICKLE_ASSIGN_OR_RETURN(PgResult snap, conn.Exec("SELECT pg_current_snapshot()::text"));
    TRICKLE_ASSIGN_OR_RETURN(Snapshot snapshot, Snapshot::Parse(snap.Get(0, 0)));
    TRICKLE_ASSIGN_OR_RETURN(
        PgResult row, conn.ExecParams("SELECT frontier FROM pgtrickle.stream_tables WHERE id = $1",
                                      {std::to_string(st.row.id)}));
    if (row.rows() == 0) {
      return absl::NotFoundError(absl::StrCat("stream table ", st.row.QualifiedName(), " was dropped"));
    }
    Frontier frontier;  // before the first refresh everything logged is pending
    if (!row.IsNull(0, 0)) {
      TRICKLE_ASSIGN_OR_RETURN(frontier, Frontier::Decode(row.Get(0, 0)));
    }
    TRICKLE_ASSIGN_OR_RETURN(Lsn fence, fence_());
    TRICKLE_ASSIGN_OR_RETURN(std::vector<storage::v1::TransactionRecord> logged,
                             log_->ReadTransactions(LowestNeeded(frontier), fence));
    std::erase_if(logged, [&](const storage::v1::TransactionRecord& t) {
      for (const auto& s : st.plan.sources) {
        if (Touches(t, s.oid)) return false;
      }
      return true;
    });
    DeltaSelection selection = SelectDelta(logged, frontier, snapshot, fence);
    StagedDelta staged;
    staged.transactions = static_cast<int64_t>(selection.apply.size());
    std::string full_reason;
    std::vector<SourceDelta> deltas;
    for (const delta::SourceRelation& source : st.plan.sources) {
      TRICKLE_ASSIGN_OR_RETURN(SourceDelta d, LoadSourceDelta(source, selection.apply, &full_reason));
      if (!full_reason.empty()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the next refresh of ", st.row.QualifiedName(), " is FULL (", full_reason,
            "), so there is no delta to analyze"));
      }
      staged.delta_rows += d.rows;
      deltas.push_back(std::move(d));
    }
    TRICKLE_RETURN_IF_ERROR(LoadDeltaTables(conn, st, deltas));
    return inspect(conn, staged);
  }();
  (void)conn.Exec("ROLLBACK");
  EndDeltaTableTransaction(/*committed=*/false);
  return status;
}

}  // namespace trickle::scheduler
