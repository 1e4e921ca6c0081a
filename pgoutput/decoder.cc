// The pgoutput wire grammar (PostgreSQL 15, protocol versions 1 and 2), as
// written by src/backend/replication/logical/proto.c and documented in
// "Logical Replication Message Formats". One message fills one XLogData
// payload. Integers are big-endian; Int8/Byte1 are one byte; String is bytes
// up to and including a NUL terminator; Byte(n) is n raw bytes.
//
//   message       = Begin | Commit | Origin | Relation | Type
//                 | Insert | Update | Delete | Truncate | Message
//                 | StreamStart | StreamStop | StreamCommit | StreamAbort
//
//   Begin         = 'B' Int64 final_lsn  Int64 commit_timestamp  Int32 xid
//   Commit        = 'C' Int8 flags(0)  Int64 commit_lsn  Int64 end_lsn
//                       Int64 commit_timestamp
//   Origin        = 'O' Int64 origin_lsn  String origin_name
//
//   [xid]         = Int32 xid   -- v2, only inside a streamed block (between
//                                  StreamStart and StreamStop); absent
//                                  everywhere else
//   Relation      = 'R' [xid] Int32 relation_oid  String namespace ("" is
//                       pg_catalog)  String relation_name
//                       Int8 replica_identity ('d' | 'n' | 'f' | 'i')
//                       Int16 ncolumns  RelationColumn{ncolumns}
//   RelationColumn= Int8 flags (1 = part of the replica identity)
//                       String column_name  Int32 type_oid  Int32 type_modifier
//   Type          = 'Y' [xid] Int32 type_oid  String namespace  String type_name
//   Insert        = 'I' [xid] Int32 relation_oid  'N' TupleData
//   Update        = 'U' [xid] Int32 relation_oid
//                       [ ('K' | 'O') TupleData ]  'N' TupleData
//                   -- 'K': old replica-identity key, sent when the key changed;
//                   -- 'O': whole old row (REPLICA IDENTITY FULL)
//   Delete        = 'D' [xid] Int32 relation_oid  ('K' | 'O') TupleData
//   Truncate      = 'T' [xid] Int32 nrelations
//                       Int8 options (1 = CASCADE, 2 = RESTART IDENTITY)
//                       Int32 relation_oid{nrelations}
//   Message       = 'M' [xid] Int8 flags (1 = transactional)  Int64 lsn
//                       String prefix  Int32 length  Byte(length) content
//
//   -- streaming of in-progress transactions, protocol v2 only
//   StreamStart   = 'S' Int32 xid  Int8 first_segment (1 = first block of xid)
//   StreamStop    = 'E'
//   StreamCommit  = 'c' Int32 xid  Int8 flags(0)  Int64 commit_lsn
//                       Int64 end_lsn  Int64 commit_timestamp
//   StreamAbort   = 'A' Int32 xid  Int32 subxid
//
//   TupleData     = Int16 ncolumns  Column{ncolumns}
//   Column        = 'n'                        -- NULL
//                 | 'u'                        -- unchanged TOASTed value
//                 | 't' Int32 length Byte(length)  -- text format
//                 | 'b' Int32 length Byte(length)  -- binary format
//
// Order within a stream: StreamStart, then data messages, then StreamStop;
// StreamCommit and StreamAbort come after the StreamStop of the last block.
// Begin, Commit, StreamStart, StreamCommit and StreamAbort never appear
// inside a streamed block. Protocol v3's two-phase messages ('b', 'P', 'K',
// 'r', 'p') are not accepted: Trickle starts replication without two_phase.
//
// Every count and length is signed on the wire; a negative one, or one that
// cannot fit in what is left of the buffer, is malformed. Counts are checked
// against the remaining bytes before anything is allocated, so a corrupt
// count cannot make the decoder allocate gigabytes.

#include "pgoutput/decoder.h"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "common/absl_compat.h"
#include "common/status_macros.h"

