// StreamTableManager's lifecycle: what a stream table is. Open (load the
// catalog and plan every stream table), create, alter, drop, and the rebuild
// (REINIT) after its sources changed. Scheduling (when a stream table
// refreshes) is in coordinator.cc; the refresh transaction (how) in
// refresh.cc; what a source must be in sources.cc.
#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "delta/catalog_adapter.h"
#include "scheduler/sources.h"
#include "scheduler/stream_table_manager.h"
#include "spdlog/spdlog.h"

namespace trickle::scheduler {

absl::StatusOr<std::unique_ptr<StreamTableManager>> StreamTableManager::Open(
    ManagerOptions options, storage::ChangeLog* log, FenceFn fence) {
  std::unique_ptr<StreamTableManager> m(new StreamTableManager(std::move(options), log, std::move(fence)));
  absl::MutexLock lock(&m->mu_);
  TRICKLE_ASSIGN_OR_RETURN(m->conn_, PgConnection::Connect(m->options_.dsn));
  TRICKLE_RETURN_IF_ERROR(m->conn_->Exec("SET application_name = 'trickle'").status());
  TRICKLE_ASSIGN_OR_RETURN(int version, catalog::Migrate(*m->conn_));
  TRICKLE_ASSIGN_OR_RETURN(std::vector<StreamTableRow> rows, catalog::LoadAll(*m->conn_));
  spdlog::info("catalog pgtrickle at version {}; {} stream tables", version, rows.size());
  TRICKLE_ASSIGN_OR_RETURN(Lsn complete_from, storage::CompleteFrom(*log));
  for (StreamTableRow& row : rows) {
    // The log holds every change only from complete_from on (a new slot or
    // data directory): a stream table behind it missed changes.
    if (row.frontier && row.frontier->lsn < complete_from && !row.needs_full) {
      spdlog::warn("stream table {} is at {}, but the change log is complete only from {} (a new "
                   "replication slot or data directory): refreshing it in full",
                   row.QualifiedName(), FormatLsn(row.frontier->lsn), FormatLsn(complete_from));
      TRICKLE_RETURN_IF_ERROR(catalog::SetNeedsFull(*m->conn_, row.id, true));
      row.needs_full = true;
    }
    Entry entry;
    auto schedule = Schedule::Parse(row.schedule);
    entry.schedule = schedule.ok() ? *schedule : Schedule{};
    entry.interval = entry.schedule.interval;
    if (entry.schedule.cron) entry.next_cron = entry.schedule.cron->Next(absl::Now());
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
      TRICKLE_RETURN_IF_ERROR(m->CheckBuiltOnLocked(&entry, row, deps));
    }
    if (row.sla) entry.tier.tier = AssignTier(*row.sla, absl::ZeroDuration(), absl::ZeroDuration());
    entry.table.row = std::move(row);
    int64_t id = entry.table.row.id;
    m->dag_.Set(id, entry.upstream_ids);
    m->entries_.emplace(id, std::move(entry));
  }
  m->IndexSourcesLocked();
  absl::Status synced = m->SyncPublicationsLocked();
  if (!synced.ok()) spdlog::warn("downstream publications: {}", synced.ToString());
  return m;
}


