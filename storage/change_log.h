// The durable change log: committed source transactions in RocksDB.
//
// Invariants (enforced here, relied on by the refresh path):
//  * Only committed transactions are visible: a transaction's changes are
//    readable once its TransactionRecord is written (CommitTransaction).
//  * Appends are idempotent on replay: BeginTransaction skips (returns false)
//    a transaction whose commit LSN is at or below the stored high-water.
//  * durable_lsn() never passes what is synced to disk; the capture reports
//    nothing beyond it to PostgreSQL as flushed.
//  * Memory stays bounded for huge transactions: changes are written in
//    batches as they arrive, under their final keys (chunks of one
//    relation's consecutive changes); they become visible only with the
//    commit record.
//  * A failed write or sync never advances high_water_lsn() or durable_lsn():
//    the capture reconnects, PostgreSQL sends the transaction again, and
//    BeginTransaction accepts it again. The object stays usable: the next
//    call that writes checks the storage takes writes again and then reopens
//    the database (reloading the state from what is on disk); while the fault
//    lasts it fails with the cause, and readers keep working.
// Key layout, encoding and recovery rules: docs/change_log_format.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "change_log.pb.h"
#include "common/lsn.h"

namespace rocksdb {
class Env;
}

namespace trickle::storage {

using Oid = uint32_t;
using v1::ChangeRecord;
using v1::RelationSchema;
using v1::TransactionRecord;

struct ChangeLogOptions {
  // Directory of the RocksDB database; created when missing. No default.
  std::string path;
  // Flush staged changes of an open transaction to RocksDB once they reach
  // this many bytes (bounds memory for huge transactions). Default 4 MiB.
  size_t batch_bytes = 4 << 20;
  // A relation's changes within a transaction are stored in chunks (one key
  // per chunk); a chunk is closed once it holds this many bytes. Larger
  // chunks mean fewer keys to write, flush and compact. Default 64 KiB.
  // Fixed at Open; a log holds chunks of any size.
  size_t chunk_bytes = 64 << 10;
  // For fault-injection tests: the Env RocksDB uses. Not owned; must outlive
  // the ChangeLog. Default: rocksdb::Env::Default().
  rocksdb::Env* env = nullptr;
  // Memory RocksDB may use for memtables, shared by all column families
  // (DBOptions::db_write_buffer_size; the changes family's memtable is a
  // quarter of it, the others' an eighth). Recovery after a storage fault
  // waits for this much free disk. Default 64 MiB. Fixed at Open.
  size_t memtable_bytes = 64 << 20;
};

struct ChangeLogStats {
  // SST + memtable bytes, including trimmed data that no flush or
  // compaction has dropped yet.
  uint64_t approximate_bytes = 0;
  uint64_t transaction_count = 0;  // committed transactions retained (not trimmed)
  Lsn oldest_commit_lsn = 0;       // of the oldest retained one; 0 when empty
  Lsn newest_commit_lsn = 0;       // stored high-water
  Lsn durable_lsn = 0;
  // Bytes of the open transaction held in memory, not yet handed to RocksDB,
  // now and at most since Open. Bounded by batch_bytes plus one change.
  uint64_t staged_bytes = 0;
  uint64_t peak_staged_bytes = 0;
};

// One change as handed to readers: the change and the transaction it is in.
struct LoggedChange {
  const TransactionRecord* transaction;  // valid during the callback only
  uint32_t sequence;                     // position within the transaction
  const ChangeRecord* change;            // valid during the callback only
};

class ChangeLog {
 public:
  static absl::StatusOr<std::unique_ptr<ChangeLog>> Open(const ChangeLogOptions& options);
  virtual ~ChangeLog() = default;

  // ---- Writer side: one thread at a time (the capture) calls these, in
  // stream order, with a happens-before edge between threads (the stream's
  // apply thread, then at a disconnect its connection thread after a join).
  //
  // A transaction is Begin, any number of Append/AddFenceToken, then Commit or
  // Abort. After a write of the open transaction failed, Append, AddFenceToken
  // and Commit return that failure (FailedPrecondition) until the caller
  // aborts or begins a transaction again: a failed transaction is re-received,
  // never resumed. Append, AddFenceToken and Commit outside a transaction
  // return FailedPrecondition.

