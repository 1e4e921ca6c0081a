// libFuzzer target for the pgoutput decoder (built with clang++
// -fsanitize=fuzzer,address,undefined; see CMakeLists.txt).
//
// Input layout, so one input exercises a whole stream and its block state:
//   byte 0        bit 0 selects the protocol version (0: v1, 1: v2)
//   then frames   Int16 length (big-endian) + that many message bytes; a
//                 length past the end takes what is left
// Each frame is copied into a heap buffer of exactly its size, so any read
// past the end is an AddressSanitizer report.
//
// Properties checked besides "no crash, no sanitizer report":
//  - a failed Decode() is InvalidArgument, names the message and offset, and
//    leaves the streamed-block state unchanged;
//  - a decoded message re-encodes to bytes that decode to the same message;
//  - the relation cache and the TOAST fill accept whatever the decoder
//    produces without crashing, and a successful fill leaves no 'u' column.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "pgoutput/decoder.h"
#include "pgoutput/relation_cache.h"
#include "pgoutput/tuple_fill.h"
#include "tests/pgoutput/message_builder.h"
#include "tests/pgoutput/recording_handler.h"

namespace trickle::pgoutput {
namespace {

#define FUZZ_CHECK(cond, ...)                                   \
  do {                                                          \
    if (!(cond)) {                                              \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s\n", #cond);  \
      std::fprintf(stderr, __VA_ARGS__);                        \
      std::fprintf(stderr, "\n");                               \
      std::abort();                                             \
    }                                                           \
  } while (0)

// Decodes `bytes` with a fresh decoder put into the same streamed-block state
// and checks the result equals `expected`.
template <typename M>
void CheckRoundTrip(int version, bool streamed, const std::string& bytes, const M& expected) {
  Decoder decoder(version);
  testing::RecordingHandler handler;
  if (streamed) {
    absl::Status start = decoder.Decode(testing::Encode(StreamStartMessage{1, true}), &handler);
    FUZZ_CHECK(start.ok(), "%s", std::string(start.message()).c_str());
    handler.messages.clear();
  }
  absl::Status status = decoder.Decode(bytes, &handler);
  FUZZ_CHECK(status.ok(), "re-encoded message does not decode: %s",
             std::string(status.message()).c_str());
  FUZZ_CHECK(handler.messages.size() == 1, "re-decode gave %zu messages",
             handler.messages.size());
  FUZZ_CHECK(std::get<M>(handler.messages[0]) == expected, "re-decoded message differs");
}

class CheckingHandler : public MessageHandler {
 public:
  CheckingHandler(const Decoder* decoder, int version) : decoder_(decoder), version_(version) {}

  absl::Status OnBegin(const BeginMessage& m) override { return Plain(m); }
  absl::Status OnCommit(const CommitMessage& m) override { return Plain(m); }
  absl::Status OnOrigin(const OriginMessage& m) override { return Plain(m); }
  absl::Status OnStreamCommit(const StreamCommitMessage& m) override { return Plain(m); }
  absl::Status OnStreamAbort(const StreamAbortMessage& m) override { return Plain(m); }
  absl::Status OnStreamStart(const StreamStartMessage& m) override {
    // The decoder already entered the block; the re-decode starts outside.
    CheckRoundTrip(version_, false, testing::Encode(m), m);
    return absl::OkStatus();
  }
  absl::Status OnStreamStop(const StreamStopMessage&) override { return absl::OkStatus(); }

  absl::Status OnRelation(const RelationMessage& m) override {
    cache_.Apply(m);
    return Data(m);
  }
  absl::Status OnType(const TypeMessage& m) override { return Data(m); }
  absl::Status OnInsert(const InsertMessage& m) override { return Data(m); }
  absl::Status OnDelete(const DeleteMessage& m) override { return Data(m); }
  absl::Status OnTruncate(const TruncateMessage& m) override { return Data(m); }
  absl::Status OnMessage(const LogicalMessage& m) override { return Data(m); }
  absl::Status OnUpdate(const UpdateMessage& m) override {
    auto schema = cache_.Current(m.relation_oid);
    if (schema.ok()) {
      UpdateMessage filled = m;
      if (FillUnchangedToast(**schema, &filled).ok()) {
        for (const ColumnValue& c : filled.new_tuple) {
          FUZZ_CHECK(c.kind != ColumnKind::kUnchanged, "fill left a 'u' column");
        }
      } else {
        FUZZ_CHECK(filled == m, "a failed fill changed the Update");
      }
    }
    return Data(m);
  }

 private:
  template <typename M>
  absl::Status Plain(const M& m) {
    CheckRoundTrip(version_, decoder_->in_streamed_block(), testing::Encode(m), m);
    return absl::OkStatus();
  }
  template <typename M>
  absl::Status Data(const M& m) {
    const bool streamed = decoder_->in_streamed_block();
    CheckRoundTrip(version_, streamed, testing::Encode(m, streamed), m);
    return absl::OkStatus();
  }

  const Decoder* decoder_;  // outlives the handler; read for the block state
  int version_;
  RelationCache cache_;
};

}  // namespace
}  // namespace trickle::pgoutput

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace trickle::pgoutput;
  if (size < 1) return 0;
  const int version = (data[0] & 1) ? 2 : 1;
  Decoder decoder(version);
  CheckingHandler handler(&decoder, version);
  size_t pos = 1;
  while (pos < size) {
    size_t length = 0;
    if (pos + 2 <= size) {
      length = (static_cast<size_t>(data[pos]) << 8) | data[pos + 1];
      pos += 2;
    } else {
      pos = size;  // a lone trailing byte: decode an empty frame
    }
    if (length > size - pos) length = size - pos;
    std::unique_ptr<char[]> frame(new char[length == 0 ? 1 : length]);
    if (length > 0) std::memcpy(frame.get(), data + pos, length);
    pos += length;

    const bool was_streamed = decoder.in_streamed_block();
    absl::Status status = decoder.Decode(std::string_view(frame.get(), length), &handler);
    if (!status.ok()) {
      const std::string message(status.message());
      FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument, "%s", message.c_str());
      FUZZ_CHECK(message.rfind("pgoutput ", 0) == 0, "%s", message.c_str());
      FUZZ_CHECK(message.find(" at byte offset ") != std::string::npos, "%s", message.c_str());
      FUZZ_CHECK(decoder.in_streamed_block() == was_streamed, "error changed the state: %s",
                 message.c_str());
    }
  }
  return 0;
}
