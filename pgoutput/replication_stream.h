// The replication connection, in the shape of PostgreSQL's pg_recvlogical:
// one thread owns the connection, and each turn of its loop handles stop ->
// feedback due -> data. Feedback (a standby status update) goes at least
// every `status_interval` (capped at wal_sender_timeout / 2), at once when the
// server asks, and as soon as the consumer made more durable while the stream
// paused. The flush position it reports is the consumer's durable LSN: never
// beyond what storage has synced. On a lost connection it reconnects with
// exponential backoff and resumes from the slot's confirmed position.
//
// The connection thread only receives: it moves each message into a bounded
// in-memory queue (`receive_buffer_bytes`) that an apply thread drains into
// the consumer, in stream order. So a storage fsync or a large write on the
// apply side never stops the socket from being read: the walsender keeps
// sending while the consumer is busy, up to the queue's bound (then the
// connection thread stops reading, and TCP/unix-socket flow control holds
// the server back). Messages still queued when the connection ends are
// dropped unconfirmed; the server sends them again.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/lsn.h"

namespace trickle {
class PgConnection;
}

namespace trickle::pgoutput {

struct ReplicationOptions {
  // libpq connection string of the source database (replication=database is
  // added). No default.
  std::string dsn;
  // Logical slot to stream from. Default "trickle".
  std::string slot_name = "trickle";
  // Publication(s) passed as publication_names. Default "trickle_sources".
  std::string publication_name = "trickle_sources";
  // pgoutput proto_version: 1 (PG >= 10) or 2 (PG >= 14). Default 1; Trickle
  // does not ask for in-progress streaming, so both behave alike.
  int protocol_version = 1;
  // Upper bound between standby status updates. Default 1 s.
  absl::Duration status_interval = absl::Seconds(1);
  // Reconnect backoff: starts at the minimum, doubles, capped. Defaults 100 ms / 10 s.
  absl::Duration reconnect_min = absl::Milliseconds(100);
  absl::Duration reconnect_max = absl::Seconds(10);
  // Received messages not yet applied by the consumer, in bytes, before the
  // connection thread stops reading. Bounds memory; a larger value absorbs
  // longer consumer pauses (fsyncs, memtable flushes). A single larger
  // message is still accepted. Default 8 MiB.
  size_t receive_buffer_bytes = 8 << 20;
};

// Receives the stream. OnXLogData, OnKeepalive and OnIdle run on the
// stream's apply thread, one at a time and in stream order; OnStreaming and
// OnDisconnect run on the connection thread while no apply thread runs (so
// every method but WrittenLsn/FlushedLsn sees one thread at a time, with a
// happens-before edge between them). WrittenLsn and FlushedLsn are called
// from the connection thread at any time and must be thread-safe.
class StreamConsumer {
 public:
  virtual ~StreamConsumer() = default;
  // One XLogData message: `payload` is one pgoutput message. A non-OK status
  // drops the connection; the stream reconnects and the server sends again
  // from the confirmed position (nothing is lost).
  virtual absl::Status OnXLogData(Lsn wal_start, Lsn wal_end, std::string_view payload) = 0;
  // A primary keepalive: the server has sent everything before `wal_end`.
  virtual void OnKeepalive(Lsn wal_end) {}
  // Nothing received is waiting to be applied (the stream paused), or the
  // stream is stopping (`stopping`: the last call before the final status
  // update). Make what was received durable where due. Errors are logged;
  // the updates then report the old position.
  virtual absl::Status OnIdle(bool stopping) { return absl::OkStatus(); }
  // Positions for the standby status update. Thread-safe.
  virtual Lsn WrittenLsn() = 0;
  virtual Lsn FlushedLsn() = 0;  // durable: never beyond what storage synced
  // The connection was lost or closed: forget any partial transaction.
  virtual void OnDisconnect() {}
  // Connected and streaming (after START_REPLICATION succeeded).
  virtual void OnStreaming() {}
};

struct StreamStats {
  std::atomic<uint64_t> connects{0};
  std::atomic<uint64_t> messages{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> feedbacks{0};
  std::atomic<Lsn> received_lsn{0};   // end of the last XLogData / keepalive
  std::atomic<Lsn> confirmed_lsn{0};  // last flush position sent
  std::atomic<bool> streaming{false};
  // Bytes received but not yet applied, now and at most since start.
  std::atomic<uint64_t> queued_bytes{0};
  std::atomic<uint64_t> peak_queued_bytes{0};
};

class ReceiveQueue;
class ReplicationStream {
 public:
  // `consumer` is not owned and must outlive Run().
  ReplicationStream(ReplicationOptions options, StreamConsumer* consumer);
  ~ReplicationStream();

  // Streams until `stop` becomes true, reconnecting on errors. Returns OK on
  // a requested stop, or the error when a failure is definite (bad slot,
  // permissions) rather than transient.
  absl::Status Run(const std::atomic<bool>& stop);

  const StreamStats& stats() const { return stats_; }

 private:
  absl::Status StreamOnce(const std::atomic<bool>& stop);
  // The connection thread's loop: stop -> feedback due -> data (into
  // `queue`). Returns OK when `stop` is set, else the error that ends it
  // (including the apply thread's).
  absl::Status ReceiveLoop(PgConnection& conn, ReceiveQueue& queue, absl::Duration interval,
                           const std::atomic<bool>& stop);
  absl::Status SendFeedback(PgConnection& conn);

  ReplicationOptions options_;
  StreamConsumer* consumer_;  // not owned
  StreamStats stats_;
};

// ---- Replication message framing (pure; exposed for tests) ----

// Builds the 34-byte standby status update ('r').
std::string EncodeStandbyStatus(Lsn write, Lsn flush, Lsn apply, int64_t now_pg_micros,
                                bool reply_requested);

struct ReplicationMessage {
  enum Kind { kXLogData, kKeepalive } kind;
  Lsn wal_start = 0;  // XLogData only
  Lsn wal_end = 0;
  int64_t send_time = 0;
  bool reply_requested = false;  // keepalive only
  std::string_view payload;      // XLogData only; points into the input
};
// Parses one CopyData message from the server ('w' or 'k').
absl::StatusOr<ReplicationMessage> ParseReplicationMessage(std::string_view bytes);

// Now, in microseconds since the PostgreSQL epoch.
int64_t PgNowMicros();

}  // namespace trickle::pgoutput
