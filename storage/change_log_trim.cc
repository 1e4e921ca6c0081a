// Trimming: trim points, the trim floor, and the compaction filter that
// drops trimmed keys (docs/change_log_format.md, "Trimming").
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "storage/change_log_keys.h"
#include "storage/rocks_change_log.h"

namespace trickle::storage::internal {
namespace {


// Drops trimmed keys when RocksDB writes a table file (flush or compaction):
// a change of relation r below r's trim point, a commit record below the
// trim floor. Trimming therefore writes no range tombstones: readers never
// look below a trim point (ReadChanges and ReadTransactions start there), and
// the bytes go with the next flush or compaction that meets them.
class TrimFilter : public rocksdb::CompactionFilter {
 public:
  TrimFilter(bool changes, absl::flat_hash_map<Oid, Lsn> points, Lsn floor)
      : changes_(changes), points_(std::move(points)), floor_(floor) {}
  const char* Name() const override { return "trickle.TrimFilter"; }
  bool Filter(int /*level*/, const rocksdb::Slice& key, const rocksdb::Slice& /*value*/,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    if (changes_) {
      std::optional<keys::ChangeKeyParts> parts = keys::ParseChangeKey(key.ToStringView());
      if (!parts) return false;  // never drop what is not understood
      auto it = points_.find(parts->relation);
      return it != points_.end() && parts->commit_lsn < it->second;
    }
    std::optional<Lsn> lsn = keys::ParseTransactionKey(key.ToStringView());
    return lsn && *lsn < floor_;
  }

 private:
  const bool changes_;  // the changes family; else the transactions family
  const absl::flat_hash_map<Oid, Lsn> points_;
  const Lsn floor_;
};

class TrimFilterFactory : public rocksdb::CompactionFilterFactory {
 public:
  TrimFilterFactory(bool changes, std::shared_ptr<DurableTrims> trims)
      : changes_(changes), trims_(std::move(trims)) {}
  const char* Name() const override { return "trickle.TrimFilterFactory"; }
  // Flushes too: at a low write rate most trimmed changes never leave the
  // memtable, and need not reach a file at all.
  bool ShouldFilterTableFileCreation(rocksdb::TableFileCreationReason reason) const override {
    return reason == rocksdb::TableFileCreationReason::kFlush ||
           reason == rocksdb::TableFileCreationReason::kCompaction;
  }
  std::unique_ptr<rocksdb::CompactionFilter> CreateCompactionFilter(
      const rocksdb::CompactionFilter::Context& /*context*/) override {
    absl::MutexLock lock(&trims_->mu);
    if (changes_ ? trims_->points.empty() : trims_->floor == 0) return nullptr;
    return std::make_unique<TrimFilter>(changes_, changes_ ? trims_->points
                                                           : absl::flat_hash_map<Oid, Lsn>(),
                                        trims_->floor);
  }

 private:
  const bool changes_;
  const std::shared_ptr<DurableTrims> trims_;
};

}  // namespace

std::shared_ptr<rocksdb::CompactionFilterFactory> NewTrimFilterFactory(
    bool changes, std::shared_ptr<DurableTrims> trims) {
  return std::make_shared<TrimFilterFactory>(changes, std::move(trims));
}

void RocksChangeLog::PublishDurableTrims(const absl::btree_map<Oid, Lsn>& points, Lsn floor) {
  absl::MutexLock lock(&durable_trims_->mu);
  durable_trims_->points.clear();
  for (const auto& [oid, point] : points) {
    if (point > 0) durable_trims_->points[oid] = point;
  }
  durable_trims_->floor = floor;
}

absl::Status RocksChangeLog::Trim(Oid relation, Lsn below) {
  // Trimming writes two small records, no range tombstones: the compaction
  // filter (TrimFilter) drops the trimmed keys once the new points are
  // durable, and readers start at the trim points meanwhile. A trim that
  // moves nothing writes nothing.
  auto plan = [&](Lsn* point, Lsn* old_floor, Lsn* new_floor, uint64_t* count) {
    absl::MutexLock lock(&mu_);
    auto it = trim_points_.find(relation);
    const bool known = it != trim_points_.end();
    *point = std::max(below, known ? it->second : Lsn{0});
    Lsn lowest = *point;
    for (const auto& [oid, p] : trim_points_) {
      if (oid != relation) lowest = std::min(lowest, p);
    }
    // Never above what is stored: a transaction committed later must not
    // fall below the floor.
    const Lsn hw = high_water_commit_;
    *new_floor = std::min(lowest, hw == UINT64_MAX ? hw : hw + 1);
    *old_floor = transactions_trimmed_below_;
    *count = transaction_count_;
    return known && it->second == *point && *new_floor <= *old_floor;  // nothing moves
  };
  Lsn point, old_floor, new_floor;
  uint64_t count;
  if (plan(&point, &old_floor, &new_floor, &count)) return absl::OkStatus();

  TRICKLE_RETURN_IF_ERROR(RecoverIfNeeded(absl::StrCat("trimming relation ", relation)));
  absl::MutexLock write_lock(&write_mu_);
  TRICKLE_ASSIGN_OR_RETURN(std::shared_ptr<Store> store, UseStore());
  // Again under write_mu_: commits (which move the high-water and the count)
  // and other trims hold it too.
  if (plan(&point, &old_floor, &new_floor, &count)) return absl::OkStatus();

  rocksdb::WriteBatch batch;
  batch.Put(store->meta, keys::TrimPointKey(relation), EncodeCount(point));
  if (new_floor > old_floor) {
    // Count the records that go, to keep the stored count exact. Records
    // below the old floor may still be stored (not compacted yet) and were
    // counted then; nothing is added to this range meanwhile (write_mu_).
    rocksdb::ReadOptions ro;
    std::string upper = keys::TransactionKey(new_floor);
    rocksdb::Slice upper_slice(upper);
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(store->db->NewIterator(ro, store->transactions));
    uint64_t removed = 0;
    for (it->Seek(keys::TransactionKey(old_floor)); it->Valid(); it->Next()) ++removed;
    if (!it->status().ok()) {
      return Error(it->status(), "count of transaction records to trim",
                   "retry; if it persists, check the storage");
    }
    count -= std::min(count, removed);
    batch.Put(store->meta, keys::MetaKey(keys::kTransactionCountName), EncodeCount(count));
    batch.Put(store->meta, keys::MetaKey(keys::kTrimFloorName), EncodeCount(new_floor));
  }
  rocksdb::Status s = Write(*store, &batch, write_options_);
  if (!s.ok()) {
    return Error(s, absl::StrCat("trim of relation ", relation, " below ", FormatLsn(below)),
                 "nothing was trimmed; free disk space or fix the I/O error, then retry");
  }
  absl::MutexLock lock(&mu_);
  trim_points_[relation] = point;
  if (new_floor > old_floor) {
    transactions_trimmed_below_ = new_floor;
    transaction_count_ = count;
  }
  trims_unsynced_ = true;
  return absl::OkStatus();
}

}  // namespace trickle::storage::internal