absl::Status StreamTableManager::CheckBuiltOnLocked(Entry* entry, const StreamTableRow& row,
                                                    const std::vector<Dependency>& deps) {
  for (const delta::SourceRelation& source : entry->table.plan.sources) {
    const std::string now = ColumnsDigest(source);
    auto built_on = std::find_if(deps.begin(), deps.end(), [&](const Dependency& d) { return d.source_oid == source.oid; });
    std::string changed;
    if (built_on == deps.end()) {
      // Not the table it was built on: dropped and created again (outside
      // the publication, too) while nothing was watching.
      changed = "was dropped and created again";
    } else if (built_on->source_columns.empty()) {
      // Recorded before catalog version 4: what is there now is all we know.
      TRICKLE_RETURN_IF_ERROR(catalog::SetSourceColumns(*conn_, row.id, source.oid, now));
    } else if (built_on->source_columns != now) {
      changed = "changed its columns";
    }
    if (changed.empty() || !entry->table.rebuild_reason.empty()) continue;
    entry->table.rebuild_reason = absl::StrCat("source table \"", source.schema, ".", source.name, "\" ", changed,
                                               " since the stream table was built on it");
    spdlog::warn("stream table {}: {}; it is rebuilt at its first refresh", row.QualifiedName(),
                 entry->table.rebuild_reason);
    // Dispatched soon, whatever its schedule: its data is out of date.
    entry->dirty = true;
    entry->dirty_since = absl::Now();
  }
  return absl::OkStatus();
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
  row.fuse = request.fuse;
  row.sla = request.sla;
  TRICKLE_ASSIGN_OR_RETURN(Schedule schedule, Schedule::Parse(request.schedule));
  if (request.sla && *request.sla <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("an SLA must be a positive duration, e.g. 30s");
  }
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
  entry.schedule = schedule;
  entry.interval = schedule.interval;
  if (schedule.cron) entry.next_cron = schedule.cron->Next(absl::Now());
  if (row.sla) entry.tier.tier = AssignTier(*row.sla, absl::ZeroDuration(), absl::ZeroDuration());
  // Before anything is changed on the source side.
  TRICKLE_RETURN_IF_ERROR(RefusePartitionedSources(conn, plan.sources));
  std::vector<Dependency> deps;
  {
    // Published stream tables it reads must log whole old rows first.
    absl::flat_hash_set<int64_t> gaining;
    for (const delta::SourceRelation& s : plan.sources) {
      for (const auto& [id, e] : entries_) {
        if (e.table.row.schema == s.schema && e.table.row.name == s.name) gaining.insert(id);
      }
    }
    if (!gaining.empty()) TRICKLE_RETURN_IF_ERROR(SyncPublicationsLocked(gaining));
  }
  for (const delta::SourceRelation& s : plan.sources) {
    Dependency d{s.oid, s.schema, s.name, std::nullopt, ColumnsDigest(s)};
    for (const auto& [id, e] : entries_) {
      if (e.table.row.schema == s.schema && e.table.row.name == s.name) {
        d.source_stream_table_id = id;
        entry.upstream_ids.push_back(id);
      }
    }
    deps.push_back(d);
    if (s.schema == row.schema && s.name == row.name) {
      return absl::InvalidArgumentError(absl::StrCat("stream table ", row.QualifiedName(), " cannot read itself"));
    }
  }
  TRICKLE_RETURN_IF_ERROR(EnsureFullOldRows(conn, plan.sources, options_.set_replica_identity));

  TRICKLE_RETURN_IF_ERROR(InTransaction(conn, [&]() -> absl::Status {
    for (const std::string& ddl : plan.storage_ddl) TRICKLE_RETURN_IF_ERROR(conn.Exec(ddl).status());
    // Stream tables can be sources of other stream tables: full old rows.
    TRICKLE_RETURN_IF_ERROR(conn.Exec(absl::StrCat("ALTER TABLE ", conn.QuoteIdentifier(row.schema), ".",
                                                   conn.QuoteIdentifier(row.name),
                                                   " REPLICA IDENTITY FULL"))
                                .status());
    TRICKLE_ASSIGN_OR_RETURN(row.id, catalog::Insert(conn, row));
    return catalog::ReplaceDependencies(conn, row.id, deps);
  }));
  TRICKLE_RETURN_IF_ERROR(EnsureSourcesPublished(conn, plan.sources, options_.publication_name));
  TRICKLE_RETURN_IF_ERROR(WaitForInFlightTransactions(conn));

  entry.table.row = row;
  entry.table.plan = std::move(plan);
  dag_.Set(row.id, entry.upstream_ids);
  auto [it, inserted] = entries_.emplace(row.id, std::move(entry));
  IndexSourcesLocked();
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
    TRICKLE_ASSIGN_OR_RETURN(Schedule schedule, Schedule::Parse(*request.schedule));
    entry->schedule = schedule;
    entry->interval = schedule.interval;
    entry->pace = PaceTracker{};
    if (schedule.cron) entry->next_cron = schedule.cron->Next(absl::Now());
    row.schedule = *request.schedule;
  }
  if (request.fuse) row.fuse = *request.fuse;
  if (request.sla) {
    if (*request.sla < absl::ZeroDuration()) return absl::InvalidArgumentError("an SLA cannot be negative");
    row.sla = *request.sla == absl::ZeroDuration() ? std::nullopt : request.sla;
    if (row.sla) entry->tier = TierState{AssignTier(*row.sla, absl::ZeroDuration(), absl::ZeroDuration())};
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
    std::vector<int64_t> upstream;
    for (const delta::SourceRelation& s : plan.sources) {
      if (s.schema == row.schema && s.name == row.name) {
        return absl::InvalidArgumentError(absl::StrCat("stream table ", row.QualifiedName(),
                                                       " cannot read itself"));
      }
      for (const auto& [id, e] : entries_) {
        if (e.table.row.schema == s.schema && e.table.row.name == s.name) upstream.push_back(id);
      }
    }
    TRICKLE_RETURN_IF_ERROR(dag_.CheckAcyclic(row.id, upstream));
  }
  TRICKLE_RETURN_IF_ERROR(catalog::UpdateDefinition(*conn_, row));
  entry->table.row = row;
  if (request.query) {
    TRICKLE_RETURN_IF_ERROR(ReinitLocked(entry));
  } else if (replan) {
    // The new plan sees the sources as they are now; the data was built on
    // what the catalog recorded.
    entry->table.plan = std::move(plan);
    TRICKLE_ASSIGN_OR_RETURN(std::vector<Dependency> deps, catalog::Dependencies(*conn_, row.id));
    TRICKLE_RETURN_IF_ERROR(CheckBuiltOnLocked(entry, row, deps));
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
  absl::Status s = DropPublicationInTransactionLocked(entry);
  if (s.ok()) {
    s = conn.Exec(absl::StrCat("DROP TABLE IF EXISTS ", conn.QuoteIdentifier(entry->table.row.schema), ".",
                               conn.QuoteIdentifier(entry->table.row.name)))
            .status();
  }
  if (s.ok()) s = catalog::Delete(conn, id);
  if (!s.ok()) {
    (void)conn.Exec("ROLLBACK");
    return s;
  }
  TRICKLE_RETURN_IF_ERROR(conn.Exec("COMMIT").status());
  spdlog::info("dropped stream table {}", entry->table.row.QualifiedName());
  dag_.Remove(id);
  entries_.erase(id);
  IndexSourcesLocked();
  // Its upstreams may have lost their last reader.
  absl::Status synced = SyncPublicationsLocked();
  if (!synced.ok()) spdlog::warn("downstream publications: {}", synced.ToString());
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
  return TrimLogLocked();
}


