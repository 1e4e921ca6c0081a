// Key encoding of the change log (docs/change_log_format.md is the reference).
//
// Every key starts with a one-byte tag and continues with fixed-width
// big-endian integers, so RocksDB's default bytewise comparator orders keys by
// (tag, integers...) numerically. The change log relies on that order: one
// relation's changes are a contiguous key range, sorted by commit LSN and then
// by position in the transaction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/lsn.h"

namespace trickle::storage::keys {

// Column family "changes".
inline constexpr char kChangeTag = 'c';  // 'c' | oid BE32 | commit_lsn BE64 | seq BE32
// Column family "transactions".
inline constexpr char kTransactionTag = 't';  // 't' | commit_lsn BE64
// Column family "default" (metadata).
inline constexpr char kRelationTag = 'r';   // 'r' | oid BE32 | version BE32
inline constexpr char kProgressTag = 'p';   // 'p' | name bytes
inline constexpr char kMetaTag = 'm';       // 'm' | name bytes
inline constexpr char kTrimPointTag = 'x';  // 'x' | oid BE32

inline constexpr size_t kChangeKeySize = 1 + 4 + 8 + 4;
inline constexpr size_t kTransactionKeySize = 1 + 8;
inline constexpr size_t kRelationKeySize = 1 + 4 + 4;
inline constexpr size_t kTrimPointKeySize = 1 + 4;

// Names under kMetaTag.
inline constexpr std::string_view kFormatVersionName = "format_version";
inline constexpr std::string_view kHighWaterName = "high_water";
inline constexpr std::string_view kTransactionCountName = "transaction_count";
inline constexpr std::string_view kTrimFloorName = "trim_floor";

void PutBigEndian32(std::string* out, uint32_t v);
void PutBigEndian64(std::string* out, uint64_t v);
// `in` must hold at least 4 (8) bytes.
uint32_t GetBigEndian32(std::string_view in);
uint64_t GetBigEndian64(std::string_view in);

std::string ChangeKey(uint32_t relation, Lsn commit_lsn, uint32_t seq);
// The smallest key of `relation`'s changes in transactions with
// commit_lsn >= `commit_lsn` (seq 0). With commit_lsn = 0 it is the start of
// the relation's range.
std::string ChangeKeyLowerBound(uint32_t relation, Lsn commit_lsn);
// The first key after every change of `relation` (exclusive end of its range):
// the lower bound of relation+1, or the tag after 'c' for the last oid.
std::string ChangeKeyRelationEnd(uint32_t relation);

struct ChangeKeyParts {
  uint32_t relation;
  Lsn commit_lsn;
  uint32_t seq;
};
// nullopt when `key` is not a well-formed change key.
std::optional<ChangeKeyParts> ParseChangeKey(std::string_view key);

std::string TransactionKey(Lsn commit_lsn);
std::optional<Lsn> ParseTransactionKey(std::string_view key);

std::string RelationKey(uint32_t relation, uint32_t version);
struct RelationKeyParts {
  uint32_t relation;
  uint32_t version;
};
std::optional<RelationKeyParts> ParseRelationKey(std::string_view key);

std::string TrimPointKey(uint32_t relation);
std::optional<uint32_t> ParseTrimPointKey(std::string_view key);

std::string ProgressKey(std::string_view name);
std::string MetaKey(std::string_view name);

// The value of the kHighWaterName meta key: the commit LSN and end LSN of the
// last committed transaction (both BE64).
std::string EncodeHighWater(Lsn commit_lsn, Lsn end_lsn);
bool DecodeHighWater(std::string_view value, Lsn* commit_lsn, Lsn* end_lsn);

}  // namespace trickle::storage::keys
