// Capture: the glue between the replication stream (pgoutput/) and the
// change log (storage/). Runs on the stream's apply thread: decodes each XLogData,
// turns row messages into ChangeRecords (filling unchanged TOAST columns from
// the full old row), and appends committed transactions to the log.
//
// Positions (all end LSNs of transactions):
//   written  = last transaction committed to RocksDB (readable by refreshes)
//   durable  = last transaction synced to disk: the only position reported to
//              PostgreSQL as flushed, so a crash never loses an acknowledged change
// When idle (no open transaction, everything received durable), a keepalive's
// walEnd may be confirmed too, as pg_recvlogical does, so the slot advances
// past WAL that carries nothing published.
//
// Group commit: the log is synced when a commit finds the last sync at least
// `sync_interval` old, and when the stream pauses (nothing received waits to
// be applied) but then at most every sync_interval / 10, so a steady trickle
// of small transactions does not turn into one fsync each. The stream's
// receiving thread keeps reading the socket during a sync.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pgoutput/decoder.h"
#include "pgoutput/relation_cache.h"
#include "pgoutput/replication_stream.h"
#include "storage/change_encoding.h"
#include "storage/change_log.h"

namespace trickle::service {

inline constexpr char kFencePrefix[] = "trickle.fence";

struct CaptureOptions {
  // Sync the change log at least this often while transactions arrive
  // (group commit), and when the stream pauses at most ten times as often.
  // Default 100 ms.
  absl::Duration sync_interval = absl::Milliseconds(100);
  // pgoutput proto_version in use.
  int protocol_version = 1;
  // A fence waited for while the replication stream has been down at least
  // this long fails at once, as an outage, instead of waiting out its
  // timeout: the refresh behind it holds a snapshot on the source (and
  // holds back vacuum there) for as long as it waits. A shorter drop (a
  // reconnect) is waited through. Default 5 s.
  absl::Duration fence_outage_grace = absl::Seconds(5);
};

struct CaptureStats {
  std::atomic<uint64_t> transactions{0};       // committed to the log
  std::atomic<uint64_t> skipped_transactions{0};  // already stored (replay)
  std::atomic<uint64_t> changes{0};
  std::atomic<uint64_t> syncs{0};
  // Changes logged with values the capture could not know (an old row that
  // arrived without them): each makes its readers take a FULL refresh.
  std::atomic<uint64_t> unavailable_values{0};
  std::atomic<int64_t> last_commit_time{0};    // PostgreSQL-epoch micros
};

class Capture : public pgoutput::StreamConsumer, private pgoutput::MessageHandler {
 public:
  // `log` is not owned and must outlive the Capture. Restores the relation
  // schema versions stored in the log so numbering continues.
  static absl::StatusOr<std::unique_ptr<Capture>> Create(storage::ChangeLog* log,
                                                         CaptureOptions options = {});

  // ---- StreamConsumer (the stream's apply thread; the positions: any thread)
  absl::Status OnXLogData(Lsn wal_start, Lsn wal_end, std::string_view payload) override;
  void OnKeepalive(Lsn wal_end) override;
  absl::Status OnIdle(bool stopping) override;
  Lsn WrittenLsn() override { return written_lsn_.load(); }
  Lsn FlushedLsn() override;
  void OnDisconnect() override;
  void OnStreaming() override;

  // ---- For the refresh path (any thread)

  // Blocks until the transaction carrying fence `token` is in the log;
  // returns its commit LSN. DeadlineExceeded after `timeout`; an outage
  // error (IsOutage) once the stream has been down for
  // `fence_outage_grace` (the fence arrives after the reconnect: a later
  // wait for the same token still gets it).
  absl::StatusOr<Lsn> WaitForFence(const std::string& token, absl::Duration timeout);
  // Blocks until every transaction with commit LSN < `lsn` is in the log,
  // i.e. something at or past `lsn` was received.
  absl::Status WaitForLsn(Lsn lsn, absl::Duration timeout);

  // Called on the stream's apply thread after each transaction is in the log.
  // Must be cheap (e.g. wake a scheduler). Set before streaming starts.
  void SetCommitListener(std::function<void(const storage::TransactionRecord&)> listener) {
    commit_listener_ = std::move(listener);
  }

  const CaptureStats& stats() const { return stats_; }

