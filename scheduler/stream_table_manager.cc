#include "scheduler/stream_table_manager.h"

#include <algorithm>
#include <deque>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "delta/catalog_adapter.h"
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

absl::Status StreamTableManager::RefusePartitionedSourcesLocked(const delta::DeltaPlan& plan) {
  std::vector<uint32_t> oids;
  for (const delta::SourceRelation& s : plan.sources) oids.push_back(s.oid);
  TRICKLE_ASSIGN_OR_RETURN(
      PgResult partitioned,
      conn_->ExecParams("SELECT oid FROM pg_class WHERE oid = ANY ($1::oid[]) AND relkind = 'p' ORDER BY oid LIMIT 1",
                        {absl::StrCat("{", absl::StrJoin(oids, ","), "}")}));
  if (partitioned.rows() == 0) return absl::OkStatus();
  for (const delta::SourceRelation& s : plan.sources) {
    if (std::to_string(s.oid) != partitioned.Get(0, 0)) continue;
    return absl::FailedPreconditionError(absl::StrCat(
        "source table \"", s.schema, ".", s.name,
        "\" is partitioned, which stream tables do not support yet: its changes arrive under each partition, "
        "and every partition would need REPLICA IDENTITY FULL (without it an UPDATE fails on the source or "
        "stops the capture); read its partitions instead (a UNION ALL of them)"));
  }
  return absl::OkStatus();
}

absl::Status StreamTableManager::EnsureFullOldRowsLocked(const delta::DeltaPlan& plan) {
  PgConnection& conn = *conn_;
  for (const delta::SourceRelation& s : plan.sources) {
    TRICKLE_ASSIGN_OR_RETURN(PgResult ident, conn.ExecParams("SELECT relreplident::text FROM pg_class WHERE oid = $1",
                                                             {std::to_string(s.oid)}));
    if (ident.rows() == 1 && ident.Get(0, 0) != "f") {
      std::string fix = absl::StrCat("ALTER TABLE ", conn.QuoteIdentifier(s.schema), ".",
                                     conn.QuoteIdentifier(s.name), " REPLICA IDENTITY FULL");
      if (!options_.set_replica_identity) {
        return absl::FailedPreconditionError(absl::StrCat("source table \"", s.schema, ".", s.name,
                                                          "\" does not carry full old rows; run ", fix,
                                                          " or start trickled with --set-replica-identity"));
      }
      TRICKLE_RETURN_IF_ERROR(conn.Exec(fix).status());
    }
  }
  return absl::OkStatus();
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
  TRICKLE_RETURN_IF_ERROR(RefusePartitionedSourcesLocked(plan));
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
  TRICKLE_RETURN_IF_ERROR(EnsureFullOldRowsLocked(plan));

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
  TRICKLE_RETURN_IF_ERROR(EnsureSourcesPublished(plan));
  TRICKLE_RETURN_IF_ERROR(WaitForInFlightTransactions());

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

absl::Status StreamTableManager::ReinitLocked(Entry* entry) {
  StreamTableRow& row = entry->table.row;
  PgConnection& conn = *conn_;
  auto plan = Plan(conn, row);
  // A source dropped and created again is a new table: it must be one a
  // stream table can read and carry full old rows, like any source.
  absl::Status usable = plan.status();
  if (usable.ok()) usable = RefusePartitionedSourcesLocked(*plan);
  if (usable.ok()) usable = EnsureFullOldRowsLocked(*plan);
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
  absl::Status synced = SyncPublicationsLocked();
  if (!synced.ok()) spdlog::warn("downstream publications: {}", synced.ToString());
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

namespace {
constexpr char kFusePayload[] = "trickle.fuse";
}  // namespace

absl::Status FuseBlownError(absl::string_view reason) {
  absl::Status status = absl::ResourceExhaustedError(reason);
  status.SetPayload(kFusePayload, absl::Cord("1"));
  return status;
}

bool IsFuseBlown(const absl::Status& status) { return status.GetPayload(kFusePayload).has_value(); }

bool IsDefinite(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument ||
         status.code() == absl::StatusCode::kNotFound ||
         status.code() == absl::StatusCode::kPermissionDenied;
}

int FailuresBeforeError(const absl::Status& status, int max_consecutive) {
  if (IsDefinite(status)) return 1;
  if (IsOutage(status)) return std::numeric_limits<int>::max();
  return max_consecutive;
}

absl::Duration RetryDelay(const absl::Status& status, int consecutive_failures, absl::Duration base,
                          absl::Duration cap) {
  if (IsOutage(status)) cap = std::min(cap, absl::Seconds(10));
  return BackoffDelay(consecutive_failures, base, cap);
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

void StreamTableManager::IndexSourcesLocked() {
  readers_.clear();
  for (const auto& [id, e] : entries_) {
    for (const delta::SourceRelation& s : e.table.plan.sources) readers_[s.oid].push_back(id);
  }
}

void StreamTableManager::Wake() {
  absl::MutexLock lock(&notify_mu_);
  wake_ = true;
}

void StreamTableManager::OnSourceCommitted(const storage::v1::TransactionRecord& txn) {
  if (txn.relation_oids_size() == 0) return;  // a fence: nothing to refresh
  absl::Time now = absl::Now();
  absl::MutexLock lock(&notify_mu_);
  for (uint32_t oid : txn.relation_oids()) {
    changed_oids_.emplace(oid, now);
    if (wake_on_.contains(oid)) wake_ = true;
  }
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

}  // namespace trickle::scheduler
