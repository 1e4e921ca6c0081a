// Storage faults: after a failed write or sync the next call that writes
// probes the storage, then closes and reopens the database (the rules and
// why not DB::Resume: docs/change_log_format.md, "Storage faults").
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "rocksdb/env.h"
#include "storage/rocks_change_log.h"

namespace trickle::storage::internal {
namespace {

// How long a reopen after a storage error waits for readers to finish their
// calls on the old instance before it gives up (and is retried later).
constexpr auto kReopenDrainTimeout = std::chrono::seconds(30);

// Takes error recovery away from RocksDB's background threads. Left alone,
// RocksDB answers a full disk by polling free space every 5 seconds in its
// SstFileManager and resuming from there, which in 7.8 writes to the failed
// WAL again; the change log instead recovers synchronously at the start of
// the next write call (RecoverIfNeeded), so the caller's retry either works
// or reports the fault that persists. It also flags background errors (a
// failed flush or compaction) that no write of ours has met yet.
class TakeOverRecovery : public rocksdb::EventListener {
 public:
  explicit TakeOverRecovery(std::atomic<bool>* needs_recovery)
      : needs_recovery_(needs_recovery) {}
  const char* Name() const override { return "trickle.TakeOverRecovery"; }
  void OnBackgroundError(rocksdb::BackgroundErrorReason, rocksdb::Status*) override {
    needs_recovery_->store(true);
  }
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }

 private:
  std::atomic<bool>* const needs_recovery_;  // the ChangeLog's; outlives every Store
};

}  // namespace

std::shared_ptr<rocksdb::EventListener> NewTakeOverRecovery(std::atomic<bool>* needs_recovery) {
  return std::make_shared<TakeOverRecovery>(needs_recovery);
}

absl::Status RocksChangeLog::ProbeStorage(absl::string_view operation) const {
  rocksdb::Env* env = options_.env != nullptr ? options_.env : rocksdb::Env::Default();
  const std::string probe = absl::StrCat(options_.path, "/TRICKLE-PROBE");
  std::unique_ptr<rocksdb::WritableFile> file;
  rocksdb::Status s = env->NewWritableFile(probe, &file, rocksdb::EnvOptions());
  if (s.ok()) s = file->Append(std::string(4096, '\0'));
  if (s.ok()) s = file->Sync();
  if (file != nullptr) file->Close().PermitUncheckedError();
  env->DeleteFile(probe).PermitUncheckedError();
  if (!s.ok()) {
    return Error(s, absl::StrCat("test write before ", operation),
                 absl::StrCat("the storage still fails; free disk space or fix the I/O "
                              "error, then retry; ",
                              NotConfirmedPast()));
  }
  // The reopen flushes what RocksDB recovers from the WAL: that much must fit.
  uint64_t free_bytes = 0;
  if (env->GetFreeSpace(options_.path, &free_bytes).ok() &&
      free_bytes < options_.memtable_bytes) {
    return Invalid(absl::StatusCode::kResourceExhausted,
                   absl::StrCat("the disk is still full before ", operation, " (", free_bytes,
                                " bytes free, ", options_.memtable_bytes,
                                " needed to flush the memtables); free disk space, then "
                                "retry; ",
                                NotConfirmedPast()));
  }
  return absl::OkStatus();
}

absl::Status RocksChangeLog::RecoverIfNeeded(absl::string_view operation) {
  if (!needs_recovery_.load()) return absl::OkStatus();
  absl::MutexLock recovery_lock(&recovery_mu_);
  if (!needs_recovery_.load()) return absl::OkStatus();  // another thread did it
  TRICKLE_RETURN_IF_ERROR(ProbeStorage(operation));
  // Not DB::Resume: in RocksDB 7.8 it writes the failed WAL's buffer again
  // (fatal, or an assertion, while the fault lasts), and after a failed
  // SyncWAL there is no background error for it to clear at all while the
  // WAL writer stays unusable. A reopen starts a fresh WAL and reloads the
  // log's state from what RocksDB recovers, which is the truth: a write
  // reported failed may have reached the WAL, a write reported done may have
  // lost its unsynced pages.
  return Reopen(operation);
}

absl::Status RocksChangeLog::Reopen(absl::string_view operation) {
  absl::MutexLock write_lock(&write_mu_);
  std::shared_ptr<Store> old;
  {
    absl::MutexLock lock(&store_mu_);
    old = std::move(store_);
  }
  if (old != nullptr) {
    // Readers that hold the old instance finish their call first; new calls
    // get Unavailable meanwhile.
    auto deadline = std::chrono::steady_clock::now() + kReopenDrainTimeout;
    while (old.use_count() > 1 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (old.use_count() > 1) {
      absl::MutexLock lock(&store_mu_);
      store_ = std::move(old);
      return Invalid(absl::StatusCode::kUnavailable,
                     absl::StrCat("reopen before ", operation,
                                  " waited too long for readers of the old instance; retry"));
    }
    old.reset();  // closes RocksDB and releases its LOCK file
  }
  // The new instance starts clean; InitializeFrom's writes must reach it.
  needs_recovery_.store(false);
  absl::Status status;
  absl::StatusOr<std::shared_ptr<Store>> fresh = OpenStore(/*read_only=*/false);
  if (fresh.ok()) {
    status = InitializeFrom(**fresh);
    if (status.ok() && !needs_recovery_.load()) {
      (*fresh)->generation = ++last_generation_;
      absl::MutexLock lock(&store_mu_);
      store_ = std::move(*fresh);
      return absl::OkStatus();
    }
    if (status.ok()) status = Invalid(absl::StatusCode::kUnavailable, "storage error at reopen");
    fresh->reset();
  } else {
    status = fresh.status();
  }
  needs_recovery_.store(true);
  // Keep readers going on a read-only instance while the storage fails.
  absl::StatusOr<std::shared_ptr<Store>> read_only = OpenStore(/*read_only=*/true);
  if (read_only.ok() && LoadState(**read_only).ok()) {
    (*read_only)->generation = ++last_generation_;
    absl::MutexLock lock(&store_mu_);
    store_ = std::move(*read_only);
  }
  return Invalid(status.code(),
                 absl::StrCat("reopen after a storage error, before ", operation,
                              ", failed: ", status.message()));
}

}  // namespace trickle::storage::internal
