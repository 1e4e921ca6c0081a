// Decoder tests: every message kind of protocol v1 and v2 (round trips
// through the test encoder and literal bytes written from the PostgreSQL
// docs), the streamed-block state, and one test per malformed case asserting
// the error code and the exact message (type and byte offset), in the manner
// of LevelDB's log_test.
#include "pgoutput/decoder.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/pgoutput/message_builder.h"
#include "tests/pgoutput/recording_handler.h"

namespace trickle::pgoutput {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::AnyMessage;
using testing::Binary;
using testing::ByteWriter;
using testing::Encode;
using testing::Null;
using testing::RecordingHandler;
using testing::Text;
using testing::Unchanged;
using namespace std::string_literals;

// Decodes from a heap copy of exactly bytes.size() bytes, so a read past the
// end is a heap overflow that AddressSanitizer reports.
absl::Status DecodeExact(Decoder& decoder, const std::string& bytes,
                         MessageHandler* handler) {
  std::unique_ptr<char[]> copy(new char[bytes.size() == 0 ? 1 : bytes.size()]);
  if (!bytes.empty()) std::memcpy(copy.get(), bytes.data(), bytes.size());
  return decoder.Decode(std::string_view(copy.get(), bytes.size()), handler);
}

// Decodes one message and returns what the handler saw.
AnyMessage DecodeOne(Decoder& decoder, const std::string& bytes) {
  RecordingHandler handler;
  absl::Status status = DecodeExact(decoder, bytes, &handler);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(handler.messages.size(), 1u);
  return handler.messages.empty() ? AnyMessage{} : handler.messages.front();
}

absl::Status DecodeError(Decoder& decoder, const std::string& bytes) {
  RecordingHandler handler;
  absl::Status status = DecodeExact(decoder, bytes, &handler);
  EXPECT_TRUE(handler.messages.empty()) << "handler called for malformed input";
  return status;
}

void ExpectInvalid(const absl::Status& status, const std::string& message) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(std::string(status.message()), message);
}

// ---------------------------------------------------------------------------
// Sample messages covering every kind and every column kind.

RelationMessage OrdersRelation() {
  return RelationMessage{.xid = 0,
                         .relation_oid = 16391,
                         .namespace_name = "public",
                         .relation_name = "orders",
                         .replica_identity = 'f',
                         .columns = {{true, "id", 23, -1},
                                     {false, "customer", 25, -1},
                                     {false, "amount", 1700, 655366},
                                     {false, "note", 25, -1}}};
}

// Data messages (those that carry an xid inside a streamed block).
std::vector<AnyMessage> DataMessages(TransactionId xid) {
  RelationMessage orders = OrdersRelation();
  orders.xid = xid;
  RelationMessage catalog_rel{.xid = xid,
                              .relation_oid = 1259,
                              .namespace_name = "",
                              .relation_name = "pg_class",
                              .replica_identity = 'n',
                              .columns = {}};
  RelationMessage keyed{.xid = xid,
                        .relation_oid = 16400,
                        .namespace_name = "sales",
                        .relation_name = "line items",
                        .replica_identity = 'i',
                        .columns = {{true, "order_id", 20, -1}, {true, "line", 21, -1}}};
  return {
      orders,
      catalog_rel,
      keyed,
      TypeMessage{xid, 16385, "public", "mood"},
      InsertMessage{xid, 16391, {Text("1"), Text("ada"), Text("12.50"), Null()}},
      InsertMessage{xid, 16391, {Binary("\x00\x00\x00\x02"s), Text(""), Null(), Null()}},
      InsertMessage{xid, 16402, {}},  // a table without columns
      UpdateMessage{xid, 16391, OldTupleKind::kNone, {}, {Text("1"), Text("ada"), Text("13.75"), Null()}},
      UpdateMessage{xid, 16400, OldTupleKind::kKey, {Text("7"), Text("1")}, {Text("8"), Text("1")}},
      UpdateMessage{xid,
                    16391,
                    OldTupleKind::kFull,
                    {Text("1"), Text("ada"), Text("12.50"), Text(std::string(3000, 'x'))},
                    {Text("1"), Text("ada"), Text("13.75"), Unchanged()}},
      DeleteMessage{xid, 16400, OldTupleKind::kKey, {Text("8"), Text("1")}},
      DeleteMessage{xid, 16391, OldTupleKind::kFull, {Text("1"), Text("ada"), Null(), Null()}},
      TruncateMessage{xid, 0, {16391}},
      TruncateMessage{xid, TruncateMessage::kCascade | TruncateMessage::kRestartIdentity,
                      {16391, 16400, 16402}},
      TruncateMessage{xid, 0, {}},
      LogicalMessage{xid, true, 0x15416E8, "trickle.fence", "token-42"},
      LogicalMessage{xid, false, 0x1541760, "trickle.note", "\x00\x01" "binary"s},
      LogicalMessage{xid, true, 0x1541790, "", ""},
  };
}

