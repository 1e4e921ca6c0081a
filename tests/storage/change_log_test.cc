// The change log against a real RocksDB in a temporary directory.
#include "storage/change_log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/change_encoding.h"
#include "storage/change_log_keys.h"
#include "tests/storage/change_log_test_util.h"

namespace trickle::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using testing::CountRawChangeRows;
using testing::Delete;
using testing::Insert;
using testing::ReadAll;
using testing::SeenChange;
using testing::TempDir;
using testing::WriteTransaction;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

constexpr Oid kOrders = 16384;
constexpr Oid kItems = 16390;

class ChangeLogTest : public ::testing::Test {
 protected:
  std::unique_ptr<ChangeLog> OpenLog(size_t batch_bytes = 4 << 20) {
    ChangeLogOptions options;
    options.path = dir_.path();
    options.batch_bytes = batch_bytes;
    auto log = ChangeLog::Open(options);
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? std::move(*log) : nullptr;
  }

  TempDir dir_;
};

SeenChange Ins(Lsn lsn, uint32_t seq, std::string value) {
  return {lsn, seq, ChangeRecord::INSERT, std::move(value)};
}

TEST_F(ChangeLogTest, EmptyLog) {
  auto log = OpenLog();
  EXPECT_EQ(log->high_water_lsn(), 0u);
  EXPECT_EQ(log->durable_lsn(), 0u);
  EXPECT_THAT(ReadAll(*log, kOrders), IsEmpty());
  auto txns = log->ReadTransactions(0, UINT64_MAX);
  ASSERT_TRUE(txns.ok());
  EXPECT_THAT(*txns, IsEmpty());
  ChangeLogStats stats = log->Stats();
  EXPECT_EQ(stats.transaction_count, 0u);
  EXPECT_EQ(stats.oldest_commit_lsn, 0u);
  EXPECT_EQ(stats.newest_commit_lsn, 0u);
}

TEST_F(ChangeLogTest, ReadsOneRelationInCommitOrderAcrossTransactions) {
  auto log = OpenLog();
  ASSERT_TRUE(WriteTransaction(*log, 0x100, {{kOrders, "o1"}, {kItems, "i1"}, {kOrders, "o2"}}).ok());
  ASSERT_TRUE(WriteTransaction(*log, 0x200, {{kItems, "i2"}}).ok());
  ASSERT_TRUE(WriteTransaction(*log, 0x300, {{kOrders, "o3"}, {kOrders, "o4"}}).ok());

  // Sequence numbers count every change of the transaction, across relations.
  EXPECT_THAT(ReadAll(*log, kOrders),
              ElementsAre(Ins(0x100, 0, "o1"), Ins(0x100, 2, "o2"), Ins(0x300, 0, "o3"),
                          Ins(0x300, 1, "o4")));
  EXPECT_THAT(ReadAll(*log, kItems), ElementsAre(Ins(0x100, 1, "i1"), Ins(0x200, 0, "i2")));
  // [from, to) on commit LSN.
  EXPECT_THAT(ReadAll(*log, kOrders, 0x100, 0x300), ElementsAre(Ins(0x100, 0, "o1"), Ins(0x100, 2, "o2")));
  EXPECT_THAT(ReadAll(*log, kOrders, 0x101, 0x301), ElementsAre(Ins(0x300, 0, "o3"), Ins(0x300, 1, "o4")));
  EXPECT_THAT(ReadAll(*log, kOrders, 0x300, 0x300), IsEmpty());
  EXPECT_THAT(ReadAll(*log, 99999), IsEmpty());

  auto txns = log->ReadTransactions(0, UINT64_MAX);
  ASSERT_TRUE(txns.ok()) << txns.status();
  ASSERT_THAT(*txns, SizeIs(3));
  EXPECT_EQ((*txns)[0].commit_lsn(), 0x100u);
  EXPECT_EQ((*txns)[0].end_lsn(), 0x108u);
  EXPECT_EQ((*txns)[0].xid(), 1000u + 0x100);
  EXPECT_EQ((*txns)[0].change_count(), 3u);
  EXPECT_THAT((*txns)[0].relation_oids(), ElementsAre(kOrders, kItems));
  EXPECT_EQ((*txns)[1].commit_lsn(), 0x200u);
  EXPECT_THAT((*txns)[1].relation_oids(), ElementsAre(kItems));
  EXPECT_EQ((*txns)[2].commit_lsn(), 0x300u);

  auto middle = log->ReadTransactions(0x200, 0x300);
  ASSERT_TRUE(middle.ok());
  ASSERT_THAT(*middle, SizeIs(1));
  EXPECT_EQ((*middle)[0].commit_lsn(), 0x200u);
  EXPECT_EQ(log->high_water_lsn(), 0x300u);
}

