// RocksDB implementation of ChangeLog. The byte format, the recovery rules
// and the reasons for the column-family split are in
// docs/change_log_format.md; this file enforces the invariants listed in
// change_log.h.
//
// Locks, in acquisition order: recovery_mu_ (one storage recovery at a time)
// -> write_mu_ (writes that read-modify-write shared metadata) -> io_mu_
// (every RocksDB write and WAL sync). mu_ (the in-memory copy of the
// metadata) and store_mu_ are leaves. No lock is held across a reader's
// callback.
#include "storage/change_log.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "rocksdb/compaction_filter.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/listener.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "storage/change_encoding.h"
#include "storage/change_log_keys.h"

namespace trickle::storage {
namespace {

// Column families. "default" holds the small metadata (relation schemas,
// trim points, progress, high-water); the two bulk key spaces have their own
// LSM trees so that their range tombstones (Trim, abort) and compactions never
// touch the metadata's point reads, and so that Stats can size them apart.
constexpr char kChangesFamily[] = "changes";
constexpr char kTransactionsFamily[] = "transactions";

// Bumped when the byte format changes incompatibly; Open refuses other
// versions rather than misreading them. 2: change keys hold chunks.
constexpr char kFormatVersion[] = "2";

// How long a reopen after a storage error waits for readers to finish their
// calls on the old instance before it gives up (and is retried later).
constexpr auto kReopenDrainTimeout = std::chrono::seconds(30);

// Maps a RocksDB failure to the absl code a caller branches on: a full disk
// is ResourceExhausted and I/O trouble is Unavailable (both clear when the
// fault does; retry), corruption is DataLoss (do not retry).
absl::StatusCode CodeFor(const rocksdb::Status& s) {
  if (s.IsNoSpace() || s.IsMemoryLimit() ||
      s.subcode() == rocksdb::Status::SubCode::kSpaceLimit) {
    return absl::StatusCode::kResourceExhausted;
  }
  if (s.IsCorruption()) return absl::StatusCode::kDataLoss;
  if (s.IsIOError() || s.IsBusy() || s.IsTryAgain() || s.IsTimedOut() || s.IsIncomplete() ||
      s.IsShutdownInProgress()) {
    return absl::StatusCode::kUnavailable;
  }
  if (s.IsInvalidArgument()) return absl::StatusCode::kInvalidArgument;
  return absl::StatusCode::kInternal;
}

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

// First change key of `relation` after every change at `commit_lsn`.
std::string ChangeKeyAfterLsn(Oid relation, Lsn commit_lsn) {
  if (commit_lsn == UINT64_MAX) return keys::ChangeKeyRelationEnd(relation);
  return keys::ChangeKeyLowerBound(relation, commit_lsn + 1);
}

// The changes family is written once, read by refreshes soon after and then
// trimmed: the two upper levels, where recent changes live, are not
// compressed (Snappy was the largest CPU cost of a flush, and of the whole
// capture after the socket); data that outlives them (a backlog while
// refreshes are paused) is compressed with LZ4.
void SetChangesCompression(rocksdb::ColumnFamilyOptions* options) {
  options->compression_per_level.assign(options->num_levels, rocksdb::kLZ4Compression);
  options->compression_per_level[0] = rocksdb::kNoCompression;
  options->compression_per_level[1] = rocksdb::kNoCompression;
}

std::string EncodeCount(uint64_t n) {
  std::string v;
  keys::PutBigEndian64(&v, n);
  return v;
}

// The trim points compaction may act on: only durable ones (their 'x' and
// trim-floor records are synced), so that a crash can never bring back a
// trim point below data a compaction already dropped. Shared by the change
// log and the compaction filter factories of every instance it opens.
struct DurableTrims {
  absl::Mutex mu;
  absl::flat_hash_map<Oid, Lsn> points ABSL_GUARDED_BY(mu);
  Lsn floor ABSL_GUARDED_BY(mu) = 0;
};

// Drops trimmed keys when RocksDB writes a table file (flush or compaction):
// a change of relation r below r's trim point, a commit record below the
// trim floor. Trimming therefore writes no range tombstones: readers never
// look below a trim point (ReadChanges and ReadTransactions start there), and
// the bytes go with the next flush or compaction that meets them.
class TrimFilter : public rocksdb::CompactionFilter {
 public:
  TrimFilter(bool changes, absl::flat_hash_map<Oid, Lsn> points, Lsn floor)
      : changes_(changes), points_(std::move(points)), floor_(floor) {}
  const char* Name() const override { return "trickle.TrimFilter"; }
  bool Filter(int /*level*/, const rocksdb::Slice& key, const rocksdb::Slice& /*value*/,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    if (changes_) {
      std::optional<keys::ChangeKeyParts> parts = keys::ParseChangeKey(key.ToStringView());
      if (!parts) return false;  // never drop what is not understood
      auto it = points_.find(parts->relation);
      return it != points_.end() && parts->commit_lsn < it->second;
    }
    std::optional<Lsn> lsn = keys::ParseTransactionKey(key.ToStringView());
    return lsn && *lsn < floor_;
  }

