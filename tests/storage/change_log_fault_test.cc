// The change log under storage faults (a full disk), injected through a
// wrapping FileSystem, and across a real process crash.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "storage/change_log.h"
#include "tests/storage/change_log_test_util.h"
#include "tests/storage/fault_injection_fs.h"

extern char** environ;

namespace trickle::storage {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using testing::CountRawChangeRows;
using testing::FaultInjectionFileSystem;
using testing::Insert;
using testing::ReadAll;
using testing::TempDir;
using testing::WriteTransaction;

constexpr Oid kOrders = 16384;
constexpr Oid kItems = 16390;
using Scope = FaultInjectionFileSystem::Scope;

class ChangeLogFaultTest : public ::testing::TestWithParam<Scope> {
 protected:
  ChangeLogFaultTest()
      : fs_(std::make_shared<FaultInjectionFileSystem>(rocksdb::FileSystem::Default())),
        env_(rocksdb::NewCompositeEnv(fs_)) {}

  std::unique_ptr<ChangeLog> OpenLog(size_t batch_bytes = 4 << 20) {
    ChangeLogOptions options;
    options.path = dir_.path();
    options.batch_bytes = batch_bytes;
    options.env = env_.get();
    auto log = ChangeLog::Open(options);
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? std::move(*log) : nullptr;
  }