namespace trickle::pgoutput {
namespace decoder_internal {

static_assert(std::endian::native == std::endian::little || std::endian::native == std::endian::big,
              "the big-endian reads assume a little- or big-endian host");

// Where inside a repeated element (tuple column, relation column) the reader
// is, so an error says "new tuple column 2 of 5". Set by ElementScope.
struct Position {
  absl::string_view scope;    // "new tuple", "old key", "relation"
  absl::string_view element;  // "column"
  int index = 0;              // 1-based; 0 while reading the scope's header
  int count = 0;
};

// Bounds-checked big-endian reads over one message. Every read of the
// decoder goes through here; a read that does not fit returns an
// InvalidArgument error naming the message, the field and the offset, and
// leaves the position unchanged. (Field names are absl::string_view because
// Debian's Abseil has its own string_view type, see common/absl_compat.h.)
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(ToAbsl(bytes)) {}

  void set_message(absl::string_view name) { message_ = name; }
  void set_position(const Position* position) { position_ = position; }
  size_t offset() const { return pos_; }
  size_t size() const { return bytes_.size(); }
  size_t remaining() const { return bytes_.size() - pos_; }

  absl::Status ReadByte(absl::string_view field, uint8_t* out) {
    return ReadInt(field, "Byte1", out);
  }
  absl::Status ReadU8(absl::string_view field, uint8_t* out) { return ReadInt(field, "Int8", out); }
  absl::Status ReadI16(absl::string_view field, int16_t* out) {
    return ReadInt(field, "Int16", out);
  }
  absl::Status ReadU32(absl::string_view field, uint32_t* out) {
    return ReadInt(field, "Int32", out);
  }
  absl::Status ReadI32(absl::string_view field, int32_t* out) {
    return ReadInt(field, "Int32", out);
  }
  absl::Status ReadU64(absl::string_view field, uint64_t* out) {
    return ReadInt(field, "Int64", out);
  }
  absl::Status ReadI64(absl::string_view field, int64_t* out) {
    return ReadInt(field, "Int64", out);
  }

  // A NUL-terminated String; the terminator is consumed, not stored.
  absl::Status ReadCString(absl::string_view field, std::string* out) {
    const char* begin = bytes_.data() + pos_;
    const void* nul = std::memchr(begin, '\0', remaining());
    if (ABSL_PREDICT_FALSE(nul == nullptr)) return UnterminatedError(field);
    size_t length = static_cast<const char*>(nul) - begin;
    out->assign(begin, length);
    pos_ += length + 1;
    return absl::OkStatus();
  }

  // An Int32 length followed by that many bytes.
  absl::Status ReadLengthPrefixed(absl::string_view length_field, std::string* out) {
    size_t length_offset = pos_;
    int32_t length = 0;
    TRICKLE_RETURN_IF_ERROR(ReadI32(length_field, &length));
    if (ABSL_PREDICT_FALSE(length < 0 || static_cast<size_t>(length) > remaining())) {
      return BadLengthError(length_field, length_offset, length);
    }
    out->assign(bytes_.data() + pos_, static_cast<size_t>(length));
    pos_ += static_cast<size_t>(length);
    return absl::OkStatus();
  }

  // Checks a count read at `count_offset` whose elements take at least
  // `min_element_bytes` each: negative counts and counts that cannot fit in
  // the rest of the buffer are malformed. Called before allocating.
  absl::Status CheckCount(absl::string_view count_field, size_t count_offset, int64_t count,
                          size_t min_element_bytes) const {
    if (ABSL_PREDICT_FALSE(count < 0)) {
      return Error(count_offset, absl::StrCat(count_field, " ", count, " is negative"));
    }
    if (ABSL_PREDICT_FALSE(static_cast<uint64_t>(count) * min_element_bytes > remaining())) {
      return Error(count_offset, absl::StrCat(count_field, " ", count, " needs at least ",
                                              static_cast<uint64_t>(count) * min_element_bytes,
                                              " more bytes but only ", remaining(), " remain"));
    }
    return absl::OkStatus();
  }

