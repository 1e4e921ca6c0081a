// Capture: the glue between the replication stream (pgoutput/) and the
// change log (storage/). Runs on the stream's thread: decodes each XLogData,
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
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pgoutput/decoder.h"
#include "pgoutput/relation_cache.h"
#include "pgoutput/replication_stream.h"
#include "storage/change_log.h"

namespace trickle::service {

inline constexpr char kFencePrefix[] = "trickle.fence";

struct CaptureOptions {
  // Sync the change log at least this often while transactions arrive
  // (group commit). Feedback to PostgreSQL also syncs first. Default 100 ms.
  absl::Duration sync_interval = absl::Milliseconds(100);
  // pgoutput proto_version in use.
  int protocol_version = 1;
};

struct CaptureStats {
  std::atomic<uint64_t> transactions{0};       // committed to the log
  std::atomic<uint64_t> skipped_transactions{0};  // already stored (replay)
  std::atomic<uint64_t> changes{0};
  std::atomic<uint64_t> syncs{0};
  std::atomic<int64_t> last_commit_time{0};    // PostgreSQL-epoch micros
};

class Capture : public pgoutput::StreamConsumer, private pgoutput::MessageHandler {
 public:
  // `log` is not owned and must outlive the Capture. Restores the relation
  // schema versions stored in the log so numbering continues.
  static absl::StatusOr<std::unique_ptr<Capture>> Create(storage::ChangeLog* log,
                                                         CaptureOptions options = {});

  // ---- StreamConsumer (the stream's thread)
  absl::Status OnXLogData(Lsn wal_start, Lsn wal_end, std::string_view payload) override;
  void OnKeepalive(Lsn wal_end) override;
  absl::Status BeforeFeedback() override;
  Lsn WrittenLsn() override { return written_lsn_.load(); }
  Lsn FlushedLsn() override;
  void OnDisconnect() override;

  // ---- For the refresh path (any thread)

  // Blocks until the transaction carrying fence `token` is in the log;
  // returns its commit LSN. DeadlineExceeded after `timeout`.
  absl::StatusOr<Lsn> WaitForFence(const std::string& token, absl::Duration timeout);
  // Blocks until every transaction with commit LSN < `lsn` is in the log,
  // i.e. something at or past `lsn` was received.
  absl::Status WaitForLsn(Lsn lsn, absl::Duration timeout);

  // Called on the stream's thread after each transaction is in the log.
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
  absl::Status AppendChange(pgoutput::Oid oid, storage::ChangeRecord& change);
  void AdvanceReceived(Lsn lsn);

  storage::ChangeLog* log_;  // not owned
  CaptureOptions options_;
  pgoutput::Decoder decoder_;
  CaptureStats stats_;
  std::function<void(const storage::TransactionRecord&)> commit_listener_;

  // Stream-thread state.
  pgoutput::RelationCache relations_;  // current schema per relation (names, TOAST fill)
  // The change log's schema version per relation: the only numbering
  // changes are tagged with (storage owns it across restarts and replays).
  absl::flat_hash_map<pgoutput::Oid, uint32_t> log_versions_;
  bool in_transaction_ = false;
  bool skipping_ = false;  // transaction already in the log (replay)
  storage::TransactionRecord current_;
  std::vector<std::string> current_fences_;
  absl::Time last_sync_ = absl::InfinitePast();
  Lsn last_end_lsn_ = 0;   // end LSN of the last transaction received
  Lsn idle_lsn_ = 0;       // keepalive walEnd seen with no open transaction

  std::atomic<Lsn> written_lsn_{0};

  // Shared with waiting refreshes.
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Lsn> fences_ ABSL_GUARDED_BY(mu_);
  Lsn received_lsn_ ABSL_GUARDED_BY(mu_) = 0;  // all commits below are in the log
};

// Converts a pgoutput tuple to stored datums.
void ToDatums(const pgoutput::Tuple& tuple,
              google::protobuf::RepeatedPtrField<storage::v1::Datum>* out);

}  // namespace trickle::service