  // Appends `rows` changes alternating between two relations.
  static absl::Status AppendRows(ChangeLog& log, int rows, const std::string& tag) {
    for (int i = 0; i < rows; ++i) {
      absl::Status s = log.Append(i % 2 ? kItems : kOrders, Insert(absl::StrCat(tag, i)));
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  TempDir dir_;
  std::shared_ptr<FaultInjectionFileSystem> fs_;
  std::unique_ptr<rocksdb::Env> env_;  // must outlive the logs (declared after dir_)
};

// Whatever the fault hits, after it clears the transaction at `lsn` is
// stored once: `rows` changes and one commit record.
void ExpectExactlyOnce(const ChangeLog& log, Lsn lsn, int rows) {
  size_t seen = ReadAll(log, kOrders, lsn, lsn + 1).size() + ReadAll(log, kItems, lsn, lsn + 1).size();
  EXPECT_EQ(seen, static_cast<size_t>(rows));
  auto txns = log.ReadTransactions(lsn, lsn + 1);
  ASSERT_TRUE(txns.ok());
  ASSERT_THAT(*txns, SizeIs(1));
  EXPECT_EQ((*txns)[0].change_count(), static_cast<uint64_t>(rows));
}

TEST_P(ChangeLogFaultTest, DiskFullAtCommitFailsClearlyAndTheRetryStoresOnce) {
  auto log = OpenLog();
  ASSERT_TRUE(WriteTransaction(*log, 0x16B3700 - 8, {{kOrders, "earlier"}}).ok());
  ASSERT_TRUE(log->Sync().ok());
  const Lsn durable = log->durable_lsn();
  ASSERT_EQ(durable, 0x16B3700u);

  ASSERT_TRUE(log->BeginTransaction(0x16B3748, 5, 0).value());
  ASSERT_TRUE(AppendRows(*log, 10, "a").ok());
  fs_->FailWrites(GetParam());
  absl::Status s = log->CommitTransaction(0x16B3790);
  ASSERT_FALSE(s.ok());
  std::printf("[ message  ] %s\n", s.ToString().c_str());
  EXPECT_GT(fs_->injected(), 0);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(s.message(),
              AllOf(HasSubstr(absl::StrCat("change log at ", dir_.path(),
                                           ": write of transaction 0/16B3748 failed: IO error: "
                                           "No space left on device")),
                    HasSubstr("the slot is not confirmed past 0/16B3700"),
                    HasSubstr("receive it again")));
  EXPECT_EQ(log->high_water_lsn(), 0x16B3700u - 8);
  EXPECT_EQ(log->durable_lsn(), durable);
  // The failed transaction is not resumed.
  EXPECT_EQ(log->Append(kOrders, Insert("more")).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(log->Sync().ok() && log->durable_lsn() != durable);
  EXPECT_EQ(log->durable_lsn(), durable);

  // The capture reconnects while the disk is still full: Begin says so.
  auto again = log->BeginTransaction(0x16B3748, 5, 0);
  if (GetParam() == Scope::kAll) {
    ASSERT_FALSE(again.ok());
    std::printf("[ message  ] %s\n", again.status().ToString().c_str());
    EXPECT_THAT(again.status().message(),
                AllOf(HasSubstr("test write before transaction 0/16B3748 failed"),
                      HasSubstr("No space left on device"),
                      HasSubstr("the slot is not confirmed past 0/16B3700")));
  }
  EXPECT_EQ(log->durable_lsn(), durable);
  // Readers still work.
  EXPECT_THAT(ReadAll(*log, kOrders), SizeIs(1));

  fs_->Clear();
  again = log->BeginTransaction(0x16B3748, 5, 0);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(*again);  // the high-water did not move: accepted again
  ASSERT_TRUE(AppendRows(*log, 10, "a").ok());
  ASSERT_TRUE(log->CommitTransaction(0x16B3790).ok());
  ASSERT_TRUE(log->Sync().ok());
  EXPECT_EQ(log->durable_lsn(), 0x16B3790u);
  EXPECT_THAT(ReadAll(*log, kOrders, 0x16B3748), SizeIs(5));
  EXPECT_THAT(ReadAll(*log, kItems), SizeIs(5));

  log.reset();
  log = OpenLog();
  EXPECT_EQ(log->durable_lsn(), 0x16B3790u);
  EXPECT_THAT(ReadAll(*log, kOrders, 0x16B3748), SizeIs(5));
  EXPECT_THAT(ReadAll(*log, kItems), SizeIs(5));
  EXPECT_EQ(log->Stats().transaction_count, 2u);
}

TEST_P(ChangeLogFaultTest, DiskFullMidTransactionFailsTheTransactionUntilReceivedAgain) {
  auto log = OpenLog(/*batch_bytes=*/512);
  ASSERT_TRUE(log->BeginTransaction(0x200, 5, 0).value());
  ASSERT_TRUE(AppendRows(*log, 40, "a").ok());  // several batches written
  fs_->FailWrites(GetParam());
  absl::Status s = AppendRows(*log, 200, "a");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(s.message(), HasSubstr("write of transaction 0/200 failed"));
  absl::Status later = log->Append(kOrders, Insert("x"));
  EXPECT_EQ(later.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(later.message(), AllOf(HasSubstr("Append in transaction 0/200 after a write of it "
                                               "failed"),
                                     HasSubstr("No space left on device")));
  EXPECT_EQ(log->CommitTransaction(0x208).code(), absl::StatusCode::kFailedPrecondition);

  // Stream lost: abort. The delete of the written rows may fail while the
  // disk is full; the next Begin then retries it first.
  absl::Status aborted = log->AbortTransaction();
  if (GetParam() == Scope::kAll) {
    EXPECT_FALSE(aborted.ok());
  }
  fs_->Clear();
  auto again = log->BeginTransaction(0x200, 5, 0);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(*again);
  // This time a different (shorter) replay: no row of the first attempt shows.
  ASSERT_TRUE(AppendRows(*log, 3, "b").ok());
  ASSERT_TRUE(log->CommitTransaction(0x208).ok());
  ASSERT_TRUE(log->Sync().ok());
  EXPECT_EQ(log->durable_lsn(), 0x208u);
  auto orders = ReadAll(*log, kOrders);
  ASSERT_THAT(orders, SizeIs(2));
  EXPECT_EQ(orders[0].value, "b0");
  EXPECT_EQ(orders[1].value, "b2");
  ExpectExactlyOnce(*log, 0x200, 3);
  log.reset();
  EXPECT_EQ(CountRawChangeRows(dir_.path()), 3u);
}

TEST_P(ChangeLogFaultTest, FailedSyncDoesNotAdvanceDurableLsn) {
  auto log = OpenLog();
  ASSERT_TRUE(WriteTransaction(*log, 0x100, {{kOrders, "a"}}).ok());
  ASSERT_TRUE(log->Sync().ok());
  ASSERT_TRUE(WriteTransaction(*log, 0x200, {{kOrders, "b"}}).ok());
  fs_->FailSyncs(GetParam());
  absl::Status s = log->Sync();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(s.message(),
              AllOf(HasSubstr(absl::StrCat("change log at ", dir_.path())),
                    HasSubstr("sync of the write-ahead log up to 0/208 failed"),
                    HasSubstr("the slot is not confirmed past 0/108")));
  std::printf("[ message  ] %s\n", s.ToString().c_str());
  EXPECT_EQ(log->durable_lsn(), 0x108u);
  EXPECT_FALSE(log->Sync().ok());  // still failing
  EXPECT_EQ(log->durable_lsn(), 0x108u);
  // Writes while the fault lasts fail cleanly (RocksDB's WAL writer is
  // unusable after a failed sync; nothing may reach it).
  s = WriteTransaction(*log, 0x300, {{kOrders, "c"}});
  EXPECT_FALSE(s.ok());
  std::printf("[ message  ] %s\n", s.ToString().c_str());
  EXPECT_THAT(ReadAll(*log, kOrders), SizeIs(2));  // readers carry on

  fs_->Clear();
  ASSERT_TRUE(log->Sync().ok());
  EXPECT_EQ(log->durable_lsn(), 0x208u);
  // The writer carries on; 0x300 was never stored, so it is accepted.
  ASSERT_TRUE(WriteTransaction(*log, 0x300, {{kOrders, "c"}}).ok());
  ASSERT_TRUE(log->Sync().ok());
  EXPECT_EQ(log->durable_lsn(), 0x308u);
  log.reset();
  log = OpenLog();
  EXPECT_THAT(ReadAll(*log, kOrders), SizeIs(3));
}

TEST_P(ChangeLogFaultTest, FailedTrimAndProgressLeaveStateAndRecover) {
  auto log = OpenLog();
  ASSERT_TRUE(WriteTransaction(*log, 0x100, {{kOrders, "a"}}).ok());
  ASSERT_TRUE(WriteTransaction(*log, 0x200, {{kOrders, "b"}}).ok());
  fs_->FailWrites(GetParam());
  absl::Status s = log->Trim(kOrders, 0x200);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("trim of relation 16384 below 0/200 failed"));
  s = log->PutProgress("k", "v");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(log->Stats().transaction_count, 2u);
  fs_->Clear();
  ASSERT_TRUE(log->Trim(kOrders, 0x200).ok());
  ASSERT_TRUE(log->PutProgress("k", "v").ok());
  EXPECT_THAT(ReadAll(*log, kOrders), SizeIs(1));
  EXPECT_EQ(log->Stats().transaction_count, 1u);
  EXPECT_EQ(log->GetProgress("k").value(), "v");
}

// The refresh engine trims after its refreshes whether or not a point moved;
// a trim that moves nothing must cost nothing, so it writes nothing (and
// therefore succeeds even while the storage takes no writes).
TEST_P(ChangeLogFaultTest, TrimThatMovesNothingWritesNothing) {
  auto log = OpenLog();
  ASSERT_TRUE(WriteTransaction(*log, 0x100, {{kOrders, "a"}}).ok());
  ASSERT_TRUE(WriteTransaction(*log, 0x200, {{kOrders, "b"}, {kItems, "c"}}).ok());
  ASSERT_TRUE(log->Trim(kOrders, 0x200).ok());
  ASSERT_TRUE(log->Trim(kItems, 0x200).ok());
  fs_->FailWrites(GetParam());
  EXPECT_TRUE(log->Trim(kOrders, 0x200).ok());
  EXPECT_TRUE(log->Trim(kOrders, 0x100).ok());  // points never move back
  EXPECT_TRUE(log->Trim(kItems, 0x200).ok());
  absl::Status s = log->Trim(kOrders, 0x300);  // moves: writes, and fails
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  fs_->Clear();
  ASSERT_TRUE(log->Trim(kOrders, 0x300).ok());
  EXPECT_THAT(ReadAll(*log, kOrders), IsEmpty());
  EXPECT_THAT(ReadAll(*log, kItems), SizeIs(1));
  EXPECT_EQ(log->Stats().transaction_count, 1u);
}

TEST_P(ChangeLogFaultTest, ReopenByAnotherCallFailsTheOpenTransaction) {
  auto log = OpenLog(/*batch_bytes=*/256);
  ASSERT_TRUE(WriteTransaction(*log, 0x100, {{kOrders, "a"}}).ok());
  ASSERT_TRUE(log->BeginTransaction(0x200, 5, 0).value());
  ASSERT_TRUE(AppendRows(*log, 30, "first").ok());  // rows written
  // The refresh engine's Trim meets the fault, then recovers the database
  // (a reopen, which deletes the open transaction's rows) on its retry.
  fs_->FailWrites(GetParam());
  EXPECT_FALSE(log->Trim(kOrders, 0x100).ok());
  fs_->Clear();
  ASSERT_TRUE(log->Trim(kOrders, 0x100).ok());
  // The capture's transaction notices at its next write.
  absl::Status s = AppendRows(*log, 30, "first");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("reopened after a storage error while transaction 0/200 "
                                     "was open"));
  EXPECT_EQ(log->CommitTransaction(0x208).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(log->BeginTransaction(0x200, 5, 0).value());
  ASSERT_TRUE(AppendRows(*log, 60, "second").ok());
  ASSERT_TRUE(log->CommitTransaction(0x208).ok());
  ASSERT_TRUE(log->Sync().ok());
  ExpectExactlyOnce(*log, 0x200, 60);
}

TEST_P(ChangeLogFaultTest, ReadersKeepWorkingThroughAFaultAndTheReopen) {
  auto log = OpenLog(/*batch_bytes=*/256);
  for (Lsn lsn = 0x100; lsn <= 0x500; lsn += 0x100) {
    ASSERT_TRUE(WriteTransaction(*log, lsn, {{kOrders, "x"}, {kOrders, "y"}}).ok());
  }
  std::atomic<bool> done{false};
  std::atomic<int> ok_reads{0}, unavailable{0};
  std::vector<std::string> unexpected;
  std::thread reader([&] {
    while (!done.load()) {
      size_t rows = 0;
      absl::Status s = log->ReadChanges(kOrders, 0, UINT64_MAX, [&](const LoggedChange&) {
        ++rows;
        return absl::OkStatus();
      });
      if (s.ok()) {
        ok_reads++;
        if (rows % 2 != 0 || rows < 10) unexpected.push_back(absl::StrCat("rows ", rows));
      } else if (s.code() == absl::StatusCode::kUnavailable) {
        unavailable++;  // during the reopen
      } else {
        unexpected.push_back(s.ToString());
      }
    }
  });
  fs_->FailWrites(GetParam());
  for (int attempt = 0; attempt < 5; ++attempt) {
    EXPECT_FALSE(WriteTransaction(*log, 0x600, {{kOrders, "x"}, {kOrders, "y"}}).ok());
  }
  fs_->Clear();
  absl::Status s;
  for (int attempt = 0; attempt < 100; ++attempt) {  // Unavailable while readers drain
    s = WriteTransaction(*log, 0x600, {{kOrders, "x"}, {kOrders, "y"}});
    if (s.ok()) break;
  }
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_TRUE(log->Sync().ok());
  while (ok_reads.load() < 3) std::this_thread::yield();
  done.store(true);
  reader.join();
  EXPECT_THAT(unexpected, IsEmpty());
  EXPECT_THAT(ReadAll(*log, kOrders), SizeIs(12));
}

INSTANTIATE_TEST_SUITE_P(Scopes, ChangeLogFaultTest, ::testing::Values(Scope::kWal, Scope::kAll),
                         [](const ::testing::TestParamInfo<Scope>& info) {
                           return info.param == Scope::kWal ? std::string("WalOnly")
                                                            : std::string("WholeDisk");
                         });

// ---- A real crash: a child process writes and is killed with SIGKILL.

constexpr char kCrashDirVariable[] = "TRICKLE_CHANGE_LOG_CRASH_DIR";

// Runs only inside the child that CrashTest spawns.
TEST(ChangeLogCrashChild, WriteThenDie) {
  const char* dir = getenv(kCrashDirVariable);
  if (dir == nullptr) GTEST_SKIP() << "runs as the child of ChangeLogCrashTest";
  ChangeLogOptions options;
  options.path = dir;
  options.batch_bytes = 1024;
  auto log = ChangeLog::Open(options);
  if (!log.ok()) _exit(2);
  if (!WriteTransaction(**log, 0x100, {{kOrders, "synced"}}).ok()) _exit(3);
  if (!(*log)->Sync().ok()) _exit(4);
  if (!WriteTransaction(**log, 0x200, {{kOrders, "committed"}}).ok()) _exit(5);
  if (!(*log)->BeginTransaction(0x300, 1, 0).value()) _exit(6);
  for (int i = 0; i < 1000; ++i) {
    if (!(*log)->Append(i % 2 ? kItems : kOrders, Insert(absl::StrCat("uncommitted", i))).ok()) {
      _exit(7);
    }
  }
  raise(SIGKILL);
  _exit(8);
}

TEST(ChangeLogCrashTest, ProcessKilledMidTransactionLeavesOnlyCommittedData) {
  TempDir dir;
  std::string filter = "--gtest_filter=ChangeLogCrashChild.WriteThenDie";
  std::vector<char*> argv = {const_cast<char*>("/proc/self/exe"), filter.data(), nullptr};
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.push_back(*e);
  env_strings.push_back(absl::StrCat(kCrashDirVariable, "=", dir.path()));
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid;
  ASSERT_EQ(posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), envp.data()), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "child exited with " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  // The dead transaction's rows reached RocksDB.
  EXPECT_GT(CountRawChangeRows(dir.path(), std::nullopt, 0x300), 0u);

  {
    ChangeLogOptions options;
    options.path = dir.path();
    auto log = ChangeLog::Open(options);
    ASSERT_TRUE(log.ok()) << log.status();
    // A process crash keeps the OS's page cache: the unsynced commit survives
    // and, flushed at Open, is durable now.
    EXPECT_EQ((*log)->high_water_lsn(), 0x200u);
    EXPECT_EQ((*log)->durable_lsn(), 0x208u);
    auto orders = ReadAll(**log, kOrders);
    ASSERT_THAT(orders, SizeIs(2));
    EXPECT_EQ(orders[0].value, "synced");
    EXPECT_EQ(orders[1].value, "committed");
    EXPECT_THAT(ReadAll(**log, kItems), IsEmpty());
    // The transaction arrives again after the restart and is accepted.
    EXPECT_TRUE((*log)->BeginTransaction(0x300, 1, 0).value());
    ASSERT_TRUE((*log)->AbortTransaction().ok());
  }
  EXPECT_EQ(CountRawChangeRows(dir.path(), std::nullopt, 0x300), 0u);
  EXPECT_EQ(CountRawChangeRows(dir.path()), 2u);
}

}  // namespace
}  // namespace trickle::storage