// Messages that never carry an xid prefix.
std::vector<AnyMessage> TransactionMessages() {
  return {
      BeginMessage{0x16B374D848, 768468000123456, 735},
      CommitMessage{0, 0x16B374D848, 0x16B374D878, 768468000123456},
      OriginMessage{0xABCDEF0, "trickle_upstream"},
      OriginMessage{0, ""},
      BeginMessage{0xFFFFFFFFFFFFFFFF, -1, 0xFFFFFFFF},  // extremes of every field
  };
}

std::vector<AnyMessage> StreamControlMessages() {
  return {StreamStartMessage{900, true}, StreamStopMessage{},
          StreamCommitMessage{900, 0, 0x1600000, 0x1600030, 768468000123456},
          StreamAbortMessage{900, 901}, StreamAbortMessage{902, 902}};
}

std::string EncodeAny(const AnyMessage& m, bool streamed) {
  return std::visit(
      [&](const auto& message) -> std::string {
        using M = std::decay_t<decltype(message)>;
        if constexpr (std::is_same_v<M, RelationMessage> || std::is_same_v<M, TypeMessage> ||
                      std::is_same_v<M, InsertMessage> || std::is_same_v<M, UpdateMessage> ||
                      std::is_same_v<M, DeleteMessage> ||
                      std::is_same_v<M, TruncateMessage> ||
                      std::is_same_v<M, LogicalMessage>) {
          return Encode(message, streamed);
        } else {
          return Encode(message);
        }
      },
      m);
}

std::string MessageName(char type) {
  switch (type) {
    case 'B': return "Begin";
    case 'C': return "Commit";
    case 'O': return "Origin";
    case 'R': return "Relation";
    case 'Y': return "Type";
    case 'I': return "Insert";
    case 'U': return "Update";
    case 'D': return "Delete";
    case 'T': return "Truncate";
    case 'M': return "Message";
    case 'S': return "Stream Start";
    case 'E': return "Stream Stop";
    case 'c': return "Stream Commit";
    case 'A': return "Stream Abort";
  }
  return "?";
}

// ---------------------------------------------------------------------------
// Well-formed messages.

TEST(DecoderTest, RoundTripsEveryMessageKindOutsideStreamedBlocks) {
  for (int version : {1, 2}) {
    Decoder decoder(version);
    std::vector<AnyMessage> all = TransactionMessages();
    for (AnyMessage& m : DataMessages(0)) all.push_back(m);
    for (const AnyMessage& m : all) {
      SCOPED_TRACE(testing::TypeByte(m));
      EXPECT_EQ(DecodeOne(decoder, EncodeAny(m, /*streamed=*/false)), m);
    }
    EXPECT_FALSE(decoder.in_streamed_block());
  }
}

TEST(DecoderTest, RoundTripsStreamedBlockInProtocolV2) {
  Decoder decoder(2);
  EXPECT_EQ(DecodeOne(decoder, Encode(StreamStartMessage{900, true})),
            AnyMessage(StreamStartMessage{900, true}));
  ASSERT_TRUE(decoder.in_streamed_block());
  EXPECT_EQ(decoder.streamed_xid(), 900u);
  // Inside the block data messages carry an xid (a subtransaction's, here).
  for (const AnyMessage& m : DataMessages(901)) {
    SCOPED_TRACE(testing::TypeByte(m));
    EXPECT_EQ(DecodeOne(decoder, EncodeAny(m, /*streamed=*/true)), m);
  }
  // Origin is allowed inside a block and has no xid.
  EXPECT_EQ(DecodeOne(decoder, Encode(OriginMessage{0, "upstream"})),
            AnyMessage(OriginMessage{0, "upstream"}));
  EXPECT_EQ(DecodeOne(decoder, Encode(StreamStopMessage{})), AnyMessage(StreamStopMessage{}));
  EXPECT_FALSE(decoder.in_streamed_block());

  for (const AnyMessage& m : StreamControlMessages()) {
    if (std::holds_alternative<StreamStartMessage>(m) ||
        std::holds_alternative<StreamStopMessage>(m)) {
      continue;
    }
    SCOPED_TRACE(testing::TypeByte(m));
    EXPECT_EQ(DecodeOne(decoder, EncodeAny(m, false)), m);
  }
  // After the block, data messages have no xid again.
  EXPECT_EQ(DecodeOne(decoder, Encode(InsertMessage{0, 16391, {Text("2")}})),
            AnyMessage(InsertMessage{0, 16391, {Text("2")}}));
}

