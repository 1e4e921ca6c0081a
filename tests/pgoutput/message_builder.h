// A test-only pgoutput encoder: typed messages -> wire bytes, written from
// PostgreSQL's proto.c (logicalrep_write_*). Tests and the decoder benchmark
// use it to build inputs; the literal-byte tests and the captured fixtures
// check it against the real format, so decoder and encoder cannot agree on a
// shared misunderstanding unnoticed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "pgoutput/messages.h"

namespace trickle::pgoutput::testing {

// Low-level big-endian writer; also used to hand-craft malformed input.
class ByteWriter {
 public:
  ByteWriter& Byte(uint8_t v) {
    out_.push_back(static_cast<char>(v));
    return *this;
  }
  ByteWriter& I16(int16_t v) { return Int(static_cast<uint16_t>(v), 2); }
  ByteWriter& I32(int32_t v) { return Int(static_cast<uint32_t>(v), 4); }
  ByteWriter& U32(uint32_t v) { return Int(v, 4); }
  ByteWriter& I64(int64_t v) { return Int(static_cast<uint64_t>(v), 8); }
  ByteWriter& U64(uint64_t v) { return Int(v, 8); }
  // String: the bytes and a NUL terminator.
  ByteWriter& CString(std::string_view s) {
    out_.append(s.data(), s.size());
    out_.push_back('\0');
    return *this;
  }
  ByteWriter& Raw(std::string_view s) {
    out_.append(s.data(), s.size());
    return *this;
  }

  ByteWriter& Tuple(const pgoutput::Tuple& tuple) {
    I16(static_cast<int16_t>(tuple.size()));
    for (const ColumnValue& c : tuple) {
      Byte(static_cast<uint8_t>(c.kind));
      if (c.kind == ColumnKind::kText || c.kind == ColumnKind::kBinary) {
        I32(static_cast<int32_t>(c.data.size()));
        Raw(c.data);
      }
    }
    return *this;
  }

  const std::string& bytes() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  ByteWriter& Int(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  std::string out_;
};

// `streamed`: the message is inside a streamed block (v2), so the data
// messages carry their xid after the type byte.
inline std::string Encode(const BeginMessage& m) {
  return ByteWriter().Byte('B').U64(m.final_lsn).I64(m.commit_time).U32(m.xid).Take();
}
inline std::string Encode(const CommitMessage& m) {
  return ByteWriter()
      .Byte('C')
      .Byte(m.flags)
      .U64(m.commit_lsn)
      .U64(m.end_lsn)
      .I64(m.commit_time)
      .Take();
}
inline std::string Encode(const OriginMessage& m) {
  return ByteWriter().Byte('O').U64(m.commit_lsn).CString(m.name).Take();
}
inline std::string Encode(const RelationMessage& m, bool streamed = false) {
  ByteWriter w;
  w.Byte('R');
  if (streamed) w.U32(m.xid);
  w.U32(m.relation_oid)
      .CString(m.namespace_name)
      .CString(m.relation_name)
      .Byte(static_cast<uint8_t>(m.replica_identity))
      .I16(static_cast<int16_t>(m.columns.size()));
  for (const RelationColumn& c : m.columns) {
    w.Byte(c.is_key ? 1 : 0).CString(c.name).U32(c.type_oid).I32(c.type_modifier);
  }
  return w.Take();
}
inline std::string Encode(const TypeMessage& m, bool streamed = false) {
  ByteWriter w;
  w.Byte('Y');
  if (streamed) w.U32(m.xid);
  return w.U32(m.type_oid).CString(m.namespace_name).CString(m.type_name).Take();
}
inline std::string Encode(const InsertMessage& m, bool streamed = false) {
  ByteWriter w;
  w.Byte('I');
  if (streamed) w.U32(m.xid);
  return w.U32(m.relation_oid).Byte('N').Tuple(m.new_tuple).Take();
}
inline std::string Encode(const UpdateMessage& m, bool streamed = false) {
  ByteWriter w;
  w.Byte('U');
  if (streamed) w.U32(m.xid);
  w.U32(m.relation_oid);
  if (m.old_kind != OldTupleKind::kNone) {
    w.Byte(static_cast<uint8_t>(m.old_kind)).Tuple(m.old_tuple);
  }
  return w.Byte('N').Tuple(m.new_tuple).Take();
}
inline std::string Encode(const DeleteMessage& m, bool streamed = false) {
  ByteWriter w;
  w.Byte('D');
  if (streamed) w.U32(m.xid);
  return w.U32(m.relation_oid).Byte(static_cast<uint8_t>(m.old_kind)).Tuple(m.old_tuple).Take();
}
inline std::string Encode(const TruncateMessage& m, bool streamed = false) {
  ByteWriter w;
  w.Byte('T');
  if (streamed) w.U32(m.xid);
  w.I32(static_cast<int32_t>(m.relation_oids.size())).Byte(m.options);
  for (Oid oid : m.relation_oids) w.U32(oid);
  return w.Take();
}
inline std::string Encode(const LogicalMessage& m, bool streamed = false) {
  ByteWriter w;
  w.Byte('M');
  if (streamed) w.U32(m.xid);
  return w.Byte(m.transactional ? 1 : 0)
      .U64(m.lsn)
      .CString(m.prefix)
      .I32(static_cast<int32_t>(m.content.size()))
      .Raw(m.content)
      .Take();
}
inline std::string Encode(const StreamStartMessage& m) {
  return ByteWriter().Byte('S').U32(m.xid).Byte(m.first_segment ? 1 : 0).Take();
}
inline std::string Encode(const StreamStopMessage&) { return ByteWriter().Byte('E').Take(); }
inline std::string Encode(const StreamCommitMessage& m) {
  return ByteWriter()
      .Byte('c')
      .U32(m.xid)
      .Byte(m.flags)
      .U64(m.commit_lsn)
      .U64(m.end_lsn)
      .I64(m.commit_time)
      .Take();
}
inline std::string Encode(const StreamAbortMessage& m) {
  return ByteWriter().Byte('A').U32(m.xid).U32(m.subxid).Take();
}

// Shorthands for tuple columns.
inline ColumnValue Text(std::string_view s) {
  return ColumnValue{ColumnKind::kText, std::string(s)};
}
inline ColumnValue Binary(std::string_view s) {
  return ColumnValue{ColumnKind::kBinary, std::string(s)};
}
inline ColumnValue Null() { return ColumnValue{ColumnKind::kNull, {}}; }
inline ColumnValue Unchanged() { return ColumnValue{ColumnKind::kUnchanged, {}}; }

}  // namespace trickle::pgoutput::testing
