// RocksDB implementation of ChangeLog, shared by the files that implement
// it, one responsibility each:
//
//   rocks_change_log.cc       the instance: errors, the store in use, every
//                             write and WAL sync
//   change_log_open.cc        opening: column families, loading the stored
//                             state, deleting what a crash left uncommitted
//   change_log_recovery.cc    storage faults: probe, reopen
//   change_log_append.cc      the writer: transactions, chunks, commit, sync
//   change_log_read.cc        readers: changes, transaction records, stats
//   change_log_trim.cc        trim points and the compaction filter
//   change_log_metadata.cc    relation schema versions and progress
//
// The byte format, the recovery rules and the reasons for the column-family
// split are in docs/change_log_format.md; these files enforce the invariants
// listed in change_log.h. Internal to storage/.
//
// Locks, in acquisition order: recovery_mu_ (one storage recovery at a time)
// -> write_mu_ (writes that read-modify-write shared metadata) -> io_mu_
// (every RocksDB write and WAL sync). mu_ (the in-memory copy of the
// metadata) and store_mu_ are leaves. No lock is held across a reader's
// callback.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/compaction_filter.h"
#include "rocksdb/db.h"
#include "rocksdb/listener.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"
#include "storage/change_encoding.h"
#include "storage/change_log.h"

namespace trickle::storage::internal {

// Maps a RocksDB failure to the absl code a caller branches on: a full disk
// is ResourceExhausted and I/O trouble is Unavailable (both clear when the
// fault does; retry), corruption is DataLoss (do not retry).
absl::StatusCode CodeFor(const rocksdb::Status& s);

// First change key of `relation` after every change at `commit_lsn`.
std::string ChangeKeyAfterLsn(Oid relation, Lsn commit_lsn);

// A count or LSN as a stored value (BE64).
std::string EncodeCount(uint64_t n);

// The trim points compaction may act on: only durable ones (their 'x' and
// trim-floor records are synced), so that a crash can never bring back a
// trim point below data a compaction already dropped. Shared by the change
// log and the compaction filter factories of every instance it opens.
struct DurableTrims {
  absl::Mutex mu;
  absl::flat_hash_map<Oid, Lsn> points ABSL_GUARDED_BY(mu);
  Lsn floor ABSL_GUARDED_BY(mu) = 0;
};

// The compaction filter factory of the changes family (changes = true) or
// the transactions family: drops keys below the durable trim points
// (change_log_trim.cc).
std::shared_ptr<rocksdb::CompactionFilterFactory> NewTrimFilterFactory(
    bool changes, std::shared_ptr<DurableTrims> trims);

// The listener that takes error recovery away from RocksDB's background
// threads (change_log_recovery.cc). `needs_recovery` is the ChangeLog's and
// outlives every instance.
std::shared_ptr<rocksdb::EventListener> NewTakeOverRecovery(std::atomic<bool>* needs_recovery);

// One open RocksDB instance and its column families. The change log replaces
// it as a whole when it reopens the database after a storage error; every
// call holds a shared_ptr to the instance it uses, and a reopen waits for
// those calls to finish before it closes the old one.
struct Store {
  std::unique_ptr<rocksdb::DB> db;
  rocksdb::ColumnFamilyHandle* meta = nullptr;  // owned
  rocksdb::ColumnFamilyHandle* changes = nullptr;
  rocksdb::ColumnFamilyHandle* transactions = nullptr;
  // Opened read-only because the storage still failed: readers keep working,
  // writes fail until a later call reopens it for writing.
  bool read_only = false;
  // Counts opens. A transaction whose rows went to an older instance fails:
  // the reopen deleted them (they were above the high-water).
  uint64_t generation = 0;

  ~Store() {
    if (db == nullptr) return;
    for (rocksdb::ColumnFamilyHandle* cf : {meta, changes, transactions}) {
      if (cf != nullptr) db->DestroyColumnFamilyHandle(cf).PermitUncheckedError();
    }
    db->Close().PermitUncheckedError();
  }
  std::vector<rocksdb::ColumnFamilyHandle*> families() const {
    return {meta, changes, transactions};
  }
};

class RocksChangeLog final : public ChangeLog {
 public:
  explicit RocksChangeLog(ChangeLogOptions options) : options_(std::move(options)) {}
  ~RocksChangeLog() override;