TEST_F(ChangeLogTest, ChunksKeepEachRelationsChangesInOrderAcrossChunkAndBatchCuts) {
  // Tiny chunks and batches: each relation's changes are cut into many
  // chunks, and batches are written while other relations' chunks are open.
  ChangeLogOptions options;
  options.path = dir_.path();
  options.chunk_bytes = 40;
  options.batch_bytes = 300;
  auto opened = ChangeLog::Open(options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  ChangeLog& log = **opened;
  std::vector<std::pair<Oid, std::string>> changes;
  std::vector<SeenChange> orders, items;
  for (uint32_t seq = 0; seq < 200; ++seq) {
    // orders, items, orders, orders, items, ...: runs of different lengths.
    Oid relation = (seq % 3 == 1) ? kItems : kOrders;
    std::string value = absl::StrCat(relation == kOrders ? "o" : "i", seq);
    changes.push_back({relation, value});
    (relation == kOrders ? orders : items).push_back(Ins(0x100, seq, value));
  }
  ASSERT_TRUE(WriteTransaction(log, 0x100, changes).ok());
  ASSERT_TRUE(WriteTransaction(log, 0x200, {{kItems, "last"}}).ok());
  items.push_back(Ins(0x200, 0, "last"));
  EXPECT_EQ(ReadAll(log, kOrders), orders);
  EXPECT_EQ(ReadAll(log, kItems), items);
  EXPECT_EQ(ReadAll(log, kItems, 0x101), std::vector<SeenChange>{Ins(0x200, 0, "last")});
  opened->reset();
  // Several changes per key, several keys per relation.
  EXPECT_EQ(CountRawChangeRows(dir_.path()), 201u);
}

TEST_F(ChangeLogTest, ReaderSeesTransactionRecordAndChangePayload) {
  auto log = OpenLog();
  ASSERT_TRUE(log->BeginTransaction(0x500, 77, 123456).value());
  ChangeRecord update;
  update.set_op(ChangeRecord::UPDATE);
  update.set_schema_version(3);
  update.add_old_values()->set_kind(v1::Datum::NULL_);
  auto* nv = update.add_new_values();
  nv->set_kind(v1::Datum::BINARY);
  nv->set_value(std::string("\0\1\2", 3));
  ASSERT_TRUE(log->Append(kOrders, update).ok());
  ASSERT_TRUE(log->AddFenceToken("fence-1").ok());
  ASSERT_TRUE(log->CommitTransaction(0x540).ok());

  int calls = 0;
  ASSERT_TRUE(log->ReadChanges(kOrders, 0, UINT64_MAX, [&](const LoggedChange& c) {
                  ++calls;
                  EXPECT_EQ(c.transaction->xid(), 77u);
                  EXPECT_EQ(c.transaction->commit_time(), 123456);
                  EXPECT_EQ(c.transaction->end_lsn(), 0x540u);
                  EXPECT_THAT(c.transaction->fence_tokens(), ElementsAre("fence-1"));
                  EXPECT_EQ(c.sequence, 0u);
                  EXPECT_EQ(c.change->SerializeAsString(), update.SerializeAsString());
                  return absl::OkStatus();
                }).ok());
  EXPECT_EQ(calls, 1);
}

TEST_F(ChangeLogTest, ReadChangesStopsAtCallbackError) {
  auto log = OpenLog();
  ASSERT_TRUE(WriteTransaction(*log, 0x100, {{kOrders, "a"}, {kOrders, "b"}, {kOrders, "c"}}).ok());
  int calls = 0;
  absl::Status s = log->ReadChanges(kOrders, 0, UINT64_MAX, [&](const LoggedChange&) {
    return ++calls == 2 ? absl::CancelledError("enough") : absl::OkStatus();
  });
  EXPECT_EQ(s, absl::CancelledError("enough"));
  EXPECT_EQ(calls, 2);
}

TEST_F(ChangeLogTest, ChangesAreInvisibleUntilCommit) {
  // Tiny batches: the rows reach RocksDB long before the commit record.
  auto log = OpenLog(/*batch_bytes=*/64);
  ASSERT_TRUE(WriteTransaction(*log, 0x100, {{kOrders, "before"}}).ok());
  ASSERT_TRUE(log->BeginTransaction(0x200, 1, 0).value());
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(log->Append(kOrders, Insert(absl::StrCat("r", i))).ok());
  EXPECT_THAT(ReadAll(*log, kOrders), ElementsAre(Ins(0x100, 0, "before")));
  auto txns = log->ReadTransactions(0, UINT64_MAX);
  ASSERT_TRUE(txns.ok());
  EXPECT_THAT(*txns, SizeIs(1));
  EXPECT_EQ(log->high_water_lsn(), 0x100u);

  ASSERT_TRUE(log->CommitTransaction(0x208).ok());
  EXPECT_THAT(ReadAll(*log, kOrders), SizeIs(51));
  EXPECT_EQ(log->high_water_lsn(), 0x200u);
}

TEST_F(ChangeLogTest, AbortDeletesWrittenRowsAndTheTransactionCanArriveAgain) {
  auto log = OpenLog(/*batch_bytes=*/64);
  ASSERT_TRUE(log->BeginTransaction(0x200, 1, 0).value());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(log->Append(i % 2 ? kOrders : kItems, Insert(absl::StrCat("first", i))).ok());
  }
  ASSERT_TRUE(log->AbortTransaction().ok());
  EXPECT_THAT(ReadAll(*log, kOrders), IsEmpty());
  EXPECT_EQ(log->high_water_lsn(), 0u);

  // Received again after the reconnect, this time touching one relation only
  // (a replay that differs must not meet the first attempt's rows).
  ASSERT_TRUE(log->BeginTransaction(0x200, 1, 0).value());
  ASSERT_TRUE(log->Append(kOrders, Insert("second")).ok());
  ASSERT_TRUE(log->CommitTransaction(0x208).ok());
  EXPECT_THAT(ReadAll(*log, kOrders), ElementsAre(Ins(0x200, 0, "second")));
  EXPECT_THAT(ReadAll(*log, kItems), IsEmpty());
  log.reset();
  EXPECT_EQ(CountRawChangeRows(dir_.path()), 1u);
}