TEST(DecoderTest, StreamStartWithoutFirstSegmentFlag) {
  Decoder decoder(2);
  EXPECT_EQ(DecodeOne(decoder, Encode(StreamStartMessage{42, false})),
            AnyMessage(StreamStartMessage{42, false}));
}

// Literal bytes, written from the "Logical Replication Message Formats" page,
// not from the test encoder; each also checks the encoder.
TEST(DecoderTest, LiteralBegin) {
  const std::string bytes =
      "B"
      "\x00\x00\x00\x16\xB3\x74\xD8\x48"  // final LSN 16/B374D848
      "\x00\x02\xBA\xE0\x53\x2A\x5C\x40"  // commit time (µs since 2000-01-01)
      "\x00\x00\x02\xDF"s;                // xid 735
  Decoder decoder;
  BeginMessage expected{0x16B374D848, 0x0002BAE0532A5C40, 735};
  EXPECT_EQ(DecodeOne(decoder, bytes), AnyMessage(expected));
  EXPECT_EQ(Encode(expected), bytes);
}

TEST(DecoderTest, LiteralCommit) {
  const std::string bytes =
      "C"
      "\x00"                              // flags
      "\x00\x00\x00\x00\x01\x53\xBE\x38"  // commit LSN 0/153BE38
      "\x00\x00\x00\x00\x01\x53\xBE\x68"  // end LSN 0/153BE68
      "\x00\x03\x03\xC6\xF1\xEF\x51\x6F"s;
  Decoder decoder;
  CommitMessage expected{0, 0x153BE38, 0x153BE68, 0x000303C6F1EF516F};
  EXPECT_EQ(DecodeOne(decoder, bytes), AnyMessage(expected));
  EXPECT_EQ(Encode(expected), bytes);
}

TEST(DecoderTest, LiteralRelation) {
  const std::string bytes =
      "R"
      "\x00\x00\x40\x0E"   // relation OID 16398
      "public\0"           // namespace
      "accounts\0"         // relation name
      "d"                  // replica identity default
      "\x00\x02"           // 2 columns
      "\x01" "id\0" "\x00\x00\x00\x17" "\xFF\xFF\xFF\xFF"        // key, int4, -1
      "\x00" "owner\0" "\x00\x00\x04\x13" "\x00\x00\x00\x24"s;  // varchar(32)
  Decoder decoder;
  RelationMessage expected{.xid = 0,
                           .relation_oid = 16398,
                           .namespace_name = "public",
                           .relation_name = "accounts",
                           .replica_identity = 'd',
                           .columns = {{true, "id", 23, -1}, {false, "owner", 1043, 36}}};
  EXPECT_EQ(DecodeOne(decoder, bytes), AnyMessage(expected));
  EXPECT_EQ(Encode(expected), bytes);
}

TEST(DecoderTest, LiteralUpdateWithOldKey) {
  const std::string bytes =
      "U"
      "\x00\x00\x40\x0E"                               // relation OID
      "K" "\x00\x03" "t\x00\x00\x00\x02" "10" "n" "n"  // old key: id=10
      "N" "\x00\x03" "t\x00\x00\x00\x02" "11" "u" "b\x00\x00\x00\x01\x07"s;
  Decoder decoder;
  UpdateMessage expected{0, 16398, OldTupleKind::kKey, {Text("10"), Null(), Null()},
                         {Text("11"), Unchanged(), Binary("\x07")}};
  EXPECT_EQ(DecodeOne(decoder, bytes), AnyMessage(expected));
  EXPECT_EQ(Encode(expected), bytes);
}

TEST(DecoderTest, LiteralTruncate) {
  const std::string bytes =
      "T"
      "\x00\x00\x00\x02"                     // 2 relations
      "\x03"                                 // CASCADE | RESTART IDENTITY
      "\x00\x00\x40\x07" "\x00\x00\x40\x15"s;
  Decoder decoder;
  TruncateMessage expected{0, 3, {16391, 16405}};
  EXPECT_EQ(DecodeOne(decoder, bytes), AnyMessage(expected));
  EXPECT_EQ(Encode(expected), bytes);
}

