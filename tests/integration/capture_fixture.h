// Runs the capture (replication stream -> Capture -> ChangeLog) in-process
// against the test PostgreSQL, for integration tests of the capture pipeline.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "common/pg_connection.h"
#include "pgoutput/replication_stream.h"
#include "pgoutput/source_setup.h"
#include "service/capture.h"
#include "storage/change_log.h"
#include "tests/support/postgres_server.h"

namespace trickle::testing {

// One row change read back from the log, flattened for assertions.
struct LoggedRow {
  Lsn commit_lsn;
  uint32_t xid;
  uint32_t sequence;
  storage::ChangeRecord change;
};

class CaptureRunner {
 public:
  // A fresh slot, publication and change-log directory per runner.
  explicit CaptureRunner(const std::string& name);
  ~CaptureRunner();

  // Adds tables (with REPLICA IDENTITY FULL) to the runner's publication.
  void Publish(const std::vector<std::string>& tables);
  void Start();
  void Stop();
  // Emits a fence and waits until it is in the log: afterwards every
  // transaction committed before the call is readable. Returns its LSN.
  Lsn Sync();

  std::vector<LoggedRow> Rows(const std::string& table);
  storage::ChangeLog& log() { return *log_; }
  service::Capture& capture() { return *capture_; }
  PgConnection& sql() { return *sql_; }
  const std::string& slot() const { return slot_; }
  const std::string& publication() const { return publication_; }
  const std::string& data_dir() const { return data_dir_; }
  // Reopens the change log (after Stop), as a restarted service would.
  void ReopenLog();

 private:
  std::string slot_, publication_, data_dir_;
  std::unique_ptr<PgConnection> sql_;
  std::unique_ptr<storage::ChangeLog> log_;
  std::unique_ptr<service::Capture> capture_;
  std::unique_ptr<pgoutput::ReplicationStream> stream_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  int fence_counter_ = 0;
};

}  // namespace trickle::testing
