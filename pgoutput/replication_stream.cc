#include "pgoutput/replication_stream.h"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <system_error>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/pg_connection.h"
#include "common/status_macros.h"
#include "pgoutput/messages.h"
#include "spdlog/spdlog.h"

namespace trickle::pgoutput {
namespace {

uint64_t ReadBe64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
void AppendBe64(uint64_t v, std::string* out) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Sleeps up to `d`, waking early when `stop` is set.
void InterruptibleSleep(absl::Duration d, const std::atomic<bool>& stop) {
  absl::Time end = absl::Now() + d;
  while (!stop.load() && absl::Now() < end) {
    absl::SleepFor(std::min(absl::Milliseconds(50), end - absl::Now()));
  }
}

}  // namespace

// The hand-off from the connection thread to the apply thread: a bounded
// FIFO of blocks, each holding framed messages in stream order
// (kind 'w'/'k', wal_start, wal_end, payload size, payload). The connection
// thread fills one block at a time without a lock and publishes it when the
// socket is drained, after a burst, or when it is full; the apply thread
// takes whole blocks. Messages are copied out of libpq's buffer into the
// block, so each buffer is freed on the thread that allocated it.
//
// The connection thread never waits for the apply thread (the mutex guards a
// few pointer moves): it waits in poll() on the socket and on `wake_fd_`, an
// eventfd the apply thread writes when it frees space the connection thread
// waits for, asks for a status update, or fails.
class ReceiveQueue {
 public:
  enum class Pop { kBlock, kTimeout, kClosed };
  static constexpr size_t kBlockBytes = 256 << 10;
  static constexpr size_t kHeaderBytes = 1 + 8 + 8 + 4;

  ReceiveQueue(size_t limit, StreamStats* stats) : limit_(limit), stats_(stats) {
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  }
  ~ReceiveQueue() {
    if (wake_fd_ >= 0) close(wake_fd_);
  }
  ReceiveQueue(const ReceiveQueue&) = delete;
  ReceiveQueue& operator=(const ReceiveQueue&) = delete;

  bool ok() const { return wake_fd_ >= 0; }
  int wake_fd() const { return wake_fd_; }

  // ---- Connection thread.
  void Append(char kind, Lsn wal_start, Lsn wal_end, std::string_view payload) {
    if (filling_.capacity() == 0) filling_ = TakeSpare();
    const uint32_t size = static_cast<uint32_t>(payload.size());
    const size_t at = filling_.size();
    filling_.resize(at + kHeaderBytes + size);
    char* p = filling_.data() + at;
    p[0] = kind;
    std::memcpy(p + 1, &wal_start, 8);
    std::memcpy(p + 9, &wal_end, 8);
    std::memcpy(p + 17, &size, 4);
    if (size > 0) std::memcpy(p + kHeaderBytes, payload.data(), size);
    if (filling_.size() >= kBlockBytes) Publish();
  }
  // Hands the block being filled to the apply thread.
  void Publish() {
    if (filling_.empty()) return;
    const size_t n = filling_.size();
    const uint64_t queued = queued_.fetch_add(n) + n;
    stats_->queued_bytes = queued;
    if (queued > stats_->peak_queued_bytes.load()) stats_->peak_queued_bytes = queued;
    absl::MutexLock lock(&mu_);
    blocks_.push_back(std::move(filling_));
    filling_ = std::string();
    if (apply_waiting_) cv_.Signal();
  }
  // At the bound: stop reading the socket until the apply thread frees space.
  bool Full() {
    if (queued_.load() + filling_.size() < limit_) return false;
    // Checked again after setting the flag: a block freed in between would
    // otherwise not wake us.
    producer_waiting_.store(true);
    return queued_.load() + filling_.size() >= limit_;
  }
  // Clears the eventfd after poll() reported it readable.
  void DrainWakeups() {
    uint64_t v;
    while (read(wake_fd_, &v, sizeof(v)) > 0) {
    }
  }
  bool TakeFeedbackRequest() { return feedback_requested_.exchange(false); }
  // The apply thread's failure, if any (OK while it runs).
  absl::Status failure() {
    if (!failed_.load()) return absl::OkStatus();
    absl::MutexLock lock(&mu_);
    return failure_;
  }
  // No more blocks: the apply thread returns once it finishes the current
  // one. `stopping` tells it to make what it applied durable first.
  void Close(bool stopping) {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    stopping_ = stopping;
    cv_.Signal();
  }