TEST(DecoderTest, LiteralMessage) {
  const std::string bytes =
      "M"
      "\x01"                              // transactional
      "\x00\x00\x00\x00\x01\x54\x16\xE8"  // LSN
      "trickle.fence\0"
      "\x00\x00\x00\x08" "token-42"s;
  Decoder decoder;
  LogicalMessage expected{0, true, 0x15416E8, "trickle.fence", "token-42"};
  EXPECT_EQ(DecodeOne(decoder, bytes), AnyMessage(expected));
  EXPECT_EQ(Encode(expected), bytes);
}

TEST(DecoderTest, LiteralStreamControlMessages) {
  Decoder decoder(2);
  RecordingHandler handler;
  const std::string start = "S" "\x00\x00\x03\x84" "\x01"s;  // xid 900, first segment
  const std::string insert =
      "I" "\x00\x00\x03\x85"                          // xid 901 (a subtransaction)
      "\x00\x00\x40\x07" "N" "\x00\x01" "t\x00\x00\x00\x01" "9"s;
  const std::string stop = "E";
  const std::string commit =
      "c" "\x00\x00\x03\x84" "\x00"
      "\x00\x00\x00\x00\x01\x60\x00\x00" "\x00\x00\x00\x00\x01\x60\x00\x30"
      "\x00\x00\x00\x00\x00\x00\x00\x2A"s;
  const std::string abort = "A" "\x00\x00\x03\x86" "\x00\x00\x03\x87"s;
  for (const std::string* bytes : {&start, &insert, &stop, &commit, &abort}) {
    ASSERT_TRUE(DecodeExact(decoder, *bytes, &handler).ok());
  }
  EXPECT_EQ(handler.types, "SIEcA");
  EXPECT_EQ(handler.messages[0], AnyMessage(StreamStartMessage{900, true}));
  EXPECT_EQ(handler.messages[1], AnyMessage(InsertMessage{901, 16391, {Text("9")}}));
  EXPECT_EQ(handler.messages[3],
            AnyMessage(StreamCommitMessage{900, 0, 0x1600000, 0x1600030, 42}));
  EXPECT_EQ(handler.messages[4], AnyMessage(StreamAbortMessage{902, 903}));
  EXPECT_EQ(Encode(StreamStartMessage{900, true}), start);
  EXPECT_EQ(Encode(InsertMessage{901, 16391, {Text("9")}}, /*streamed=*/true), insert);
  EXPECT_EQ(Encode(StreamCommitMessage{900, 0, 0x1600000, 0x1600030, 42}), commit);
  EXPECT_EQ(Encode(StreamAbortMessage{902, 903}), abort);
}

TEST(DecoderTest, ScratchStorageDoesNotLeakBetweenMessages) {
  Decoder decoder;
  EXPECT_EQ(DecodeOne(decoder, Encode(UpdateMessage{0, 1, OldTupleKind::kFull,
                                                    {Text("a"), Text(std::string(100, 'z'))},
                                                    {Text("b"), Text("c")}})),
            AnyMessage(UpdateMessage{0, 1, OldTupleKind::kFull,
                                     {Text("a"), Text(std::string(100, 'z'))},
                                     {Text("b"), Text("c")}}));
  // No old tuple this time: the previous one must not show through.
  EXPECT_EQ(DecodeOne(decoder, Encode(UpdateMessage{0, 1, OldTupleKind::kNone, {}, {Null()}})),
            AnyMessage(UpdateMessage{0, 1, OldTupleKind::kNone, {}, {Null()}}));
  EXPECT_EQ(DecodeOne(decoder, Encode(InsertMessage{0, 1, {Text("long value"), Text("x")}})),
            AnyMessage(InsertMessage{0, 1, {Text("long value"), Text("x")}}));
  EXPECT_EQ(DecodeOne(decoder, Encode(InsertMessage{0, 1, {Null()}})),
            AnyMessage(InsertMessage{0, 1, {Null()}}));
  RelationMessage wide = OrdersRelation();
  RelationMessage narrow = OrdersRelation();
  narrow.columns.resize(1);
  EXPECT_EQ(DecodeOne(decoder, Encode(wide)), AnyMessage(wide));
  EXPECT_EQ(DecodeOne(decoder, Encode(narrow)), AnyMessage(narrow));
}

class FailingHandler : public MessageHandler {
 public:
  absl::Status OnInsert(const InsertMessage&) override {
    return absl::ResourceExhaustedError("storage full");
  }
  absl::Status OnStreamStart(const StreamStartMessage&) override {
    return absl::UnavailableError("not now");
  }
};

