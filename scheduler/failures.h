// How the scheduler treats a failed refresh: which errors are definite
// (ERROR at once), which are an outage (retried, never ERROR), how long to
// back off, and the blown fuse's error.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace trickle::scheduler {

// A blown fuse aborts a refresh with this error (ResourceExhausted).
absl::Status FuseBlownError(absl::string_view reason);
bool IsFuseBlown(const absl::Status& status);
// Errors that retrying will not heal (a dropped source, a privilege, bad SQL).
bool IsDefinite(const absl::Status& status);
// Consecutive failures of this kind after which a stream table goes to
// ERROR: 1 for a definite error, never for an outage (IsOutage: no
// connection could be made, or the replication stream is not connected; not
// the stream table's fault), else `max_consecutive`.
int FailuresBeforeError(const absl::Status& status, int max_consecutive);
// How long to wait before retrying after `consecutive_failures` of this
// kind: exponential from `base` up to `cap`; an outage at most 10 s, as the
// stream's own reconnects, so stream tables follow soon after it is back.
absl::Duration RetryDelay(const absl::Status& status, int consecutive_failures, absl::Duration base,
                          absl::Duration cap);

}  // namespace trickle::scheduler