 private:
  const bool changes_;  // the changes family; else the transactions family
  const absl::flat_hash_map<Oid, Lsn> points_;
  const Lsn floor_;
};

class TrimFilterFactory : public rocksdb::CompactionFilterFactory {
 public:
  TrimFilterFactory(bool changes, std::shared_ptr<DurableTrims> trims)
      : changes_(changes), trims_(std::move(trims)) {}
  const char* Name() const override { return "trickle.TrimFilterFactory"; }
  // Flushes too: at a low write rate most trimmed changes never leave the
  // memtable, and need not reach a file at all.
  bool ShouldFilterTableFileCreation(rocksdb::TableFileCreationReason reason) const override {
    return reason == rocksdb::TableFileCreationReason::kFlush ||
           reason == rocksdb::TableFileCreationReason::kCompaction;
  }
  std::unique_ptr<rocksdb::CompactionFilter> CreateCompactionFilter(
      const rocksdb::CompactionFilter::Context& /*context*/) override {
    absl::MutexLock lock(&trims_->mu);
    if (changes_ ? trims_->points.empty() : trims_->floor == 0) return nullptr;
    return std::make_unique<TrimFilter>(changes_, changes_ ? trims_->points
                                                           : absl::flat_hash_map<Oid, Lsn>(),
                                        trims_->floor);
  }

 private:
  const bool changes_;
  const std::shared_ptr<DurableTrims> trims_;
};

// Trimmed bytes go with the compactions that new writes cause; this bounds
// how long they can stay once writes stop (files older than this are
// compacted again). The trimmed families are small when refreshes keep up.
constexpr uint64_t kTrimmedFamiliesPeriodicCompactionSeconds = 6 * 3600;

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

// Takes error recovery away from RocksDB's background threads. Left alone,
// RocksDB answers a full disk by polling free space every 5 seconds in its
// SstFileManager and resuming from there, which in 7.8 writes to the failed
// WAL again; the change log instead recovers synchronously at the start of
// the next write call (RecoverIfNeeded), so the caller's retry either works
// or reports the fault that persists. It also flags background errors (a
// failed flush or compaction) that no write of ours has met yet.
class TakeOverRecovery : public rocksdb::EventListener {
 public:
  explicit TakeOverRecovery(std::atomic<bool>* needs_recovery)
      : needs_recovery_(needs_recovery) {}
  const char* Name() const override { return "trickle.TakeOverRecovery"; }
  void OnBackgroundError(rocksdb::BackgroundErrorReason, rocksdb::Status*) override {
    needs_recovery_->store(true);
  }
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }

 private:
  std::atomic<bool>* const needs_recovery_;  // the ChangeLog's; outlives every Store
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

RocksChangeLog::~RocksChangeLog() {
  // An open transaction is simply dropped: its rows have no commit record,
  // and the next Open deletes them. The Store closes RocksDB.
  absl::MutexLock lock(&store_mu_);
  store_.reset();
}

absl::Status RocksChangeLog::Error(const rocksdb::Status& s, absl::string_view what,
                                   absl::string_view action) const {
  return absl::Status(CodeFor(s), absl::StrCat("change log at ", options_.path, ": ", what,
                                               " failed: ", s.ToString(), "; ", action));
}

absl::Status RocksChangeLog::Invalid(absl::StatusCode code, absl::string_view message) const {
  return absl::Status(code, absl::StrCat("change log at ", options_.path, ": ", message));
}

std::string RocksChangeLog::NotConfirmedPast() const {
  return absl::StrCat("the slot is not confirmed past ", FormatLsn(durable_lsn()));
}

absl::StatusOr<std::shared_ptr<Store>> RocksChangeLog::UseStore() const {
  absl::MutexLock lock(&store_mu_);
  if (store_ == nullptr) {
    return Invalid(absl::StatusCode::kUnavailable,
                   "the database is being reopened after a storage error; retry");
  }
  return store_;
}

rocksdb::Status RocksChangeLog::Write(Store& store, rocksdb::WriteBatch* batch,
                                      const rocksdb::WriteOptions& wo) {
  absl::MutexLock lock(&io_mu_);
  if (needs_recovery_.load()) {
    return rocksdb::Status::TryAgain("an earlier write failed; the next call recovers");
  }
  rocksdb::Status s = store.db->Write(wo, batch);
  if (!s.ok()) needs_recovery_.store(true);
  return s;
}

rocksdb::Status RocksChangeLog::SyncWal(Store& store) {
  absl::MutexLock lock(&io_mu_);
  if (needs_recovery_.load()) {
    return rocksdb::Status::TryAgain("an earlier write failed; the next call recovers");
  }
  rocksdb::Status s = store.db->SyncWAL();
  if (!s.ok()) needs_recovery_.store(true);
  return s;
}

// ------------------------------------------------------------------ recovery

absl::Status RocksChangeLog::ProbeStorage(absl::string_view operation) const {
  rocksdb::Env* env = options_.env != nullptr ? options_.env : rocksdb::Env::Default();
  const std::string probe = absl::StrCat(options_.path, "/TRICKLE-PROBE");
  std::unique_ptr<rocksdb::WritableFile> file;
  rocksdb::Status s = env->NewWritableFile(probe, &file, rocksdb::EnvOptions());
  if (s.ok()) s = file->Append(std::string(4096, '\0'));
  if (s.ok()) s = file->Sync();
  if (file != nullptr) file->Close().PermitUncheckedError();
  env->DeleteFile(probe).PermitUncheckedError();
  if (!s.ok()) {
    return Error(s, absl::StrCat("test write before ", operation),
                 absl::StrCat("the storage still fails; free disk space or fix the I/O "
                              "error, then retry; ",
                              NotConfirmedPast()));
  }
  // The reopen flushes what RocksDB recovers from the WAL: that much must fit.
  uint64_t free_bytes = 0;
  if (env->GetFreeSpace(options_.path, &free_bytes).ok() &&
      free_bytes < options_.memtable_bytes) {
    return Invalid(absl::StatusCode::kResourceExhausted,
                   absl::StrCat("the disk is still full before ", operation, " (", free_bytes,
                                " bytes free, ", options_.memtable_bytes,
                                " needed to flush the memtables); free disk space, then "
                                "retry; ",
                                NotConfirmedPast()));
  }
  return absl::OkStatus();
}

absl::Status RocksChangeLog::RecoverIfNeeded(absl::string_view operation) {
  if (!needs_recovery_.load()) return absl::OkStatus();
  absl::MutexLock recovery_lock(&recovery_mu_);
  if (!needs_recovery_.load()) return absl::OkStatus();  // another thread did it
  TRICKLE_RETURN_IF_ERROR(ProbeStorage(operation));
  // Not DB::Resume: in RocksDB 7.8 it writes the failed WAL's buffer again
  // (fatal, or an assertion, while the fault lasts), and after a failed
  // SyncWAL there is no background error for it to clear at all while the
  // WAL writer stays unusable. A reopen starts a fresh WAL and reloads the
  // log's state from what RocksDB recovers, which is the truth: a write
  // reported failed may have reached the WAL, a write reported done may have
  // lost its unsynced pages.
  return Reopen(operation);
}

absl::Status RocksChangeLog::Reopen(absl::string_view operation) {
  absl::MutexLock write_lock(&write_mu_);
  std::shared_ptr<Store> old;
  {
    absl::MutexLock lock(&store_mu_);
    old = std::move(store_);
  }
  if (old != nullptr) {
    // Readers that hold the old instance finish their call first; new calls
    // get Unavailable meanwhile.
    auto deadline = std::chrono::steady_clock::now() + kReopenDrainTimeout;
    while (old.use_count() > 1 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (old.use_count() > 1) {
      absl::MutexLock lock(&store_mu_);
      store_ = std::move(old);
      return Invalid(absl::StatusCode::kUnavailable,
                     absl::StrCat("reopen before ", operation,
                                  " waited too long for readers of the old instance; retry"));
    }
    old.reset();  // closes RocksDB and releases its LOCK file
  }
  // The new instance starts clean; InitializeFrom's writes must reach it.
  needs_recovery_.store(false);
  absl::Status status;
  absl::StatusOr<std::shared_ptr<Store>> fresh = OpenStore(/*read_only=*/false);
  if (fresh.ok()) {
    status = InitializeFrom(**fresh);
    if (status.ok() && !needs_recovery_.load()) {
      (*fresh)->generation = ++last_generation_;
      absl::MutexLock lock(&store_mu_);
      store_ = std::move(*fresh);
      return absl::OkStatus();
    }
    if (status.ok()) status = Invalid(absl::StatusCode::kUnavailable, "storage error at reopen");
    fresh->reset();
  } else {
    status = fresh.status();
  }
  needs_recovery_.store(true);
  // Keep readers going on a read-only instance while the storage fails.
  absl::StatusOr<std::shared_ptr<Store>> read_only = OpenStore(/*read_only=*/true);
  if (read_only.ok() && LoadState(**read_only).ok()) {
    (*read_only)->generation = ++last_generation_;
    absl::MutexLock lock(&store_mu_);
    store_ = std::move(*read_only);
  }
  return Invalid(status.code(),
                 absl::StrCat("reopen after a storage error, before ", operation,
                              ", failed: ", status.message()));
}

// ---------------------------------------------------------------- open

absl::StatusOr<std::shared_ptr<Store>> RocksChangeLog::OpenStore(bool read_only) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  if (options_.env != nullptr) db_options.env = options_.env;
  // Recovered WAL contents are written to (fsynced) L0 files at Open, so
  // whatever Open finds is durable and durable_lsn may start at the stored
  // high-water. Explicit because the durability argument rests on it.
  db_options.avoid_flush_during_recovery = false;
  // A torn tail after a crash holds only unsynced writes, which were never
  // reported durable: cut it and open.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  db_options.db_write_buffer_size = options_.memtable_bytes;
  // Bounds WAL growth when the small metadata family holds an old WAL alive.
  db_options.max_total_wal_size = 4 * options_.memtable_bytes;
  // Recovery from write errors is ours (TakeOverRecovery, RecoverIfNeeded):
  // no automatic resume of retryable I/O errors either.
  db_options.max_bgerror_resume_count = 0;
  db_options.listeners.push_back(std::make_shared<TakeOverRecovery>(&needs_recovery_));

  // Block checksums: XXH3 instead of the default CRC32C, which Debian's
  // RocksDB (built for baseline x86-64, without SSE4.2) computes bytewise.
  // Each file records its checksum type, so files of either kind read.
  rocksdb::BlockBasedTableOptions table_options;
  table_options.checksum = rocksdb::kXXH3;
  rocksdb::ColumnFamilyOptions meta_options;
  meta_options.write_buffer_size = std::max<size_t>(options_.memtable_bytes / 8, 1 << 20);
  meta_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table_options));
  rocksdb::ColumnFamilyOptions changes_options;
  changes_options.write_buffer_size = std::max<size_t>(options_.memtable_bytes / 4, 1 << 20);
  changes_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table_options));
  SetChangesCompression(&changes_options);
  changes_options.compaction_filter_factory =
      std::make_shared<TrimFilterFactory>(/*changes=*/true, durable_trims_);
  changes_options.periodic_compaction_seconds = kTrimmedFamiliesPeriodicCompactionSeconds;
  // ReadChanges looks up one transaction record per transaction it meets: a
  // bloom filter keeps those point reads cheap.
  rocksdb::ColumnFamilyOptions transactions_options;
  transactions_options.write_buffer_size = std::max<size_t>(options_.memtable_bytes / 8, 1 << 20);
  rocksdb::BlockBasedTableOptions transactions_table = table_options;
  transactions_table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  transactions_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(transactions_table));
  transactions_options.compaction_filter_factory =
      std::make_shared<TrimFilterFactory>(/*changes=*/false, durable_trims_);
  transactions_options.periodic_compaction_seconds = kTrimmedFamiliesPeriodicCompactionSeconds;

  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, meta_options},
      {kChangesFamily, changes_options},
      {kTransactionsFamily, transactions_options},
  };
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s =
      read_only ? rocksdb::DB::OpenForReadOnly(db_options, options_.path, families, &handles, &db)
                : rocksdb::DB::Open(db_options, options_.path, families, &handles, &db);
  if (!s.ok()) {
    return Error(s, read_only ? "read-only open" : "open",
                 "check that the directory exists or can be created, is writable, has free "
                 "space, and is not used by another trickle process");
  }
  auto store = std::make_shared<Store>();
  store->db.reset(db);
  store->meta = handles[0];
  store->changes = handles[1];
  store->transactions = handles[2];
  store->read_only = read_only;
  return store;
}