  absl::Status ExpectEnd() const {
    if (ABSL_PREDICT_FALSE(pos_ != bytes_.size())) {
      return Error(
          pos_, absl::StrCat(remaining(), remaining() == 1 ? " trailing byte" : " trailing bytes",
                             " after the end of the message"));
    }
    return absl::OkStatus();
  }

  // "pgoutput Insert message: new tuple column 2 of 5: <detail> at byte
  // offset 17 (size 40)". Cold: only malformed input gets here.
  ABSL_ATTRIBUTE_NOINLINE absl::Status Error(size_t offset, absl::string_view detail) const {
    std::string where;
    if (position_ != nullptr) {
      where = position_->index > 0 ? absl::StrCat(position_->scope, " ", position_->element, " ",
                                                  position_->index, " of ", position_->count, ": ")
                                   : absl::StrCat(position_->scope, ": ");
    }
    return absl::InvalidArgumentError(
        absl::StrCat("pgoutput ", message_, message_.empty() ? "" : " ", "message: ", where, detail,
                     " at byte offset ", offset, " (size ", bytes_.size(), ")"));
  }

 private:
  template <typename T>
  ABSL_ATTRIBUTE_ALWAYS_INLINE absl::Status ReadInt(absl::string_view field,
                                                    absl::string_view wire_type, T* out) {
    if (ABSL_PREDICT_FALSE(remaining() < sizeof(T))) {
      return TruncatedError(field, wire_type, sizeof(T));
    }
    using U = std::make_unsigned_t<T>;
    U value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    if constexpr (std::endian::native == std::endian::little && sizeof(T) == 2) {
      value = __builtin_bswap16(value);
    } else if constexpr (std::endian::native == std::endian::little && sizeof(T) == 4) {
      value = __builtin_bswap32(value);
    } else if constexpr (std::endian::native == std::endian::little && sizeof(T) == 8) {
      value = __builtin_bswap64(value);
    }
    // Unsigned-to-signed conversion is modular since C++20, which is exactly
    // two's complement decoding.
    *out = static_cast<T>(value);
    pos_ += sizeof(T);
    return absl::OkStatus();
  }

  // The error paths are kept out of line so the hot read paths stay small.
  ABSL_ATTRIBUTE_NOINLINE absl::Status UnterminatedError(absl::string_view field) const {
    return Error(pos_, absl::StrCat(field, " (String) has no NUL terminator in the ", remaining(),
                                    " bytes left"));
  }

  // Rewinds to the length field, so the position is unchanged on error.
  ABSL_ATTRIBUTE_NOINLINE absl::Status BadLengthError(absl::string_view length_field,
                                                      size_t length_offset, int32_t length) {
    const size_t left = remaining();
    pos_ = length_offset;
    if (length < 0) {
      return Error(length_offset, absl::StrCat(length_field, " ", length, " is negative"));
    }
    return Error(length_offset,
                 absl::StrCat(length_field, " ", length, " runs past the end of the buffer (", left,
                              " bytes follow the length)"));
  }

  ABSL_ATTRIBUTE_NOINLINE absl::Status TruncatedError(absl::string_view field,
                                                      absl::string_view wire_type,
                                                      size_t needed) const {
    return Error(pos_, absl::StrCat(field, " (", wire_type, ") needs ", needed, " bytes but only ",
                                    remaining(), " remain"));
  }

  absl::string_view bytes_;
  size_t pos_ = 0;
  absl::string_view message_;           // "" until the type byte is known
  const Position* position_ = nullptr;  // non-owning; see ElementScope
};

// Points the reader's error context at `position` for one scope. `position`
// must outlive the scope; the destructor clears it on every return path.
class ElementScope {
 public:
  ElementScope(Reader& reader, const Position* position) : reader_(reader) {
    reader_.set_position(position);
  }
  ~ElementScope() { reader_.set_position(nullptr); }
  ElementScope(const ElementScope&) = delete;
  ElementScope& operator=(const ElementScope&) = delete;

 private:
  Reader& reader_;
};

}  // namespace decoder_internal

