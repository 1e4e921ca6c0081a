// The reader side of the change log: one relation's changes between two
// LSNs, the commit records, and the stats. Safe from any thread.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "storage/change_log_keys.h"
#include "storage/rocks_change_log.h"

namespace trickle::storage::internal {

absl::Status RocksChangeLog::ReadChanges(
    Oid relation, Lsn from, Lsn to,
    const std::function<absl::Status(const LoggedChange&)>& fn) const {
  {
    // Trimmed changes may still be stored (until a flush or compaction
    // drops them); they are never read.
    absl::MutexLock lock(&mu_);
    auto point = trim_points_.find(relation);
    if (point != trim_points_.end()) from = std::max(from, point->second);
  }
  if (from >= to) return absl::OkStatus();
  TRICKLE_ASSIGN_OR_RETURN(std::shared_ptr<Store> store, UseStore());
  // One snapshot for the rows and the commit records: a transaction
  // committing meanwhile is either wholly in or wholly out.
  const rocksdb::Snapshot* snapshot = store->db->GetSnapshot();
  struct SnapshotReleaser {
    rocksdb::DB* db;
    const rocksdb::Snapshot* snapshot;
    ~SnapshotReleaser() { db->ReleaseSnapshot(snapshot); }
  } releaser{store->db.get(), snapshot};

  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  std::string upper = keys::ChangeKeyLowerBound(relation, to);
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(store->db->NewIterator(ro, store->changes));

  rocksdb::ReadOptions point_ro;
  point_ro.snapshot = snapshot;
  TransactionRecord txn;
  ChangeChunkReader chunk;
  ChangeRecord change;
  std::string value;
  it->Seek(keys::ChangeKeyLowerBound(relation, from));
  while (it->Valid()) {
    std::optional<keys::ChangeKeyParts> parts = keys::ParseChangeKey(it->key().ToStringView());
    if (!parts || parts->relation != relation) {
      return Invalid(absl::StatusCode::kDataLoss,
                     absl::StrCat("malformed change key in relation ", relation, "'s range"));
    }
    if (txn.commit_lsn() != parts->commit_lsn) {
      txn.Clear();
      rocksdb::Status s = store->db->Get(point_ro, store->transactions,
                                         keys::TransactionKey(parts->commit_lsn), &value);
      bool visible = false;
      if (s.ok()) {
        if (!txn.ParseFromString(value)) {
          return Invalid(absl::StatusCode::kDataLoss,
                         absl::StrCat("commit record of transaction ",
                                      FormatLsn(parts->commit_lsn), " is malformed"));
        }
        visible = std::find(txn.relation_oids().begin(), txn.relation_oids().end(), relation) !=
                  txn.relation_oids().end();
      } else if (!s.IsNotFound()) {
        return Error(s, absl::StrCat("read of transaction ", FormatLsn(parts->commit_lsn)),
                     "retry; if it persists, check the storage");
      }
      if (!visible) {
        // No commit record (uncommitted or aborted rows) or rows of a relation
        // the committed transaction did not touch: skip the whole LSN.
        txn.Clear();
        if (parts->commit_lsn == UINT64_MAX) break;
        it->Seek(ChangeKeyAfterLsn(relation, parts->commit_lsn));
        continue;
      }
    }
    if (parts->seq >= txn.change_count()) {
      // Beyond the committed transaction's last change: stale rows of an
      // earlier attempt. Sequences are sorted, so the rest of the LSN is too
      // (a chunk's first sequence is its key's).
      if (parts->commit_lsn == UINT64_MAX) break;
      it->Seek(ChangeKeyAfterLsn(relation, parts->commit_lsn));
      continue;
    }
    if (!chunk.Reset(it->value().ToStringView(), parts->seq)) {
      return Invalid(absl::StatusCode::kDataLoss,
                     absl::StrCat("the chunk of changes from ", parts->seq, " of relation ",
                                  relation, " in transaction ", FormatLsn(parts->commit_lsn),
                                  " is malformed"));
    }
    bool past_count = false;
    uint32_t seq;
    std::string_view bytes;
    while (chunk.Next(&seq, &bytes)) {
      if (seq >= txn.change_count()) {
        past_count = true;  // as above, from inside the chunk
        break;
      }
      change.Clear();
      if (!change.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
        return Invalid(absl::StatusCode::kDataLoss,
                       absl::StrCat("change ", seq, " of relation ", relation, " in transaction ",
                                    FormatLsn(parts->commit_lsn), " is malformed"));
      }
      TRICKLE_RETURN_IF_ERROR(fn(LoggedChange{&txn, seq, &change}));
    }
    if (past_count) {
      if (parts->commit_lsn == UINT64_MAX) break;
      it->Seek(ChangeKeyAfterLsn(relation, parts->commit_lsn));
      continue;
    }
    it->Next();
  }
  if (!it->status().ok()) {
    return Error(it->status(), absl::StrCat("read of relation ", relation, "'s changes"),
                 "retry; if it persists, check the storage");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TransactionRecord>> RocksChangeLog::ReadTransactions(Lsn from,
                                                                                Lsn to) const {
  std::vector<TransactionRecord> out;
  {
    absl::MutexLock lock(&mu_);
    from = std::max(from, transactions_trimmed_below_);  // as in ReadChanges
  }
  if (from >= to) return out;
  TRICKLE_ASSIGN_OR_RETURN(std::shared_ptr<Store> store, UseStore());
  rocksdb::ReadOptions ro;
  std::string upper = keys::TransactionKey(to);
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(store->db->NewIterator(ro, store->transactions));
  for (it->Seek(keys::TransactionKey(from)); it->Valid(); it->Next()) {
    TransactionRecord& txn = out.emplace_back();
    if (!txn.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Invalid(absl::StatusCode::kDataLoss, "a transaction record is malformed");
    }
  }
  if (!it->status().ok()) {
    return Error(it->status(), "read of transaction records",
                 "retry; if it persists, check the storage");
  }
  return out;
}

ChangeLogStats RocksChangeLog::Stats() const {
  ChangeLogStats stats;
  absl::StatusOr<std::shared_ptr<Store>> store = UseStore();
  if (store.ok()) {
    rocksdb::DB& db = *(*store)->db;
    for (rocksdb::ColumnFamilyHandle* cf : (*store)->families()) {
      uint64_t v = 0;
      if (db.GetIntProperty(cf, rocksdb::DB::Properties::kLiveSstFilesSize, &v)) {
        stats.approximate_bytes += v;
      }
      if (db.GetIntProperty(cf, rocksdb::DB::Properties::kCurSizeAllMemTables, &v)) {
        stats.approximate_bytes += v;
      }
    }
    Lsn floor;
    {
      absl::MutexLock lock(&mu_);
      floor = transactions_trimmed_below_;
    }
    std::unique_ptr<rocksdb::Iterator> it(
        db.NewIterator(rocksdb::ReadOptions(), (*store)->transactions));
    it->Seek(keys::TransactionKey(floor));  // trimmed records may still be stored
    if (it->Valid()) {
      if (std::optional<Lsn> lsn = keys::ParseTransactionKey(it->key().ToStringView())) {
        stats.oldest_commit_lsn = *lsn;
      }
    }
  }
  {
    absl::MutexLock lock(&mu_);
    stats.transaction_count = transaction_count_;
    stats.newest_commit_lsn = high_water_commit_;
    stats.durable_lsn = durable_lsn_;
  }
  stats.staged_bytes = staged_bytes_.load();
  stats.peak_staged_bytes = peak_staged_bytes_.load();
  return stats;
}

}  // namespace trickle::storage::internal
