// Opening the change log: column families and their options, loading the
// stored state, and deleting what a crash left uncommitted.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "storage/change_log_keys.h"
#include "storage/rocks_change_log.h"

namespace trickle::storage::internal {
namespace {

// Column families. "default" holds the small metadata (relation schemas,
// trim points, progress, high-water); the two bulk key spaces have their own
// LSM trees so that their range tombstones (Trim, abort) and compactions never
// touch the metadata's point reads, and so that Stats can size them apart.
constexpr char kChangesFamily[] = "changes";
constexpr char kTransactionsFamily[] = "transactions";

// Bumped when the byte format changes incompatibly; Open refuses other
// versions rather than misreading them. 2: change keys hold chunks.
constexpr char kFormatVersion[] = "2";

// The changes family is written once, read by refreshes soon after and then
// trimmed: the two upper levels, where recent changes live, are not
// compressed (Snappy was the largest CPU cost of a flush, and of the whole
// capture after the socket); data that outlives them (a backlog while
// refreshes are paused) is compressed with LZ4.
void SetChangesCompression(rocksdb::ColumnFamilyOptions* options) {
  options->compression_per_level.assign(options->num_levels, rocksdb::kLZ4Compression);
  options->compression_per_level[0] = rocksdb::kNoCompression;
  options->compression_per_level[1] = rocksdb::kNoCompression;
}

// Trimmed bytes go with the compactions that new writes cause; this bounds
// how long they can stay once writes stop (files older than this are
// compacted again). The trimmed families are small when refreshes keep up.
constexpr uint64_t kTrimmedFamiliesPeriodicCompactionSeconds = 6 * 3600;

}  // namespace

absl::StatusOr<std::shared_ptr<Store>> RocksChangeLog::OpenStore(bool read_only) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  if (options_.env != nullptr) db_options.env = options_.env;
  // Recovered WAL contents are written to (fsynced) L0 files at Open, so
  // whatever Open finds is durable and durable_lsn may start at the stored
  // high-water. Explicit because the durability argument rests on it.
  db_options.avoid_flush_during_recovery = false;
  // A torn tail after a crash holds only unsynced writes, which were never
  // reported durable: cut it and open.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  db_options.db_write_buffer_size = options_.memtable_bytes;
  // Bounds WAL growth when the small metadata family holds an old WAL alive.
  db_options.max_total_wal_size = 4 * options_.memtable_bytes;
  // Recovery from write errors is ours (TakeOverRecovery, RecoverIfNeeded):
  // no automatic resume of retryable I/O errors either.
  db_options.max_bgerror_resume_count = 0;
  db_options.listeners.push_back(NewTakeOverRecovery(&needs_recovery_));

  // Block checksums: XXH3 instead of the default CRC32C, which Debian's
  // RocksDB (built for baseline x86-64, without SSE4.2) computes bytewise.
  // Each file records its checksum type, so files of either kind read.
  rocksdb::BlockBasedTableOptions table_options;
  table_options.checksum = rocksdb::kXXH3;
  rocksdb::ColumnFamilyOptions meta_options;
  meta_options.write_buffer_size = std::max<size_t>(options_.memtable_bytes / 8, 1 << 20);
  meta_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table_options));
  rocksdb::ColumnFamilyOptions changes_options;
  changes_options.write_buffer_size = std::max<size_t>(options_.memtable_bytes / 4, 1 << 20);
  changes_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table_options));
  SetChangesCompression(&changes_options);
  changes_options.compaction_filter_factory =
      NewTrimFilterFactory(/*changes=*/true, durable_trims_);
  changes_options.periodic_compaction_seconds = kTrimmedFamiliesPeriodicCompactionSeconds;
  // ReadChanges looks up one transaction record per transaction it meets: a
  // bloom filter keeps those point reads cheap.
  rocksdb::ColumnFamilyOptions transactions_options;
  transactions_options.write_buffer_size = std::max<size_t>(options_.memtable_bytes / 8, 1 << 20);
  rocksdb::BlockBasedTableOptions transactions_table = table_options;
  transactions_table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  transactions_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(transactions_table));
  transactions_options.compaction_filter_factory =
      NewTrimFilterFactory(/*changes=*/false, durable_trims_);
  transactions_options.periodic_compaction_seconds = kTrimmedFamiliesPeriodicCompactionSeconds;

  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, meta_options},
      {kChangesFamily, changes_options},
      {kTransactionsFamily, transactions_options},
  };
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s =
      read_only ? rocksdb::DB::OpenForReadOnly(db_options, options_.path, families, &handles, &db)
                : rocksdb::DB::Open(db_options, options_.path, families, &handles, &db);
  if (!s.ok()) {
    return Error(s, read_only ? "read-only open" : "open",
                 "check that the directory exists or can be created, is writable, has free "
                 "space, and is not used by another trickle process");
  }
  auto store = std::make_shared<Store>();
  store->db.reset(db);
  store->meta = handles[0];
  store->changes = handles[1];
  store->transactions = handles[2];
  store->read_only = read_only;
  return store;
}