namespace {

using decoder_internal::ElementScope;
using decoder_internal::Position;
using decoder_internal::Reader;

// Names a byte in an error message: 'x' (0x78) when printable, else 0x07.
std::string DescribeByte(uint8_t b) {
  if (b >= 0x20 && b < 0x7f) return absl::StrFormat("'%c' (0x%02x)", b, b);
  return absl::StrFormat("0x%02x", b);
}

// Smallest encoding of one element, for count checks before allocation.
constexpr size_t kMinTupleColumnBytes = 1;      // 'n' or 'u'
constexpr size_t kMinRelationColumnBytes = 10;  // flags, "" name, oid, typmod
constexpr size_t kRelationOidBytes = 4;

// Reads a TupleData into `tuple`, reusing its storage. `scope` names the
// tuple in errors ("new tuple", "old key", "old tuple").
absl::Status ReadTuple(Reader& r, absl::string_view scope, Tuple* tuple) {
  Position position{scope, "column", 0, 0};
  ElementScope element_scope(r, &position);

  size_t count_offset = r.offset();
  int16_t ncolumns = 0;
  TRICKLE_RETURN_IF_ERROR(r.ReadI16("column count", &ncolumns));
  TRICKLE_RETURN_IF_ERROR(
      r.CheckCount("column count", count_offset, ncolumns, kMinTupleColumnBytes));
  tuple->resize(static_cast<size_t>(ncolumns));
  position.count = ncolumns;
  for (int i = 0; i < ncolumns; ++i) {
    position.index = i + 1;
    ColumnValue& column = (*tuple)[i];
    size_t kind_offset = r.offset();
    uint8_t kind = 0;
    TRICKLE_RETURN_IF_ERROR(r.ReadByte("column kind", &kind));
    switch (kind) {
      case 'n':
        column.kind = ColumnKind::kNull;
        column.data.clear();
        break;
      case 'u':
        column.kind = ColumnKind::kUnchanged;
        column.data.clear();
        break;
      case 't':
      case 'b':
        column.kind = static_cast<ColumnKind>(kind);
        TRICKLE_RETURN_IF_ERROR(r.ReadLengthPrefixed("value length", &column.data));
        break;
      default:
        return r.Error(kind_offset, absl::StrCat("unknown column kind ", DescribeByte(kind),
                                                 "; expected 'n', 'u', 't' or 'b'"));
    }
  }
  return absl::OkStatus();
}

// The protocol v3 two-phase messages, named so that their error says why
// they are refused instead of calling them unknown.
absl::string_view TwoPhaseMessageName(uint8_t type) {
  switch (type) {
    case 'b':
      return "Begin Prepare";
    case 'P':
      return "Prepare";
    case 'K':
      return "Commit Prepared";
    case 'r':
      return "Rollback Prepared";
    case 'p':
      return "Stream Prepare";
    default:
      return "";
  }
}

}  // namespace

absl::Status Decoder::Decode(std::string_view bytes, MessageHandler* handler) {
  if (ABSL_PREDICT_FALSE(protocol_version_ < kMinProtocolVersion ||
                         protocol_version_ > kMaxProtocolVersion)) {
    return absl::FailedPreconditionError(
        absl::StrCat("pgoutput decoder: protocol version ", protocol_version_,
                     " is not supported (supported: ", kMinProtocolVersion, "-",
                     kMaxProtocolVersion, "); start replication with proto_version '1' or '2'"));
  }
  Reader r(bytes);
  if (ABSL_PREDICT_FALSE(bytes.empty())) {
    return r.Error(0, "empty buffer, expected a message type byte");
  }
  uint8_t type = 0;
  TRICKLE_RETURN_IF_ERROR(r.ReadByte("message type", &type));
  switch (type) {
    case 'B':
      return DecodeBegin(r, handler);
    case 'C':
      return DecodeCommit(r, handler);
    case 'O':
      return DecodeOrigin(r, handler);
    case 'R':
      return DecodeRelation(r, handler);
    case 'Y':
      return DecodeType(r, handler);
    case 'I':
      return DecodeInsert(r, handler);
    case 'U':
      return DecodeUpdate(r, handler);
    case 'D':
      return DecodeDelete(r, handler);
    case 'T':
      return DecodeTruncate(r, handler);
    case 'M':
      return DecodeMessage(r, handler);
    case 'S':
      return DecodeStreamStart(r, handler);
    case 'E':
      return DecodeStreamStop(r, handler);
    case 'c':
      return DecodeStreamCommit(r, handler);
    case 'A':
      return DecodeStreamAbort(r, handler);
    default:
      break;
  }
  absl::string_view two_phase = TwoPhaseMessageName(type);
  if (!two_phase.empty()) {
    r.set_message(two_phase);
    return r.Error(0, absl::StrCat("two-phase message type ", DescribeByte(type),
                                   " needs protocol version 3; this decoder accepts "
                                   "versions 1-2 (start replication without two_phase)"));
  }
  return r.Error(0, absl::StrCat("unknown message type ", DescribeByte(type)));
}

