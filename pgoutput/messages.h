// Typed pgoutput messages (protocol versions 1 and 2), as the decoder emits
// them. Field names follow PostgreSQL's "Logical Replication Message Formats".
// Values are kept in the form the server sent (text or binary bytes); this
// layer never interprets a column's type.
//
// The `xid` of Relation, Type, Insert, Update, Delete, Truncate and Message is
// sent only inside a streamed block (protocol v2, between Stream Start and
// Stream Stop); elsewhere it is 0 and the transaction is the one the enclosing
// Begin named. The wire format is documented in docs/pgoutput_decoder.md and
// at the top of pgoutput/decoder.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/lsn.h"

namespace trickle::pgoutput {

using TransactionId = uint32_t;  // 32-bit xid as pgoutput sends it
using Oid = uint32_t;

// Microseconds since the PostgreSQL epoch (2000-01-01 00:00:00 UTC).
using PgTimestamp = int64_t;
inline constexpr int64_t kPgEpochUnixMicros = 946684800LL * 1000000LL;

// One column of a TupleData.
enum class ColumnKind : char {
  kNull = 'n',       // SQL NULL
  kUnchanged = 'u',  // unchanged TOASTed value; not sent
  kText = 't',       // value in text format
  kBinary = 'b',     // value in binary format
};
struct ColumnValue {
  ColumnKind kind = ColumnKind::kNull;
  std::string data;  // empty unless kText/kBinary
  bool operator==(const ColumnValue&) const = default;
};
using Tuple = std::vector<ColumnValue>;

// Which old tuple an Update/Delete carries.
enum class OldTupleKind : char {
  kNone = 0,    // Update without old tuple
  kKey = 'K',   // replica identity key columns only
  kFull = 'O',  // the whole old row (REPLICA IDENTITY FULL)
};

struct BeginMessage {
  Lsn final_lsn = 0;  // LSN of the commit record
  PgTimestamp commit_time = 0;
  TransactionId xid = 0;
  bool operator==(const BeginMessage&) const = default;
};
struct CommitMessage {
  uint8_t flags = 0;  // unused by PostgreSQL 15 (always 0); passed through
  Lsn commit_lsn = 0;
  Lsn end_lsn = 0;
  PgTimestamp commit_time = 0;
  bool operator==(const CommitMessage&) const = default;
};
struct OriginMessage {
  Lsn commit_lsn = 0;  // the origin's LSN; 0 when sent after Stream Start
  std::string name;
  bool operator==(const OriginMessage&) const = default;
};
struct RelationColumn {
  bool is_key = false;  // flag 1: part of the replica identity
  std::string name;
  Oid type_oid = 0;
  int32_t type_modifier = -1;
  bool operator==(const RelationColumn&) const = default;
};
struct RelationMessage {
  TransactionId xid = 0;  // only inside a streamed block (v2)
  Oid relation_oid = 0;
  std::string namespace_name;  // "" means pg_catalog
  std::string relation_name;
  char replica_identity = 'd';  // d(efault), n(othing), f(ull), i(ndex)
  std::vector<RelationColumn> columns;
  bool operator==(const RelationMessage&) const = default;
};
struct TypeMessage {
  TransactionId xid = 0;  // only inside a streamed block (v2)
  Oid type_oid = 0;
  std::string namespace_name;
  std::string type_name;
  bool operator==(const TypeMessage&) const = default;
};
struct InsertMessage {
  TransactionId xid = 0;  // only inside a streamed block (v2)
  Oid relation_oid = 0;
  Tuple new_tuple;
  bool operator==(const InsertMessage&) const = default;
};
struct UpdateMessage {
  TransactionId xid = 0;  // only inside a streamed block (v2)
  Oid relation_oid = 0;
  OldTupleKind old_kind = OldTupleKind::kNone;
  Tuple old_tuple;  // empty when old_kind == kNone
  Tuple new_tuple;
  bool operator==(const UpdateMessage&) const = default;
};
struct DeleteMessage {
  TransactionId xid = 0;  // only inside a streamed block (v2)
  Oid relation_oid = 0;
  OldTupleKind old_kind = OldTupleKind::kKey;
  Tuple old_tuple;
  bool operator==(const DeleteMessage&) const = default;
};
struct TruncateMessage {
  static constexpr uint8_t kCascade = 1;
  static constexpr uint8_t kRestartIdentity = 2;
  TransactionId xid = 0;  // only inside a streamed block (v2)
  uint8_t options = 0;
  std::vector<Oid> relation_oids;
  bool operator==(const TruncateMessage&) const = default;
};
struct LogicalMessage {
  TransactionId xid = 0;  // only inside a streamed block (v2)
  bool transactional = false;
  Lsn lsn = 0;
  std::string prefix;
  std::string content;
  bool operator==(const LogicalMessage&) const = default;
};
struct StreamStartMessage {
  TransactionId xid = 0;
  bool first_segment = false;  // the first block streamed for this xid
  bool operator==(const StreamStartMessage&) const = default;
};
struct StreamStopMessage {
  bool operator==(const StreamStopMessage&) const = default;
};
struct StreamCommitMessage {
  TransactionId xid = 0;
  uint8_t flags = 0;
  Lsn commit_lsn = 0;
  Lsn end_lsn = 0;
  PgTimestamp commit_time = 0;
  bool operator==(const StreamCommitMessage&) const = default;
};
struct StreamAbortMessage {
  TransactionId xid = 0;
  TransactionId subxid = 0;  // == xid when the whole transaction aborted
  bool operator==(const StreamAbortMessage&) const = default;
};

}  // namespace trickle::pgoutput