TEST_F(ChangeLogTest, BeginWhileOpenAbortsTheOpenTransaction) {
  auto log = OpenLog(/*batch_bytes=*/64);
  ASSERT_TRUE(log->BeginTransaction(0x200, 1, 0).value());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(log->Append(kOrders, Insert("x")).ok());
  // The stream restarted: the same transaction arrives again.
  ASSERT_TRUE(log->BeginTransaction(0x200, 1, 0).value());
  ASSERT_TRUE(log->Append(kOrders, Insert("y")).ok());
  ASSERT_TRUE(log->CommitTransaction(0x208).ok());
  EXPECT_THAT(ReadAll(*log, kOrders), ElementsAre(Ins(0x200, 0, "y")));
}

TEST_F(ChangeLogTest, ReplayedTransactionsAreStoredOnce) {
  auto log = OpenLog();
  ASSERT_TRUE(WriteTransaction(*log, 0x100, {{kOrders, "a"}}).ok());
  ASSERT_TRUE(WriteTransaction(*log, 0x200, {{kOrders, "b"}}).ok());
  ASSERT_TRUE(log->Sync().ok());

  // The reconnect decodes from the slot's restart_lsn again.
  for (Lsn lsn : {0x100, 0x200}) {
    auto fresh = log->BeginTransaction(lsn, 1, 0);
    ASSERT_TRUE(fresh.ok());
    EXPECT_FALSE(*fresh);
    // The capture may pass the skipped transaction's changes on: no-ops.
    EXPECT_TRUE(log->Append(kOrders, Insert("dup")).ok());
    EXPECT_TRUE(log->AddFenceToken("dup").ok());
    EXPECT_TRUE(log->CommitTransaction(lsn + 8).ok());
  }
  ASSERT_TRUE(WriteTransaction(*log, 0x300, {{kOrders, "c"}}).ok());
  EXPECT_THAT(ReadAll(*log, kOrders),
              ElementsAre(Ins(0x100, 0, "a"), Ins(0x200, 0, "b"), Ins(0x300, 0, "c")));
  EXPECT_EQ(log->Stats().transaction_count, 3u);

  // The high-water survives a restart.
  log.reset();
  log = OpenLog();
  EXPECT_EQ(log->high_water_lsn(), 0x300u);
  EXPECT_FALSE(log->BeginTransaction(0x300, 1, 0).value());
  ASSERT_TRUE(log->CommitTransaction(0x308).ok());
  EXPECT_TRUE(log->BeginTransaction(0x301, 1, 0).value());
  ASSERT_TRUE(log->AbortTransaction().ok());
  EXPECT_THAT(ReadAll(*log, kOrders), SizeIs(3));
}