absl::Status StreamTableManager::ReinitLocked(Entry* entry) {
  StreamTableRow& row = entry->table.row;
  PgConnection& conn = *conn_;
  auto plan = Plan(conn, row);
  // A source dropped and created again is a new table: it must be one a
  // stream table can read and carry full old rows, like any source.
  absl::Status usable = plan.status();
  if (usable.ok()) usable = RefusePartitionedSources(conn, plan->sources);
  if (usable.ok()) usable = EnsureFullOldRows(conn, plan->sources, options_.set_replica_identity);
  if (!usable.ok()) {
    row.status = Status::kError;
    row.last_error = absl::StrCat("cannot rebuild after a change of its sources: ", usable.message());
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
    if (s.ok()) s = RepublishInTransactionLocked(entry, *plan);
  }
  std::vector<Dependency> deps;
  std::vector<int64_t> upstream;
  for (const delta::SourceRelation& src : plan->sources) {
    Dependency d{src.oid, src.schema, src.name, std::nullopt, ColumnsDigest(src)};
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
  entry->table.rebuild_reason.clear();
  entry->upstream_ids = upstream;
  dag_.Set(row.id, upstream);
  IndexSourcesLocked();
  row.needs_full = true;
  // A published stream table it now reads logs whole old rows from here on.
  TRICKLE_RETURN_IF_ERROR(SyncPublicationsLocked());
  TRICKLE_RETURN_IF_ERROR(EnsureSourcesPublished(conn, entry->table.plan.sources, options_.publication_name));
  TRICKLE_RETURN_IF_ERROR(WaitForInFlightTransactions(conn));
  TRICKLE_RETURN_IF_ERROR(RefreshLocked(entry, RefreshKind::kFull).status());
  if (!same_shape) {
    // Readers of this stream table planned against the old table: rebuild them too.
    for (auto& [id, other] : entries_) {
      if (std::find(other.upstream_ids.begin(), other.upstream_ids.end(), row.id) != other.upstream_ids.end()) {
        TRICKLE_RETURN_IF_ERROR(ReinitLocked(&other));
      }
    }
  }
  absl::Status synced = SyncPublicationsLocked();
  if (!synced.ok()) spdlog::warn("downstream publications: {}", synced.ToString());
  spdlog::info("rebuilt stream table {}", row.QualifiedName());
  return absl::OkStatus();
}


void StreamTableManager::IndexSourcesLocked() {
  readers_.clear();
  for (const auto& [id, e] : entries_) {
    for (const delta::SourceRelation& s : e.table.plan.sources) readers_[s.oid].push_back(id);
  }
}


absl::StatusOr<std::vector<StreamTableRow>> StreamTableManager::List() {
  absl::MutexLock lock(&mu_);
  std::vector<StreamTableRow> rows;
  for (const auto& [id, e] : entries_) rows.push_back(e.table.row);
  return rows;
}


absl::StatusOr<StreamTable> StreamTableManager::GetStreamTable(const std::string& name) {
  absl::MutexLock lock(&mu_);
  TRICKLE_ASSIGN_OR_RETURN(Entry * entry, FindLocked(name));
  return entry->table;
}


absl::StatusOr<StreamTableStatus> StreamTableManager::GetStatus(const std::string& name) {
  absl::MutexLock lock(&mu_);
  TRICKLE_ASSIGN_OR_RETURN(Entry * e, FindLocked(name));
  StreamTableStatus st;
  st.row = e->table.row;
  st.scheduler = e->shown;
  if (st.row.sla) st.scheduler.tier = e->tier.tier;
  st.running = e->running;
  st.dirty = e->dirty;
  return st;
}


}  // namespace trickle::scheduler
