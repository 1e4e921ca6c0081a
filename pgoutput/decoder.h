// The pure pgoutput decoder: bytes -> typed messages, no I/O.
//
// Shaped like LevelDB's WriteBatch::Iterate(Handler*): Decode() parses one
// pgoutput message (the payload of one XLogData) and calls the matching
// handler method. Malformed input yields an InvalidArgument Status naming the
// message type and the byte offset; the decoder never reads past the buffer.
// The accepted grammar is written at the top of decoder.cc and in
// docs/pgoutput_decoder.md.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "pgoutput/messages.h"

namespace trickle::pgoutput {

namespace decoder_internal {
class Reader;
}  // namespace decoder_internal

// Receives decoded messages. Every method defaults to OK so a handler
// overrides only what it needs. A non-OK return stops decoding and is
// returned by Decode().
//
// Lifetime: the message passed to a handler method (and every string and
// tuple inside it) is valid only for the duration of that call; the decoder
// reuses its storage for the next message. Copy what you keep.
class MessageHandler {
 public:
  virtual ~MessageHandler() = default;
  virtual absl::Status OnBegin(const BeginMessage&) { return absl::OkStatus(); }
  virtual absl::Status OnCommit(const CommitMessage&) { return absl::OkStatus(); }
  virtual absl::Status OnOrigin(const OriginMessage&) { return absl::OkStatus(); }
  virtual absl::Status OnRelation(const RelationMessage&) { return absl::OkStatus(); }
  virtual absl::Status OnType(const TypeMessage&) { return absl::OkStatus(); }
  virtual absl::Status OnInsert(const InsertMessage&) { return absl::OkStatus(); }
  virtual absl::Status OnUpdate(const UpdateMessage&) { return absl::OkStatus(); }
  virtual absl::Status OnDelete(const DeleteMessage&) { return absl::OkStatus(); }
  virtual absl::Status OnTruncate(const TruncateMessage&) { return absl::OkStatus(); }
  virtual absl::Status OnMessage(const LogicalMessage&) { return absl::OkStatus(); }
  virtual absl::Status OnStreamStart(const StreamStartMessage&) { return absl::OkStatus(); }
  virtual absl::Status OnStreamStop(const StreamStopMessage&) { return absl::OkStatus(); }
  virtual absl::Status OnStreamCommit(const StreamCommitMessage&) { return absl::OkStatus(); }
  virtual absl::Status OnStreamAbort(const StreamAbortMessage&) { return absl::OkStatus(); }
};

// Decodes a sequence of pgoutput messages of one replication stream.
//
// The only protocol state it keeps is whether it is inside a streamed block
// (Stream Start .. Stream Stop), where protocol v2 prefixes data messages with
// an xid. Besides that it keeps scratch message objects whose capacity is
// reused from one Decode() to the next, so steady-state decoding does not
// allocate per message.
//
// Not thread-safe: one Decoder belongs to the thread that owns the
// replication connection.
class Decoder {
 public:
  static constexpr int kMinProtocolVersion = 1;
  static constexpr int kMaxProtocolVersion = 2;

  // `protocol_version` is the proto_version given to START_REPLICATION (1-2).
  // Any other value makes every Decode() fail with FailedPrecondition.
  explicit Decoder(int protocol_version = 1) : protocol_version_(protocol_version) {}

  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // Decodes exactly one message filling `bytes` (trailing bytes are an error)
  // and calls the matching method of `handler` (not null). On a decode error
  // the handler is not called and the streamed-block state is unchanged. The
  // state follows the wire even when the handler fails: a well-formed Stream
  // Start enters the block before OnStreamStart() runs.
  absl::Status Decode(std::string_view bytes, MessageHandler* handler);

  // Forgets the streamed-block state. Call it when the replication connection
  // is re-established: the server starts again from a transaction boundary.
  void Reset() {
    in_streamed_block_ = false;
    streamed_xid_ = 0;
  }

  int protocol_version() const { return protocol_version_; }
  bool in_streamed_block() const { return in_streamed_block_; }
  // The xid of the open streamed block; meaningful only while
  // in_streamed_block().
  TransactionId streamed_xid() const { return streamed_xid_; }

 private:
  using Reader = decoder_internal::Reader;

  absl::Status DecodeBegin(Reader& r, MessageHandler* handler);
  absl::Status DecodeCommit(Reader& r, MessageHandler* handler);
  absl::Status DecodeOrigin(Reader& r, MessageHandler* handler);
  absl::Status DecodeRelation(Reader& r, MessageHandler* handler);
  absl::Status DecodeType(Reader& r, MessageHandler* handler);
  absl::Status DecodeInsert(Reader& r, MessageHandler* handler);
  absl::Status DecodeUpdate(Reader& r, MessageHandler* handler);
  absl::Status DecodeDelete(Reader& r, MessageHandler* handler);
  absl::Status DecodeTruncate(Reader& r, MessageHandler* handler);
  absl::Status DecodeMessage(Reader& r, MessageHandler* handler);
  absl::Status DecodeStreamStart(Reader& r, MessageHandler* handler);
  absl::Status DecodeStreamStop(Reader& r, MessageHandler* handler);
  absl::Status DecodeStreamCommit(Reader& r, MessageHandler* handler);
  absl::Status DecodeStreamAbort(Reader& r, MessageHandler* handler);

  // Reads the Int32 xid that v2 puts after the type byte inside a streamed
  // block; sets *xid = 0 elsewhere.
  absl::Status ReadStreamedXid(Reader& r, TransactionId* xid);
  // Checks that a message which must not appear inside a streamed block
  // (or must, for `inside` = true) is where it belongs.
  absl::Status CheckStreamedBlock(Reader& r, bool inside) const;
  // Checks that a Stream* message is allowed by the protocol version.
  absl::Status CheckStreamingVersion(Reader& r) const;

  int protocol_version_;
  bool in_streamed_block_ = false;
  TransactionId streamed_xid_ = 0;

  // Scratch messages reused across Decode() calls (see the class comment).
  RelationMessage relation_;
  InsertMessage insert_;
  UpdateMessage update_;
  DeleteMessage delete_;
  TruncateMessage truncate_;
  LogicalMessage message_;
  OriginMessage origin_;
  TypeMessage type_;
};

}  // namespace trickle::pgoutput
