// The writer side of the change log: a transaction's changes staged in
// chunks and written in bounded batches, its commit record, abort, and the
// group-commit sync (docs/change_log_format.md, "Writing a transaction").
#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "storage/change_log_keys.h"
#include "storage/rocks_change_log.h"

namespace trickle::storage::internal {

void RocksChangeLog::ResetTransaction() {
  state_ = TxnState::kIdle;
  txn_.Clear();
  next_seq_ = 0;
  txn_relations_.clear();
  txn_wrote_rows_ = false;
  chunks_.clear();
  last_chunk_ = nullptr;
  chunk_bytes_open_ = 0;
  staged_.Clear();
  txn_error_ = absl::OkStatus();
  staged_bytes_.store(0);
}

void RocksChangeLog::NoteStaged() {
  uint64_t n = staged_.GetDataSize() + chunk_bytes_open_;
  staged_bytes_.store(n);
  if (n > peak_staged_bytes_.load()) peak_staged_bytes_.store(n);
}

absl::Status RocksChangeLog::TransactionFailedError(absl::string_view call) const {
  return Invalid(absl::StatusCode::kFailedPrecondition,
                 absl::StrCat(call, " in transaction ", FormatLsn(txn_.commit_lsn()),
                              " after a write of it failed (", txn_error_.message(),
                              "); abort it and receive it again"));
}

absl::Status RocksChangeLog::FailTransaction(const rocksdb::Status& s) {
  state_ = TxnState::kFailed;
  txn_error_ = Error(s, absl::StrCat("write of transaction ", FormatLsn(txn_.commit_lsn())),
                     absl::StrCat(NotConfirmedPast(),
                                  "; abort the transaction and receive it again"));
  return txn_error_;
}

absl::Status RocksChangeLog::RunPendingCleanups() {
  if (pending_cleanups_.empty()) return absl::OkStatus();
  TRICKLE_RETURN_IF_ERROR(RecoverIfNeeded("deleting the rows of an aborted transaction"));
  TRICKLE_ASSIGN_OR_RETURN(std::shared_ptr<Store> store, UseStore());
  rocksdb::WriteBatch batch;
  for (const PendingCleanup& c : pending_cleanups_) {
    for (Oid r : c.relations) {
      batch.DeleteRange(store->changes, keys::ChangeKeyLowerBound(r, c.commit_lsn),
                        ChangeKeyAfterLsn(r, c.commit_lsn));
    }
  }
  rocksdb::Status s = Write(*store, &batch, write_options_);
  if (!s.ok()) {
    return Error(s,
                 absl::StrCat("delete of the rows of aborted transaction ",
                              FormatLsn(pending_cleanups_.front().commit_lsn)),
                 absl::StrCat("the rows stay invisible; free disk space or fix the I/O error, "
                              "then retry; ",
                              NotConfirmedPast()));
  }
  pending_cleanups_.clear();
  return absl::OkStatus();
}

absl::StatusOr<bool> RocksChangeLog::BeginTransaction(Lsn commit_lsn, uint32_t xid,
                                                      int64_t commit_time) {
  if (commit_lsn == kInvalidLsn) {
    return Invalid(absl::StatusCode::kInvalidArgument,
                   absl::StrCat("BeginTransaction of xid ", xid, " with commit LSN 0/0"));
  }
  if (state_ == TxnState::kOpen || state_ == TxnState::kFailed) {
    // The stream restarted mid-transaction. AbortTransaction queues the
    // delete of its rows even when it cannot run it now.
    AbortTransaction().IgnoreError();
  }
  ResetTransaction();
  // Leave RocksDB's error state before the transaction's first write rather
  // than in the middle of it. A reopen here may move the high-water (a write
  // reported failed can turn out to have reached the WAL), so it comes first.
  TRICKLE_RETURN_IF_ERROR(RecoverIfNeeded(absl::StrCat("transaction ", FormatLsn(commit_lsn))));
  // Nothing is accepted while rows of an aborted transaction may linger: a
  // replay that differs from the first attempt must not meet them.
  TRICKLE_RETURN_IF_ERROR(RunPendingCleanups());
  if (commit_lsn <= high_water_lsn()) {
    state_ = TxnState::kSkipping;
    return false;
  }
  TRICKLE_ASSIGN_OR_RETURN(std::shared_ptr<Store> store, UseStore());
  txn_generation_ = store->generation;
  state_ = TxnState::kOpen;
  txn_.set_xid(xid);
  txn_.set_commit_lsn(commit_lsn);
  txn_.set_commit_time(commit_time);
  return true;
}

absl::Status RocksChangeLog::Append(Oid relation, const ChangeRecord& change) {
  if (state_ != TxnState::kOpen) return AppendEncoded(relation, {});  // reports the state
  if (!change.SerializeToString(&value_buffer_)) {
    return Invalid(absl::StatusCode::kInvalidArgument,
                   absl::StrCat("change ", next_seq_, " of relation ", relation,
                                " in transaction ", FormatLsn(txn_.commit_lsn()),
                                " cannot be serialized (larger than 2 GiB?)"));
  }
  return AppendEncoded(relation, value_buffer_);
}

absl::Status RocksChangeLog::AppendEncoded(Oid relation, std::string_view change) {
  switch (state_) {
    case TxnState::kSkipping:
      return absl::OkStatus();
    case TxnState::kIdle:
      return Invalid(absl::StatusCode::kFailedPrecondition,
                     absl::StrCat("Append of a change of relation ", relation,
                                  " outside a transaction; call BeginTransaction first"));
    case TxnState::kFailed:
      return TransactionFailedError("Append");
    case TxnState::kOpen:
      break;
  }
  if (next_seq_ == UINT32_MAX) {
    return Invalid(absl::StatusCode::kResourceExhausted,
                   absl::StrCat("transaction ", FormatLsn(txn_.commit_lsn()),
                                " has more than 2^32-1 changes"));
  }
  ChangeChunkBuilder* chunk = ChunkFor(relation);
  const size_t before = chunk->size();
  chunk->Add(next_seq_, change);
  chunk_bytes_open_ += chunk->size() - before;
  ++next_seq_;
  NoteStaged();
  if (staged_.GetDataSize() + chunk_bytes_open_ >= options_.batch_bytes) {
    TRICKLE_ASSIGN_OR_RETURN(std::shared_ptr<Store> store, UseStore());
    TRICKLE_RETURN_IF_ERROR(StageAllChunks(*store));
    return FlushStaged();
  }
  if (chunk->size() >= options_.chunk_bytes) {
    TRICKLE_ASSIGN_OR_RETURN(std::shared_ptr<Store> store, UseStore());
    return StageChunk(*store, relation, *chunk);
  }
  return absl::OkStatus();
}

ChangeChunkBuilder* RocksChangeLog::ChunkFor(Oid relation) {
  if (last_chunk_ != nullptr && last_relation_ == relation) return last_chunk_;
  std::unique_ptr<ChangeChunkBuilder>& chunk = chunks_[relation];
  if (chunk == nullptr) {
    chunk = std::make_unique<ChangeChunkBuilder>();
    txn_relations_.insert(relation);
  }
  last_relation_ = relation;
  last_chunk_ = chunk.get();
  return last_chunk_;
}

absl::Status RocksChangeLog::StageChunk(Store& store, Oid relation, ChangeChunkBuilder& chunk) {
  if (chunk.empty()) return absl::OkStatus();
  chunk_key_ = keys::ChangeKey(relation, txn_.commit_lsn(), chunk.first_sequence());
  rocksdb::Slice key(chunk_key_);
  rocksdb::Slice value[2] = {rocksdb::Slice(chunk.Head()), rocksdb::Slice(chunk.body())};
  // The batch stores the family's ID, not the handle: it stays valid for a
  // reopened instance too.
  rocksdb::Status s =
      staged_.Put(store.changes, rocksdb::SliceParts(&key, 1), rocksdb::SliceParts(value, 2));
  if (!s.ok()) {
    return Error(s, absl::StrCat("staging the changes of relation ", relation, " from ",
                                 chunk.first_sequence(), " in transaction ",
                                 FormatLsn(txn_.commit_lsn())),
                 "a change is too large for a RocksDB write batch");
  }
  chunk_bytes_open_ -= chunk.size();
  chunk.Clear();
  NoteStaged();
  return absl::OkStatus();
}

absl::Status RocksChangeLog::StageAllChunks(Store& store) {
  for (auto& [relation, chunk] : chunks_) {
    TRICKLE_RETURN_IF_ERROR(StageChunk(store, relation, *chunk));
  }
  return absl::OkStatus();
}

absl::Status RocksChangeLog::FlushStaged() {
  txn_wrote_rows_ = true;
  TRICKLE_ASSIGN_OR_RETURN(std::shared_ptr<Store> store, CurrentTransactionStore());
  rocksdb::Status s = Write(*store, &staged_, write_options_);
  if (!s.ok()) return FailTransaction(s);
  staged_.Clear();
  NoteStaged();
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<Store>> RocksChangeLog::CurrentTransactionStore() {
  // A failed Trim or PutProgress on another thread may have left the
  // database needing recovery; a reopen then fails this transaction below.
  absl::Status s = RecoverIfNeeded(absl::StrCat("transaction ", FormatLsn(txn_.commit_lsn())));
  absl::StatusOr<std::shared_ptr<Store>> store = UseStore();
  if (s.ok()) s = store.status();
  if (s.ok() && (*store)->generation != txn_generation_) {
    s = Invalid(absl::StatusCode::kUnavailable,
                absl::StrCat("the database was reopened after a storage error while "
                             "transaction ",
                             FormatLsn(txn_.commit_lsn()), " was open"));
  }
  if (!s.ok()) {
    state_ = TxnState::kFailed;
    txn_error_ = s;
    return s;
  }
  return store;
}

absl::Status RocksChangeLog::AddFenceToken(const std::string& token) {
  switch (state_) {
    case TxnState::kSkipping:
      return absl::OkStatus();
    case TxnState::kIdle:
      return Invalid(absl::StatusCode::kFailedPrecondition,
                     absl::StrCat("fence token \"", token,
                                  "\" outside a transaction; call BeginTransaction first"));
    case TxnState::kFailed:
      return TransactionFailedError("AddFenceToken");
    case TxnState::kOpen:
      break;
  }
  txn_.add_fence_tokens(token);
  return absl::OkStatus();
}

absl::Status RocksChangeLog::CommitTransaction(Lsn end_lsn) {
  switch (state_) {
    case TxnState::kSkipping:
      ResetTransaction();
      return absl::OkStatus();
    case TxnState::kIdle:
      return Invalid(absl::StatusCode::kFailedPrecondition,
                     absl::StrCat("CommitTransaction at ", FormatLsn(end_lsn),
                                  " outside a transaction; call BeginTransaction first"));
    case TxnState::kFailed:
      return TransactionFailedError("CommitTransaction");
    case TxnState::kOpen:
      break;
  }
  const Lsn commit_lsn = txn_.commit_lsn();
  if (end_lsn < commit_lsn) {
    return Invalid(absl::StatusCode::kInvalidArgument,
                   absl::StrCat("transaction ", FormatLsn(commit_lsn), " ends at ",
                                FormatLsn(end_lsn), ", before its commit record"));
  }
  txn_wrote_rows_ = true;
  TRICKLE_ASSIGN_OR_RETURN(std::shared_ptr<Store> store, CurrentTransactionStore());
  TRICKLE_RETURN_IF_ERROR(StageAllChunks(*store));
  txn_.set_end_lsn(end_lsn);
  txn_.set_change_count(next_seq_);
  txn_.clear_relation_oids();
  for (Oid r : txn_relations_) txn_.add_relation_oids(r);

  absl::MutexLock write_lock(&write_mu_);
  uint64_t count;
  std::vector<Oid> first_seen;  // relations that never had changes before
  {
    absl::MutexLock lock(&mu_);
    count = transaction_count_ + 1;
    for (Oid r : txn_relations_) {
      if (!trim_points_.contains(r)) first_seen.push_back(r);
    }
  }
  // The commit record, the high-water (with the end LSN that becomes the
  // durable position once synced) and the count go in one atomic batch with
  // the transaction's last rows.
  Store& st = *store;
  staged_.Put(st.transactions, keys::TransactionKey(commit_lsn), txn_.SerializeAsString());
  staged_.Put(st.meta, keys::MetaKey(keys::kHighWaterName),
              keys::EncodeHighWater(commit_lsn, end_lsn));
  staged_.Put(st.meta, keys::MetaKey(keys::kTransactionCountName), EncodeCount(count));
  for (Oid r : first_seen) staged_.Put(st.meta, keys::TrimPointKey(r), EncodeCount(0));
  NoteStaged();

  rocksdb::Status s = Write(st, &staged_, write_options_);
  if (!s.ok()) return FailTransaction(s);
  {
    absl::MutexLock lock(&mu_);
    high_water_commit_ = commit_lsn;
    high_water_end_ = end_lsn;
    last_committed_end_ = end_lsn;
    transaction_count_ = count;
    for (Oid r : first_seen) trim_points_[r] = 0;
  }
  ResetTransaction();
  return absl::OkStatus();
}

absl::Status RocksChangeLog::AbortTransaction() {
  if (state_ == TxnState::kIdle || state_ == TxnState::kSkipping) {
    ResetTransaction();
    return absl::OkStatus();
  }
  if (txn_wrote_rows_) {
    pending_cleanups_.push_back(
        {txn_.commit_lsn(), std::vector<Oid>(txn_relations_.begin(), txn_relations_.end())});
  }
  ResetTransaction();
  return RunPendingCleanups();
}

absl::Status RocksChangeLog::Sync() {
  Lsn target;
  {
    absl::MutexLock lock(&mu_);
    target = last_committed_end_;
    if (target == durable_lsn_ && !trims_unsynced_ && !needs_recovery_.load()) {
      return absl::OkStatus();
    }
  }
  // A reopen makes everything it recovers durable and may move the
  // committed position (either way), so the target is read after it.
  TRICKLE_RETURN_IF_ERROR(RecoverIfNeeded(absl::StrCat("sync up to ", FormatLsn(target))));
  // Trim points in memory were written before this point: the sync makes
  // them durable, and then the compaction filter may act on them.
  absl::btree_map<Oid, Lsn> trims;
  Lsn floor = 0;
  bool publish_trims;
  {
    absl::MutexLock lock(&mu_);
    target = last_committed_end_;
    publish_trims = trims_unsynced_;
    if (publish_trims) {
      trims = trim_points_;
      floor = transactions_trimmed_below_;
      trims_unsynced_ = false;
    }
  }
  TRICKLE_ASSIGN_OR_RETURN(std::shared_ptr<Store> store, UseStore());
  rocksdb::Status s = SyncWal(*store);
  if (s.ok() && publish_trims) PublishDurableTrims(trims, floor);
  if (!s.ok()) {
    if (publish_trims) {
      absl::MutexLock lock(&mu_);
      trims_unsynced_ = true;
    }
    // The kernel may have dropped the WAL's dirty pages; a later fsync of
    // that file would prove nothing. The reopen at the next call rebuilds
    // the state from what is really on disk.
    return Error(s, absl::StrCat("sync of the write-ahead log up to ", FormatLsn(target)),
                 absl::StrCat(NotConfirmedPast(),
                              "; free disk space or fix the I/O error, then sync again"));
  }
  absl::MutexLock lock(&mu_);
  durable_lsn_ = std::max(durable_lsn_, target);
  return absl::OkStatus();
}

Lsn RocksChangeLog::durable_lsn() const {
  absl::MutexLock lock(&mu_);
  return durable_lsn_;
}

Lsn RocksChangeLog::high_water_lsn() const {
  absl::MutexLock lock(&mu_);
  return high_water_commit_;
}

}  // namespace trickle::storage::internal
