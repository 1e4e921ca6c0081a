// Fences for the refresh transaction (DESIGN, consistency protocol step 2):
// a transactional logical message `trickle.fence` committed on its own
// autocommit connection after the caller took its snapshot, then waited for
// in the change log. Its commit LSN is F.
#pragma once

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/pg_connection.h"
#include "service/capture.h"

namespace trickle::service {

class FenceEmitter {
 public:
  // `capture` is not owned and must outlive the emitter.
  FenceEmitter(std::string dsn, Capture* capture, absl::Duration timeout = absl::Seconds(30))
      : dsn_(std::move(dsn)), capture_(capture), timeout_(timeout) {}

  // Emits a fence and returns its commit LSN once it is in the change log.
  // Thread-safe; concurrent callers each get their own fence.
  absl::StatusOr<Lsn> Emit();

 private:
  std::string dsn_;
  Capture* capture_;  // not owned
  absl::Duration timeout_;
  absl::Mutex mu_;
  std::unique_ptr<PgConnection> conn_ ABSL_GUARDED_BY(mu_);
  uint64_t counter_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace trickle::service
