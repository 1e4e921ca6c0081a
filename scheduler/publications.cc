// StreamTableManager's side of downstream publications: the lifecycle
// points where the publisher (publisher/) is called. The rule itself (which
// replica identity, which columns) lives in publisher::ChooseLayout.
//
// A published stream table's replica identity depends on who reads it: a
// primary key while only subscribers do, FULL while another stream table
// does (its capture needs whole old rows). So every change of the reader
// graph (create, drop, rebuild) ends with SyncPublicationsLocked, and a
// create switches its upstreams to FULL before it checks them.
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "publisher/publication.h"
#include "scheduler/stream_table_manager.h"
#include "spdlog/spdlog.h"

namespace trickle::scheduler {
namespace {

publisher::StreamTableRef Ref(const StreamTable& t, const delta::DeltaPlan& plan) {
  return publisher::StreamTableRef{t.row.schema, t.row.name, &plan};
}

constexpr size_t kMaxIdentifierBytes = 63;

}  // namespace

bool StreamTableManager::ReadByStreamTableLocked(int64_t id,
                                                 const absl::flat_hash_set<int64_t>& gaining_readers) const {
  if (gaining_readers.contains(id)) return true;
  for (const auto& [other_id, e] : entries_) {
    if (std::find(e.upstream_ids.begin(), e.upstream_ids.end(), id) != e.upstream_ids.end()) return true;
  }
  return false;
}

absl::StatusOr<StreamTableRow> StreamTableManager::CreatePublication(const std::string& name,
                                                                     const std::string& publication) {
  absl::MutexLock lock(&mu_);
  TRICKLE_ASSIGN_OR_RETURN(Entry * entry, FindLocked(name));
  StreamTableRow& row = entry->table.row;
  if (!row.downstream_publication.empty()) {
    return absl::AlreadyExistsError(absl::StrCat(
        "stream table ", row.QualifiedName(), " is already published as \"", row.downstream_publication,
        "\"; drop that publication first to rename it"));
  }
  std::string pub = publication.empty() ? publisher::DefaultPublicationName(row.schema, row.name) : publication;
  if (pub.size() > kMaxIdentifierBytes) {
    return absl::InvalidArgumentError(absl::StrCat("publication name \"", pub, "\" is longer than ",
                                                   kMaxIdentifierBytes, " bytes"));
  }
  for (const auto& [id, e] : entries_) {
    if (e.table.row.downstream_publication == pub) {
      return absl::AlreadyExistsError(absl::StrCat("publication \"", pub, "\" already publishes stream table ",
                                                   e.table.row.QualifiedName(), "; choose another name"));
    }
  }
  if (entry->table.plan.columns.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "stream table ", row.QualifiedName(), " has no valid plan (status ", StatusName(row.status),
        ": ", row.last_error, "); fix it before publishing"));
  }
  if (!conn_->ok()) {
    TRICKLE_ASSIGN_OR_RETURN(conn_, PgConnection::Connect(options_.dsn));
  }
  PgConnection& conn = *conn_;
  bool read = ReadByStreamTableLocked(row.id, {});
  TRICKLE_RETURN_IF_ERROR(InTransaction(conn, [&]() -> absl::Status {
    TRICKLE_RETURN_IF_ERROR(publisher::Create(conn, pub, Ref(entry->table, entry->table.plan), read));
    return catalog::SetDownstreamPublication(conn, row.id, pub);
  }));
  row.downstream_publication = pub;
  spdlog::info("published stream table {} as publication {}", row.QualifiedName(), pub);
  return row;
}

absl::StatusOr<StreamTableRow> StreamTableManager::DropPublication(const std::string& name) {
  absl::MutexLock lock(&mu_);
  TRICKLE_ASSIGN_OR_RETURN(Entry * entry, FindLocked(name));
  StreamTableRow& row = entry->table.row;
  if (row.downstream_publication.empty()) {
    return absl::NotFoundError(absl::StrCat("stream table ", row.QualifiedName(),
                                            " has no downstream publication"));
  }
  if (!conn_->ok()) {
    TRICKLE_ASSIGN_OR_RETURN(conn_, PgConnection::Connect(options_.dsn));
  }
  PgConnection& conn = *conn_;
  TRICKLE_RETURN_IF_ERROR(InTransaction(conn, [&]() -> absl::Status {
    TRICKLE_RETURN_IF_ERROR(
        publisher::Drop(conn, row.downstream_publication, Ref(entry->table, entry->table.plan)));
    return catalog::SetDownstreamPublication(conn, row.id, "");
  }));
  spdlog::info("dropped publication {} of stream table {}", row.downstream_publication, row.QualifiedName());
  row.downstream_publication.clear();
  return row;
}

absl::Status StreamTableManager::SyncPublicationsLocked(const absl::flat_hash_set<int64_t>& gaining_readers) {
  PgConnection& conn = *conn_;
  for (auto& [id, e] : entries_) {
    const std::string& pub = e.table.row.downstream_publication;
    if (pub.empty() || e.table.plan.columns.empty()) continue;
    publisher::StreamTableRef ref = Ref(e.table, e.table.plan);
    TRICKLE_ASSIGN_OR_RETURN(bool owned, publisher::IsOwned(conn, pub, ref));
    if (!owned) {
      spdlog::warn("publication {} of stream table {} is missing or not trickle's; left alone", pub,
                   e.table.row.QualifiedName());
      continue;
    }
    bool read = ReadByStreamTableLocked(id, gaining_readers);
    absl::Status s = InTransaction(conn, [&] { return publisher::ApplyLayout(conn, pub, ref, read); });
    if (absl::IsNotFound(s)) continue;  // no storage table (a failed rebuild): nothing to lay out
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat("publication ", pub, " of stream table ",
                                                 e.table.row.QualifiedName(), ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status StreamTableManager::DropPublicationInTransactionLocked(Entry* entry) {
  const std::string& pub = entry->table.row.downstream_publication;
  if (pub.empty()) return absl::OkStatus();
  absl::Status s = publisher::Drop(*conn_, pub, Ref(entry->table, entry->table.plan));
  if (absl::IsFailedPrecondition(s)) {
    spdlog::warn("stream table {}: {}", entry->table.row.QualifiedName(), std::string(s.message()));
    return absl::OkStatus();
  }
  return s;
}

absl::Status StreamTableManager::RepublishInTransactionLocked(Entry* entry, const delta::DeltaPlan& plan) {
  const std::string& pub = entry->table.row.downstream_publication;
  if (pub.empty()) return absl::OkStatus();
  PgConnection& conn = *conn_;
  publisher::StreamTableRef ref = Ref(entry->table, plan);
  absl::Status foreign = publisher::CheckNotForeign(conn, pub, ref);
  if (!foreign.ok()) {
    spdlog::warn("stream table {} rebuilt without its publication: {}", entry->table.row.QualifiedName(),
                 std::string(foreign.message()));
    return absl::OkStatus();
  }
  TRICKLE_RETURN_IF_ERROR(publisher::Create(conn, pub, ref, ReadByStreamTableLocked(entry->table.row.id, {})));
  // The new table is empty; the TRUNCATE tells subscribers so, before the
  // FULL refresh sends its rows.
  return conn
      .Exec(absl::StrCat("TRUNCATE ", conn.QuoteIdentifier(ref.schema), ".", conn.QuoteIdentifier(ref.name)))
      .status();
}

}  // namespace trickle::scheduler