absl::Status Decoder::CheckStreamingVersion(Reader& r) const {
  if (ABSL_PREDICT_FALSE(protocol_version_ < 2)) {
    return r.Error(0, absl::StrCat("streaming messages need protocol version 2; this "
                                   "stream was started with version ",
                                   protocol_version_));
  }
  return absl::OkStatus();
}

absl::Status Decoder::CheckStreamedBlock(Reader& r, bool inside) const {
  if (ABSL_PREDICT_FALSE(in_streamed_block_ != inside)) {
    return r.Error(0, inside ? std::string("not inside a streamed block (no Stream Start "
                                           "is open)")
                             : absl::StrCat("not allowed inside a streamed block (the "
                                            "Stream Start of xid ",
                                            streamed_xid_, " has no Stream Stop yet)"));
  }
  return absl::OkStatus();
}

absl::Status Decoder::ReadStreamedXid(Reader& r, TransactionId* xid) {
  if (in_streamed_block_) return r.ReadU32("xid of the streamed transaction", xid);
  *xid = 0;
  return absl::OkStatus();
}

absl::Status Decoder::DecodeBegin(Reader& r, MessageHandler* handler) {
  r.set_message("Begin");
  TRICKLE_RETURN_IF_ERROR(CheckStreamedBlock(r, /*inside=*/false));
  BeginMessage m;
  TRICKLE_RETURN_IF_ERROR(r.ReadU64("final LSN", &m.final_lsn));
  TRICKLE_RETURN_IF_ERROR(r.ReadI64("commit timestamp", &m.commit_time));
  TRICKLE_RETURN_IF_ERROR(r.ReadU32("xid", &m.xid));
  TRICKLE_RETURN_IF_ERROR(r.ExpectEnd());
  return handler->OnBegin(m);
}

absl::Status Decoder::DecodeCommit(Reader& r, MessageHandler* handler) {
  r.set_message("Commit");
  TRICKLE_RETURN_IF_ERROR(CheckStreamedBlock(r, /*inside=*/false));
  CommitMessage m;
  TRICKLE_RETURN_IF_ERROR(r.ReadU8("flags", &m.flags));
  TRICKLE_RETURN_IF_ERROR(r.ReadU64("commit LSN", &m.commit_lsn));
  TRICKLE_RETURN_IF_ERROR(r.ReadU64("end LSN", &m.end_lsn));
  TRICKLE_RETURN_IF_ERROR(r.ReadI64("commit timestamp", &m.commit_time));
  TRICKLE_RETURN_IF_ERROR(r.ExpectEnd());
  return handler->OnCommit(m);
}

absl::Status Decoder::DecodeOrigin(Reader& r, MessageHandler* handler) {
  // Allowed inside a streamed block too: pgoutput sends the origin after
  // Stream Start (with LSN 0) as well as after Begin.
  r.set_message("Origin");
  OriginMessage& m = origin_;
  TRICKLE_RETURN_IF_ERROR(r.ReadU64("origin LSN", &m.commit_lsn));
  TRICKLE_RETURN_IF_ERROR(r.ReadCString("origin name", &m.name));
  TRICKLE_RETURN_IF_ERROR(r.ExpectEnd());
  return handler->OnOrigin(m);
}