  // ---- Apply thread.
  // Waits up to `timeout` for a block; the previous block goes back for reuse.
  Pop Take(std::string* block, absl::Duration timeout) {
    if (!block->empty()) Recycle(block);
    absl::MutexLock lock(&mu_);
    if (blocks_.empty() && !closed_) {
      apply_waiting_ = true;
      cv_.WaitWithTimeout(&mu_, timeout);
      apply_waiting_ = false;
    }
    if (closed_) return Pop::kClosed;
    if (blocks_.empty()) return Pop::kTimeout;
    *block = std::move(blocks_.front());
    blocks_.pop_front();
    return Pop::kBlock;
  }
  bool stopping() {
    absl::MutexLock lock(&mu_);
    return stopping_;
  }
  void RequestFeedback() {
    feedback_requested_.store(true);
    Wake();
  }
  void Fail(absl::Status status) {
    {
      absl::MutexLock lock(&mu_);
      failure_ = std::move(status);
    }
    failed_.store(true);
    Wake();
  }

 private:
  void Recycle(std::string* block) {
    const uint64_t queued = queued_.fetch_sub(block->size()) - block->size();
    stats_->queued_bytes = queued;
    block->clear();
    if (block->capacity() <= 2 * kBlockBytes) {
      absl::MutexLock lock(&mu_);
      if (spares_.size() < 4) spares_.push_back(std::move(*block));
    }
    *block = std::string();
    if (producer_waiting_.exchange(false)) Wake();
  }
  std::string TakeSpare() {
    {
      absl::MutexLock lock(&mu_);
      if (!spares_.empty()) {
        std::string b = std::move(spares_.back());
        spares_.pop_back();
        return b;
      }
    }
    std::string b;
    b.reserve(kBlockBytes + 1024);
    return b;
  }
  void Wake() {
    uint64_t one = 1;
    ssize_t rc = write(wake_fd_, &one, sizeof(one));
    (void)rc;  // EAGAIN: the counter is already non-zero, the poll wakes anyway
  }

  const size_t limit_;
  StreamStats* const stats_;  // the stream's; outlives the queue
  int wake_fd_ = -1;
  std::string filling_;  // connection thread only
  std::atomic<uint64_t> queued_{0};  // published and not yet applied
  std::atomic<bool> producer_waiting_{false};
  std::atomic<bool> feedback_requested_{false};
  std::atomic<bool> failed_{false};

