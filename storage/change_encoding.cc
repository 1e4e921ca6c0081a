#include "storage/change_encoding.h"

#include <cstring>
#include <limits>

namespace trickle::storage {
namespace {

// Protocol Buffers wire format: tag = field << 3 | wire type.
constexpr uint8_t kVarint = 0;
constexpr uint8_t kFixed64 = 1;
constexpr uint8_t kLengthDelimited = 2;
constexpr uint8_t kFixed32 = 5;

constexpr char Tag(int field, uint8_t wire_type) {
  return static_cast<char>((field << 3) | wire_type);
}

// Writes a varint at p; returns the byte after it.
char* WriteVarint(char* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

void PutVarint(std::string* out, uint64_t v) {
  char buf[10];
  out->append(buf, WriteVarint(buf, v) - buf);
}

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Reads a varint at *p (< end); false when truncated or longer than 10 bytes.
bool GetVarint(const char** p, const char* end, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t byte = static_cast<uint8_t>(*(*p)++);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

}  // namespace

void ChangeRecordEncoder::Start(v1::ChangeRecord::Op op, uint32_t schema_version) {
  out_.clear();
  // proto3 leaves fields at their default value out.
  if (op != 0) {
    out_.push_back(Tag(1, kVarint));
    PutVarint(&out_, static_cast<uint64_t>(op));
  }
  if (schema_version != 0) {
    out_.push_back(Tag(2, kVarint));
    PutVarint(&out_, schema_version);
  }
}

void ChangeRecordEncoder::AddDatum(int field, v1::Datum::Kind kind, std::string_view value) {
  // Datum { Kind kind = 1; bytes value = 2; }, written in place: this runs
  // for every column of every captured row.
  size_t size = 0;
  if (kind != 0) size += 1 + VarintSize(static_cast<uint64_t>(kind));
  if (!value.empty()) size += 1 + VarintSize(value.size()) + value.size();
  const size_t at = out_.size();
  out_.resize(at + 1 + VarintSize(size) + size);
  char* p = out_.data() + at;
  *p++ = Tag(field, kLengthDelimited);
  p = WriteVarint(p, size);
  if (kind != 0) {
    *p++ = Tag(1, kVarint);
    p = WriteVarint(p, static_cast<uint64_t>(kind));
  }
  if (!value.empty()) {
    *p++ = Tag(2, kLengthDelimited);
    p = WriteVarint(p, value.size());
    std::memcpy(p, value.data(), value.size());
  }
}

void ChangeChunkBuilder::Add(uint32_t sequence, std::string_view change) {
  if (body_.empty()) {
    first_sequence_ = sequence;
    last_sequence_ = sequence;
  }
  PutVarint(&deltas_, sequence - last_sequence_);
  last_sequence_ = sequence;
  const size_t at = body_.size();
  body_.resize(at + 1 + VarintSize(change.size()) + change.size());
  char* p = body_.data() + at;
  *p++ = Tag(2, kLengthDelimited);
  p = WriteVarint(p, change.size());
  std::memcpy(p, change.data(), change.size());
}

const std::string& ChangeChunkBuilder::Head() {
  head_.clear();
  head_.push_back(Tag(1, kLengthDelimited));
  PutVarint(&head_, deltas_.size());
  head_.append(deltas_);
  return head_;
}

void ChangeChunkBuilder::Clear() {
  deltas_.clear();
  body_.clear();
  head_.clear();
  first_sequence_ = last_sequence_ = 0;
}

bool ChangeChunkReader::Reset(std::string_view value, uint32_t first_sequence) {
  sequences_.clear();
  changes_.clear();
  next_ = 0;
  uint64_t sequence = first_sequence;
  auto add_delta = [&](uint64_t delta) {
    // After the first change, sequences strictly increase.
    if (!sequences_.empty() && delta == 0) return false;
    sequence += delta;
    if (sequence > std::numeric_limits<uint32_t>::max()) return false;
    sequences_.push_back(static_cast<uint32_t>(sequence));
    return true;
  };
  const char* p = value.data();
  const char* end = p + value.size();
  while (p < end) {
    uint64_t tag;
    if (!GetVarint(&p, end, &tag)) return false;
    const uint64_t field = tag >> 3;
    const uint8_t wire_type = tag & 7;
    uint64_t n;
    switch (wire_type) {
      case kVarint:
        if (!GetVarint(&p, end, &n)) return false;
        if (field == 1 && !add_delta(n)) return false;
        break;
      case kLengthDelimited: {
        if (!GetVarint(&p, end, &n) || n > static_cast<uint64_t>(end - p)) return false;
        const char* field_end = p + n;
        if (field == 1) {  // packed sequence deltas
          while (p < field_end) {
            uint64_t delta;
            if (!GetVarint(&p, field_end, &delta) || !add_delta(delta)) return false;
          }
        } else if (field == 2) {
          changes_.emplace_back(p, n);
        }
        p = field_end;
        break;
      }
      case kFixed64:
        if (end - p < 8) return false;
        p += 8;
        break;
      case kFixed32:
        if (end - p < 4) return false;
        p += 4;
        break;
      default:  // groups: never written
        return false;
    }
  }
  return sequences_.size() == changes_.size();
}

bool ChangeChunkReader::Next(uint32_t* sequence, std::string_view* change) {
  if (next_ >= changes_.size()) return false;
  *sequence = sequences_[next_];
  *change = changes_[next_];
  ++next_;
  return true;
}

}  // namespace trickle::storage