  // Starts a transaction whose commit record is at `commit_lsn` (pgoutput's
  // Begin.final_lsn). Returns false when the transaction is already stored
  // (commit_lsn <= high-water): Append, AddFenceToken and CommitTransaction
  // are then no-ops until the next Begin, so the caller may either drop the
  // transaction's changes or pass them on. A Begin while a transaction is
  // open aborts it first (the stream was lost and restarted).
  virtual absl::StatusOr<bool> BeginTransaction(Lsn commit_lsn, uint32_t xid,
                                                int64_t commit_time) = 0;
  // Appends one change of `relation` to the open transaction. May write a
  // batch of the transaction's changes to RocksDB (invisible until Commit).
  virtual absl::Status Append(Oid relation, const ChangeRecord& change) = 0;
  // The same, with the change already serialized (ChangeRecord wire format,
  // e.g. from ChangeRecordEncoder in change_encoding.h): the capture's path,
  // which builds no message per change. The RocksDB log stores the bytes as
  // given; readers parse them as a ChangeRecord. The default (for wrappers
  // that forward Append) parses them and calls Append.
  virtual absl::Status AppendEncoded(Oid relation, std::string_view change);
  // Records a trickle.fence token carried by the open transaction.
  virtual absl::Status AddFenceToken(const std::string& token) = 0;
  // Writes the commit record; the transaction becomes visible to readers.
  // Not yet durable: see Sync().
  virtual absl::Status CommitTransaction(Lsn end_lsn) = 0;
  // Forgets the open transaction (stream lost mid-transaction) and deletes
  // the rows it already wrote. When that delete fails the rows stay invisible
  // (no commit record) and the next BeginTransaction retries the delete
  // before it accepts anything.
  virtual absl::Status AbortTransaction() = 0;
  // Makes every committed transaction durable (fsync of RocksDB's WAL) and
  // advances durable_lsn() to the end LSN of the last one.
  virtual absl::Status Sync() = 0;
  virtual Lsn durable_lsn() const = 0;     // end LSN of the last synced transaction
  virtual Lsn high_water_lsn() const = 0;  // commit LSN of the last stored transaction

  // Stores a relation schema when it differs from the latest stored version
  // of that relation; returns the version the relation's changes now follow.
  // Versions start at 1. `schema.version` is ignored; a zero first_seen_lsn
  // is set to the open transaction's commit LSN. Inside a skipped (replayed)
  // transaction, an identical older version is returned instead of storing a
  // new one. Written with the WAL, durable with the next Sync().
  virtual absl::StatusOr<uint32_t> RecordRelation(const RelationSchema& schema) = 0;
  virtual absl::StatusOr<RelationSchema> GetRelation(Oid relation, uint32_t version) const = 0;
  // The newest version of every relation ever recorded.
  virtual absl::StatusOr<std::vector<RelationSchema>> LatestRelations() const = 0;

  // ---- Reader side: safe from any thread, concurrently with the writer.
  // GetRelation and LatestRelations above are safe from any thread too.

  // Calls `fn` for every change of `relation` in transactions with
  // from <= commit_lsn < to, in commit order and, within a transaction, in
  // the order the changes were made. Stops at the first non-OK status.
  virtual absl::Status ReadChanges(Oid relation, Lsn from, Lsn to,
                                   const std::function<absl::Status(const LoggedChange&)>& fn) const = 0;
  // Committed transactions with from <= commit_lsn < to, in commit order.
  virtual absl::StatusOr<std::vector<TransactionRecord>> ReadTransactions(Lsn from, Lsn to) const = 0;

  // Trims `relation`'s changes with commit_lsn < below: readers never see
  // them again, and their bytes go with the next flush or compaction once
  // the trim is durable (the next Sync). Transaction records are trimmed
  // below the lowest trim point of all relations that ever had changes (or
  // were trimmed), capped at the high-water + 1: a relation nobody trims
  // keeps every transaction record. Trim points never move back; a trim that
  // moves nothing writes nothing. Trim(r, UINT64_MAX) drops every change of
  // r, also any stored later. Cheap (two small records, no range
  // tombstones), but it takes the lock commits take.
  virtual absl::Status Trim(Oid relation, Lsn below) = 0;

  virtual ChangeLogStats Stats() const = 0;

  // Small durable key/value area for the service's own progress. PutProgress
  // syncs (durable when it returns). Both are safe from any thread.
  virtual absl::Status PutProgress(const std::string& key, const std::string& value) = 0;
  virtual absl::StatusOr<std::optional<std::string>> GetProgress(const std::string& key) const = 0;
};

// The LSN from which the log holds every change the slot sends: a stream
// table whose frontier is below it has missed changes (a slot created anew
// after it was lost or dropped, or an empty data directory started on an old
// slot) and must be refreshed in full. 0 when never recorded (the log has
// had its slot from the start). Stored with PutProgress, so durable.
absl::StatusOr<Lsn> CompleteFrom(const ChangeLog& log);
// Records it; it never moves back.
absl::Status SetCompleteFrom(ChangeLog& log, Lsn lsn);

}  // namespace trickle::storage
