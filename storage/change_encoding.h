// Value encodings of the "changes" family (docs/change_log_format.md is the
// reference): a ChangeRecord written straight from column bytes, and the
// change chunk that holds several changes of one relation under one key.
//
// Both are Protocol Buffers wire format of the messages in
// proto/change_log.proto, so any protobuf parser reads them; these writers
// exist only to skip building message objects on the capture's hot path
// (one per change, with an allocation per column).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "change_log.pb.h"

namespace trickle::storage {

// Writes the bytes of one ChangeRecord, the same bytes
// ChangeRecord::SerializeToString produces for the same message. Old values
// must all be added before the new ones (field order), which is also the
// order the message's fields serialize in.
//
//   ChangeRecordEncoder e;
//   e.Start(v1::ChangeRecord::INSERT, schema_version);
//   for (...) e.AddNewValue(v1::Datum::TEXT, bytes);
//   log.AppendEncoded(relation, e.bytes());
class ChangeRecordEncoder {
 public:
  // Clears the previous record (keeps the buffer's capacity).
  void Start(v1::ChangeRecord::Op op, uint32_t schema_version);
  void AddOldValue(v1::Datum::Kind kind, std::string_view value) { AddDatum(3, kind, value); }
  void AddNewValue(v1::Datum::Kind kind, std::string_view value) { AddDatum(4, kind, value); }
  std::string_view bytes() const { return out_; }

 private:
  void AddDatum(int field, v1::Datum::Kind kind, std::string_view value);
  std::string out_;
};

// Builds the value of one change chunk: changes of one relation within one
// transaction, in sequence order. Wire format of ChangeChunk:
//   field 1 (packed varints): each change's sequence minus the previous
//     one's; the first one's minus the chunk key's sequence, i.e. 0
//   field 2 (repeated):       the ChangeRecords
// The value is handed out as two parts (head: field 1; body: field 2) so a
// WriteBatch can take it without another copy.
class ChangeChunkBuilder {
 public:
  bool empty() const { return body_.empty(); }
  // The sequence of the first change: the chunk's key.
  uint32_t first_sequence() const { return first_sequence_; }
  // About the chunk's encoded size (0 when empty).
  size_t size() const { return body_.empty() ? 0 : deltas_.size() + body_.size() + 8; }
  // Adds the encoded ChangeRecord of change `sequence`, which must be
  // greater than the previous one's.
  void Add(uint32_t sequence, std::string_view change);
  // Field 1 with its tag and length; valid until the next Add or Clear.
  const std::string& Head();
  const std::string& body() const { return body_; }
  // Empties the chunk, keeping its buffers.
  void Clear();

 private:
  uint32_t first_sequence_ = 0;
  uint32_t last_sequence_ = 0;
  std::string deltas_;
  std::string body_;
  std::string head_;
};

// Reads a change chunk value: the changes and their sequences, in order.
//   ChangeChunkReader r;
//   if (!r.Reset(value, key_sequence)) -> malformed
//   while (r.Next(&sequence, &change_bytes)) ...
// The views point into `value`, which must outlive the reading.
class ChangeChunkReader {
 public:
  // False when the value is not a well-formed chunk (bad wire format, a
  // sequence count that does not match the change count, or a sequence that
  // would overflow).
  bool Reset(std::string_view value, uint32_t first_sequence);
  // The next change; false after the last one.
  bool Next(uint32_t* sequence, std::string_view* change);
  size_t size() const { return changes_.size(); }

 private:
  std::vector<uint32_t> sequences_;
  std::vector<std::string_view> changes_;
  size_t next_ = 0;
};

}  // namespace trickle::storage