absl::Status Decoder::DecodeRelation(Reader& r, MessageHandler* handler) {
  r.set_message("Relation");
  RelationMessage& m = relation_;
  TRICKLE_RETURN_IF_ERROR(ReadStreamedXid(r, &m.xid));
  TRICKLE_RETURN_IF_ERROR(r.ReadU32("relation OID", &m.relation_oid));
  TRICKLE_RETURN_IF_ERROR(r.ReadCString("namespace", &m.namespace_name));
  TRICKLE_RETURN_IF_ERROR(r.ReadCString("relation name", &m.relation_name));
  size_t identity_offset = r.offset();
  uint8_t identity = 0;
  TRICKLE_RETURN_IF_ERROR(r.ReadU8("replica identity", &identity));
  if (identity != 'd' && identity != 'n' && identity != 'f' && identity != 'i') {
    return r.Error(identity_offset,
                   absl::StrCat("unknown replica identity ", DescribeByte(identity),
                                "; expected 'd', 'n', 'f' or 'i'"));
  }
  m.replica_identity = static_cast<char>(identity);

  {
    Position position{"relation", "column", 0, 0};
    ElementScope element_scope(r, &position);
    size_t count_offset = r.offset();
    int16_t ncolumns = 0;
    TRICKLE_RETURN_IF_ERROR(r.ReadI16("column count", &ncolumns));
    TRICKLE_RETURN_IF_ERROR(
        r.CheckCount("column count", count_offset, ncolumns, kMinRelationColumnBytes));
    m.columns.resize(static_cast<size_t>(ncolumns));
    position.count = ncolumns;
    for (int i = 0; i < ncolumns; ++i) {
      position.index = i + 1;
      RelationColumn& column = m.columns[i];
      uint8_t flags = 0;
      TRICKLE_RETURN_IF_ERROR(r.ReadU8("flags", &flags));
      column.is_key = (flags & 1) != 0;
      TRICKLE_RETURN_IF_ERROR(r.ReadCString("column name", &column.name));
      TRICKLE_RETURN_IF_ERROR(r.ReadU32("type OID", &column.type_oid));
      TRICKLE_RETURN_IF_ERROR(r.ReadI32("type modifier", &column.type_modifier));
    }
  }
  TRICKLE_RETURN_IF_ERROR(r.ExpectEnd());
  return handler->OnRelation(m);
}

absl::Status Decoder::DecodeType(Reader& r, MessageHandler* handler) {
  r.set_message("Type");
  TypeMessage& m = type_;
  TRICKLE_RETURN_IF_ERROR(ReadStreamedXid(r, &m.xid));
  TRICKLE_RETURN_IF_ERROR(r.ReadU32("type OID", &m.type_oid));
  TRICKLE_RETURN_IF_ERROR(r.ReadCString("namespace", &m.namespace_name));
  TRICKLE_RETURN_IF_ERROR(r.ReadCString("type name", &m.type_name));
  TRICKLE_RETURN_IF_ERROR(r.ExpectEnd());
  return handler->OnType(m);
}

absl::Status Decoder::DecodeInsert(Reader& r, MessageHandler* handler) {
  r.set_message("Insert");
  InsertMessage& m = insert_;
  TRICKLE_RETURN_IF_ERROR(ReadStreamedXid(r, &m.xid));
  TRICKLE_RETURN_IF_ERROR(r.ReadU32("relation OID", &m.relation_oid));
  size_t marker_offset = r.offset();
  uint8_t marker = 0;
  TRICKLE_RETURN_IF_ERROR(r.ReadByte("tuple marker", &marker));
  if (marker != 'N') {
    return r.Error(marker_offset,
                   absl::StrCat("expected tuple marker 'N', got ", DescribeByte(marker)));
  }
  TRICKLE_RETURN_IF_ERROR(ReadTuple(r, "new tuple", &m.new_tuple));
  TRICKLE_RETURN_IF_ERROR(r.ExpectEnd());
  return handler->OnInsert(m);
}

