// The hand-written encodings of the changes family against the protobuf
// messages they stand for (proto/change_log.proto): ChangeRecordEncoder must
// write exactly what ChangeRecord::SerializeToString writes, and chunks must
// round-trip through the ChangeChunk message both ways.
#include "storage/change_encoding.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace trickle::storage {
namespace {

using v1::ChangeRecord;
using v1::Datum;

void AddDatum(google::protobuf::RepeatedPtrField<Datum>* out, Datum::Kind kind,
              const std::string& value) {
  Datum* d = out->Add();
  d->set_kind(kind);
  d->set_value(value);
}

TEST(ChangeRecordEncoderTest, WritesWhatProtobufWrites) {
  const std::string long_value(300, 'x');  // two-byte lengths, nested
  struct Case {
    ChangeRecord::Op op;
    uint32_t version;
    std::vector<std::pair<Datum::Kind, std::string>> old_values, new_values;
  };
  const std::vector<Case> cases = {
      {ChangeRecord::INSERT, 1, {}, {{Datum::TEXT, "42"}, {Datum::NULL_, ""}, {Datum::TEXT, ""}}},
      {ChangeRecord::UPDATE, 300, {{Datum::TEXT, "a"}, {Datum::BINARY, std::string("\0\1", 2)}},
       {{Datum::TEXT, long_value}, {Datum::UNCHANGED_TOAST, ""}}},
      {ChangeRecord::DELETE, 0, {{Datum::TEXT, long_value + long_value}}, {}},
      {ChangeRecord::TRUNCATE, 7, {}, {}},
      {ChangeRecord::OP_UNSPECIFIED, 0, {}, {}},
  };
  ChangeRecordEncoder encoder;
  for (const Case& c : cases) {
    ChangeRecord expected;
    expected.set_op(c.op);
    expected.set_schema_version(c.version);
    encoder.Start(c.op, c.version);
    for (const auto& [kind, value] : c.old_values) {
      AddDatum(expected.mutable_old_values(), kind, value);
      encoder.AddOldValue(kind, value);
    }
    for (const auto& [kind, value] : c.new_values) {
      AddDatum(expected.mutable_new_values(), kind, value);
      encoder.AddNewValue(kind, value);
    }
    EXPECT_EQ(std::string(encoder.bytes()), expected.SerializeAsString()) << expected.DebugString();
    ChangeRecord parsed;
    ASSERT_TRUE(parsed.ParseFromArray(encoder.bytes().data(), encoder.bytes().size()));
    EXPECT_EQ(parsed.SerializeAsString(), expected.SerializeAsString());
  }
}

std::string Record(const std::string& value) {
  ChangeRecord c;
  c.set_op(ChangeRecord::INSERT);
  c.set_schema_version(1);
  AddDatum(c.mutable_new_values(), Datum::TEXT, value);
  return c.SerializeAsString();
}

TEST(ChangeChunkTest, BuilderWritesAChangeChunkMessage) {
  ChangeChunkBuilder chunk;
  EXPECT_TRUE(chunk.empty());
  EXPECT_EQ(chunk.size(), 0u);
  const std::vector<uint32_t> sequences = {5, 6, 9, 200, 70000};
  for (uint32_t seq : sequences) chunk.Add(seq, Record("v" + std::to_string(seq)));
  EXPECT_EQ(chunk.first_sequence(), 5u);
  const std::string value = chunk.Head() + chunk.body();
  EXPECT_GE(chunk.size(), value.size());

  v1::ChangeChunk parsed;
  ASSERT_TRUE(parsed.ParseFromString(value));
  ASSERT_EQ(parsed.sequence_deltas_size(), 5);
  EXPECT_EQ(parsed.sequence_deltas(0), 0u);
  EXPECT_EQ(parsed.sequence_deltas(3), 191u);
  ASSERT_EQ(parsed.changes_size(), 5);
  EXPECT_EQ(parsed.changes(4).new_values(0).value(), "v70000");
  // Byte for byte what protobuf writes for the same message.
  EXPECT_EQ(value, parsed.SerializeAsString());

  ChangeChunkReader reader;
  ASSERT_TRUE(reader.Reset(value, 5));
  EXPECT_EQ(reader.size(), 5u);
  uint32_t seq;
  std::string_view bytes;
  for (uint32_t expected : sequences) {
    ASSERT_TRUE(reader.Next(&seq, &bytes));
    EXPECT_EQ(seq, expected);
    EXPECT_EQ(std::string(bytes), Record("v" + std::to_string(expected)));
  }
  EXPECT_FALSE(reader.Next(&seq, &bytes));

  chunk.Clear();
  EXPECT_TRUE(chunk.empty());
  chunk.Add(3, Record("again"));
  EXPECT_EQ(chunk.first_sequence(), 3u);
  const std::string again = chunk.Head() + chunk.body();
  ASSERT_TRUE(reader.Reset(again, 3));
  ASSERT_TRUE(reader.Next(&seq, &bytes));
  EXPECT_EQ(seq, 3u);
}

TEST(ChangeChunkTest, ReaderTakesAnyValidEncodingOfTheMessage) {
  // Unpacked deltas, changes before deltas, an unknown field: all valid
  // protobuf for ChangeChunk, so all read.
  v1::ChangeChunk chunk;
  chunk.add_sequence_deltas(0);
  chunk.add_sequence_deltas(2);
  ASSERT_TRUE(chunk.add_changes()->ParseFromString(Record("a")));
  ASSERT_TRUE(chunk.add_changes()->ParseFromString(Record("b")));
  std::string changes_first;
  for (const ChangeRecord& c : chunk.changes()) {
    changes_first += '\x12';
    changes_first += static_cast<char>(c.ByteSizeLong());
    changes_first += c.SerializeAsString();
  }
  const std::string unpacked_deltas = std::string("\x08\x00\x08\x02", 4);
  const std::string unknown = std::string("\x78\x05", 2);  // field 15, varint 5
  const std::string value = changes_first + unknown + unpacked_deltas;
  ChangeChunkReader reader;
  ASSERT_TRUE(reader.Reset(value, 10));
  uint32_t seq;
  std::string_view bytes;
  ASSERT_TRUE(reader.Next(&seq, &bytes));
  EXPECT_EQ(seq, 10u);
  EXPECT_EQ(std::string(bytes), Record("a"));
  ASSERT_TRUE(reader.Next(&seq, &bytes));
  EXPECT_EQ(seq, 12u);
  EXPECT_EQ(std::string(bytes), Record("b"));
  EXPECT_FALSE(reader.Next(&seq, &bytes));
}

TEST(ChangeChunkTest, ReaderRefusesMalformedValues) {
  ChangeChunkBuilder chunk;
  chunk.Add(0, Record("a"));
  chunk.Add(1, Record("b"));
  const std::string good = chunk.Head() + chunk.body();
  ChangeChunkReader reader;
  ASSERT_TRUE(reader.Reset(good, 0));
  // Truncated anywhere.
  for (size_t n = 1; n < good.size(); ++n) {
    EXPECT_FALSE(reader.Reset(std::string_view(good).substr(0, n), 0)) << n;
  }
  // More deltas than changes, and the other way round.
  EXPECT_FALSE(reader.Reset(std::string("\x0a\x03\x00\x01\x01", 5) + chunk.body(), 0));
  EXPECT_FALSE(reader.Reset(std::string("\x0a\x01\x00", 3) + chunk.body(), 0));
  // A repeated sequence (delta 0 after the first change).
  EXPECT_FALSE(reader.Reset(std::string("\x0a\x02\x00\x00", 4) + chunk.body(), 0));
  // Sequences past 2^32 - 1.
  EXPECT_FALSE(reader.Reset(std::string("\x0a\x02\x00\x02", 4) + chunk.body(), 0xFFFFFFFE));
  // A group (wire type 3) is never written.
  EXPECT_FALSE(reader.Reset(std::string("\x0b", 1) + good, 0));
  // Empty: no changes, well-formed.
  EXPECT_TRUE(reader.Reset("", 0));
  EXPECT_EQ(reader.size(), 0u);
}

}  // namespace
}  // namespace trickle::storage