absl::Status RocksChangeLog::Open() {
  if (options_.path.empty()) {
    return absl::InvalidArgumentError("change log: ChangeLogOptions.path is empty");
  }
  if (options_.batch_bytes == 0 || options_.memtable_bytes == 0) {
    return Invalid(absl::StatusCode::kInvalidArgument,
                   "batch_bytes and memtable_bytes must be positive");
  }
  write_options_.sync = false;
  write_options_.disableWAL = false;
  TRICKLE_ASSIGN_OR_RETURN(std::shared_ptr<Store> store, OpenStore(/*read_only=*/false));
  {
    absl::MutexLock write_lock(&write_mu_);
    TRICKLE_RETURN_IF_ERROR(InitializeFrom(*store));
  }
  absl::MutexLock lock(&store_mu_);
  store_ = std::move(store);
  return absl::OkStatus();
}

absl::Status RocksChangeLog::InitializeFrom(Store& store) {
  TRICKLE_RETURN_IF_ERROR(LoadState(store));
  // Make whatever recovery found durable before reporting it as such.
  rocksdb::FlushOptions flush_options;
  flush_options.wait = true;
  flush_options.allow_write_stall = true;
  rocksdb::Status s = store.db->Flush(flush_options, store.families());
  if (!s.ok()) {
    return Error(s, "flush of recovered data at open",
                 "free disk space or fix the I/O error, then retry");
  }
  TRICKLE_RETURN_IF_ERROR(DeleteUncommittedAboveHighWater(store));
  s = SyncWal(store);
  if (!s.ok()) {
    return Error(s, "sync at open", "free disk space or fix the I/O error, then retry");
  }
  absl::btree_map<Oid, Lsn> points;
  Lsn floor;
  {
    absl::MutexLock lock(&mu_);
    durable_lsn_ = high_water_end_;
    last_committed_end_ = high_water_end_;
    trims_unsynced_ = false;
    points = trim_points_;
    floor = transactions_trimmed_below_;
  }
  PublishDurableTrims(points, floor);  // what was loaded is on disk
  return absl::OkStatus();
}

