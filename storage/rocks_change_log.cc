// The RocksDB change log instance: errors, the store in use, and the one
// path of every write and WAL sync (see rocks_change_log.h).
#include "storage/rocks_change_log.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "storage/change_log_keys.h"

namespace trickle::storage::internal {

absl::StatusCode CodeFor(const rocksdb::Status& s) {
  if (s.IsNoSpace() || s.IsMemoryLimit() ||
      s.subcode() == rocksdb::Status::SubCode::kSpaceLimit) {
    return absl::StatusCode::kResourceExhausted;
  }
  if (s.IsCorruption()) return absl::StatusCode::kDataLoss;
  if (s.IsIOError() || s.IsBusy() || s.IsTryAgain() || s.IsTimedOut() || s.IsIncomplete() ||
      s.IsShutdownInProgress()) {
    return absl::StatusCode::kUnavailable;
  }
  if (s.IsInvalidArgument()) return absl::StatusCode::kInvalidArgument;
  return absl::StatusCode::kInternal;
}

std::string ChangeKeyAfterLsn(Oid relation, Lsn commit_lsn) {
  if (commit_lsn == UINT64_MAX) return keys::ChangeKeyRelationEnd(relation);
  return keys::ChangeKeyLowerBound(relation, commit_lsn + 1);
}

std::string EncodeCount(uint64_t n) {
  std::string v;
  keys::PutBigEndian64(&v, n);
  return v;
}

RocksChangeLog::~RocksChangeLog() {
  // An open transaction is simply dropped: its rows have no commit record,
  // and the next Open deletes them. The Store closes RocksDB.
  absl::MutexLock lock(&store_mu_);
  store_.reset();
}

absl::Status RocksChangeLog::Error(const rocksdb::Status& s, absl::string_view what,
                                   absl::string_view action) const {
  return absl::Status(CodeFor(s), absl::StrCat("change log at ", options_.path, ": ", what,
                                               " failed: ", s.ToString(), "; ", action));
}

absl::Status RocksChangeLog::Invalid(absl::StatusCode code, absl::string_view message) const {
  return absl::Status(code, absl::StrCat("change log at ", options_.path, ": ", message));
}

std::string RocksChangeLog::NotConfirmedPast() const {
  return absl::StrCat("the slot is not confirmed past ", FormatLsn(durable_lsn()));
}

absl::StatusOr<std::shared_ptr<Store>> RocksChangeLog::UseStore() const {
  absl::MutexLock lock(&store_mu_);
  if (store_ == nullptr) {
    return Invalid(absl::StatusCode::kUnavailable,
                   "the database is being reopened after a storage error; retry");
  }
  return store_;
}

rocksdb::Status RocksChangeLog::Write(Store& store, rocksdb::WriteBatch* batch,
                                      const rocksdb::WriteOptions& wo) {
  absl::MutexLock lock(&io_mu_);
  if (needs_recovery_.load()) {
    return rocksdb::Status::TryAgain("an earlier write failed; the next call recovers");
  }
  rocksdb::Status s = store.db->Write(wo, batch);
  if (!s.ok()) needs_recovery_.store(true);
  return s;
}

rocksdb::Status RocksChangeLog::SyncWal(Store& store) {
  absl::MutexLock lock(&io_mu_);
  if (needs_recovery_.load()) {
    return rocksdb::Status::TryAgain("an earlier write failed; the next call recovers");
  }
  rocksdb::Status s = store.db->SyncWAL();
  if (!s.ok()) needs_recovery_.store(true);
  return s;
}

}  // namespace trickle::storage::internal

namespace trickle::storage {

absl::Status ChangeLog::AppendEncoded(Oid relation, std::string_view change) {
  ChangeRecord record;
  if (!record.ParseFromArray(change.data(), static_cast<int>(change.size()))) {
    return absl::InvalidArgumentError(absl::StrCat("change log: a change of relation ", relation,
                                                   " is not a serialized ChangeRecord"));
  }
  return Append(relation, record);
}

absl::StatusOr<std::unique_ptr<ChangeLog>> ChangeLog::Open(const ChangeLogOptions& options) {
  auto log = std::make_unique<internal::RocksChangeLog>(options);
  TRICKLE_RETURN_IF_ERROR(log->Open());
  return std::unique_ptr<ChangeLog>(std::move(log));
}

}  // namespace trickle::storage