  absl::Mutex mu_;
  absl::CondVar cv_;
  std::deque<std::string> blocks_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> spares_ ABSL_GUARDED_BY(mu_);
  bool apply_waiting_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
};

namespace {

// How long the queue must stay empty after data before the stream counts as
// paused (OnIdle). While the server streams, the connection thread hands
// over a block every fraction of a millisecond, so this never fires in the
// middle of a stream; the consumer's own sync interval rules there.
constexpr absl::Duration kPauseAfter = absl::Milliseconds(2);

// Applies the queued messages to the consumer until the queue closes or the
// consumer fails. When the stream pauses it calls OnIdle, and asks the
// connection thread for a status update when that made more durable.
void ApplyLoop(ReceiveQueue& queue, StreamConsumer* consumer, const StreamStats& stats) {
  std::string block;
  absl::Time last_error_log = absl::InfinitePast();
  auto idle = [&](bool stopping) {
    absl::Status s = consumer->OnIdle(stopping);
    if (!s.ok() && (stopping || absl::Now() - last_error_log >= absl::Seconds(1))) {
      // Retried at the next pause; logged at most once a second.
      spdlog::error("making the change log durable failed: {}; not confirming past {}",
                    s.ToString(), FormatLsn(consumer->FlushedLsn()));
      last_error_log = absl::Now();
    }
    if (consumer->FlushedLsn() > stats.confirmed_lsn.load()) queue.RequestFeedback();
  };
  bool applied_since_idle = false;
  while (true) {
    // After data: wait a moment for more before calling the stream paused.
    // While something received is not durable yet, come back soon to make it
    // so; otherwise only to notice a stop.
    absl::Duration wait = applied_since_idle ? kPauseAfter
                          : consumer->WrittenLsn() > consumer->FlushedLsn()
                              ? absl::Milliseconds(10)
                              : absl::Milliseconds(100);
    ReceiveQueue::Pop got = queue.Take(&block, wait);
    if (got == ReceiveQueue::Pop::kClosed) {
      if (queue.stopping()) idle(/*stopping=*/true);
      return;
    }
    if (got == ReceiveQueue::Pop::kBlock) {
      const char* p = block.data();
      const char* end = p + block.size();
      while (p < end) {
        Lsn wal_start, wal_end;
        uint32_t size;
        const char kind = p[0];
        std::memcpy(&wal_start, p + 1, 8);
        std::memcpy(&wal_end, p + 9, 8);
        std::memcpy(&size, p + 17, 4);
        std::string_view payload(p + ReceiveQueue::kHeaderBytes, size);
        p += ReceiveQueue::kHeaderBytes + size;
        if (kind == 'k') {
          consumer->OnKeepalive(wal_end);
          continue;
        }
        absl::Status consumed = consumer->OnXLogData(wal_start, wal_end, payload);
        if (!consumed.ok()) {
          // Storage or decode failure: drop the connection without confirming
          // anything new; PostgreSQL keeps the WAL and sends it again.
          queue.Fail(absl::Status(consumed.code() == absl::StatusCode::kInvalidArgument
                                      ? absl::StatusCode::kInternal
                                      : consumed.code(),
                                  absl::StrCat("at WAL ", FormatLsn(wal_start), ": ",
                                               consumed.message())));
          return;
        }
      }
      applied_since_idle = true;
      continue;
    }
    idle(/*stopping=*/false);
    applied_since_idle = false;
  }
}

}  // namespace

int64_t PgNowMicros() {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration_cast<std::chrono::microseconds>(now).count() - kPgEpochUnixMicros;
}

std::string EncodeStandbyStatus(Lsn write, Lsn flush, Lsn apply, int64_t now_pg_micros,
                                bool reply_requested) {
  std::string out;
  out.reserve(34);
  out.push_back('r');
  AppendBe64(write, &out);
  AppendBe64(flush, &out);
  AppendBe64(apply, &out);
  AppendBe64(static_cast<uint64_t>(now_pg_micros), &out);
  out.push_back(reply_requested ? 1 : 0);
  return out;
}

absl::StatusOr<ReplicationMessage> ParseReplicationMessage(std::string_view bytes) {
  if (bytes.empty()) return absl::InvalidArgumentError("empty replication message");
  ReplicationMessage m;
  switch (bytes[0]) {
    case 'w':  // XLogData: Int64 start, Int64 end, Int64 time, Byten data
      if (bytes.size() < 25) {
        return absl::InvalidArgumentError(absl::StrCat(
            "XLogData message of ", bytes.size(), " bytes is shorter than its 25-byte header"));
      }
      m.kind = ReplicationMessage::kXLogData;
      m.wal_start = ReadBe64(bytes.data() + 1);
      m.wal_end = ReadBe64(bytes.data() + 9);
      m.send_time = static_cast<int64_t>(ReadBe64(bytes.data() + 17));
      m.payload = bytes.substr(25);
      return m;
    case 'k':  // keepalive: Int64 end, Int64 time, Byte1 reply
      if (bytes.size() < 18) {
        return absl::InvalidArgumentError(absl::StrCat(
            "primary keepalive message of ", bytes.size(), " bytes is shorter than 18 bytes"));
      }
      m.kind = ReplicationMessage::kKeepalive;
      m.wal_end = ReadBe64(bytes.data() + 1);
      m.send_time = static_cast<int64_t>(ReadBe64(bytes.data() + 9));
      m.reply_requested = bytes[17] != 0;
      return m;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown replication message type 0x", absl::Hex(static_cast<uint8_t>(bytes[0]))));
  }
}

ReplicationStream::ReplicationStream(ReplicationOptions options, StreamConsumer* consumer)
    : options_(std::move(options)), consumer_(consumer) {}

ReplicationStream::~ReplicationStream() = default;

absl::Status ReplicationStream::Run(const std::atomic<bool>& stop) {
  absl::Duration backoff = options_.reconnect_min;
  while (!stop.load()) {
    absl::Time started = absl::Now();
    absl::Status status = StreamOnce(stop);
    stats_.streaming = false;
    consumer_->OnDisconnect();
    if (stop.load()) break;
    if (!status.ok() && !IsTransient(status) &&
        status.code() != absl::StatusCode::kInternal &&
        status.code() != absl::StatusCode::kResourceExhausted) {
      // Definite (bad slot, permissions, unknown publication): report.
      spdlog::error("replication stream stopped: {}", status.ToString());
      return status;
    }
    // A connection that streamed for a while resets the backoff.
    if (absl::Now() - started > absl::Seconds(30)) backoff = options_.reconnect_min;
    spdlog::warn("replication stream interrupted: {}; reconnecting in {}", status.ToString(),
                 absl::FormatDuration(backoff));
    InterruptibleSleep(backoff, stop);
    backoff = std::min(backoff * 2, options_.reconnect_max);
  }
  return absl::OkStatus();
}

absl::Status ReplicationStream::StreamOnce(const std::atomic<bool>& stop) {
  std::string dsn = absl::StrCat(options_.dsn, " replication=database");
  TRICKLE_ASSIGN_OR_RETURN(auto conn, PgConnection::Connect(dsn));
  stats_.connects++;

  // Feedback at least every min(status_interval, wal_sender_timeout / 2).
  absl::Duration interval = options_.status_interval;
  if (auto timeout = conn->Exec("SHOW wal_sender_timeout"); timeout.ok()) {
    absl::Duration server;
    std::string text(timeout->Get(0, 0));
    // PostgreSQL prints "60s", "1min", "500ms" or "0" (disabled).
    if (absl::EndsWith(text, "min")) text = text.substr(0, text.size() - 3) + "m";
    if (absl::ParseDuration(text, &server) && server > absl::ZeroDuration()) {
      interval = std::min(interval, server / 2);
    }
  }

  std::string start = absl::StrCat(
      "START_REPLICATION SLOT ", conn->QuoteIdentifier(options_.slot_name), " LOGICAL 0/0 (",
      "proto_version '", options_.protocol_version, "', publication_names ",
      conn->QuoteLiteral(options_.publication_name), ", messages 'true')");
  {
    PgResult result(PQexec(conn->raw(), start.c_str()));
    if (PQresultStatus(result.raw()) != PGRES_COPY_BOTH) {
      const char* state = PQresultErrorField(result.raw(), PG_DIAG_SQLSTATE);
      std::string sqlstate = state ? state : "";
      std::string message = PQresultErrorMessage(result.raw());
      while (!message.empty() && message.back() == '\n') message.pop_back();
      absl::StatusCode code =
          sqlstate.empty() ? absl::StatusCode::kUnavailable : StatusCodeForSqlState(sqlstate);
      // 55006 object_in_use: another consumer holds the slot; retry.
      if (sqlstate == "55006") code = absl::StatusCode::kUnavailable;
      return absl::Status(code, absl::StrCat("START_REPLICATION on slot \"", options_.slot_name,
                                             "\" failed: ", message));
    }
  }
  ReceiveQueue queue(options_.receive_buffer_bytes, &stats_);
  if (!queue.ok()) {
    return absl::InternalError(absl::StrCat("eventfd for the replication stream: ", strerror(errno)));
  }
  stats_.streaming = true;
  consumer_->OnStreaming();
  spdlog::info("streaming from slot \"{}\" (publication \"{}\", {})", options_.slot_name,
               options_.publication_name, conn->Describe());

  std::thread apply;
  try {
    apply = std::thread([&] { ApplyLoop(queue, consumer_, stats_); });
  } catch (const std::system_error& e) {
    return absl::UnavailableError(absl::StrCat("starting the apply thread: ", e.what()));
  }
  absl::Status status = ReceiveLoop(*conn, queue, interval, stop);
  queue.Close(/*stopping=*/status.ok());
  apply.join();
  stats_.queued_bytes = 0;
  if (!status.ok()) return status;

  // Clean stop: the apply thread made what it applied durable; confirm it,
  // then end the copy.
  TRICKLE_RETURN_IF_ERROR(SendFeedback(*conn));
  PQputCopyEnd(conn->raw(), nullptr);
  PQflush(conn->raw());
  return absl::OkStatus();
}

absl::Status ReplicationStream::SendFeedback(PgConnection& conn) {
  Lsn flushed = consumer_->FlushedLsn();
  Lsn written = std::max(consumer_->WrittenLsn(), flushed);
  std::string msg = EncodeStandbyStatus(written, flushed, flushed, PgNowMicros(), false);
  if (PQputCopyData(conn.raw(), msg.data(), static_cast<int>(msg.size())) != 1 ||
      PQflush(conn.raw()) != 0) {
    return absl::UnavailableError(
        absl::StrCat("sending standby status update failed: ", PQerrorMessage(conn.raw())));
  }
  stats_.feedbacks++;
  stats_.confirmed_lsn = flushed;
  return absl::OkStatus();
}

absl::Status ReplicationStream::ReceiveLoop(PgConnection& conn, ReceiveQueue& queue,
                                            absl::Duration interval,
                                            const std::atomic<bool>& stop) {
  // Messages read per turn before stop and feedback are checked again: keeps
  // the clock off the per-message path while a backlog is read.
  constexpr int kBurst = 256;
  constexpr absl::Duration kCoalesce = absl::Milliseconds(1);
  absl::Time next_feedback = absl::Now();
  bool reply_now = false;
  while (true) {
    // Stop -> feedback due -> data, as pg_recvlogical.
    if (stop.load()) return absl::OkStatus();
    TRICKLE_RETURN_IF_ERROR(queue.failure());
    absl::Time now = absl::Now();
    if (reply_now || queue.TakeFeedbackRequest() || now >= next_feedback) {
      TRICKLE_RETURN_IF_ERROR(SendFeedback(conn));
      next_feedback = now + interval;
      reply_now = false;
    }

    bool drained = false;
    bool full = false;
    int read = 0;
    for (int i = 0; i < kBurst; ++i) {
      if (queue.Full()) {
        full = true;
        break;
      }
      char* buffer = nullptr;
      int n = PQgetCopyData(conn.raw(), &buffer, /*async=*/1);
      if (n == 0) {
        drained = true;
        break;
      }
      if (n == -1) {  // COPY ended by the server
        PgResult result(PQgetResult(conn.raw()));
        return absl::UnavailableError(absl::StrCat(
            "server ended the replication stream: ",
            result.raw() ? PQresultErrorMessage(result.raw()) : "no result"));
      }
      if (n < -1) {
        return absl::UnavailableError(
            absl::StrCat("reading the replication stream: ", PQerrorMessage(conn.raw())));
      }
      std::unique_ptr<char, decltype(&PQfreemem)> owned(buffer, &PQfreemem);
      auto message = ParseReplicationMessage(std::string_view(buffer, n));
      if (!message.ok()) {
        return absl::InternalError(
            absl::StrCat("replication stream: ", message.status().message()));
      }
      stats_.bytes += n;
      stats_.received_lsn = std::max<Lsn>(stats_.received_lsn.load(), message->wal_end);
      if (message->kind == ReplicationMessage::kKeepalive) {
        queue.Append('k', 0, message->wal_end, {});
        if (message->reply_requested) {
          reply_now = true;
          break;
        }
        continue;
      }
      stats_.messages++;
      ++read;
      queue.Append('w', message->wal_start, message->wal_end, message->payload);
    }
    queue.Publish();
    if (!drained && !full) continue;  // more to read, or a reply is due
    if (drained && read > 0) {
      // Data is flowing. The walsender writes each message to the socket on
      // its own, and a reader blocked in poll() is woken for every one of
      // them: give it a moment to queue more, then read them in one go.
      // What was read is already handed to the apply thread, so the pause
      // delays only what arrives during it. 1 ms rather than 0.2 ms: under
      // pgbench (~3,000 small transactions/s, 6 messages each) trickled's
      // CPU per source transaction went from 0.085 to 0.066 ms (with the
      // lock-order check off, see trickled_main.cc), and at the
      // capture benchmark's ~20 MB/s it is ~20 KB, a tenth of a default
      // socket buffer (208 KB), so the walsender does not wait for us.
      absl::SleepFor(kCoalesce);
      if (PQconsumeInput(conn.raw()) == 0) {
        return absl::UnavailableError(
            absl::StrCat("replication connection lost: ", PQerrorMessage(conn.raw())));
      }
      continue;
    }

    // Wait for the socket (unless the queue is full), the apply thread, the
    // feedback deadline or a stop.
    absl::Duration wait = std::clamp(next_feedback - absl::Now(), absl::ZeroDuration(),
                                     absl::Milliseconds(100));
    pollfd fds[2] = {{queue.wake_fd(), POLLIN, 0}, {PQsocket(conn.raw()), POLLIN, 0}};
    int rc = poll(fds, full ? 1 : 2, static_cast<int>(absl::ToInt64Milliseconds(wait)));
    if (rc < 0 && errno != EINTR) {
      return absl::UnavailableError(absl::StrCat("poll on replication socket: ", strerror(errno)));
    }
    if (rc > 0 && (fds[0].revents & POLLIN)) queue.DrainWakeups();
    if (rc > 0 && !full && fds[1].revents != 0 && PQconsumeInput(conn.raw()) == 0) {
      return absl::UnavailableError(
          absl::StrCat("replication connection lost: ", PQerrorMessage(conn.raw())));
    }
  }
}

}  // namespace trickle::pgoutput