absl::Status RocksChangeLog::Open() {
  if (options_.path.empty()) {
    return absl::InvalidArgumentError("change log: ChangeLogOptions.path is empty");
  }
  if (options_.batch_bytes == 0 || options_.memtable_bytes == 0) {
    return Invalid(absl::StatusCode::kInvalidArgument,
                   "batch_bytes and memtable_bytes must be positive");
  }
  write_options_.sync = false;
  write_options_.disableWAL = false;
  TRICKLE_ASSIGN_OR_RETURN(std::shared_ptr<Store> store, OpenStore(/*read_only=*/false));
  {
    absl::MutexLock write_lock(&write_mu_);
    TRICKLE_RETURN_IF_ERROR(InitializeFrom(*store));
  }
  absl::MutexLock lock(&store_mu_);
  store_ = std::move(store);
  return absl::OkStatus();
}

absl::Status RocksChangeLog::InitializeFrom(Store& store) {
  TRICKLE_RETURN_IF_ERROR(LoadState(store));
  // Make whatever recovery found durable before reporting it as such.
  rocksdb::FlushOptions flush_options;
  flush_options.wait = true;
  flush_options.allow_write_stall = true;
  rocksdb::Status s = store.db->Flush(flush_options, store.families());
  if (!s.ok()) {
    return Error(s, "flush of recovered data at open",
                 "free disk space or fix the I/O error, then retry");
  }
  TRICKLE_RETURN_IF_ERROR(DeleteUncommittedAboveHighWater(store));
  s = SyncWal(store);
  if (!s.ok()) {
    return Error(s, "sync at open", "free disk space or fix the I/O error, then retry");
  }
  absl::btree_map<Oid, Lsn> points;
  Lsn floor;
  {
    absl::MutexLock lock(&mu_);
    durable_lsn_ = high_water_end_;
    last_committed_end_ = high_water_end_;
    trims_unsynced_ = false;
    points = trim_points_;
    floor = transactions_trimmed_below_;
  }
  PublishDurableTrims(points, floor);  // what was loaded is on disk
  return absl::OkStatus();
}