absl::Status RocksChangeLog::LoadState(Store& store) {
  rocksdb::ReadOptions ro;
  std::string value;

  rocksdb::Status s = store.db->Get(ro, store.meta, keys::MetaKey(keys::kFormatVersionName), &value);
  if (s.IsNotFound()) {
    if (!store.read_only) {
      rocksdb::WriteBatch batch;
      batch.Put(store.meta, keys::MetaKey(keys::kFormatVersionName), kFormatVersion);
      s = Write(store, &batch, write_options_);
      if (!s.ok()) {
        return Error(s, "write of the format version",
                     "free disk space or fix the I/O error, then retry");
      }
    }
  } else if (!s.ok()) {
    return Error(s, "read of the format version", "check the storage, then retry");
  } else if (value != kFormatVersion) {
    return Invalid(absl::StatusCode::kFailedPrecondition,
                   absl::StrCat("format version \"", value, "\" is not the supported \"",
                                kFormatVersion,
                                "\"; run the matching trickle version, or delete the directory "
                                "(stream tables then take a FULL refresh)"));
  }

  Lsn hw_commit = 0, hw_end = 0;
  s = store.db->Get(ro, store.meta, keys::MetaKey(keys::kHighWaterName), &value);
  if (s.ok()) {
    if (!keys::DecodeHighWater(value, &hw_commit, &hw_end)) {
      return Invalid(absl::StatusCode::kDataLoss, "the high-water record is malformed");
    }
  } else if (!s.IsNotFound()) {
    return Error(s, "read of the high-water", "check the storage, then retry");
  }

  uint64_t count = 0;
  s = store.db->Get(ro, store.meta, keys::MetaKey(keys::kTransactionCountName), &value);
  if (s.ok()) {
    if (value.size() != 8) {
      return Invalid(absl::StatusCode::kDataLoss, "the transaction count record is malformed");
    }
    count = keys::GetBigEndian64(value);
  } else if (!s.IsNotFound()) {
    return Error(s, "read of the transaction count", "check the storage, then retry");
  }

  std::optional<Lsn> stored_floor;
  s = store.db->Get(ro, store.meta, keys::MetaKey(keys::kTrimFloorName), &value);
  if (s.ok()) {
    if (value.size() != 8) {
      return Invalid(absl::StatusCode::kDataLoss, "the trim floor record is malformed");
    }
    stored_floor = keys::GetBigEndian64(value);
  } else if (!s.IsNotFound()) {
    return Error(s, "read of the trim floor", "check the storage, then retry");
  }

  absl::btree_map<Oid, RelationSchema> relations;
  absl::btree_map<Oid, Lsn> trim_points;
  std::unique_ptr<rocksdb::Iterator> it(store.db->NewIterator(ro, store.meta));
  for (it->Seek(std::string(1, keys::kRelationTag));
       it->Valid() && it->key()[0] == keys::kRelationTag; it->Next()) {
    RelationSchema schema;
    if (!keys::ParseRelationKey(it->key().ToStringView()) ||
        !schema.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Invalid(absl::StatusCode::kDataLoss, "a relation schema record is malformed");
    }
    // Keys are in (oid, version) order: the last one per oid is the latest.
    relations[schema.relation_oid()] = std::move(schema);
  }
  for (it->Seek(std::string(1, keys::kTrimPointTag));
       it->Valid() && it->key()[0] == keys::kTrimPointTag; it->Next()) {
    std::optional<uint32_t> oid = keys::ParseTrimPointKey(it->key().ToStringView());
    if (!oid || it->value().size() != 8) {
      return Invalid(absl::StatusCode::kDataLoss, "a trim point record is malformed");
    }
    trim_points[*oid] = keys::GetBigEndian64(it->value().ToStringView());
  }
  if (!it->status().ok()) {
    return Error(it->status(), "read of metadata", "check the storage, then retry");
  }

  absl::MutexLock lock(&mu_);
  high_water_commit_ = hw_commit;
  high_water_end_ = hw_end;
  transaction_count_ = count;
  latest_relations_ = std::move(relations);
  trim_points_ = std::move(trim_points);
  if (stored_floor) {
    transactions_trimmed_below_ = *stored_floor;
  } else {
    // Written before the floor was stored: trims deleted the records below
    // the lowest trim point.
    Lsn floor = 0;
    if (!trim_points_.empty()) {
      floor = UINT64_MAX;
      for (const auto& [oid, point] : trim_points_) floor = std::min(floor, point);
    }
    transactions_trimmed_below_ = std::min(floor, hw_commit == UINT64_MAX ? hw_commit : hw_commit + 1);
  }
  return absl::OkStatus();
}

// The log holds nothing uncommitted after Open: rows above the high-water are
// from a transaction that crashed before its commit record. One seek per
// relation finds them; relations are skipped over with a seek to the next oid.
absl::Status RocksChangeLog::DeleteUncommittedAboveHighWater(Store& store) {
  Lsn hw = high_water_lsn();
  if (hw == UINT64_MAX) return absl::OkStatus();
  rocksdb::WriteBatch batch;
  std::unique_ptr<rocksdb::Iterator> it(store.db->NewIterator(rocksdb::ReadOptions(), store.changes));
  it->Seek(std::string(1, keys::kChangeTag));
  while (it->Valid()) {
    std::optional<keys::ChangeKeyParts> parts = keys::ParseChangeKey(it->key().ToStringView());
    if (!parts) return Invalid(absl::StatusCode::kDataLoss, "a change key is malformed");
    std::string end = keys::ChangeKeyRelationEnd(parts->relation);
    std::string above = keys::ChangeKeyLowerBound(parts->relation, hw + 1);
    it->Seek(above);
    if (it->Valid() && it->key().compare(end) < 0) {
      batch.DeleteRange(store.changes, above, end);
    }
    if (parts->relation == UINT32_MAX) break;
    it->Seek(end);
  }
  if (!it->status().ok()) {
    return Error(it->status(), "scan for uncommitted changes at open",
                 "check the storage, then retry");
  }
  if (batch.Count() == 0) return absl::OkStatus();
  rocksdb::Status s = Write(store, &batch, write_options_);
  if (!s.ok()) {
    return Error(s, absl::StrCat("delete of uncommitted changes above ", FormatLsn(hw)),
                 "free disk space or fix the I/O error, then retry");
  }
  return absl::OkStatus();
}

}  // namespace trickle::storage::internal