TEST(DecoderTest, HandlerErrorIsReturnedUnchanged) {
  Decoder decoder(2);
  FailingHandler handler;
  absl::Status status = decoder.Decode(Encode(InsertMessage{0, 1, {}}), &handler);
  EXPECT_EQ(status, absl::ResourceExhaustedError("storage full"));
  // The block state follows the wire even when the handler fails.
  EXPECT_EQ(decoder.Decode(Encode(StreamStartMessage{5, true}), &handler),
            absl::UnavailableError("not now"));
  EXPECT_TRUE(decoder.in_streamed_block());
}

TEST(DecoderTest, ResetLeavesTheStreamedBlock) {
  Decoder decoder(2);
  RecordingHandler handler;
  ASSERT_TRUE(decoder.Decode(Encode(StreamStartMessage{5, true}), &handler).ok());
  decoder.Reset();
  EXPECT_FALSE(decoder.in_streamed_block());
  EXPECT_TRUE(decoder.Decode(Encode(BeginMessage{1, 2, 3}), &handler).ok());
}

TEST(DecoderTest, UnsupportedProtocolVersionIsAFailedPrecondition) {
  for (int version : {0, 3, 4}) {
    Decoder decoder(version);
    RecordingHandler handler;
    absl::Status status = decoder.Decode(Encode(BeginMessage{1, 2, 3}), &handler);
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(status.message()),
                HasSubstr("protocol version " + std::to_string(version) + " is not supported"));
  }
}

// ---------------------------------------------------------------------------
// Malformed input: every prefix and every extension of every valid message.

TEST(DecoderMalformedTest, EveryTruncationOfEveryMessageIsAnError) {
  struct Case {
    std::string bytes;
    bool streamed;
  };
  std::vector<Case> cases;
  for (const AnyMessage& m : TransactionMessages()) cases.push_back({EncodeAny(m, false), false});
  for (const AnyMessage& m : DataMessages(0)) cases.push_back({EncodeAny(m, false), false});
  for (const AnyMessage& m : DataMessages(77)) cases.push_back({EncodeAny(m, true), true});
  cases.push_back({Encode(StreamStartMessage{9, true}), false});
  cases.push_back({Encode(StreamCommitMessage{9, 0, 1, 2, 3}), false});
  cases.push_back({Encode(StreamAbortMessage{9, 10}), false});
  for (const Case& c : cases) {
    Decoder decoder(2);
    RecordingHandler setup;
    if (c.streamed) {
      ASSERT_TRUE(decoder.Decode(Encode(StreamStartMessage{77, true}), &setup).ok());
    }
    const std::string name = MessageName(c.bytes[0]);
    for (size_t length = 0; length < c.bytes.size(); ++length) {
      SCOPED_TRACE(name + " truncated to " + std::to_string(length) + " bytes");
      absl::Status status = DecodeError(decoder, c.bytes.substr(0, length));
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
      const std::string message(status.message());
      if (length > 0) {
        EXPECT_THAT(message, StartsWith("pgoutput " + name + " message: "));
      }
      EXPECT_THAT(message, HasSubstr(" at byte offset "));
      EXPECT_THAT(message, HasSubstr("(size " + std::to_string(length) + ")"));
      EXPECT_EQ(decoder.in_streamed_block(), c.streamed) << "an error changed the state";
    }
  }
}

TEST(DecoderMalformedTest, TrailingBytesAfterEveryMessageKind) {
  std::vector<AnyMessage> all = TransactionMessages();
  for (AnyMessage& m : DataMessages(0)) all.push_back(m);
  for (const AnyMessage& m : all) {
    Decoder decoder(1);
    const std::string bytes = EncodeAny(m, false);
    SCOPED_TRACE(MessageName(bytes[0]));
    ExpectInvalid(DecodeError(decoder, bytes + "\x01"),
                  "pgoutput " + MessageName(bytes[0]) +
                      " message: 1 trailing byte after the end of the message at byte offset " +
                      std::to_string(bytes.size()) + " (size " +
                      std::to_string(bytes.size() + 1) + ")");
  }
}

TEST(DecoderMalformedTest, EmptyBuffer) {
  Decoder decoder;
  ExpectInvalid(DecodeError(decoder, ""),
                "pgoutput message: empty buffer, expected a message type byte at byte "
                "offset 0 (size 0)");
}

TEST(DecoderMalformedTest, UnknownMessageType) {
  Decoder decoder;
  ExpectInvalid(DecodeError(decoder, "Zabc"),
                "pgoutput message: unknown message type 'Z' (0x5a) at byte offset 0 (size 4)");
  ExpectInvalid(DecodeError(decoder, "\x00\x01"s),
                "pgoutput message: unknown message type 0x00 at byte offset 0 (size 2)");
}