void RocksChangeLog::PublishDurableTrims(const absl::btree_map<Oid, Lsn>& points, Lsn floor) {
  absl::MutexLock lock(&durable_trims_->mu);
  durable_trims_->points.clear();
  for (const auto& [oid, point] : points) {
    if (point > 0) durable_trims_->points[oid] = point;
  }
  durable_trims_->floor = floor;
}

absl::Status RocksChangeLog::LoadState(Store& store) {
  rocksdb::ReadOptions ro;
  std::string value;

  rocksdb::Status s = store.db->Get(ro, store.meta, keys::MetaKey(keys::kFormatVersionName), &value);
  if (s.IsNotFound()) {
    if (!store.read_only) {
      rocksdb::WriteBatch batch;
      batch.Put(store.meta, keys::MetaKey(keys::kFormatVersionName), kFormatVersion);
      s = Write(store, &batch, write_options_);
      if (!s.ok()) {
        return Error(s, "write of the format version",
                     "free disk space or fix the I/O error, then retry");
      }
    }
  } else if (!s.ok()) {
    return Error(s, "read of the format version", "check the storage, then retry");
  } else if (value != kFormatVersion) {
    return Invalid(absl::StatusCode::kFailedPrecondition,
                   absl::StrCat("format version \"", value, "\" is not the supported \"",
                                kFormatVersion,
                                "\"; run the matching trickle version, or delete the directory "
                                "(stream tables then take a FULL refresh)"));
  }

  Lsn hw_commit = 0, hw_end = 0;
  s = store.db->Get(ro, store.meta, keys::MetaKey(keys::kHighWaterName), &value);
  if (s.ok()) {
    if (!keys::DecodeHighWater(value, &hw_commit, &hw_end)) {
      return Invalid(absl::StatusCode::kDataLoss, "the high-water record is malformed");
    }
  } else if (!s.IsNotFound()) {
    return Error(s, "read of the high-water", "check the storage, then retry");
  }

  uint64_t count = 0;
  s = store.db->Get(ro, store.meta, keys::MetaKey(keys::kTransactionCountName), &value);
  if (s.ok()) {
    if (value.size() != 8) {
      return Invalid(absl::StatusCode::kDataLoss, "the transaction count record is malformed");
    }
    count = keys::GetBigEndian64(value);
  } else if (!s.IsNotFound()) {
    return Error(s, "read of the transaction count", "check the storage, then retry");
  }

  std::optional<Lsn> stored_floor;
  s = store.db->Get(ro, store.meta, keys::MetaKey(keys::kTrimFloorName), &value);
  if (s.ok()) {
    if (value.size() != 8) {
      return Invalid(absl::StatusCode::kDataLoss, "the trim floor record is malformed");
    }
    stored_floor = keys::GetBigEndian64(value);
  } else if (!s.IsNotFound()) {
    return Error(s, "read of the trim floor", "check the storage, then retry");
  }

  absl::btree_map<Oid, RelationSchema> relations;
  absl::btree_map<Oid, Lsn> trim_points;
  std::unique_ptr<rocksdb::Iterator> it(store.db->NewIterator(ro, store.meta));
  for (it->Seek(std::string(1, keys::kRelationTag));
       it->Valid() && it->key()[0] == keys::kRelationTag; it->Next()) {
    RelationSchema schema;
    if (!keys::ParseRelationKey(it->key().ToStringView()) ||
        !schema.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Invalid(absl::StatusCode::kDataLoss, "a relation schema record is malformed");
    }
    // Keys are in (oid, version) order: the last one per oid is the latest.
    relations[schema.relation_oid()] = std::move(schema);
  }
  for (it->Seek(std::string(1, keys::kTrimPointTag));
       it->Valid() && it->key()[0] == keys::kTrimPointTag; it->Next()) {
    std::optional<uint32_t> oid = keys::ParseTrimPointKey(it->key().ToStringView());
    if (!oid || it->value().size() != 8) {
      return Invalid(absl::StatusCode::kDataLoss, "a trim point record is malformed");
    }
    trim_points[*oid] = keys::GetBigEndian64(it->value().ToStringView());
  }
  if (!it->status().ok()) {
    return Error(it->status(), "read of metadata", "check the storage, then retry");
  }

  absl::MutexLock lock(&mu_);
  high_water_commit_ = hw_commit;
  high_water_end_ = hw_end;
  transaction_count_ = count;
  latest_relations_ = std::move(relations);
  trim_points_ = std::move(trim_points);
  if (stored_floor) {
    transactions_trimmed_below_ = *stored_floor;
  } else {
    // Written before the floor was stored: trims deleted the records below
    // the lowest trim point.
    Lsn floor = 0;
    if (!trim_points_.empty()) {
      floor = UINT64_MAX;
      for (const auto& [oid, point] : trim_points_) floor = std::min(floor, point);
    }
    transactions_trimmed_below_ = std::min(floor, hw_commit == UINT64_MAX ? hw_commit : hw_commit + 1);
  }
  return absl::OkStatus();
}

