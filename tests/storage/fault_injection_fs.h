// A FileSystem wrapper that makes writes and syncs of RocksDB's files fail on
// demand, as a full disk does (ENOSPC), for the change log's failure tests.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/io_status.h"

namespace trickle::storage::testing {

class FaultInjectionFileSystem : public rocksdb::FileSystemWrapper {
 public:
  // Which files a fault hits.
  enum class Scope {
    kWal,  // the write-ahead log only (*.log)
    kAll,  // every file RocksDB writes (WAL, SST, MANIFEST, ...): a full disk
  };

  explicit FaultInjectionFileSystem(std::shared_ptr<rocksdb::FileSystem> base)
      : FileSystemWrapper(std::move(base)) {}

  const char* Name() const override { return "FaultInjectionFileSystem"; }

  // Append/Flush (data reaching the file) fail with NoSpace while set.
  // Creating a file still works, as on a real full disk (an inode is free,
  // blocks are not).
  void FailWrites(Scope scope) {
    write_scope_.store(scope);
    fail_writes_.store(true);
  }
  // Sync/Fsync/RangeSync fail with NoSpace while set.
  void FailSyncs(Scope scope) {
    sync_scope_.store(scope);
    fail_syncs_.store(true);
  }
  void Clear() {
    fail_writes_.store(false);
    fail_syncs_.store(false);
  }
  int injected() const { return injected_.load(); }

  // A full disk reports no free space (only while whole-disk writes fail).
  rocksdb::IOStatus GetFreeSpace(const std::string& path, const rocksdb::IOOptions& o,
                                 uint64_t* diskfree, rocksdb::IODebugContext* dbg) override {
    if (fail_writes_.load() && write_scope_.load() == Scope::kAll) {
      *diskfree = 0;
      return rocksdb::IOStatus::OK();
    }
    return target()->GetFreeSpace(path, o, diskfree, dbg);
  }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewWritableFile(f, o, r, dbg);
    if (s.ok()) r->reset(new File(this, f, std::move(*r)));
    return s;
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->ReopenWritableFile(f, o, r, dbg);
    if (s.ok()) r->reset(new File(this, f, std::move(*r)));
    return s;
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old,
                                      const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->ReuseWritableFile(f, old, o, r, dbg);
    if (s.ok()) r->reset(new File(this, f, std::move(*r)));
    return s;
  }

 private:
  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(FaultInjectionFileSystem* fs, std::string name,
         std::unique_ptr<rocksdb::FSWritableFile> base)
        : FSWritableFileOwnerWrapper(std::move(base)), fs_(fs), name_(std::move(name)) {}

    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->ShouldFailWrite(name_)) return fs_->Inject(name_);
      return target()->Append(data, o, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo& v,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->ShouldFailWrite(name_)) return fs_->Inject(name_);
      return target()->Append(data, o, v, dbg);
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                       const rocksdb::IOOptions& o,
                                       rocksdb::IODebugContext* dbg) override {
      if (fs_->ShouldFailWrite(name_)) return fs_->Inject(name_);
      return target()->PositionedAppend(data, offset, o, dbg);
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                       const rocksdb::IOOptions& o,
                                       const rocksdb::DataVerificationInfo& v,
                                       rocksdb::IODebugContext* dbg) override {
      if (fs_->ShouldFailWrite(name_)) return fs_->Inject(name_);
      return target()->PositionedAppend(data, offset, o, v, dbg);
    }
    rocksdb::IOStatus Flush(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (fs_->ShouldFailWrite(name_)) return fs_->Inject(name_);
      return target()->Flush(o, dbg);
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (fs_->ShouldFailSync(name_)) return fs_->Inject(name_);
      return target()->Sync(o, dbg);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (fs_->ShouldFailSync(name_)) return fs_->Inject(name_);
      return target()->Fsync(o, dbg);
    }
    rocksdb::IOStatus RangeSync(uint64_t offset, uint64_t n, const rocksdb::IOOptions& o,
                                rocksdb::IODebugContext* dbg) override {
      if (fs_->ShouldFailSync(name_)) return fs_->Inject(name_);
      return target()->RangeSync(offset, n, o, dbg);
    }

   private:
    FaultInjectionFileSystem* const fs_;  // outlives every file it opened
    const std::string name_;
  };

  static bool InScope(Scope scope, const std::string& name) {
    if (scope == Scope::kAll) return true;
    return name.size() >= 4 && name.compare(name.size() - 4, 4, ".log") == 0;
  }
  bool ShouldFailWrite(const std::string& name) const {
    return fail_writes_.load() && InScope(write_scope_.load(), name);
  }
  bool ShouldFailSync(const std::string& name) const {
    return fail_syncs_.load() && InScope(sync_scope_.load(), name);
  }
  rocksdb::IOStatus Inject(const std::string& name) {
    injected_.fetch_add(1);
    // As PosixWritableFile reports ENOSPC.
    return rocksdb::IOStatus::NoSpace("While appending to file: " + name,
                                      "No space left on device");
  }

  std::atomic<bool> fail_writes_{false};
  std::atomic<bool> fail_syncs_{false};
  std::atomic<Scope> write_scope_{Scope::kWal};
  std::atomic<Scope> sync_scope_{Scope::kWal};
  std::atomic<int> injected_{0};
};

}  // namespace trickle::storage::testing