TEST(DecoderMalformedTest, TwoPhaseMessagesNeedProtocolV3) {
  Decoder decoder(2);
  ExpectInvalid(DecodeError(decoder, "P\x00"s),
                "pgoutput Prepare message: two-phase message type 'P' (0x50) needs protocol "
                "version 3; this decoder accepts versions 1-2 (start replication without "
                "two_phase) at byte offset 0 (size 2)");
  for (char type : {'b', 'K', 'r', 'p'}) {
    EXPECT_THAT(std::string(DecodeError(decoder, std::string(1, type)).message()),
                HasSubstr("needs protocol version 3"));
  }
}

TEST(DecoderMalformedTest, TruncatedFixedField) {
  Decoder decoder;
  // Begin: final LSN (8) + commit time (8), then only 2 of the xid's 4 bytes.
  std::string bytes = Encode(BeginMessage{1, 2, 3}).substr(0, 19);
  ExpectInvalid(DecodeError(decoder, bytes),
                "pgoutput Begin message: xid (Int32) needs 4 bytes but only 2 remain at byte "
                "offset 17 (size 19)");
}

TEST(DecoderMalformedTest, TupleValueLengthRunsPastTheEnd) {
  Decoder decoder;
  const std::string bytes = ByteWriter()
                                .Byte('I')
                                .U32(16391)
                                .Byte('N')
                                .I16(2)
                                .Byte('t').I32(1).Raw("7")
                                .Byte('t').I32(4000).Raw("abc")
                                .Take();
  ExpectInvalid(DecodeError(decoder, bytes),
                "pgoutput Insert message: new tuple column 2 of 2: value length 4000 runs "
                "past the end of the buffer (3 bytes follow the length) at byte offset 15 "
                "(size 22)");
}

TEST(DecoderMalformedTest, NegativeTupleValueLength) {
  Decoder decoder;
  const std::string bytes =
      ByteWriter().Byte('I').U32(1).Byte('N').I16(1).Byte('b').I32(-1).Take();
  ExpectInvalid(DecodeError(decoder, bytes),
                "pgoutput Insert message: new tuple column 1 of 1: value length -1 is "
                "negative at byte offset 9 (size 13)");
}

TEST(DecoderMalformedTest, NegativeTupleColumnCount) {
  Decoder decoder;
  const std::string bytes = ByteWriter().Byte('I').U32(1).Byte('N').I16(-3).Take();
  ExpectInvalid(DecodeError(decoder, bytes),
                "pgoutput Insert message: new tuple: column count -3 is negative at byte "
                "offset 6 (size 8)");
}

TEST(DecoderMalformedTest, TupleColumnCountLargerThanTheBuffer) {
  Decoder decoder;
  // 32767 columns claimed, 2 bytes present: refused before allocating.
  const std::string bytes =
      ByteWriter().Byte('D').U32(1).Byte('O').I16(32767).Raw("nn").Take();
  ExpectInvalid(DecodeError(decoder, bytes),
                "pgoutput Delete message: old tuple: column count 32767 needs at least 32767 "
                "more bytes but only 2 remain at byte offset 6 (size 10)");
}

TEST(DecoderMalformedTest, UnknownTupleColumnKind) {
  Decoder decoder;
  const std::string bytes = ByteWriter()
                                .Byte('U').U32(1)
                                .Byte('K').I16(1).Byte('n')
                                .Byte('N').I16(2).Byte('n').Byte('x')
                                .Take();
  ExpectInvalid(DecodeError(decoder, bytes),
                "pgoutput Update message: new tuple column 2 of 2: unknown column kind 'x' "
                "(0x78); expected 'n', 'u', 't' or 'b' at byte offset 13 (size 14)");
}

TEST(DecoderMalformedTest, OldTupleErrorsNameTheOldTuple) {
  Decoder decoder;
  const std::string bytes =
      ByteWriter().Byte('U').U32(1).Byte('O').I16(1).Byte('t').I32(2).Raw("a").Take();
  ExpectInvalid(DecodeError(decoder, bytes),
                "pgoutput Update message: old tuple column 1 of 1: value length 2 runs past "
                "the end of the buffer (1 bytes follow the length) at byte offset 9 (size 14)");
}

TEST(DecoderMalformedTest, InsertWithoutNewTupleMarker) {
  Decoder decoder;
  const std::string bytes = ByteWriter().Byte('I').U32(1).Byte('K').I16(0).Take();
  ExpectInvalid(DecodeError(decoder, bytes),
                "pgoutput Insert message: expected tuple marker 'N', got 'K' (0x4b) at byte "
                "offset 5 (size 8)");
}