  // Opens the database for the first time. Called once, before any other call.
  absl::Status Open();

  absl::StatusOr<bool> BeginTransaction(Lsn commit_lsn, uint32_t xid,
                                        int64_t commit_time) override;
  absl::Status Append(Oid relation, const ChangeRecord& change) override;
  absl::Status AppendEncoded(Oid relation, std::string_view change) override;
  absl::Status AddFenceToken(const std::string& token) override;
  absl::Status CommitTransaction(Lsn end_lsn) override;
  absl::Status AbortTransaction() override;
  absl::Status Sync() override;
  Lsn durable_lsn() const override;
  Lsn high_water_lsn() const override;

  absl::StatusOr<uint32_t> RecordRelation(const RelationSchema& schema) override;
  absl::StatusOr<RelationSchema> GetRelation(Oid relation, uint32_t version) const override;
  absl::StatusOr<std::vector<RelationSchema>> LatestRelations() const override;

  absl::Status ReadChanges(Oid relation, Lsn from, Lsn to,
                           const std::function<absl::Status(const LoggedChange&)>& fn) const override;
  absl::StatusOr<std::vector<TransactionRecord>> ReadTransactions(Lsn from, Lsn to) const override;

  absl::Status Trim(Oid relation, Lsn below) override;
  ChangeLogStats Stats() const override;

  absl::Status PutProgress(const std::string& key, const std::string& value) override;
  absl::StatusOr<std::optional<std::string>> GetProgress(const std::string& key) const override;

 private:
  // Where the writer is in the stream. Touched by the writer thread only.
  enum class TxnState {
    kIdle,      // between transactions
    kOpen,      // accepted by BeginTransaction; changes are being staged
    kSkipping,  // already stored (replay): Append/Commit are no-ops
    kFailed,    // a write of this transaction failed: abort and re-receive
  };

  // A transaction whose rows may be in RocksDB without a commit record and
  // whose delete on abort has not succeeded yet.
  struct PendingCleanup {
    Lsn commit_lsn;
    std::vector<Oid> relations;
  };

  // "change log at <path>: <what> failed: <rocksdb status>; <action>".
  absl::Status Error(const rocksdb::Status& s, absl::string_view what,
                     absl::string_view action) const;
  absl::Status Invalid(absl::StatusCode code, absl::string_view message) const;
  std::string NotConfirmedPast() const;

  // The current instance, or Unavailable while a reopen is under way.
  absl::StatusOr<std::shared_ptr<Store>> UseStore() const;
  // Every write and WAL sync goes through these. A failure marks the
  // database as needing recovery, and until then nothing reaches RocksDB:
  // after a failed WAL write or sync, RocksDB 7.8's WAL writer refuses (in
  // Debian's build: asserts on) any further write to that file.
  rocksdb::Status Write(Store& store, rocksdb::WriteBatch* batch,
                        const rocksdb::WriteOptions& wo);
  rocksdb::Status SyncWal(Store& store);

  // After an earlier failed write or sync: checks the storage takes writes
  // again, then closes and reopens the database. `operation` names the call
  // that needs it, for the message.
  absl::Status RecoverIfNeeded(absl::string_view operation);
  // A small write and fsync through the same Env, and a free-space check:
  // fails while the fault lasts, so a reopen is not attempted in vain.
  absl::Status ProbeStorage(absl::string_view operation) const;
  absl::Status Reopen(absl::string_view operation) ABSL_EXCLUSIVE_LOCKS_REQUIRED(recovery_mu_);

  absl::StatusOr<std::shared_ptr<Store>> OpenStore(bool read_only);
  // Loads the stored metadata into memory; for a writable store also makes
  // recovered data durable and deletes uncommitted rows.
  absl::Status InitializeFrom(Store& store);
  absl::Status LoadState(Store& store);
  absl::Status DeleteUncommittedAboveHighWater(Store& store);

