#include "benchmarks/refresh/in_process_capture.h"

#include "common/pg_connection.h"
#include "common/status_macros.h"
#include "pgoutput/source_setup.h"
#include "spdlog/spdlog.h"

namespace trickle::bench {

absl::StatusOr<std::unique_ptr<InProcessCapture>> InProcessCapture::Start(
    InProcessCaptureOptions options) {
  std::unique_ptr<InProcessCapture> c(new InProcessCapture());
  c->options_ = std::move(options);
  {
    TRICKLE_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> conn, PgConnection::Connect(c->options_.dsn));
    pgoutput::SourceSetupOptions setup;
    setup.slot_name = c->options_.slot_name;
    setup.publication_name = c->options_.publication_name;
    TRICKLE_RETURN_IF_ERROR(pgoutput::EnsurePublication(*conn, setup));
    TRICKLE_RETURN_IF_ERROR(pgoutput::EnsureSlot(*conn, setup).status());
  }
  storage::ChangeLogOptions log_options;
  log_options.path = c->options_.data_dir;
  TRICKLE_ASSIGN_OR_RETURN(c->log_, storage::ChangeLog::Open(log_options));
  TRICKLE_ASSIGN_OR_RETURN(c->capture_, service::Capture::Create(c->log_.get()));
  if (c->options_.commit_listener) c->capture_->SetCommitListener(c->options_.commit_listener);
  pgoutput::ReplicationOptions stream_options;
  stream_options.dsn = c->options_.dsn;
  stream_options.slot_name = c->options_.slot_name;
  stream_options.publication_name = c->options_.publication_name;
  stream_options.status_interval = c->options_.status_interval;
  c->stream_ = std::make_unique<pgoutput::ReplicationStream>(stream_options, c->capture_.get());
  c->fences_ = std::make_unique<service::FenceEmitter>(c->options_.dsn, c->capture_.get());
  InProcessCapture* self = c.get();
  c->thread_ = std::thread([self] {
    absl::Status s = self->stream_->Run(self->stop_);
    if (!s.ok()) spdlog::error("replication stream stopped: {}", s.ToString());
  });
  return c;
}

InProcessCapture::~InProcessCapture() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  fences_.reset();
  stream_.reset();
  if (log_ != nullptr) {
    absl::Status s = log_->Sync();
    if (!s.ok()) spdlog::warn("final change log sync: {}", s.ToString());
  }
  capture_.reset();
  log_.reset();
}

scheduler::FenceFn InProcessCapture::fence_fn() {
  return [this]() -> absl::StatusOr<Lsn> {
    absl::Time t0 = absl::Now();
    auto lsn = fences_->Emit();
    std::lock_guard<std::mutex> lock(fence_mu_);
    fence_times_.emplace_back(t0, absl::ToDoubleMilliseconds(absl::Now() - t0));
    return lsn;
  };
}

std::vector<std::pair<absl::Time, double>> InProcessCapture::fence_times() const {
  std::lock_guard<std::mutex> lock(fence_mu_);
  return fence_times_;
}

}  // namespace trickle::bench