TEST(DecoderMalformedTest, UpdateWithUnknownTupleMarker) {
  Decoder decoder;
  const std::string bytes = ByteWriter().Byte('U').U32(1).Byte('X').I16(0).Take();
  ExpectInvalid(DecodeError(decoder, bytes),
                "pgoutput Update message: expected tuple marker 'K', 'O' or 'N', got 'X' "
                "(0x58) at byte offset 5 (size 8)");
}

TEST(DecoderMalformedTest, UpdateOldTupleNotFollowedByNewTuple) {
  Decoder decoder;
  const std::string bytes =
      ByteWriter().Byte('U').U32(1).Byte('O').I16(0).Byte('O').I16(0).Take();
  ExpectInvalid(DecodeError(decoder, bytes),
                "pgoutput Update message: expected new tuple marker 'N', got 'O' (0x4f) at "
                "byte offset 8 (size 11)");
}

TEST(DecoderMalformedTest, DeleteWithNewTupleMarker) {
  Decoder decoder;
  const std::string bytes = ByteWriter().Byte('D').U32(1).Byte('N').I16(0).Take();
  ExpectInvalid(DecodeError(decoder, bytes),
                "pgoutput Delete message: expected tuple marker 'K' or 'O', got 'N' (0x4e) at "
                "byte offset 5 (size 8)");
}

TEST(DecoderMalformedTest, StringWithoutNulTerminator) {
  Decoder decoder;
  ExpectInvalid(DecodeError(decoder, ByteWriter().Byte('R').U32(1).CString("public").Raw("ord").Take()),
                "pgoutput Relation message: relation name (String) has no NUL terminator in "
                "the 3 bytes left at byte offset 12 (size 15)");
  ExpectInvalid(DecodeError(decoder, ByteWriter().Byte('O').U64(1).Raw("up").Take()),
                "pgoutput Origin message: origin name (String) has no NUL terminator in the 2 "
                "bytes left at byte offset 9 (size 11)");
}

TEST(DecoderMalformedTest, RelationColumnNameWithoutNulTerminator) {
  Decoder decoder;
  const std::string bytes = ByteWriter()
                                .Byte('R').U32(1).CString("s").CString("t").Byte('d')
                                .I16(1).Byte(1).Raw("idxxxxxxxxxx")
                                .Take();
  ExpectInvalid(DecodeError(decoder, bytes),
                "pgoutput Relation message: relation column 1 of 1: column name (String) has "
                "no NUL terminator in the 12 bytes left at byte offset 13 (size 25)");
}

TEST(DecoderMalformedTest, RelationNegativeColumnCount) {
  Decoder decoder;
  const std::string bytes =
      ByteWriter().Byte('R').U32(1).CString("s").CString("t").Byte('d').I16(-1).Take();
  ExpectInvalid(DecodeError(decoder, bytes),
                "pgoutput Relation message: relation: column count -1 is negative at byte "
                "offset 10 (size 12)");
}

TEST(DecoderMalformedTest, RelationColumnCountLargerThanTheBuffer) {
  Decoder decoder;
  const std::string bytes =
      ByteWriter().Byte('R').U32(1).CString("s").CString("t").Byte('d').I16(2)
          .Byte(0).CString("").U32(23).I32(-1)
          .Take();
  ExpectInvalid(DecodeError(decoder, bytes),
                "pgoutput Relation message: relation: column count 2 needs at least 20 more "
                "bytes but only 10 remain at byte offset 10 (size 22)");
}

TEST(DecoderMalformedTest, RelationUnknownReplicaIdentity) {
  Decoder decoder;
  const std::string bytes =
      ByteWriter().Byte('R').U32(1).CString("s").CString("t").Byte('x').I16(0).Take();
  ExpectInvalid(DecodeError(decoder, bytes),
                "pgoutput Relation message: unknown replica identity 'x' (0x78); expected "
                "'d', 'n', 'f' or 'i' at byte offset 9 (size 12)");
}

TEST(DecoderMalformedTest, TruncateNegativeRelationCount) {
  Decoder decoder;
  const std::string bytes = ByteWriter().Byte('T').I32(-2).Byte(0).Take();
  ExpectInvalid(DecodeError(decoder, bytes),
                "pgoutput Truncate message: relation count -2 is negative at byte offset 1 "
                "(size 6)");
}