  // Writes the staged batch of the open transaction.
  absl::Status FlushStaged();
  // The open chunk of `relation` in the open transaction (created empty).
  ChangeChunkBuilder* ChunkFor(Oid relation);
  // Moves a chunk (all non-empty chunks) of the open transaction into the
  // staged batch, under its final key.
  absl::Status StageChunk(Store& store, Oid relation, ChangeChunkBuilder& chunk);
  absl::Status StageAllChunks(Store& store);
  // The instance the open transaction writes to; fails the transaction when
  // the database was reopened since it began.
  absl::StatusOr<std::shared_ptr<Store>> CurrentTransactionStore();
  absl::Status FailTransaction(const rocksdb::Status& s);
  // Deletes rows of aborted transactions (pending_cleanups_).
  absl::Status RunPendingCleanups();
  void ResetTransaction();
  void NoteStaged();
  absl::Status TransactionFailedError(absl::string_view call) const;

  const ChangeLogOptions options_;
  rocksdb::WriteOptions write_options_;  // WAL on, sync off: Sync() fsyncs

  mutable absl::Mutex store_mu_;
  std::shared_ptr<Store> store_ ABSL_GUARDED_BY(store_mu_);

  // ---- Writer-thread state (BeginTransaction .. Sync); no lock.
  TxnState state_ = TxnState::kIdle;
  TransactionRecord txn_;
  uint32_t next_seq_ = 0;
  absl::btree_set<Oid> txn_relations_;
  bool txn_wrote_rows_ = false;  // some batch of txn_ reached (or tried) RocksDB
  // The transaction's open chunk per relation; staged_ takes a chunk when it
  // is full, when the batch is written, and at the commit.
  absl::flat_hash_map<Oid, std::unique_ptr<ChangeChunkBuilder>> chunks_;
  Oid last_relation_ = 0;                    // the relation of last_chunk_
  ChangeChunkBuilder* last_chunk_ = nullptr;  // in chunks_; null when reset
  size_t chunk_bytes_open_ = 0;              // bytes in chunks_
  std::string chunk_key_;
  rocksdb::WriteBatch staged_;
  std::string value_buffer_;
  absl::Status txn_error_;
  std::vector<PendingCleanup> pending_cleanups_;
  uint64_t txn_generation_ = 0;  // Store::generation the transaction writes to

  // ---- Shared between threads.
  std::atomic<bool> needs_recovery_{false};
  std::atomic<uint64_t> staged_bytes_{0};
  std::atomic<uint64_t> peak_staged_bytes_{0};

  absl::Mutex recovery_mu_ ABSL_ACQUIRED_BEFORE(write_mu_);
  uint64_t last_generation_ ABSL_GUARDED_BY(recovery_mu_) = 0;

  // Serialises the writes that read-modify-write shared metadata (commit
  // record + count + trim points vs. Trim, and reloading it on reopen).
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(io_mu_);
  // Makes "check needs_recovery_, then write or sync" atomic.
  absl::Mutex io_mu_;

  // Guards the in-memory copy of the stored metadata, read by any thread.
  // Held only for short sections, never across RocksDB I/O.
  mutable absl::Mutex mu_;
  Lsn high_water_commit_ ABSL_GUARDED_BY(mu_) = 0;
  Lsn high_water_end_ ABSL_GUARDED_BY(mu_) = 0;
  Lsn durable_lsn_ ABSL_GUARDED_BY(mu_) = 0;
  // End LSN of the last committed transaction: what Sync makes durable.
  Lsn last_committed_end_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t transaction_count_ ABSL_GUARDED_BY(mu_) = 0;
  // Transaction records below this are trimmed (the stored trim floor): the
  // lowest trim point when it last rose, at most the high-water + 1 then, so
  // a later commit is never below it. Never moves back.
  Lsn transactions_trimmed_below_ ABSL_GUARDED_BY(mu_) = 0;
  // A trim was written since the last WAL sync: the next Sync publishes the
  // trim points to the compaction filter.
  bool trims_unsynced_ ABSL_GUARDED_BY(mu_) = false;
  absl::btree_map<Oid, RelationSchema> latest_relations_ ABSL_GUARDED_BY(mu_);
  // Every relation that ever had changes or was trimmed -> its trim point.
  absl::btree_map<Oid, Lsn> trim_points_ ABSL_GUARDED_BY(mu_);

  // What the compaction filter may drop: the trim points as of the last WAL
  // sync that followed them (see DurableTrims).
  const std::shared_ptr<DurableTrims> durable_trims_ = std::make_shared<DurableTrims>();
  void PublishDurableTrims(const absl::btree_map<Oid, Lsn>& points, Lsn floor);
};

}  // namespace trickle::storage::internal
