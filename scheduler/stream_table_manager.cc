#include "scheduler/stream_table_manager.h"

#include <deque>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "delta/catalog_adapter.h"
#include "spdlog/spdlog.h"

namespace trickle::scheduler {

absl::StatusOr<absl::Duration> ParseSchedule(absl::string_view text) {
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "schedule \"", text, "\" is not an interval; use e.g. '500ms', '5s', '1m'"));
  }
  return d;
}

StreamTableManager::StreamTableManager(ManagerOptions options, storage::ChangeLog* log, FenceFn fence)
    : options_(std::move(options)), log_(log), refresher_(log, std::move(fence)) {}

absl::StatusOr<std::unique_ptr<StreamTableManager>> StreamTableManager::Open(
    ManagerOptions options, storage::ChangeLog* log, FenceFn fence) {
  std::unique_ptr<StreamTableManager> m(new StreamTableManager(std::move(options), log, std::move(fence)));
  absl::MutexLock lock(&m->mu_);
  TRICKLE_ASSIGN_OR_RETURN(m->conn_, PgConnection::Connect(m->options_.dsn));
  TRICKLE_RETURN_IF_ERROR(m->conn_->Exec("SET application_name = 'trickle'").status());
  TRICKLE_ASSIGN_OR_RETURN(int version, catalog::Migrate(*m->conn_));
  TRICKLE_ASSIGN_OR_RETURN(std::vector<StreamTableRow> rows, catalog::LoadAll(*m->conn_));
  spdlog::info("catalog pgtrickle at version {}; {} stream tables", version, rows.size());
  for (StreamTableRow& row : rows) {
    Entry entry;
    entry.interval = ParseSchedule(row.schedule).value_or(absl::Seconds(1));
    TRICKLE_ASSIGN_OR_RETURN(std::vector<Dependency> deps, catalog::Dependencies(*m->conn_, row.id));
    for (const Dependency& d : deps) {
      if (d.source_stream_table_id) entry.upstream_ids.push_back(*d.source_stream_table_id);
    }
    auto plan = m->Plan(*m->conn_, row);
    if (!plan.ok()) {
      // The query no longer plans (a source was dropped or altered while the
      // service was down): ERROR with the reason; the others keep running.
      spdlog::error("stream table {}: {}", row.QualifiedName(), std::string(plan.status().message()));
      row.status = Status::kError;
      row.last_error = std::string(plan.status().message());
      TRICKLE_RETURN_IF_ERROR(catalog::SetStatus(*m->conn_, row.id, Status::kError, row.last_error));
    } else {
      entry.table.plan = std::move(*plan);
    }
    entry.table.row = std::move(row);
    int64_t id = entry.table.row.id;
    m->entries_.emplace(id, std::move(entry));
  }
  return m;
}

absl::StatusOr<delta::DeltaPlan> StreamTableManager::Plan(PgConnection& conn, const StreamTableRow& row) {
  TRICKLE_ASSIGN_OR_RETURN(delta::CatalogFacts facts, delta::GatherCatalogFacts(conn, row.query));
  // An upstream stream table is read by its visible columns: its hidden ones
  // (row identity, aggregate state) are the engine's business, and a key
  // made of them is no key its readers can use.
  for (delta::RelationFacts& rel : facts.relations) {
    bool is_stream_table = false;
    for (const auto& [id, e] : entries_) {
      is_stream_table = is_stream_table || (e.table.row.schema == rel.schema && e.table.row.name == rel.name);
    }
    if (!is_stream_table) continue;
    std::erase_if(rel.columns, [](const delta::ColumnFacts& c) {
      return absl::StartsWith(c.name, kHiddenColumnPrefix);
    });
    if (std::any_of(rel.key.begin(), rel.key.end(),
                    [](const std::string& k) { return absl::StartsWith(k, kHiddenColumnPrefix); })) {
      rel.key.clear();
    }
  }
  delta::StreamTableSpec spec;
  spec.schema = row.schema;
  spec.name = row.name;
  spec.query = row.query;
  spec.mode = row.requested_mode;
  return delta::BuildDeltaPlan(spec, facts);
}