TEST_F(ChangeLogTest, SyncAdvancesDurableLsnToTheLastCommittedEnd) {
  auto log = OpenLog();
  ASSERT_TRUE(WriteTransaction(*log, 0x100, {{kOrders, "a"}}).ok());
  EXPECT_EQ(log->durable_lsn(), 0u);  // committed, not synced
  EXPECT_EQ(log->Stats().durable_lsn, 0u);
  ASSERT_TRUE(log->Sync().ok());
  EXPECT_EQ(log->durable_lsn(), 0x108u);

  ASSERT_TRUE(WriteTransaction(*log, 0x200, {{kOrders, "b"}}).ok());
  // An open transaction does not count.
  ASSERT_TRUE(log->BeginTransaction(0x300, 1, 0).value());
  ASSERT_TRUE(log->Append(kOrders, Insert("c")).ok());
  EXPECT_EQ(log->durable_lsn(), 0x108u);
  ASSERT_TRUE(log->Sync().ok());
  EXPECT_EQ(log->durable_lsn(), 0x208u);
  ASSERT_TRUE(log->CommitTransaction(0x308).ok());
  ASSERT_TRUE(log->Sync().ok());
  EXPECT_EQ(log->durable_lsn(), 0x308u);
  ASSERT_TRUE(log->Sync().ok());  // nothing new: a no-op
  EXPECT_EQ(log->durable_lsn(), 0x308u);

  // Skipped transactions move nothing.
  EXPECT_FALSE(log->BeginTransaction(0x200, 1, 0).value());
  ASSERT_TRUE(log->CommitTransaction(0x208).ok());
  ASSERT_TRUE(log->Sync().ok());
  EXPECT_EQ(log->durable_lsn(), 0x308u);

  // After a restart what is stored is durable.
  log.reset();
  log = OpenLog();
  EXPECT_EQ(log->durable_lsn(), 0x308u);
  EXPECT_EQ(log->high_water_lsn(), 0x300u);
}

TEST_F(ChangeLogTest, CloseMidTransactionLeavesNothingAndReopenDeletesTheRows) {
  {
    auto log = OpenLog(/*batch_bytes=*/128);
    ASSERT_TRUE(WriteTransaction(*log, 0x100, {{kOrders, "kept"}, {kItems, "kept"}}).ok());
    ASSERT_TRUE(log->BeginTransaction(0x200, 1, 0).value());
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(log->Append(i % 3 ? kOrders : kItems, Insert(absl::StrCat("lost", i))).ok());
    }
    EXPECT_EQ(log->Stats().peak_staged_bytes > 0, true);
    // Destroyed without commit or abort, as a crash would.
  }
  EXPECT_GT(CountRawChangeRows(dir_.path(), std::nullopt, 0x200), 50u);
  {
    auto log = OpenLog();
    EXPECT_EQ(log->high_water_lsn(), 0x100u);
    EXPECT_THAT(ReadAll(*log, kOrders), ElementsAre(Ins(0x100, 0, "kept")));
    EXPECT_THAT(ReadAll(*log, kItems), ElementsAre(Ins(0x100, 1, "kept")));
  }
  EXPECT_EQ(CountRawChangeRows(dir_.path(), std::nullopt, 0x101), 0u);
  EXPECT_EQ(CountRawChangeRows(dir_.path()), 2u);
}

TEST_F(ChangeLogTest, ReadChangesSkipsRowsWithoutCommitRecord) {
  // Rows left below the high-water without a commit record (an abort whose
  // delete never ran, before a later commit) stay invisible.
  {
    ChangeLogOptions options;
    options.path = dir_.path();
    auto log = ChangeLog::Open(options);
    ASSERT_TRUE(log.ok());
  }
  {
    // Plant rows of a transaction 0x150 that was never committed.
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, {}}, {"changes", {}}, {"transactions", {}}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir_.path(), families, &handles, &raw).ok());
    auto chunk_of = [](uint32_t seq, const std::string& value) {
      ChangeChunkBuilder chunk;
      chunk.Add(seq, Insert(value).SerializeAsString());
      return chunk.Head() + chunk.body();
    };
    ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), handles[1], keys::ChangeKey(kOrders, 0x150, 0),
                         chunk_of(0, "ghost"))
                    .ok());
    ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), handles[1], keys::ChangeKey(kOrders, 0x200, 7),
                         chunk_of(7, "stale"))
                    .ok());
    for (auto* h : handles) ASSERT_TRUE(raw->DestroyColumnFamilyHandle(h).ok());
    delete raw;
  }
  auto log = OpenLog();
  ASSERT_TRUE(WriteTransaction(*log, 0x100, {{kOrders, "a"}}).ok());
  ASSERT_TRUE(WriteTransaction(*log, 0x200, {{kOrders, "b"}}).ok());
  // 0x150 has no commit record; 0x200 #7 is past the commit's change count.
  EXPECT_THAT(ReadAll(*log, kOrders), ElementsAre(Ins(0x100, 0, "a"), Ins(0x200, 0, "b")));
}