absl::Status Decoder::DecodeUpdate(Reader& r, MessageHandler* handler) {
  r.set_message("Update");
  UpdateMessage& m = update_;
  TRICKLE_RETURN_IF_ERROR(ReadStreamedXid(r, &m.xid));
  TRICKLE_RETURN_IF_ERROR(r.ReadU32("relation OID", &m.relation_oid));
  size_t marker_offset = r.offset();
  uint8_t marker = 0;
  TRICKLE_RETURN_IF_ERROR(r.ReadByte("tuple marker", &marker));
  if (marker == 'K' || marker == 'O') {
    m.old_kind = static_cast<OldTupleKind>(marker);
    TRICKLE_RETURN_IF_ERROR(ReadTuple(r, marker == 'K' ? "old key" : "old tuple", &m.old_tuple));
    marker_offset = r.offset();
    TRICKLE_RETURN_IF_ERROR(r.ReadByte("new tuple marker", &marker));
    if (marker != 'N') {
      return r.Error(marker_offset,
                     absl::StrCat("expected new tuple marker 'N', got ", DescribeByte(marker)));
    }
  } else if (marker == 'N') {
    m.old_kind = OldTupleKind::kNone;
    m.old_tuple.clear();
  } else {
    return r.Error(marker_offset, absl::StrCat("expected tuple marker 'K', 'O' or 'N', got ",
                                               DescribeByte(marker)));
  }
  TRICKLE_RETURN_IF_ERROR(ReadTuple(r, "new tuple", &m.new_tuple));
  TRICKLE_RETURN_IF_ERROR(r.ExpectEnd());
  return handler->OnUpdate(m);
}

absl::Status Decoder::DecodeDelete(Reader& r, MessageHandler* handler) {
  r.set_message("Delete");
  DeleteMessage& m = delete_;
  TRICKLE_RETURN_IF_ERROR(ReadStreamedXid(r, &m.xid));
  TRICKLE_RETURN_IF_ERROR(r.ReadU32("relation OID", &m.relation_oid));
  size_t marker_offset = r.offset();
  uint8_t marker = 0;
  TRICKLE_RETURN_IF_ERROR(r.ReadByte("tuple marker", &marker));
  if (marker != 'K' && marker != 'O') {
    return r.Error(marker_offset,
                   absl::StrCat("expected tuple marker 'K' or 'O', got ", DescribeByte(marker)));
  }
  m.old_kind = static_cast<OldTupleKind>(marker);
  TRICKLE_RETURN_IF_ERROR(ReadTuple(r, marker == 'K' ? "old key" : "old tuple", &m.old_tuple));
  TRICKLE_RETURN_IF_ERROR(r.ExpectEnd());
  return handler->OnDelete(m);
}

absl::Status Decoder::DecodeTruncate(Reader& r, MessageHandler* handler) {
  r.set_message("Truncate");
  TruncateMessage& m = truncate_;
  TRICKLE_RETURN_IF_ERROR(ReadStreamedXid(r, &m.xid));
  size_t count_offset = r.offset();
  int32_t nrelations = 0;
  TRICKLE_RETURN_IF_ERROR(r.ReadI32("relation count", &nrelations));
  TRICKLE_RETURN_IF_ERROR(r.ReadU8("options", &m.options));
  TRICKLE_RETURN_IF_ERROR(
      r.CheckCount("relation count", count_offset, nrelations, kRelationOidBytes));
  m.relation_oids.resize(static_cast<size_t>(nrelations));
  for (Oid& oid : m.relation_oids) {
    TRICKLE_RETURN_IF_ERROR(r.ReadU32("relation OID", &oid));
  }
  TRICKLE_RETURN_IF_ERROR(r.ExpectEnd());
  return handler->OnTruncate(m);
}

