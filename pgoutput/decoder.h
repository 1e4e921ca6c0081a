// The pure pgoutput decoder: bytes -> typed messages, no I/O.
//
// Shaped like LevelDB's WriteBatch::Iterate(Handler*): Decode() parses one
// pgoutput message (the payload of one XLogData) and calls the matching
// handler method. Malformed input yields an error Status naming the message
// type and the byte offset; the decoder never reads past the buffer.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "pgoutput/messages.h"

namespace trickle::pgoutput {

// Receives decoded messages. Every method defaults to OK so a handler
// overrides only what it needs. A non-OK return stops decoding and is
// returned by Decode().
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

// Decodes a sequence of pgoutput messages of one replication stream. The only
// state it keeps is whether it is inside a streamed block (Stream Start ..
// Stream Stop), where protocol v2 prefixes data messages with an xid.
class Decoder {
 public:
  // `protocol_version` is the proto_version given to START_REPLICATION (1-2).
  explicit Decoder(int protocol_version = 1) : protocol_version_(protocol_version) {}

  // Decodes exactly one message filling `bytes` (trailing bytes are an error).
  absl::Status Decode(std::string_view bytes, MessageHandler* handler);

  bool in_streamed_block() const { return in_streamed_block_; }

 private:
  int protocol_version_;
  bool in_streamed_block_ = false;
};

}  // namespace trickle::pgoutput