TEST_F(ChangeLogTest, RelationSchemaVersions) {
  auto log = OpenLog();
  RelationSchema orders;
  orders.set_relation_oid(kOrders);
  orders.set_namespace_name("public");
  orders.set_relation_name("orders");
  orders.set_replica_identity("f");
  auto* id = orders.add_columns();
  id->set_name("id");
  id->set_type_oid(23);
  id->set_type_modifier(-1);
  id->set_is_key(true);

  ASSERT_TRUE(log->BeginTransaction(0x100, 1, 0).value());
  auto v = log->RecordRelation(orders);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 1u);
  EXPECT_EQ(log->RecordRelation(orders).value(), 1u);  // the usual resend
  ASSERT_TRUE(log->Append(kOrders, Insert("a", 1)).ok());
  ASSERT_TRUE(log->CommitTransaction(0x108).ok());

  RelationSchema altered = orders;
  auto* note = altered.add_columns();
  note->set_name("note");
  note->set_type_oid(25);
  note->set_type_modifier(-1);
  altered.set_version(42);  // ignored: the log numbers versions
  ASSERT_TRUE(log->BeginTransaction(0x200, 1, 0).value());
  EXPECT_EQ(log->RecordRelation(altered).value(), 2u);
  ASSERT_TRUE(log->CommitTransaction(0x208).ok());

  auto v1 = log->GetRelation(kOrders, 1);
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(v1->columns_size(), 1);
  EXPECT_EQ(v1->first_seen_lsn(), 0x100u);
  auto v2 = log->GetRelation(kOrders, 2);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->columns_size(), 2);
  EXPECT_EQ(v2->version(), 2u);
  EXPECT_EQ(v2->first_seen_lsn(), 0x200u);
  auto missing = log->GetRelation(kOrders, 3);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("relation 16384 has no schema version 3"));

  // A replay of an old transaction carries the old schema: its version is
  // found again rather than a third one minted.
  EXPECT_FALSE(log->BeginTransaction(0x100, 1, 0).value());
  EXPECT_EQ(log->RecordRelation(orders).value(), 1u);
  ASSERT_TRUE(log->CommitTransaction(0x108).ok());
  EXPECT_FALSE(log->BeginTransaction(0x200, 1, 0).value());
  EXPECT_EQ(log->RecordRelation(altered).value(), 2u);
  ASSERT_TRUE(log->CommitTransaction(0x208).ok());

  RelationSchema items;
  items.set_relation_oid(kItems);
  items.set_namespace_name("public");
  items.set_relation_name("items");
  EXPECT_EQ(log->RecordRelation(items).value(), 1u);

  log.reset();
  log = OpenLog();
  auto latest = log->LatestRelations();
  ASSERT_TRUE(latest.ok());
  ASSERT_THAT(*latest, SizeIs(2));
  EXPECT_EQ((*latest)[0].relation_oid(), kOrders);
  EXPECT_EQ((*latest)[0].version(), 2u);
  EXPECT_EQ((*latest)[1].relation_oid(), kItems);
  EXPECT_EQ((*latest)[1].version(), 1u);
  EXPECT_EQ(log->RecordRelation(altered).value(), 2u);
  EXPECT_EQ(log->RecordRelation(orders).value(), 3u);  // changed back: a new version

  RelationSchema nameless;
  EXPECT_EQ(log->RecordRelation(nameless).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ChangeLogTest, TrimDeletesChangesAndTransactionRecordsBelowTheLowestPoint) {
  auto log = OpenLog();
  ASSERT_TRUE(WriteTransaction(*log, 0x100, {{kOrders, "o1"}, {kItems, "i1"}}).ok());
  ASSERT_TRUE(WriteTransaction(*log, 0x200, {{kOrders, "o2"}}).ok());
  ASSERT_TRUE(WriteTransaction(*log, 0x300, {{kItems, "i3"}}).ok());
  ASSERT_TRUE(WriteTransaction(*log, 0x400, {}).ok());  // e.g. a fence
  EXPECT_EQ(log->Stats().transaction_count, 4u);
  EXPECT_EQ(log->Stats().oldest_commit_lsn, 0x100u);

  ASSERT_TRUE(log->Trim(kOrders, 0x200).ok());
  EXPECT_THAT(ReadAll(*log, kOrders), ElementsAre(Ins(0x200, 0, "o2")));
  EXPECT_THAT(ReadAll(*log, kItems), SizeIs(2));
  // kItems still needs 0x100's commit record.
  EXPECT_THAT(log->ReadTransactions(0, UINT64_MAX).value(), SizeIs(4));

  ASSERT_TRUE(log->Trim(kItems, 0x300).ok());
  EXPECT_THAT(ReadAll(*log, kItems), ElementsAre(Ins(0x300, 0, "i3")));
  auto txns = log->ReadTransactions(0, UINT64_MAX);
  ASSERT_TRUE(txns.ok());
  ASSERT_THAT(*txns, SizeIs(3));  // below min(0x200, 0x300) gone
  EXPECT_EQ((*txns)[0].commit_lsn(), 0x200u);
  ChangeLogStats stats = log->Stats();
  EXPECT_EQ(stats.transaction_count, 3u);
  EXPECT_EQ(stats.oldest_commit_lsn, 0x200u);
  EXPECT_EQ(stats.newest_commit_lsn, 0x400u);

  // Trim points never move back.
  ASSERT_TRUE(log->Trim(kOrders, 0x100).ok());
  EXPECT_THAT(ReadAll(*log, kOrders), ElementsAre(Ins(0x200, 0, "o2")));

  // A relation seen later joins the set at trim point 0 and holds records.
  ASSERT_TRUE(WriteTransaction(*log, 0x500, {{99, "new"}}).ok());
  ASSERT_TRUE(log->Trim(kOrders, 0x600).ok());
  ASSERT_TRUE(log->Trim(kItems, 0x600).ok());
  EXPECT_THAT(log->ReadTransactions(0, UINT64_MAX).value(), SizeIs(4));  // 0x200.. 0x500
  ASSERT_TRUE(log->Trim(99, UINT64_MAX).ok());
  EXPECT_THAT(log->ReadTransactions(0, UINT64_MAX).value(), IsEmpty());
  EXPECT_EQ(log->Stats().transaction_count, 0u);
  EXPECT_THAT(ReadAll(*log, kOrders), IsEmpty());

  // The trim points and the count survive a restart.
  ASSERT_TRUE(WriteTransaction(*log, 0x700, {{kOrders, "o7"}}).ok());
  log.reset();
  log = OpenLog();
  EXPECT_EQ(log->Stats().transaction_count, 1u);
  ASSERT_TRUE(log->Trim(kOrders, 0x800).ok());
  EXPECT_THAT(ReadAll(*log, kOrders), IsEmpty());
  EXPECT_EQ(log->Stats().transaction_count, 1u);  // kItems is trimmed to 0x600 only
  ASSERT_TRUE(log->Trim(kItems, 0x800).ok());
  EXPECT_EQ(log->Stats().transaction_count, 0u);
}

