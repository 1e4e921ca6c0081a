// The capture half of trickled (replication stream -> Capture -> ChangeLog)
// plus its fence emitter, run inside a benchmark driver the way
// service/trickled_main.cc wires them, so a StreamTableManager can be driven
// in the same process.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pgoutput/replication_stream.h"
#include "scheduler/refresh.h"
#include "service/capture.h"
#include "service/fence.h"
#include "storage/change_log.h"

namespace trickle::bench {

struct InProcessCaptureOptions {
  std::string dsn;
  // Created when missing (pgoutput); the publication too (empty).
  std::string slot_name;
  std::string publication_name;
  // RocksDB directory of the change log; created when missing.
  std::string data_dir;
  // As trickled's --status-interval. Default 1 s (trickled's default).
  absl::Duration status_interval = absl::Seconds(1);
  // Called on the stream's thread after each transaction is in the log
  // (Capture::SetCommitListener); installed before streaming starts. Must
  // be cheap. Default none.
  std::function<void(const storage::TransactionRecord&)> commit_listener;
};

class InProcessCapture {
 public:
  // Ensures the publication and slot, opens the change log and starts the
  // stream thread.
  static absl::StatusOr<std::unique_ptr<InProcessCapture>> Start(InProcessCaptureOptions options);
  // Stops the stream, syncs the log.
  ~InProcessCapture();

  storage::ChangeLog& log() { return *log_; }
  service::Capture& capture() { return *capture_; }
  service::FenceEmitter& fences() { return *fences_; }
  // The fence function a StreamTableManager takes; valid while this lives.
  // Each call is timed (emit + wait until the fence is in the change log:
  // the part of a refresh spent on the consistency protocol).
  scheduler::FenceFn fence_fn();
  // (start, milliseconds) of every fence so far.
  std::vector<std::pair<absl::Time, double>> fence_times() const;

 private:
  InProcessCapture() = default;
  InProcessCaptureOptions options_;
  std::unique_ptr<storage::ChangeLog> log_;
  std::unique_ptr<service::Capture> capture_;
  std::unique_ptr<pgoutput::ReplicationStream> stream_;
  std::unique_ptr<service::FenceEmitter> fences_;
  mutable std::mutex fence_mu_;
  std::vector<std::pair<absl::Time, double>> fence_times_;  // guarded by fence_mu_
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace trickle::bench
