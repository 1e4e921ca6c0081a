#include "service/fence.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace trickle::service {

absl::StatusOr<Lsn> FenceEmitter::Emit() {
  std::string token;
  {
    absl::MutexLock lock(&mu_);
    if (conn_ == nullptr || !conn_->ok()) {
      TRICKLE_ASSIGN_OR_RETURN(conn_, PgConnection::Connect(dsn_));
    }
    // Unique across restarts: the process id and a counter.
    token = absl::StrCat(getpid(), "-", ++counter_, "-", absl::ToUnixMicros(absl::Now()));
    auto emitted = conn_->ExecParams("SELECT pg_logical_emit_message(true, $1, $2)",
                                     {std::string(kFencePrefix), token});
    if (!emitted.ok()) {
      conn_.reset();  // reconnect next time
      return emitted.status();
    }
  }
  return capture_->WaitForFence(token, timeout_);
}

}  // namespace trickle::service