 private:
  Capture(storage::ChangeLog* log, CaptureOptions options);
  // pgoutput::MessageHandler
  absl::Status OnBegin(const pgoutput::BeginMessage& m) override;
  absl::Status OnCommit(const pgoutput::CommitMessage& m) override;
  absl::Status OnRelation(const pgoutput::RelationMessage& m) override;
  absl::Status OnInsert(const pgoutput::InsertMessage& m) override;
  absl::Status OnUpdate(const pgoutput::UpdateMessage& m) override;
  absl::Status OnDelete(const pgoutput::DeleteMessage& m) override;
  absl::Status OnTruncate(const pgoutput::TruncateMessage& m) override;
  absl::Status OnMessage(const pgoutput::LogicalMessage& m) override;
  absl::Status OnStreamStart(const pgoutput::StreamStartMessage& m) override;

  absl::StatusOr<const pgoutput::RelationSchema*> Relation(pgoutput::Oid oid, const char* what) const;
  // Logs (once per relation and run) that an UPDATE or DELETE of `rel`
  // arrived without its old row, and counts it.
  void NoteOldRowUnavailable(const pgoutput::RelationSchema& rel, const char* op);
  // Appends the change in encoder_ to the open transaction.
  absl::Status AppendChange(pgoutput::Oid oid);
  void AdvanceReceived(Lsn lsn);
  absl::Status SyncLog();
  // Publishes the idle keepalive position once everything received before
  // it is durable (what FlushedLsn may report beyond the log's durable LSN).
  void PublishIdlePosition();

  storage::ChangeLog* log_;  // not owned
  CaptureOptions options_;
  pgoutput::Decoder decoder_;
  CaptureStats stats_;
  std::function<void(const storage::TransactionRecord&)> commit_listener_;

  // Apply-thread state (see StreamConsumer for the threads).
  pgoutput::RelationCache relations_;  // current schema per relation (names, TOAST fill)
  // The change log's schema version per relation: the only numbering
  // changes are tagged with (storage owns it across restarts and replays).
  absl::flat_hash_map<pgoutput::Oid, uint32_t> log_versions_;
  absl::flat_hash_set<pgoutput::Oid> warned_unavailable_;
  bool in_transaction_ = false;
  bool skipping_ = false;  // transaction already in the log (replay)
  storage::TransactionRecord current_;
  // Reused for every change: the ChangeRecord is written as bytes straight
  // from the decoded tuple, without a message object per change.
  storage::ChangeRecordEncoder encoder_;
  std::vector<std::string> current_fences_;
  absl::Time last_sync_ = absl::InfinitePast();
  Lsn last_end_lsn_ = 0;   // end LSN of the last transaction received
  Lsn idle_lsn_ = 0;       // keepalive walEnd seen with no open transaction

  std::atomic<Lsn> written_lsn_{0};
  // An idle keepalive position whose preceding transactions are all durable:
  // safe to confirm (read by the stream's connection thread).
  std::atomic<Lsn> idle_confirmable_lsn_{0};

  // Shared with waiting refreshes.
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Lsn> fences_ ABSL_GUARDED_BY(mu_);
  Lsn received_lsn_ ABSL_GUARDED_BY(mu_) = 0;  // all commits below are in the log
  // Between OnStreaming and OnDisconnect: a fence that does not arrive
  // while this is false waited on a stream that is not there.
  bool streaming_ ABSL_GUARDED_BY(mu_) = false;
  // When streaming_ last became false (creation, before the first connect).
  absl::Time down_since_ ABSL_GUARDED_BY(mu_) = absl::Now();
};

// Adds a pgoutput tuple's columns to a ChangeRecord being encoded, as its
// old or new values (an unchanged TOAST column the capture could not fill in
// becomes UNAVAILABLE).
void EncodeOldValues(const pgoutput::Tuple& tuple, storage::ChangeRecordEncoder* out);
void EncodeNewValues(const pgoutput::Tuple& tuple, storage::ChangeRecordEncoder* out);
// The old values of an UPDATE or DELETE that arrived without its old row:
// the replica identity's columns from `key` (the old key tuple, or the new
// row when the key did not change), every other column UNAVAILABLE.
void EncodeOldValuesWithoutRow(const pgoutput::RelationSchema& rel, const pgoutput::Tuple& key,
                               storage::ChangeRecordEncoder* out);

}  // namespace trickle::service