absl::StatusOr<std::pair<std::string, std::string>> StreamTableManager::SplitName(
    const std::string& name) {
  std::vector<std::string> parts = absl::StrSplit(name, absl::MaxSplits('.', 1));
  if (name.empty() || parts.size() > 2 || parts.back().empty() || parts.front().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "stream table name \"", name, "\" is not of the form name or schema.name"));
  }
  if (parts.size() == 1) return std::make_pair(std::string("public"), parts[0]);
  return std::make_pair(parts[0], parts[1]);
}

absl::StatusOr<StreamTableManager::Entry*> StreamTableManager::FindLocked(const std::string& name) {
  TRICKLE_ASSIGN_OR_RETURN(auto qualified, SplitName(name));
  for (auto& [id, entry] : entries_) {
    if (entry.table.row.schema == qualified.first && entry.table.row.name == qualified.second) {
      return &entry;
    }
  }
  return absl::NotFoundError(absl::StrCat("no stream table named ", qualified.first, ".",
                                          qualified.second));
}

absl::Status StreamTableManager::EnsureSourcesPublished(const delta::DeltaPlan& plan) {
  PgConnection& conn = *conn_;
  for (const delta::SourceRelation& s : plan.sources) {
    TRICKLE_ASSIGN_OR_RETURN(
        PgResult member,
        conn.ExecParams("SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2"
                        " AND tablename = $3",
                        {options_.publication_name, s.schema, s.name}));
    if (member.rows() > 0) continue;
    auto added = conn.Exec(absl::StrCat("ALTER PUBLICATION ", conn.QuoteIdentifier(options_.publication_name),
                                        " ADD TABLE ", conn.QuoteIdentifier(s.schema), ".",
                                        conn.QuoteIdentifier(s.name)));
    if (!added.ok() && SqlStateOf(added.status()) != "42710") return added.status();
  }
  return absl::OkStatus();
}

