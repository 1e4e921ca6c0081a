// A MessageHandler that copies every decoded message, for tests and the fuzz
// target. Copies matter: the decoder reuses its message storage.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "pgoutput/decoder.h"
#include "pgoutput/messages.h"

namespace trickle::pgoutput::testing {

using AnyMessage =
    std::variant<BeginMessage, CommitMessage, OriginMessage, RelationMessage, TypeMessage,
                 InsertMessage, UpdateMessage, DeleteMessage, TruncateMessage, LogicalMessage,
                 StreamStartMessage, StreamStopMessage, StreamCommitMessage,
                 StreamAbortMessage>;

// The wire type byte of a decoded message.
inline char TypeByte(const AnyMessage& m) {
  static constexpr char kBytes[] = {'B', 'C', 'O', 'R', 'Y', 'I', 'U',
                                    'D', 'T', 'M', 'S', 'E', 'c', 'A'};
  return kBytes[m.index()];
}

class RecordingHandler : public MessageHandler {
 public:
  absl::Status OnBegin(const BeginMessage& m) override { return Record(m); }
  absl::Status OnCommit(const CommitMessage& m) override { return Record(m); }
  absl::Status OnOrigin(const OriginMessage& m) override { return Record(m); }
  absl::Status OnRelation(const RelationMessage& m) override { return Record(m); }
  absl::Status OnType(const TypeMessage& m) override { return Record(m); }
  absl::Status OnInsert(const InsertMessage& m) override { return Record(m); }
  absl::Status OnUpdate(const UpdateMessage& m) override { return Record(m); }
  absl::Status OnDelete(const DeleteMessage& m) override { return Record(m); }
  absl::Status OnTruncate(const TruncateMessage& m) override { return Record(m); }
  absl::Status OnMessage(const LogicalMessage& m) override { return Record(m); }
  absl::Status OnStreamStart(const StreamStartMessage& m) override { return Record(m); }
  absl::Status OnStreamStop(const StreamStopMessage& m) override { return Record(m); }
  absl::Status OnStreamCommit(const StreamCommitMessage& m) override { return Record(m); }
  absl::Status OnStreamAbort(const StreamAbortMessage& m) override { return Record(m); }

  std::vector<AnyMessage> messages;
  // The type bytes of `messages`, e.g. "BRIC".
  std::string types;

 private:
  template <typename M>
  absl::Status Record(const M& m) {
    messages.emplace_back(m);
    types.push_back(TypeByte(messages.back()));
    return absl::OkStatus();
  }
};

}  // namespace trickle::pgoutput::testing