TEST(DecoderMalformedTest, TruncateRelationCountLargerThanTheBuffer) {
  Decoder decoder;
  const std::string bytes =
      ByteWriter().Byte('T').I32(0x7FFFFFFF).Byte(0).U32(16391).Take();
  ExpectInvalid(DecodeError(decoder, bytes),
                "pgoutput Truncate message: relation count 2147483647 needs at least "
                "8589934588 more bytes but only 4 remain at byte offset 1 (size 10)");
}

TEST(DecoderMalformedTest, MessageContentLengthRunsPastTheEnd) {
  Decoder decoder;
  const std::string bytes =
      ByteWriter().Byte('M').Byte(1).U64(5).CString("p").I32(10).Raw("short").Take();
  ExpectInvalid(DecodeError(decoder, bytes),
                "pgoutput Message message: content length 10 runs past the end of the buffer "
                "(5 bytes follow the length) at byte offset 12 (size 21)");
}

TEST(DecoderMalformedTest, MessageNegativeContentLength) {
  Decoder decoder;
  const std::string bytes = ByteWriter().Byte('M').Byte(0).U64(5).CString("p").I32(-7).Take();
  ExpectInvalid(DecodeError(decoder, bytes),
                "pgoutput Message message: content length -7 is negative at byte offset 12 "
                "(size 16)");
}

TEST(DecoderMalformedTest, StreamingMessagesNeedProtocolV2) {
  Decoder decoder(1);
  ExpectInvalid(DecodeError(decoder, Encode(StreamStartMessage{5, true})),
                "pgoutput Stream Start message: streaming messages need protocol version 2; "
                "this stream was started with version 1 at byte offset 0 (size 6)");
  for (const std::string& bytes :
       {Encode(StreamStopMessage{}), Encode(StreamCommitMessage{5, 0, 1, 2, 3}),
        Encode(StreamAbortMessage{5, 5})}) {
    EXPECT_THAT(std::string(DecodeError(decoder, bytes).message()),
                HasSubstr("streaming messages need protocol version 2"));
  }
}

TEST(DecoderMalformedTest, StreamStopOutsideABlock) {
  Decoder decoder(2);
  ExpectInvalid(DecodeError(decoder, "E"),
                "pgoutput Stream Stop message: not inside a streamed block (no Stream Start "
                "is open) at byte offset 0 (size 1)");
}

TEST(DecoderMalformedTest, MessagesNotAllowedInsideABlock) {
  Decoder decoder(2);
  RecordingHandler handler;
  ASSERT_TRUE(decoder.Decode(Encode(StreamStartMessage{900, true}), &handler).ok());
  ExpectInvalid(DecodeError(decoder, Encode(StreamStartMessage{901, false})),
                "pgoutput Stream Start message: not allowed inside a streamed block (the "
                "Stream Start of xid 900 has no Stream Stop yet) at byte offset 0 (size 6)");
  for (const std::string& bytes :
       {Encode(BeginMessage{1, 2, 3}), Encode(CommitMessage{0, 1, 2, 3}),
        Encode(StreamCommitMessage{900, 0, 1, 2, 3}), Encode(StreamAbortMessage{900, 900})}) {
    SCOPED_TRACE(MessageName(bytes[0]));
    absl::Status status = DecodeError(decoder, bytes);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(status.message()),
                StartsWith("pgoutput " + MessageName(bytes[0]) +
                           " message: not allowed inside a streamed block"));
  }
  EXPECT_TRUE(decoder.in_streamed_block());
}

TEST(DecoderMalformedTest, StreamedInsertWithTruncatedXid) {
  Decoder decoder(2);
  RecordingHandler handler;
  ASSERT_TRUE(decoder.Decode(Encode(StreamStartMessage{900, true}), &handler).ok());
  ExpectInvalid(DecodeError(decoder, "I\x00\x00"s),
                "pgoutput Insert message: xid of the streamed transaction (Int32) needs 4 "
                "bytes but only 2 remain at byte offset 1 (size 3)");
}

// A non-streamed encoding read inside a block misreads its relation OID as
// the xid; the grammar still catches it because the message comes out short.
TEST(DecoderMalformedTest, UnstreamedInsertInsideABlockIsCaught) {
  Decoder decoder(2);
  RecordingHandler handler;
  ASSERT_TRUE(decoder.Decode(Encode(StreamStartMessage{900, true}), &handler).ok());
  absl::Status status = DecodeError(decoder, Encode(InsertMessage{0, 16391, {Text("1")}}));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), StartsWith("pgoutput Insert message: "));
}

}  // namespace
}  // namespace trickle::pgoutput
