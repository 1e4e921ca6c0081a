// Helpers shared by the change log tests: a temporary directory, change
// builders, and a raw look into the RocksDB files behind a closed log.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "storage/change_log.h"

namespace trickle::storage::testing {

// A fresh directory under TEST_TMPDIR (or /tmp), removed with the object.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

ChangeRecord Insert(const std::string& value, uint32_t schema_version = 1);
ChangeRecord Delete(const std::string& value, uint32_t schema_version = 1);

// What a reader saw of one change.
struct SeenChange {
  Lsn commit_lsn;
  uint32_t sequence;
  ChangeRecord::Op op;
  std::string value;  // first new (or old) value
  bool operator==(const SeenChange&) const = default;
};
std::ostream& operator<<(std::ostream& os, const SeenChange& c);

std::vector<SeenChange> ReadAll(const ChangeLog& log, Oid relation, Lsn from = 0,
                                Lsn to = UINT64_MAX);

// Writes one transaction and commits it (end LSN = commit + 8). Each change is
// (relation, inserted value).
absl::Status WriteTransaction(ChangeLog& log, Lsn commit_lsn,
                              const std::vector<std::pair<Oid, std::string>>& changes);

// Opens the database of a closed change log read-only and counts the changes
// stored in its "changes" column family (of `relation`, when given, with
// commit_lsn >= from), decoding the chunks.
uint64_t CountRawChangeRows(const std::string& path, std::optional<Oid> relation = std::nullopt,
                            Lsn from = 0);

// Opens the database of a closed change log read-only and counts the range
// tombstones in its table files, over all column families (reopen and close
// the log first: Open flushes what the WAL holds into table files).
uint64_t CountRawRangeTombstones(const std::string& path);

// Resident set size of this process in bytes (from /proc/self/status).
uint64_t ResidentBytes();

}  // namespace trickle::storage::testing
