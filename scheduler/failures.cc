#include "scheduler/failures.h"

#include <algorithm>
#include <limits>

#include "absl/strings/cord.h"
#include "common/pg_connection.h"
#include "scheduler/policy.h"

namespace trickle::scheduler {

namespace {
constexpr char kFusePayload[] = "trickle.fuse";
}  // namespace

absl::Status FuseBlownError(absl::string_view reason) {
  absl::Status status = absl::ResourceExhaustedError(reason);
  status.SetPayload(kFusePayload, absl::Cord("1"));
  return status;
}

bool IsFuseBlown(const absl::Status& status) { return status.GetPayload(kFusePayload).has_value(); }

bool IsDefinite(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument ||
         status.code() == absl::StatusCode::kNotFound ||
         status.code() == absl::StatusCode::kPermissionDenied;
}

int FailuresBeforeError(const absl::Status& status, int max_consecutive) {
  if (IsDefinite(status)) return 1;
  if (IsOutage(status)) return std::numeric_limits<int>::max();
  return max_consecutive;
}

absl::Duration RetryDelay(const absl::Status& status, int consecutive_failures, absl::Duration base,
                          absl::Duration cap) {
  if (IsOutage(status)) cap = std::min(cap, absl::Seconds(10));
  return BackoffDelay(consecutive_failures, base, cap);
}


}  // namespace trickle::scheduler