absl::Status StreamTableManager::WaitForInFlightTransactions() {
  // DESIGN step 5: every transaction in progress when the sources joined the
  // publication must end before the initial snapshot, or its changes could
  // be neither in that snapshot nor in the change log.
  TRICKLE_ASSIGN_OR_RETURN(PgResult xmax,
                           conn_->Exec("SELECT pg_snapshot_xmax(pg_current_snapshot())::text"));
  std::string horizon(xmax.Get(0, 0));
  absl::Time deadline = absl::Now() + absl::Minutes(5);
  while (true) {
    TRICKLE_ASSIGN_OR_RETURN(
        PgResult passed,
        conn_->ExecParams("SELECT pg_snapshot_xmin(pg_current_snapshot()) >= $1::xid8", {horizon}));
    if (passed.Get(0, 0) == "t") return absl::OkStatus();
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          "transactions that were running when the sources joined the publication have not ended "
          "after 5 minutes; see pg_stat_activity for long-running transactions and retry");
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

absl::StatusOr<StreamTableRow> StreamTableManager::Create(const CreateRequest& request) {
  absl::MutexLock lock(&mu_);
  PgConnection& conn = *conn_;
  TRICKLE_ASSIGN_OR_RETURN(auto qualified, SplitName(request.name));
  StreamTableRow row;
  row.schema = qualified.first;
  row.name = qualified.second;
  row.query = request.query;
  row.requested_mode = request.mode;
  row.schedule = request.schedule;
  row.verify = request.verify;
  TRICKLE_ASSIGN_OR_RETURN(absl::Duration interval, ParseSchedule(request.schedule));
  for (const auto& [id, e] : entries_) {
    if (e.table.row.schema == row.schema && e.table.row.name == row.name) {
      return absl::AlreadyExistsError(absl::StrCat("stream table ", row.QualifiedName(),
                                                   " already exists; drop it or alter it"));
    }
  }
  TRICKLE_ASSIGN_OR_RETURN(
      PgResult exists, conn.ExecParams("SELECT to_regclass($1) IS NOT NULL",
                                       {absl::StrCat(conn.QuoteIdentifier(row.schema), ".",
                                                     conn.QuoteIdentifier(row.name))}));
  if (exists.Get(0, 0) == "t") {
    return absl::AlreadyExistsError(absl::StrCat("a relation named ", row.QualifiedName(),
                                                 " already exists; choose another name"));
  }
  TRICKLE_ASSIGN_OR_RETURN(delta::DeltaPlan plan, Plan(conn, row));
  bool full_only = plan.maintained_mode == delta::RefreshMode::kFull ||
                   request.mode == delta::RefreshMode::kFull;
  row.effective_mode = full_only ? delta::RefreshMode::kFull : delta::RefreshMode::kDifferential;
  row.full_refresh_reason = plan.full_refresh_reason;

  Entry entry;
  entry.interval = interval;
  std::vector<Dependency> deps;
  for (const delta::SourceRelation& s : plan.sources) {
    Dependency d{s.oid, s.schema, s.name, std::nullopt};
    for (const auto& [id, e] : entries_) {
      if (e.table.row.schema == s.schema && e.table.row.name == s.name) {
        d.source_stream_table_id = id;
        entry.upstream_ids.push_back(id);
      }
    }
    deps.push_back(d);
    TRICKLE_ASSIGN_OR_RETURN(
        PgResult ident, conn.ExecParams("SELECT relreplident::text FROM pg_class WHERE oid = $1",
                                        {std::to_string(s.oid)}));
    if (ident.rows() == 1 && ident.Get(0, 0) != "f") {
      std::string fix = absl::StrCat("ALTER TABLE ", conn.QuoteIdentifier(s.schema), ".",
                                     conn.QuoteIdentifier(s.name), " REPLICA IDENTITY FULL");
      if (!options_.set_replica_identity) {
        return absl::FailedPreconditionError(absl::StrCat(
            "source table \"", s.schema, ".", s.name, "\" does not carry full old rows; run ", fix,
            " or start trickled with --set-replica-identity"));
      }
      TRICKLE_RETURN_IF_ERROR(conn.Exec(fix).status());
    }
  }

  TRICKLE_RETURN_IF_ERROR(conn.Exec("BEGIN").status());
  auto created = [&]() -> absl::StatusOr<int64_t> {
    for (const std::string& ddl : plan.storage_ddl) TRICKLE_RETURN_IF_ERROR(conn.Exec(ddl).status());
    // Stream tables can be sources of other stream tables: full old rows.
    TRICKLE_RETURN_IF_ERROR(conn.Exec(absl::StrCat("ALTER TABLE ", conn.QuoteIdentifier(row.schema), ".",
                                                   conn.QuoteIdentifier(row.name),
                                                   " REPLICA IDENTITY FULL"))
                                .status());
    TRICKLE_ASSIGN_OR_RETURN(int64_t id, catalog::Insert(conn, row));
    TRICKLE_RETURN_IF_ERROR(catalog::ReplaceDependencies(conn, id, deps));
    return id;
  }();
  if (!created.ok()) {
    (void)conn.Exec("ROLLBACK");
    return created.status();
  }
  TRICKLE_RETURN_IF_ERROR(conn.Exec("COMMIT").status());
  row.id = *created;
  TRICKLE_RETURN_IF_ERROR(EnsureSourcesPublished(plan));
  TRICKLE_RETURN_IF_ERROR(WaitForInFlightTransactions());

  entry.table.row = row;
  entry.table.plan = std::move(plan);
  auto [it, inserted] = entries_.emplace(row.id, std::move(entry));
  auto refreshed = RefreshLocked(&it->second, RefreshKind::kFull);
  if (!refreshed.ok()) {
    absl::Status dropped = DropLocked(&it->second, /*cascade=*/false);
    if (!dropped.ok()) spdlog::warn("undoing the failed create: {}", dropped.ToString());
    return absl::Status(refreshed.status().code(),
                        absl::StrCat("initial refresh of ", row.QualifiedName(),
                                     " failed (the stream table was not created): ",
                                     refreshed.status().message()));
  }
  it->second.next_due = absl::Now() + it->second.interval;
  spdlog::info("created stream table {} ({}, every {})", row.QualifiedName(),
               ModeName(it->second.table.row.effective_mode), row.schedule);
  return it->second.table.row;
}

absl::StatusOr<StreamTableRow> StreamTableManager::Alter(const std::string& name,
                                                         const AlterRequest& request) {
  absl::MutexLock lock(&mu_);
  TRICKLE_ASSIGN_OR_RETURN(Entry * entry, FindLocked(name));
  StreamTableRow row = entry->table.row;
  if (request.schedule) {
    TRICKLE_ASSIGN_OR_RETURN(entry->interval, ParseSchedule(*request.schedule));
    row.schedule = *request.schedule;
  }
  if (request.verify) row.verify = *request.verify;
  if (request.mode) row.requested_mode = *request.mode;
  if (request.query) row.query = *request.query;
  bool replan = request.mode.has_value() || request.query.has_value();
  delta::DeltaPlan plan = entry->table.plan;
  if (replan) {
    TRICKLE_ASSIGN_OR_RETURN(plan, Plan(*conn_, row));
    bool full_only = plan.maintained_mode == delta::RefreshMode::kFull ||
                     row.requested_mode == delta::RefreshMode::kFull;
    row.effective_mode = full_only ? delta::RefreshMode::kFull : delta::RefreshMode::kDifferential;
    row.full_refresh_reason = plan.full_refresh_reason;
  }
  if (request.query) {
    // A stream table may not read itself, directly or through others.
    for (const delta::SourceRelation& s : plan.sources) {
      if (s.schema == row.schema && s.name == row.name) {
        return absl::InvalidArgumentError(absl::StrCat("stream table ", row.QualifiedName(),
                                                       " cannot read itself"));
      }
    }
  }
  TRICKLE_RETURN_IF_ERROR(catalog::UpdateDefinition(*conn_, row));
  entry->table.row = row;
  if (request.query) {
    TRICKLE_RETURN_IF_ERROR(ReinitLocked(entry));
  } else if (replan) {
    entry->table.plan = std::move(plan);
  }
  return entry->table.row;
}

absl::Status StreamTableManager::Drop(const std::string& name, bool cascade) {
  absl::MutexLock lock(&mu_);
  TRICKLE_ASSIGN_OR_RETURN(Entry * entry, FindLocked(name));
  TRICKLE_RETURN_IF_ERROR(DropLocked(entry, cascade));
  return UnpublishUnusedSourcesLocked();
}

absl::Status StreamTableManager::DropLocked(Entry* entry, bool cascade) {
  int64_t id = entry->table.row.id;
  std::vector<Entry*> dependents;
  for (auto& [other_id, other] : entries_) {
    if (std::find(other.upstream_ids.begin(), other.upstream_ids.end(), id) != other.upstream_ids.end()) {
      dependents.push_back(&other);
    }
  }
  if (!dependents.empty()) {
    if (!cascade) {
      std::vector<std::string> names;
      for (Entry* d : dependents) names.push_back(d->table.row.QualifiedName());
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot drop stream table ", entry->table.row.QualifiedName(), ": stream tables ",
          absl::StrJoin(names, ", "), " read it; drop them first or drop with cascade"));
    }
    for (Entry* d : dependents) TRICKLE_RETURN_IF_ERROR(DropLocked(d, /*cascade=*/true));
  }
  PgConnection& conn = *conn_;
  TRICKLE_RETURN_IF_ERROR(conn.Exec("BEGIN").status());
  absl::Status s = conn.Exec(absl::StrCat("DROP TABLE IF EXISTS ", conn.QuoteIdentifier(entry->table.row.schema),
                                          ".", conn.QuoteIdentifier(entry->table.row.name)))
                       .status();
  if (s.ok()) s = catalog::Delete(conn, id);
  if (!s.ok()) {
    (void)conn.Exec("ROLLBACK");
    return s;
  }
  TRICKLE_RETURN_IF_ERROR(conn.Exec("COMMIT").status());
  spdlog::info("dropped stream table {}", entry->table.row.QualifiedName());
  entries_.erase(id);
  return absl::OkStatus();
}

