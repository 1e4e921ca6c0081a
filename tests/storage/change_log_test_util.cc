#include "tests/storage/change_log_test_util.h"

#include <stdlib.h>

#include <fstream>
#include <memory>
#include <ostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "rocksdb/db.h"
#include "storage/change_encoding.h"
#include "storage/change_log_keys.h"

namespace trickle::storage::testing {

TempDir::TempDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string templ = absl::StrCat(base != nullptr ? base : "/tmp", "/trickle_change_log_XXXXXX");
  char* made = mkdtemp(templ.data());
  EXPECT_NE(made, nullptr) << "mkdtemp " << templ;
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

ChangeRecord Insert(const std::string& value, uint32_t schema_version) {
  ChangeRecord c;
  c.set_op(ChangeRecord::INSERT);
  c.set_schema_version(schema_version);
  v1::Datum* d = c.add_new_values();
  d->set_kind(v1::Datum::TEXT);
  d->set_value(value);
  return c;
}

ChangeRecord Delete(const std::string& value, uint32_t schema_version) {
  ChangeRecord c;
  c.set_op(ChangeRecord::DELETE);
  c.set_schema_version(schema_version);
  v1::Datum* d = c.add_old_values();
  d->set_kind(v1::Datum::TEXT);
  d->set_value(value);
  return c;
}

std::ostream& operator<<(std::ostream& os, const SeenChange& c) {
  return os << "{" << FormatLsn(c.commit_lsn) << " #" << c.sequence << " op " << c.op << " \""
            << c.value << "\"}";
}

std::vector<SeenChange> ReadAll(const ChangeLog& log, Oid relation, Lsn from, Lsn to) {
  std::vector<SeenChange> out;
  absl::Status s = log.ReadChanges(relation, from, to, [&](const LoggedChange& c) {
    const auto& values = c.change->new_values_size() > 0 ? c.change->new_values()
                                                         : c.change->old_values();
    out.push_back({c.transaction->commit_lsn(), c.sequence, c.change->op(),
                   values.empty() ? "" : values[0].value()});
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

absl::Status WriteTransaction(ChangeLog& log, Lsn commit_lsn,
                              const std::vector<std::pair<Oid, std::string>>& changes) {
  TRICKLE_ASSIGN_OR_RETURN(bool fresh, log.BeginTransaction(commit_lsn, 1000 + commit_lsn, 0));
  if (!fresh) return absl::AlreadyExistsError(absl::StrCat("skipped ", FormatLsn(commit_lsn)));
  for (const auto& [relation, value] : changes) {
    TRICKLE_RETURN_IF_ERROR(log.Append(relation, Insert(value)));
  }
  return log.CommitTransaction(commit_lsn + 8);
}

namespace {

// The log's RocksDB opened read-only with its three column families
// (default, changes, transactions); db is null (and a test failure recorded)
// when it cannot be opened.
struct RawLog {
  explicit RawLog(const std::string& path) {
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
        {"changes", rocksdb::ColumnFamilyOptions()},
        {"transactions", rocksdb::ColumnFamilyOptions()},
    };
    rocksdb::DB* opened = nullptr;
    rocksdb::Status s = rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), path, families, &handles, &opened);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (s.ok()) db.reset(opened);
  }
  ~RawLog() {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  }
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
};

}  // namespace

uint64_t CountRawChangeRows(const std::string& path, std::optional<Oid> relation, Lsn from) {
  RawLog raw(path);
  if (!raw.db) return UINT64_MAX;
  rocksdb::DB* db = raw.db.get();
  uint64_t n = 0;
  {
    ChangeChunkReader chunk;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), raw.handles[1]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto parts = keys::ParseChangeKey(it->key().ToStringView());
      EXPECT_TRUE(parts.has_value());
      if (!parts) continue;
      if (relation && parts->relation != *relation) continue;
      if (parts->commit_lsn < from) continue;
      EXPECT_TRUE(chunk.Reset(it->value().ToStringView(), parts->seq));
      n += chunk.size();
    }
    EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  }
  return n;
}

uint64_t CountRawRangeTombstones(const std::string& path) {
  RawLog raw(path);
  if (!raw.db) return UINT64_MAX;
  rocksdb::DB* db = raw.db.get();
  uint64_t n = 0;
  for (auto* h : raw.handles) {
    rocksdb::TablePropertiesCollection tables;
    EXPECT_TRUE(db->GetPropertiesOfAllTables(h, &tables).ok());
    for (const auto& [file, props] : tables) n += props->num_range_deletions;
  }
  return n;
}

uint64_t ResidentBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream fields(line.substr(6));
      uint64_t kb = 0;
      fields >> kb;
      return kb * 1024;
    }
  }
  return 0;
}

}  // namespace trickle::storage::testing
