// A ChangeLog seen through a filter that lets Trim through at most once per
// `interval` per relation, and never when the trim point does not move.
// Everything else is forwarded unchanged. A zero interval forwards every
// Trim too (as shipped), only counting them.
//
// Why it exists (benchmark-side only): StreamTableManager trims every source
// after every round that committed something, and each Trim is a RocksDB
// DeleteRange, even when the trim point did not move. Range tombstones in the
// mutable memtable are fragmented again by every new iterator, so every
// change-log read costs O(trims since the last memtable flush) and refresh
// latency grows linearly with time at low write rates (see
// benchmarks/results/latency.md). `refresh_latency --trim_interval=10s`
// measures the engine as it would behave with trimming batched.
//
// Deferring a trim is always safe: readers only read at or above their
// frontier, and trim points never move back.
#pragma once

#include <map>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "storage/change_log.h"

namespace trickle::bench {

class ThrottledTrimLog : public storage::ChangeLog {
 public:
  // `inner` is not owned and must outlive this object.
  ThrottledTrimLog(storage::ChangeLog* inner, absl::Duration interval)
      : inner_(inner), interval_(interval) {}

  absl::Status Trim(Oid relation, Lsn below) override {
    {
      absl::MutexLock lock(&mu_);
      if (interval_ == absl::ZeroDuration()) {
        ++forwarded_;
        return inner_->Trim(relation, below);
      }
      State& s = state_[relation];
      if (below <= s.point) {
        ++skipped_;
        return absl::OkStatus();
      }
      absl::Time now = absl::Now();
      if (now - s.at < interval_) {
        ++skipped_;
        return absl::OkStatus();
      }
      s.point = below;
      s.at = now;
      ++forwarded_;
    }
    return inner_->Trim(relation, below);
  }
  uint64_t forwarded() const {
    absl::MutexLock lock(&mu_);
    return forwarded_;
  }
  uint64_t skipped() const {
    absl::MutexLock lock(&mu_);
    return skipped_;
  }

  // ---- forwarded unchanged
  absl::StatusOr<bool> BeginTransaction(Lsn commit_lsn, uint32_t xid, int64_t commit_time) override {
    return inner_->BeginTransaction(commit_lsn, xid, commit_time);
  }
  absl::Status Append(Oid relation, const storage::ChangeRecord& change) override {
    return inner_->Append(relation, change);
  }
  absl::Status AddFenceToken(const std::string& token) override { return inner_->AddFenceToken(token); }
  absl::Status CommitTransaction(Lsn end_lsn) override { return inner_->CommitTransaction(end_lsn); }
  absl::Status AbortTransaction() override { return inner_->AbortTransaction(); }
  absl::Status Sync() override { return inner_->Sync(); }
  Lsn durable_lsn() const override { return inner_->durable_lsn(); }
  Lsn high_water_lsn() const override { return inner_->high_water_lsn(); }
  absl::StatusOr<uint32_t> RecordRelation(const storage::RelationSchema& schema) override {
    return inner_->RecordRelation(schema);
  }
  absl::StatusOr<storage::RelationSchema> GetRelation(Oid relation, uint32_t version) const override {
    return inner_->GetRelation(relation, version);
  }
  absl::StatusOr<std::vector<storage::RelationSchema>> LatestRelations() const override {
    return inner_->LatestRelations();
  }
  absl::Status ReadChanges(Oid relation, Lsn from, Lsn to,
                           const std::function<absl::Status(const storage::LoggedChange&)>& fn) const override {
    return inner_->ReadChanges(relation, from, to, fn);
  }
  absl::StatusOr<std::vector<storage::TransactionRecord>> ReadTransactions(Lsn from, Lsn to) const override {
    return inner_->ReadTransactions(from, to);
  }
  storage::ChangeLogStats Stats() const override { return inner_->Stats(); }
  absl::Status PutProgress(const std::string& key, const std::string& value) override {
    return inner_->PutProgress(key, value);
  }
  absl::StatusOr<std::optional<std::string>> GetProgress(const std::string& key) const override {
    return inner_->GetProgress(key);
  }

 private:
  struct State {
    Lsn point = 0;
    absl::Time at = absl::InfinitePast();
  };
  storage::ChangeLog* inner_;  // not owned
  const absl::Duration interval_;
  mutable absl::Mutex mu_;
  std::map<Oid, State> state_ ABSL_GUARDED_BY(mu_);
  uint64_t forwarded_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t skipped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace trickle::bench
