#include "pgoutput/replication_stream.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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
  stats_.streaming = true;
  consumer_->OnStreaming();
  spdlog::info("streaming from slot \"{}\" (publication \"{}\", {})", options_.slot_name,
               options_.publication_name, conn->Describe());

  absl::Time next_feedback = absl::Now();
  bool reply_now = false;
  auto send_feedback = [&]() -> absl::Status {
    if (absl::Status s = consumer_->BeforeFeedback(); !s.ok()) {
      spdlog::error("making the change log durable failed: {}; not confirming past {}",
                    s.ToString(), FormatLsn(consumer_->FlushedLsn()));
    }
    Lsn flushed = consumer_->FlushedLsn();
    Lsn written = std::max(consumer_->WrittenLsn(), flushed);
    std::string msg = EncodeStandbyStatus(written, flushed, flushed, PgNowMicros(), false);
    if (PQputCopyData(conn->raw(), msg.data(), static_cast<int>(msg.size())) != 1 ||
        PQflush(conn->raw()) != 0) {
      return absl::UnavailableError(absl::StrCat("sending standby status update failed: ",
                                                 PQerrorMessage(conn->raw())));
    }
    stats_.feedbacks++;
    stats_.confirmed_lsn = flushed;
    next_feedback = absl::Now() + interval;
    reply_now = false;
    return absl::OkStatus();
  };

  while (true) {
    if (stop.load()) {
      // Clean stop: confirm what is durable, then end the copy.
      TRICKLE_RETURN_IF_ERROR(send_feedback());
      PQputCopyEnd(conn->raw(), nullptr);
      PQflush(conn->raw());
      return absl::OkStatus();
    }
    if (reply_now || absl::Now() >= next_feedback) TRICKLE_RETURN_IF_ERROR(send_feedback());

    char* buffer = nullptr;
    int n = PQgetCopyData(conn->raw(), &buffer, /*async=*/1);
    if (n == 0) {
      // Nothing buffered: wait for the socket, the feedback deadline or a stop.
      absl::Duration wait = std::clamp(next_feedback - absl::Now(), absl::ZeroDuration(),
                                       absl::Milliseconds(100));
      pollfd pfd{PQsocket(conn->raw()), POLLIN, 0};
      int rc = poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(wait)));
      if (rc < 0 && errno != EINTR) {
        return absl::UnavailableError(absl::StrCat("poll on replication socket: ", strerror(errno)));
      }
      if (rc > 0 && PQconsumeInput(conn->raw()) == 0) {
        return absl::UnavailableError(
            absl::StrCat("replication connection lost: ", PQerrorMessage(conn->raw())));
      }
      continue;
    }
    if (n == -1) {  // COPY ended by the server
      PgResult result(PQgetResult(conn->raw()));
      return absl::UnavailableError(absl::StrCat(
          "server ended the replication stream: ",
          result.raw() ? PQresultErrorMessage(result.raw()) : "no result"));
    }
    if (n < -1) {
      return absl::UnavailableError(
          absl::StrCat("reading the replication stream: ", PQerrorMessage(conn->raw())));
    }
    std::unique_ptr<char, decltype(&PQfreemem)> owned(buffer, &PQfreemem);
    auto message = ParseReplicationMessage(std::string_view(buffer, n));
    if (!message.ok()) {
      return absl::InternalError(absl::StrCat("replication stream: ", message.status().message()));
    }
    stats_.bytes += n;
    if (message->kind == ReplicationMessage::kKeepalive) {
      stats_.received_lsn = std::max<Lsn>(stats_.received_lsn.load(), message->wal_end);
      consumer_->OnKeepalive(message->wal_end);
      if (message->reply_requested) reply_now = true;
      continue;
    }
    stats_.messages++;
    stats_.received_lsn = std::max<Lsn>(stats_.received_lsn.load(), message->wal_end);
    absl::Status consumed =
        consumer_->OnXLogData(message->wal_start, message->wal_end, message->payload);
    if (!consumed.ok()) {
      // Storage or decode failure: drop the connection without confirming
      // anything new; PostgreSQL keeps the WAL and sends it again.
      return absl::Status(
          consumed.code() == absl::StatusCode::kInvalidArgument ? absl::StatusCode::kInternal
                                                                : consumed.code(),
          absl::StrCat("at WAL ", FormatLsn(message->wal_start), ": ", consumed.message()));
    }
  }
}

}  // namespace trickle::pgoutput