// The refresh engine trims after its refreshes, many times a second. Each
// trim used to write RocksDB range tombstones, which piled up in the memtable
// at low write rates; every new iterator re-fragmented all of them, so reads
// (and the latency of every refresh) grew with the run. Trims now write no
// tombstones, and the trimmed changes leave when RocksDB writes a file.
TEST_F(ChangeLogTest, TrimWritesNoRangeTombstonesAndFlushesDropTrimmedChanges) {
  ChangeLogOptions options;
  options.path = dir_.path();
  options.memtable_bytes = 4 << 20;  // a 1 MiB changes memtable: several flushes below
  auto opened = ChangeLog::Open(options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::unique_ptr<ChangeLog> log = std::move(*opened);
  const std::string row(1000, 'r');
  Lsn last = 0;
  for (int i = 0; i < 800; ++i) {  // 8 MB of changes
    last = 0x1000 + static_cast<Lsn>(i) * 0x100;
    std::vector<std::pair<Oid, std::string>> changes(10, {kOrders, row});
    changes.push_back({kItems, "i"});
    ASSERT_TRUE(WriteTransaction(*log, last, changes).ok());
    // As the refresh engine does: every source below its reader's frontier.
    ASSERT_TRUE(log->Trim(kOrders, last).ok());
    ASSERT_TRUE(log->Trim(kItems, last).ok());
    ASSERT_TRUE(log->Trim(kItems, last - 0x100).ok());  // never moves back
    ASSERT_TRUE(log->Sync().ok());
  }
  EXPECT_THAT(ReadAll(*log, kOrders), SizeIs(10));
  EXPECT_THAT(ReadAll(*log, kItems), ElementsAre(Ins(last, 10, "i")));
  ChangeLogStats stats = log->Stats();
  EXPECT_EQ(stats.transaction_count, 1u);
  EXPECT_EQ(stats.oldest_commit_lsn, last);
  EXPECT_THAT(log->ReadTransactions(0, UINT64_MAX).value(), SizeIs(1));
  // 8 MB went through; what is left is at most the memtables (the active one
  // and one being flushed) and nearly empty files.
  EXPECT_LT(stats.approximate_bytes, 3u << 20);

  // Trim points, floor and count survive a restart.
  log.reset();
  opened = ChangeLog::Open(options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  log = std::move(*opened);
  EXPECT_THAT(ReadAll(*log, kOrders), SizeIs(10));
  EXPECT_EQ(log->Stats().transaction_count, 1u);
  EXPECT_EQ(log->Stats().oldest_commit_lsn, last);
  ASSERT_TRUE(WriteTransaction(*log, last + 0x100, {{kOrders, "next"}}).ok());
  ASSERT_TRUE(log->Trim(kOrders, last + 0x100).ok());
  EXPECT_THAT(ReadAll(*log, kOrders), ElementsAre(Ins(last + 0x100, 0, "next")));
  EXPECT_EQ(log->Stats().transaction_count, 2u);  // kItems still needs `last`
  log.reset();
  EXPECT_EQ(testing::CountRawRangeTombstones(dir_.path()), 0u);
}

TEST_F(ChangeLogTest, StatsReportSizesAndPositions) {
  auto log = OpenLog();
  for (Lsn lsn = 0x1000; lsn < 0x1000 + 50 * 0x10; lsn += 0x10) {
    std::vector<std::pair<Oid, std::string>> changes;
    for (int i = 0; i < 20; ++i) changes.push_back({kOrders, std::string(100, 'x')});
    ASSERT_TRUE(WriteTransaction(*log, lsn, changes).ok());
  }
  ASSERT_TRUE(log->Sync().ok());
  ChangeLogStats stats = log->Stats();
  EXPECT_GT(stats.approximate_bytes, 50u * 20 * 100);
  EXPECT_EQ(stats.transaction_count, 50u);
  EXPECT_EQ(stats.oldest_commit_lsn, 0x1000u);
  EXPECT_EQ(stats.newest_commit_lsn, 0x1000u + 49 * 0x10);
  EXPECT_EQ(stats.durable_lsn, 0x1000u + 49 * 0x10 + 8);
  EXPECT_EQ(stats.staged_bytes, 0u);
  EXPECT_GT(stats.peak_staged_bytes, 20u * 100);
}

TEST_F(ChangeLogTest, ProgressKeys) {
  auto log = OpenLog();
  auto missing = log->GetProgress("slot.confirmed");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  ASSERT_TRUE(log->PutProgress("slot.confirmed", "0/16B3748").ok());
  ASSERT_TRUE(log->PutProgress("other", std::string("\0bin", 4)).ok());
  ASSERT_TRUE(log->PutProgress("slot.confirmed", "0/16B3800").ok());
  log.reset();
  log = OpenLog();
  EXPECT_EQ(log->GetProgress("slot.confirmed").value(), "0/16B3800");
  EXPECT_EQ(log->GetProgress("other").value(), std::string("\0bin", 4));
}

TEST_F(ChangeLogTest, MisuseIsReportedWithTheCall) {
  auto log = OpenLog();
  absl::Status s = log->Append(kOrders, Insert("x"));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("Append of a change of relation 16384 outside a transaction"));
  EXPECT_THAT(s.message(), HasSubstr(dir_.path()));
  EXPECT_EQ(log->CommitTransaction(0x10).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(log->AddFenceToken("f").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(log->AbortTransaction().ok());
  EXPECT_EQ(log->BeginTransaction(0, 1, 0).status().code(), absl::StatusCode::kInvalidArgument);

  ASSERT_TRUE(log->BeginTransaction(0x100, 1, 0).value());
  s = log->CommitTransaction(0x50);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("transaction 0/100 ends at 0/50, before its commit record"));
}

TEST_F(ChangeLogTest, OpenRefusesAnotherFormatVersion) {
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_.path(), &raw).ok());
    ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), keys::MetaKey(keys::kFormatVersionName), "9").ok());
    delete raw;
  }
  ChangeLogOptions options;
  options.path = dir_.path();
  auto log = ChangeLog::Open(options);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(log.status().message(), HasSubstr("format version \"9\" is not the supported \"2\""));
}