absl::Status StreamTableManager::UnpublishUnusedSourcesLocked() {
  PgConnection& conn = *conn_;
  absl::flat_hash_set<std::string> used;
  for (const auto& [id, e] : entries_) {
    for (const delta::SourceRelation& s : e.table.plan.sources) used.insert(s.schema + "." + s.name);
  }
  TRICKLE_ASSIGN_OR_RETURN(PgResult published,
                           conn.ExecParams("SELECT schemaname, tablename FROM pg_publication_tables"
                                           " WHERE pubname = $1",
                                           {options_.publication_name}));
  for (int i = 0; i < published.rows(); ++i) {
    std::string schema(published.Get(i, 0)), table(published.Get(i, 1));
    if (used.contains(schema + "." + table)) continue;
    auto dropped = conn.Exec(absl::StrCat("ALTER PUBLICATION ", conn.QuoteIdentifier(options_.publication_name),
                                          " DROP TABLE ", conn.QuoteIdentifier(schema), ".",
                                          conn.QuoteIdentifier(table)));
    if (!dropped.ok()) spdlog::warn("taking {}.{} out of the publication: {}", schema, table,
                                    dropped.status().ToString());
  }
  return TrimLog();
}

absl::StatusOr<RefreshResult> StreamTableManager::RefreshNow(const std::string& name, RefreshKind kind) {
  absl::MutexLock lock(&mu_);
  TRICKLE_ASSIGN_OR_RETURN(Entry * entry, FindLocked(name));
  return RefreshLocked(entry, kind);
}