// The log holds nothing uncommitted after Open: rows above the high-water are
// from a transaction that crashed before its commit record. One seek per
// relation finds them; relations are skipped over with a seek to the next oid.
absl::Status RocksChangeLog::DeleteUncommittedAboveHighWater(Store& store) {
  Lsn hw = high_water_lsn();
  if (hw == UINT64_MAX) return absl::OkStatus();
  rocksdb::WriteBatch batch;
  std::unique_ptr<rocksdb::Iterator> it(store.db->NewIterator(rocksdb::ReadOptions(), store.changes));
  it->Seek(std::string(1, keys::kChangeTag));
  while (it->Valid()) {
    std::optional<keys::ChangeKeyParts> parts = keys::ParseChangeKey(it->key().ToStringView());
    if (!parts) return Invalid(absl::StatusCode::kDataLoss, "a change key is malformed");
    std::string end = keys::ChangeKeyRelationEnd(parts->relation);
    std::string above = keys::ChangeKeyLowerBound(parts->relation, hw + 1);
    it->Seek(above);
    if (it->Valid() && it->key().compare(end) < 0) {
      batch.DeleteRange(store.changes, above, end);
    }
    if (parts->relation == UINT32_MAX) break;
    it->Seek(end);
  }
  if (!it->status().ok()) {
    return Error(it->status(), "scan for uncommitted changes at open",
                 "check the storage, then retry");
  }
  if (batch.Count() == 0) return absl::OkStatus();
  rocksdb::Status s = Write(store, &batch, write_options_);
  if (!s.ok()) {
    return Error(s, absl::StrCat("delete of uncommitted changes above ", FormatLsn(hw)),
                 "free disk space or fix the I/O error, then retry");
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------- writer side

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

// ------------------------------------------------------------ relation schemas

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

// ---------------------------------------------------------------- reader side

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

absl::Status RocksChangeLog::Trim(Oid relation, Lsn below) {
  // Trimming writes two small records, no range tombstones: the compaction
  // filter (TrimFilter) drops the trimmed keys once the new points are
  // durable, and readers start at the trim points meanwhile. A trim that
  // moves nothing writes nothing.
  auto plan = [&](Lsn* point, Lsn* old_floor, Lsn* new_floor, uint64_t* count) {
    absl::MutexLock lock(&mu_);
    auto it = trim_points_.find(relation);
    const bool known = it != trim_points_.end();
    *point = std::max(below, known ? it->second : Lsn{0});
    Lsn lowest = *point;
    for (const auto& [oid, p] : trim_points_) {
      if (oid != relation) lowest = std::min(lowest, p);
    }
    // Never above what is stored: a transaction committed later must not
    // fall below the floor.
    const Lsn hw = high_water_commit_;
    *new_floor = std::min(lowest, hw == UINT64_MAX ? hw : hw + 1);
    *old_floor = transactions_trimmed_below_;
    *count = transaction_count_;
    return known && it->second == *point && *new_floor <= *old_floor;  // nothing moves
  };
  Lsn point, old_floor, new_floor;
  uint64_t count;
  if (plan(&point, &old_floor, &new_floor, &count)) return absl::OkStatus();

  TRICKLE_RETURN_IF_ERROR(RecoverIfNeeded(absl::StrCat("trimming relation ", relation)));
  absl::MutexLock write_lock(&write_mu_);
  TRICKLE_ASSIGN_OR_RETURN(std::shared_ptr<Store> store, UseStore());
  // Again under write_mu_: commits (which move the high-water and the count)
  // and other trims hold it too.
  if (plan(&point, &old_floor, &new_floor, &count)) return absl::OkStatus();

  rocksdb::WriteBatch batch;
  batch.Put(store->meta, keys::TrimPointKey(relation), EncodeCount(point));
  if (new_floor > old_floor) {
    // Count the records that go, to keep the stored count exact. Records
    // below the old floor may still be stored (not compacted yet) and were
    // counted then; nothing is added to this range meanwhile (write_mu_).
    rocksdb::ReadOptions ro;
    std::string upper = keys::TransactionKey(new_floor);
    rocksdb::Slice upper_slice(upper);
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(store->db->NewIterator(ro, store->transactions));
    uint64_t removed = 0;
    for (it->Seek(keys::TransactionKey(old_floor)); it->Valid(); it->Next()) ++removed;
    if (!it->status().ok()) {
      return Error(it->status(), "count of transaction records to trim",
                   "retry; if it persists, check the storage");
    }
    count -= std::min(count, removed);
    batch.Put(store->meta, keys::MetaKey(keys::kTransactionCountName), EncodeCount(count));
    batch.Put(store->meta, keys::MetaKey(keys::kTrimFloorName), EncodeCount(new_floor));
  }
  rocksdb::Status s = Write(*store, &batch, write_options_);
  if (!s.ok()) {
    return Error(s, absl::StrCat("trim of relation ", relation, " below ", FormatLsn(below)),
                 "nothing was trimmed; free disk space or fix the I/O error, then retry");
  }
  absl::MutexLock lock(&mu_);
  trim_points_[relation] = point;
  if (new_floor > old_floor) {
    transactions_trimmed_below_ = new_floor;
    transaction_count_ = count;
  }
  trims_unsynced_ = true;
  return absl::OkStatus();
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

}  // namespace

absl::Status ChangeLog::AppendEncoded(Oid relation, std::string_view change) {
  ChangeRecord record;
  if (!record.ParseFromArray(change.data(), static_cast<int>(change.size()))) {
    return absl::InvalidArgumentError(absl::StrCat("change log: a change of relation ", relation,
                                                   " is not a serialized ChangeRecord"));
  }
  return Append(relation, record);
}

absl::StatusOr<std::unique_ptr<ChangeLog>> ChangeLog::Open(const ChangeLogOptions& options) {
  auto log = std::make_unique<RocksChangeLog>(options);
  TRICKLE_RETURN_IF_ERROR(log->Open());
  return std::unique_ptr<ChangeLog>(std::move(log));
}

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