absl::Status Decoder::DecodeMessage(Reader& r, MessageHandler* handler) {
  r.set_message("Message");
  LogicalMessage& m = message_;
  TRICKLE_RETURN_IF_ERROR(ReadStreamedXid(r, &m.xid));
  uint8_t flags = 0;
  TRICKLE_RETURN_IF_ERROR(r.ReadU8("flags", &flags));
  m.transactional = (flags & 1) != 0;
  TRICKLE_RETURN_IF_ERROR(r.ReadU64("LSN", &m.lsn));
  TRICKLE_RETURN_IF_ERROR(r.ReadCString("prefix", &m.prefix));
  TRICKLE_RETURN_IF_ERROR(r.ReadLengthPrefixed("content length", &m.content));
  TRICKLE_RETURN_IF_ERROR(r.ExpectEnd());
  return handler->OnMessage(m);
}

absl::Status Decoder::DecodeStreamStart(Reader& r, MessageHandler* handler) {
  r.set_message("Stream Start");
  TRICKLE_RETURN_IF_ERROR(CheckStreamingVersion(r));
  TRICKLE_RETURN_IF_ERROR(CheckStreamedBlock(r, /*inside=*/false));
  StreamStartMessage m;
  TRICKLE_RETURN_IF_ERROR(r.ReadU32("xid", &m.xid));
  uint8_t first_segment = 0;
  TRICKLE_RETURN_IF_ERROR(r.ReadU8("first segment", &first_segment));
  m.first_segment = first_segment != 0;
  TRICKLE_RETURN_IF_ERROR(r.ExpectEnd());
  in_streamed_block_ = true;
  streamed_xid_ = m.xid;
  return handler->OnStreamStart(m);
}

absl::Status Decoder::DecodeStreamStop(Reader& r, MessageHandler* handler) {
  r.set_message("Stream Stop");
  TRICKLE_RETURN_IF_ERROR(CheckStreamingVersion(r));
  TRICKLE_RETURN_IF_ERROR(CheckStreamedBlock(r, /*inside=*/true));
  TRICKLE_RETURN_IF_ERROR(r.ExpectEnd());
  in_streamed_block_ = false;
  streamed_xid_ = 0;
  return handler->OnStreamStop(StreamStopMessage{});
}

absl::Status Decoder::DecodeStreamCommit(Reader& r, MessageHandler* handler) {
  r.set_message("Stream Commit");
  TRICKLE_RETURN_IF_ERROR(CheckStreamingVersion(r));
  TRICKLE_RETURN_IF_ERROR(CheckStreamedBlock(r, /*inside=*/false));
  StreamCommitMessage m;
  TRICKLE_RETURN_IF_ERROR(r.ReadU32("xid", &m.xid));
  TRICKLE_RETURN_IF_ERROR(r.ReadU8("flags", &m.flags));
  TRICKLE_RETURN_IF_ERROR(r.ReadU64("commit LSN", &m.commit_lsn));
  TRICKLE_RETURN_IF_ERROR(r.ReadU64("end LSN", &m.end_lsn));
  TRICKLE_RETURN_IF_ERROR(r.ReadI64("commit timestamp", &m.commit_time));
  TRICKLE_RETURN_IF_ERROR(r.ExpectEnd());
  return handler->OnStreamCommit(m);
}

absl::Status Decoder::DecodeStreamAbort(Reader& r, MessageHandler* handler) {
  r.set_message("Stream Abort");
  TRICKLE_RETURN_IF_ERROR(CheckStreamingVersion(r));
  TRICKLE_RETURN_IF_ERROR(CheckStreamedBlock(r, /*inside=*/false));
  StreamAbortMessage m;
  TRICKLE_RETURN_IF_ERROR(r.ReadU32("xid", &m.xid));
  TRICKLE_RETURN_IF_ERROR(r.ReadU32("subtransaction xid", &m.subxid));
  TRICKLE_RETURN_IF_ERROR(r.ExpectEnd());
  return handler->OnStreamAbort(m);
}

}  // namespace trickle::pgoutput
