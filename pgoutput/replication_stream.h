// The replication connection: one thread owns it and runs a loop in the
// shape of PostgreSQL's pg_recvlogical. Each turn: stop? -> feedback due? ->
// data. Feedback (a standby status update) goes at least every
// `status_interval` (capped at wal_sender_timeout / 2) and at once when the
// server asks. The flush position it reports is the consumer's durable LSN:
// never beyond what storage has synced. On a lost connection it reconnects
// with exponential backoff and resumes from the slot's confirmed position.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/lsn.h"

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
};

// Receives the stream. Called only from the stream's thread.
class StreamConsumer {
 public:
  virtual ~StreamConsumer() = default;
  // One XLogData message: `payload` is one pgoutput message. A non-OK status
  // drops the connection; the stream reconnects and the server sends again
  // from the confirmed position (nothing is lost).
  virtual absl::Status OnXLogData(Lsn wal_start, Lsn wal_end, std::string_view payload) = 0;
  // A primary keepalive: the server has sent everything before `wal_end`.
  virtual void OnKeepalive(Lsn wal_end) {}
  // Called before each standby status update: make received data durable
  // where due. Errors are logged; the update then reports the old position.
  virtual absl::Status BeforeFeedback() { return absl::OkStatus(); }
  // Positions for the standby status update.
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
};

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
  class Connection;
  absl::Status StreamOnce(const std::atomic<bool>& stop);

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