absl::StatusOr<RefreshResult> StreamTableManager::RefreshLocked(Entry* entry, RefreshKind kind) {
  if (!conn_->ok()) {
    TRICKLE_ASSIGN_OR_RETURN(conn_, PgConnection::Connect(options_.dsn));
  }
  StreamTableRow& row = entry->table.row;
  absl::Time start = absl::Now();
  auto result = refresher_.Refresh(*conn_, entry->table, kind);
  if (result.ok()) {
    if (result->committed) {
      row.frontier = result->frontier;
      row.needs_full = false;
      row.status = Status::kActive;
      row.consecutive_failures = 0;
      row.last_error.clear();
    }
    return result;
  }
  if (IsSchemaChange(result.status())) {
    spdlog::info("stream table {}: {}; rebuilding", row.QualifiedName(),
                 std::string(result.status().message()));
    TRICKLE_RETURN_IF_ERROR(ReinitLocked(entry));
    return RefreshResult{};
  }
  // A failed refresh: recorded, counted; the others keep running.
  if (!conn_->ok()) {
    auto reconnected = PgConnection::Connect(options_.dsn);
    if (reconnected.ok()) conn_ = std::move(*reconnected);
  }
  HistoryRow history;
  history.action = kind == RefreshKind::kFull || !row.frontier ? "FULL" : "DIFFERENTIAL";
  history.error = std::string(result.status().message());
  history.duration_ms = absl::ToDoubleMilliseconds(absl::Now() - start);
  row.consecutive_failures++;
  row.last_error = history.error;
  // A definite error (a dropped source, a privilege) will not heal by retrying.
  bool definite = result.status().code() == absl::StatusCode::kInvalidArgument ||
                  result.status().code() == absl::StatusCode::kNotFound;
  int max_failures = definite ? 1 : options_.max_consecutive_failures;
  if (row.consecutive_failures >= max_failures) row.status = Status::kError;
  TRICKLE_ASSIGN_OR_RETURN(PgResult now, conn_->Exec("SELECT now()::text"));
  absl::Status recorded = catalog::RecordFailure(*conn_, row.id, history, now.Get(0, 0), max_failures);
  if (!recorded.ok()) spdlog::warn("recording the failure: {}", recorded.ToString());
  spdlog::warn("refresh of {} failed ({} in a row): {}", row.QualifiedName(), row.consecutive_failures,
               result.status().ToString());
  return result.status();
}

