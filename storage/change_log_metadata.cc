// The change log's small metadata: relation schema versions and the
// service's progress records.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "storage/change_log_keys.h"
#include "storage/rocks_change_log.h"

namespace trickle::storage::internal {
namespace {

// Same shape: everything but the version bookkeeping.
bool SameShape(const RelationSchema& a, const RelationSchema& b) {
  if (a.relation_oid() != b.relation_oid() || a.namespace_name() != b.namespace_name() ||
      a.relation_name() != b.relation_name() || a.replica_identity() != b.replica_identity() ||
      a.columns_size() != b.columns_size()) {
    return false;
  }
  for (int i = 0; i < a.columns_size(); ++i) {
    const RelationSchema::Column& x = a.columns(i);
    const RelationSchema::Column& y = b.columns(i);
    if (x.name() != y.name() || x.type_oid() != y.type_oid() ||
        x.type_modifier() != y.type_modifier() || x.is_key() != y.is_key()) {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<uint32_t> RocksChangeLog::RecordRelation(const RelationSchema& schema) {
  const Oid oid = schema.relation_oid();
  if (oid == 0) {
    return Invalid(absl::StatusCode::kInvalidArgument,
                   absl::StrCat("RecordRelation of \"", schema.namespace_name(), ".",
                                schema.relation_name(), "\" without a relation OID"));
  }
  uint32_t latest_version = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = latest_relations_.find(oid);
    if (it != latest_relations_.end()) {
      if (SameShape(it->second, schema)) return it->second.version();
      latest_version = it->second.version();
    }
  }
  if (state_ == TxnState::kSkipping && latest_version > 1) {
    // A replay decodes old transactions with the schema they had; reuse the
    // version stored then instead of minting a new one per reconnect.
    TRICKLE_ASSIGN_OR_RETURN(std::shared_ptr<Store> store, UseStore());
    rocksdb::ReadOptions ro;
    std::string upper = keys::RelationKey(oid, latest_version);
    rocksdb::Slice upper_slice(upper);
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(store->db->NewIterator(ro, store->meta));
    uint32_t match = 0;  // the newest identical version; keys are in version order
    for (it->Seek(keys::RelationKey(oid, 1)); it->Valid(); it->Next()) {
      RelationSchema old;
      if (old.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())) &&
          SameShape(old, schema)) {
        match = old.version();
      }
    }
    if (match != 0) return match;
  }
  TRICKLE_RETURN_IF_ERROR(RecoverIfNeeded(absl::StrCat("storing relation ", oid)));
  RelationSchema stored = schema;
  stored.set_version(latest_version + 1);
  if (stored.first_seen_lsn() == 0 && state_ == TxnState::kOpen) {
    stored.set_first_seen_lsn(txn_.commit_lsn());
  }
  TRICKLE_ASSIGN_OR_RETURN(std::shared_ptr<Store> store, UseStore());
  rocksdb::WriteBatch batch;
  batch.Put(store->meta, keys::RelationKey(oid, stored.version()), stored.SerializeAsString());
  rocksdb::Status s = Write(*store, &batch, write_options_);
  if (!s.ok()) {
    return Error(s,
                 absl::StrCat("write of schema version ", stored.version(), " of relation ", oid,
                              " (\"", schema.namespace_name(), ".", schema.relation_name(), "\")"),
                 absl::StrCat(NotConfirmedPast(),
                              "; free disk space or fix the I/O error, then receive the "
                              "transaction again"));
  }
  uint32_t version = stored.version();
  absl::MutexLock lock(&mu_);
  latest_relations_[oid] = std::move(stored);
  return version;
}

absl::StatusOr<RelationSchema> RocksChangeLog::GetRelation(Oid relation, uint32_t version) const {
  TRICKLE_ASSIGN_OR_RETURN(std::shared_ptr<Store> store, UseStore());
  std::string value;
  rocksdb::Status s = store->db->Get(rocksdb::ReadOptions(), store->meta,
                                     keys::RelationKey(relation, version), &value);
  if (s.IsNotFound()) {
    return Invalid(absl::StatusCode::kNotFound,
                   absl::StrCat("relation ", relation, " has no schema version ", version));
  }
  if (!s.ok()) {
    return Error(s, absl::StrCat("read of schema version ", version, " of relation ", relation),
                 "retry; if it persists, check the storage");
  }
  RelationSchema schema;
  if (!schema.ParseFromString(value)) {
    return Invalid(absl::StatusCode::kDataLoss,
                   absl::StrCat("schema version ", version, " of relation ", relation,
                                " is malformed"));
  }
  return schema;
}

absl::StatusOr<std::vector<RelationSchema>> RocksChangeLog::LatestRelations() const {
  absl::MutexLock lock(&mu_);
  std::vector<RelationSchema> out;
  out.reserve(latest_relations_.size());
  for (const auto& [oid, schema] : latest_relations_) out.push_back(schema);
  return out;
}

absl::Status RocksChangeLog::PutProgress(const std::string& key, const std::string& value) {
  TRICKLE_RETURN_IF_ERROR(RecoverIfNeeded(absl::StrCat("storing progress \"", key, "\"")));
  TRICKLE_ASSIGN_OR_RETURN(std::shared_ptr<Store> store, UseStore());
  rocksdb::WriteOptions wo = write_options_;
  wo.sync = true;
  rocksdb::WriteBatch batch;
  batch.Put(store->meta, keys::ProgressKey(key), value);
  rocksdb::Status s = Write(*store, &batch, wo);
  if (!s.ok()) {
    return Error(s, absl::StrCat("write of progress \"", key, "\""),
                 "the previous value stays; free disk space or fix the I/O error, then retry");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> RocksChangeLog::GetProgress(
    const std::string& key) const {
  TRICKLE_ASSIGN_OR_RETURN(std::shared_ptr<Store> store, UseStore());
  std::string value;
  rocksdb::Status s =
      store->db->Get(rocksdb::ReadOptions(), store->meta, keys::ProgressKey(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) {
    return Error(s, absl::StrCat("read of progress \"", key, "\""),
                 "retry; if it persists, check the storage");
  }
  return std::optional<std::string>(std::move(value));
}

}  // namespace trickle::storage::internal

namespace trickle::storage {

namespace {
constexpr char kCompleteFromKey[] = "capture.complete_from";
}  // namespace

absl::StatusOr<Lsn> CompleteFrom(const ChangeLog& log) {
  TRICKLE_ASSIGN_OR_RETURN(std::optional<std::string> stored, log.GetProgress(kCompleteFromKey));
  if (!stored) return Lsn{0};
  auto lsn = ParseLsn(*stored);
  if (!lsn.ok()) {
    return absl::DataLossError(absl::StrCat("change log progress \"", kCompleteFromKey, "\" holds \"", *stored,
                                            "\", not an LSN: ", lsn.status().message()));
  }
  return *lsn;
}

absl::Status SetCompleteFrom(ChangeLog& log, Lsn lsn) {
  TRICKLE_ASSIGN_OR_RETURN(Lsn current, CompleteFrom(log));
  if (lsn <= current) return absl::OkStatus();
  return log.PutProgress(kCompleteFromKey, FormatLsn(lsn));
}

}  // namespace trickle::storage