TEST_F(ChangeLogTest, OpenFailsClearlyWhenTheDirectoryIsLocked) {
  auto first = OpenLog();
  ChangeLogOptions options;
  options.path = dir_.path();
  auto second = ChangeLog::Open(options);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(),
              HasSubstr(absl::StrCat("change log at ", dir_.path(), ": open failed")));
  EXPECT_THAT(second.status().message(), HasSubstr("not used by another trickle process"));
}

TEST_F(ChangeLogTest, HugeTransactionIsWrittenInBoundedBatches) {
  constexpr int kRows = 1'000'000;
  constexpr size_t kBatchBytes = 1 << 20;
  ChangeLogOptions options;
  options.path = dir_.path();
  options.batch_bytes = kBatchBytes;
  options.memtable_bytes = 16 << 20;
  auto opened = ChangeLog::Open(options);
  ASSERT_TRUE(opened.ok());
  ChangeLog& log = **opened;

  // Warm up allocators and RocksDB before the baseline.
  ASSERT_TRUE(WriteTransaction(log, 0x10, {{kOrders, "warm"}}).ok());
  const uint64_t rss_before = testing::ResidentBytes();
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(log.BeginTransaction(0x100000, 1, 0).value());
  uint64_t payload = 0;
  uint64_t peak_rss = rss_before;
  for (int i = 0; i < kRows; ++i) {
    ChangeRecord c = Insert(absl::StrCat("row-", i, "-0123456789abcdef0123456789"));
    payload += c.ByteSizeLong();
    ASSERT_TRUE(log.Append(kOrders, c).ok());
    if (i % 100'000 == 0) peak_rss = std::max(peak_rss, testing::ResidentBytes());
  }
  ASSERT_TRUE(log.CommitTransaction(0x100008).ok());
  ASSERT_TRUE(log.Sync().ok());
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  peak_rss = std::max(peak_rss, testing::ResidentBytes());

  ChangeLogStats stats = log.Stats();
  // The staged batch never holds more than batch_bytes plus one change.
  EXPECT_LE(stats.peak_staged_bytes, kBatchBytes + 256);
  const uint64_t growth = peak_rss > rss_before ? peak_rss - rss_before : 0;
  std::printf("[ measure  ] 1M-row transaction: %.0f rows/s, payload %.1f MiB, RSS growth "
              "%.1f MiB, peak staged %.2f MiB\n",
              kRows / seconds, payload / 1048576.0, growth / 1048576.0,
              stats.peak_staged_bytes / 1048576.0);
  // Far below the payload: memtables (16 MiB budget) plus caches, never the
  // transaction. (AddressSanitizer's quarantine keeps freed memory resident.)
  if (!kAddressSanitizer) {
    EXPECT_LT(growth, payload / 2);
  }

  uint64_t n = 0;
  uint32_t expected_seq = 0;
  start = std::chrono::steady_clock::now();
  ASSERT_TRUE(log.ReadChanges(kOrders, 0x100000, UINT64_MAX, [&](const LoggedChange& c) {
                   if (c.sequence != expected_seq) {
                     return absl::InternalError(absl::StrCat("sequence ", c.sequence));
                   }
                   ++expected_seq;
                   ++n;
                   return absl::OkStatus();
                 }).ok());
  seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ measure  ] read back: %.0f rows/s\n", n / seconds);
  EXPECT_EQ(n, static_cast<uint64_t>(kRows));
}