absl::Status StreamTableManager::ReinitLocked(Entry* entry) {
  StreamTableRow& row = entry->table.row;
  PgConnection& conn = *conn_;
  auto plan = Plan(conn, row);
  if (!plan.ok()) {
    row.status = Status::kError;
    row.last_error = absl::StrCat("cannot rebuild after a change of its sources: ", plan.status().message());
    TRICKLE_RETURN_IF_ERROR(catalog::SetStatus(conn, row.id, Status::kError, row.last_error));
    spdlog::error("stream table {}: {}", row.QualifiedName(), row.last_error);
    return absl::FailedPreconditionError(absl::StrCat("stream table ", row.QualifiedName(), ": ", row.last_error));
  }
  bool same_shape = plan->storage_ddl == entry->table.plan.storage_ddl;
  TRICKLE_RETURN_IF_ERROR(catalog::SetStatus(conn, row.id, Status::kReinit, ""));
  TRICKLE_RETURN_IF_ERROR(conn.Exec("BEGIN").status());
  absl::Status s;
  if (!same_shape) {
    s = conn.Exec(absl::StrCat("DROP TABLE IF EXISTS ", conn.QuoteIdentifier(row.schema), ".",
                               conn.QuoteIdentifier(row.name)))
            .status();
    for (const std::string& ddl : plan->storage_ddl) {
      if (s.ok()) s = conn.Exec(ddl).status();
    }
    if (s.ok()) {
      s = conn.Exec(absl::StrCat("ALTER TABLE ", conn.QuoteIdentifier(row.schema), ".",
                                 conn.QuoteIdentifier(row.name), " REPLICA IDENTITY FULL"))
              .status();
    }
  }
  std::vector<Dependency> deps;
  std::vector<int64_t> upstream;
  for (const delta::SourceRelation& src : plan->sources) {
    Dependency d{src.oid, src.schema, src.name, std::nullopt};
    for (const auto& [id, e] : entries_) {
      if (e.table.row.schema == src.schema && e.table.row.name == src.name) {
        d.source_stream_table_id = id;
        upstream.push_back(id);
      }
    }
    deps.push_back(d);
  }
  if (s.ok()) s = catalog::ReplaceDependencies(conn, row.id, deps);
  if (s.ok()) s = catalog::SetNeedsFull(conn, row.id, true);
  if (!s.ok()) {
    (void)conn.Exec("ROLLBACK");
    return s;
  }
  TRICKLE_RETURN_IF_ERROR(conn.Exec("COMMIT").status());
  entry->table.plan = std::move(*plan);
  entry->upstream_ids = upstream;
  row.needs_full = true;
  TRICKLE_RETURN_IF_ERROR(EnsureSourcesPublished(entry->table.plan));
  TRICKLE_RETURN_IF_ERROR(WaitForInFlightTransactions());
  TRICKLE_RETURN_IF_ERROR(RefreshLocked(entry, RefreshKind::kFull).status());
  if (!same_shape) {
    // Readers of this stream table planned against the old table: rebuild them too.
    for (auto& [id, other] : entries_) {
      if (std::find(other.upstream_ids.begin(), other.upstream_ids.end(), row.id) != other.upstream_ids.end()) {
        TRICKLE_RETURN_IF_ERROR(ReinitLocked(&other));
      }
    }
  }
  spdlog::info("rebuilt stream table {}", row.QualifiedName());
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
    absl::Status trimmed = TrimLog();
    if (!trimmed.ok()) spdlog::warn("trimming the change log: {}", trimmed.ToString());
  }
}

absl::Status StreamTableManager::TrimLog() {
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
    if (below > 0) TRICKLE_RETURN_IF_ERROR(log_->Trim(r.relation_oid(), below));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<StreamTableRow>> StreamTableManager::List() {
  absl::MutexLock lock(&mu_);
  std::vector<StreamTableRow> rows;
  for (const auto& [id, e] : entries_) rows.push_back(e.table.row);
  return rows;
}

}  // namespace trickle::scheduler
