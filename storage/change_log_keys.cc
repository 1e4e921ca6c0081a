#include "storage/change_log_keys.h"

namespace trickle::storage::keys {

void PutBigEndian32(std::string* out, uint32_t v) {
  char buf[4];
  for (int i = 3; i >= 0; --i) {
    buf[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  out->append(buf, sizeof(buf));
}

void PutBigEndian64(std::string* out, uint64_t v) {
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  out->append(buf, sizeof(buf));
}

uint32_t GetBigEndian32(std::string_view in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

uint64_t GetBigEndian64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

std::string ChangeKey(uint32_t relation, Lsn commit_lsn, uint32_t seq) {
  std::string key;
  key.reserve(kChangeKeySize);
  key.push_back(kChangeTag);
  PutBigEndian32(&key, relation);
  PutBigEndian64(&key, commit_lsn);
  PutBigEndian32(&key, seq);
  return key;
}

std::string ChangeKeyLowerBound(uint32_t relation, Lsn commit_lsn) {
  return ChangeKey(relation, commit_lsn, 0);
}

std::string ChangeKeyRelationEnd(uint32_t relation) {
  if (relation == UINT32_MAX) return std::string(1, kChangeTag + 1);
  return ChangeKeyLowerBound(relation + 1, 0);
}

std::optional<ChangeKeyParts> ParseChangeKey(std::string_view key) {
  if (key.size() != kChangeKeySize || key[0] != kChangeTag) return std::nullopt;
  return ChangeKeyParts{GetBigEndian32(key.substr(1)), GetBigEndian64(key.substr(5)),
                        GetBigEndian32(key.substr(13))};
}

std::string TransactionKey(Lsn commit_lsn) {
  std::string key;
  key.reserve(kTransactionKeySize);
  key.push_back(kTransactionTag);
  PutBigEndian64(&key, commit_lsn);
  return key;
}

std::optional<Lsn> ParseTransactionKey(std::string_view key) {
  if (key.size() != kTransactionKeySize || key[0] != kTransactionTag) return std::nullopt;
  return GetBigEndian64(key.substr(1));
}

std::string RelationKey(uint32_t relation, uint32_t version) {
  std::string key;
  key.reserve(kRelationKeySize);
  key.push_back(kRelationTag);
  PutBigEndian32(&key, relation);
  PutBigEndian32(&key, version);
  return key;
}

std::optional<RelationKeyParts> ParseRelationKey(std::string_view key) {
  if (key.size() != kRelationKeySize || key[0] != kRelationTag) return std::nullopt;
  return RelationKeyParts{GetBigEndian32(key.substr(1)), GetBigEndian32(key.substr(5))};
}

std::string TrimPointKey(uint32_t relation) {
  std::string key;
  key.reserve(kTrimPointKeySize);
  key.push_back(kTrimPointTag);
  PutBigEndian32(&key, relation);
  return key;
}

std::optional<uint32_t> ParseTrimPointKey(std::string_view key) {
  if (key.size() != kTrimPointKeySize || key[0] != kTrimPointTag) return std::nullopt;
  return GetBigEndian32(key.substr(1));
}

std::string ProgressKey(std::string_view name) {
  std::string key(1, kProgressTag);
  key.append(name);
  return key;
}

std::string MetaKey(std::string_view name) {
  std::string key(1, kMetaTag);
  key.append(name);
  return key;
}

std::string EncodeHighWater(Lsn commit_lsn, Lsn end_lsn) {
  std::string value;
  PutBigEndian64(&value, commit_lsn);
  PutBigEndian64(&value, end_lsn);
  return value;
}

bool DecodeHighWater(std::string_view value, Lsn* commit_lsn, Lsn* end_lsn) {
  if (value.size() != 16) return false;
  *commit_lsn = GetBigEndian64(value);
  *end_lsn = GetBigEndian64(value.substr(8));
  return true;
}

}  // namespace trickle::storage::keys