TEST_F(ChangeLogTest, ConcurrentReadersSeeWholeTransactionsOnly) {
  auto log = OpenLog(/*batch_bytes=*/256);  // rows land long before commits
  constexpr int kTransactions = 300;
  constexpr int kRowsPerRelation = 7;
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::vector<std::string> failures[3];

  auto reader = [&](int id) {
    uint64_t last_seen_count = 0;
    while (!done.load()) {
      for (Oid rel : {kOrders, kItems}) {
        Lsn current = 0;
        int rows = 0;
        uint64_t transactions = 0;
        uint32_t last_seq = 0;
        absl::Status s = log->ReadChanges(rel, 0, UINT64_MAX, [&](const LoggedChange& c) {
          Lsn lsn = c.transaction->commit_lsn();
          if (lsn != current) {
            if (current != 0 && rows != kRowsPerRelation) {
              return absl::InternalError(absl::StrCat("partial transaction ", FormatLsn(current)));
            }
            if (lsn < current) return absl::InternalError("out of commit order");
            current = lsn;
            rows = 0;
            ++transactions;
          } else if (c.sequence <= last_seq) {
            return absl::InternalError("out of sequence order");
          }
          last_seq = c.sequence;
          ++rows;
          return absl::OkStatus();
        });
        if (s.ok() && current != 0 && rows != kRowsPerRelation) {
          s = absl::InternalError(absl::StrCat("partial last transaction ", FormatLsn(current)));
        }
        if (!s.ok()) failures[id].push_back(std::string(s.message()));
        if (rel == kOrders) {
          if (transactions < last_seen_count) failures[id].push_back("went back in time");
          last_seen_count = transactions;
        }
      }
      (void)log->Stats();
      (void)log->durable_lsn();
      reads.fetch_add(1);
    }
  };
  std::thread r1(reader, 0), r2(reader, 1);
  std::thread trimmer([&] {
    // Trim from another thread, as the refresh engine does.
    while (!done.load()) {
      Lsn hw = log->high_water_lsn();
      if (hw > 0x2000) {
        if (!log->Trim(kItems, hw - 0x2000).ok()) failures[2].push_back("trim failed");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });

  for (int t = 1; t <= kTransactions; ++t) {
    Lsn lsn = static_cast<Lsn>(t) * 0x100;
    ASSERT_TRUE(log->BeginTransaction(lsn, t, 0).value());
    for (int i = 0; i < kRowsPerRelation; ++i) {
      ASSERT_TRUE(log->Append(kOrders, Insert(absl::StrCat("o", t, "-", i))).ok());
      ASSERT_TRUE(log->Append(kItems, Insert(absl::StrCat("i", t, "-", i))).ok());
    }
    ASSERT_TRUE(log->CommitTransaction(lsn + 8).ok());
    if (t % 10 == 0) {
      ASSERT_TRUE(log->Sync().ok());
    }
  }
  // Let the readers see the final state at least once.
  int target = reads.load() + 4;
  while (reads.load() < target) std::this_thread::yield();
  done.store(true);
  r1.join();
  r2.join();
  trimmer.join();
  for (const auto& f : failures) EXPECT_THAT(f, IsEmpty());
  EXPECT_THAT(ReadAll(*log, kOrders), SizeIs(kTransactions * kRowsPerRelation));
  EXPECT_GT(reads.load(), 4);
}

}  // namespace
}  // namespace trickle::storage
