// trickled: the Trickle service. Streams the source database's logical slot
// into the durable change log, refreshes stream tables from it, serves the
// admin RPC (--grpc-address) and /metrics, /healthz, /readyz
// (--http-address). SIGTERM/SIGINT stop it cleanly: no new refresh starts,
// the refreshes in flight finish (their fences still need the stream), then
// the stream confirms what is durable and closes.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/pg_connection.h"
#include "pgoutput/replication_stream.h"
#include "pgoutput/source_setup.h"
#include "service/admin_service.h"
#include "service/capture.h"
#include "service/config.h"
#include "service/fence.h"
#include "service/http_server.h"
#include "service/status_collector.h"
#include "scheduler/history_retention.h"
#include "scheduler/stream_table_manager.h"
#include "spdlog/spdlog.h"
#include "storage/change_log.h"

namespace {
// Set by SIGTERM/SIGINT: stop scheduling refreshes, then shut down.
std::atomic<bool> g_stop{false};
void HandleSignal(int) { g_stop = true; }
}  // namespace

namespace trickle::service {

absl::Status Run(const ServiceConfig& config) {
  storage::ChangeLogOptions log_options;
  log_options.path = config.data_dir;
  auto log = storage::ChangeLog::Open(log_options);
  if (!log.ok()) return log.status();
  spdlog::info("change log at {} (durable up to {})", config.data_dir,
               FormatLsn((*log)->durable_lsn()));

  pgoutput::SourceSetupOptions setup;
  setup.slot_name = config.slot_name;
  setup.publication_name = config.publication_name;
  setup.create_missing = config.create_missing;
  setup.set_replica_identity = config.set_replica_identity;
  setup.recreate_lost_slot = config.recreate_lost_slot;
  // A new slot sends nothing committed before it: recorded (durably, before
  // the slot exists) so that every stream table whose frontier is older is
  // refreshed in full rather than from a log with a hole in it.
  setup.before_create_slot = [&log](Lsn wal_position) -> absl::Status {
    if ((*log)->high_water_lsn() > 0) {
      spdlog::warn("creating a new replication slot while the change log holds changes up to {}: "
                   "changes committed in between were never captured; stream tables behind {} will "
                   "be refreshed in full",
                   FormatLsn((*log)->high_water_lsn()), FormatLsn(wal_position));
    }
    return storage::SetCompleteFrom(**log, wal_position);
  };
  {
    auto conn = PgConnection::Connect(config.dsn);
    if (!conn.ok()) return conn.status();
    if (auto s = pgoutput::RefuseStandby(**conn); !s.ok()) return s;
    if (auto s = pgoutput::EnsurePublication(**conn, setup); !s.ok()) return s;
    auto slot = pgoutput::EnsureSlot(**conn, setup);
    if (!slot.ok()) return slot.status();
    spdlog::info("{} slot \"{}\" (confirmed flush {})",
                 slot->replaced_lost ? "replaced the lost" : slot->created ? "created" : "using",
                 setup.slot_name, FormatLsn(slot->confirmed_flush));
    // An empty change log on an old slot (a new data directory): it holds
    // what the slot sends from its confirmed position on, nothing before.
    if (!slot->created && (*log)->high_water_lsn() == 0) {
      auto complete_from = storage::CompleteFrom(**log);
      if (!complete_from.ok()) return complete_from.status();
      if (*complete_from == 0) {
        if (auto s = storage::SetCompleteFrom(**log, slot->confirmed_flush); !s.ok()) return s;
      }
    }
    if (auto s = pgoutput::CheckReplicaIdentity(**conn, setup); !s.ok()) return s;
  }

  CaptureOptions capture_options;
  capture_options.protocol_version = config.protocol_version;
  capture_options.sync_interval = config.sync_interval;
  auto created = Capture::Create(log->get(), capture_options);
  if (!created.ok()) return created.status();
  Capture& capture = **created;

  pgoutput::ReplicationOptions stream_options;
  stream_options.dsn = config.dsn;
  stream_options.slot_name = config.slot_name;
  stream_options.publication_name = config.publication_name;
  stream_options.protocol_version = config.protocol_version;
  stream_options.status_interval = config.status_interval;
  pgoutput::ReplicationStream stream(stream_options, &capture);

  // Change arrival wakes the scheduler (no polling). The manager exists only
  // once the stream runs (its fences need the capture), hence the pointer.
  std::atomic<scheduler::StreamTableManager*> listener{nullptr};
  capture.SetCommitListener([&listener](const storage::TransactionRecord& txn) {
    if (auto* m = listener.load()) m->OnSourceCommitted(txn);
  });

  // The stream stops last, on its own flag: a refresh in flight at a SIGTERM
  // waits for its fence to come through the stream.
  std::atomic<bool> stream_stop{false};
  absl::Status stream_status;
  std::thread stream_thread([&] { stream_status = stream.Run(stream_stop); });
  auto stop_stream = [&] {
    stream_stop = true;
    stream_thread.join();
  };

  // Observability: /healthz answers from here on, /readyz once the slot
  // streams and the catalog is migrated.
  StatusCollectorOptions status_options;
  status_options.dsn = config.dsn;
  status_options.slot_name = config.slot_name;
  StatusCollector status(status_options, log->get(), &capture, &stream);
  std::unique_ptr<HttpServer> http;
  if (!config.http_address.empty()) {
    HttpServerOptions http_options;
    http_options.address = config.http_address;
    auto started = HttpServer::Start(http_options, StatusRoutes(&status));
    if (!started.ok()) {
      stop_stream();
      return started.status();
    }
    http = std::move(*started);
    spdlog::info("HTTP /metrics /healthz /readyz on {}", config.http_address);
  }

  // Refreshes: the catalog in the target database, stream tables on their
  // interval schedules. A refresh in flight finishes before shutdown.
  FenceEmitter fences(config.dsn, &capture);
  scheduler::ManagerOptions manager_options;
  manager_options.dsn = config.dsn;
  manager_options.publication_name = config.publication_name;
  manager_options.set_replica_identity = config.set_replica_identity;
  manager_options.max_parallel_workers = config.max_parallel_workers;
  manager_options.max_consecutive_failures = config.max_consecutive_failures;
  manager_options.debounce = config.debounce;
  auto manager = scheduler::StreamTableManager::Open(manager_options, log->get(),
                                                     [&fences] { return fences.Emit(); });
  if (!manager.ok()) {
    stop_stream();
    return manager.status();
  }
  listener = manager->get();

  // The admin RPC: from here on the CLI can create and drive stream tables.
  AdminServiceOptions admin_options;
  admin_options.dsn = config.dsn;
  admin_options.auth_token = config.auth_token;
  AdminService admin(admin_options, manager->get(), log->get(), [&fences] { return fences.Emit(); },
                     &status);
  std::unique_ptr<grpc::Server> grpc_server;
  if (!config.grpc_address.empty()) {
    int port = 0;
    auto started = StartAdminServer({config.grpc_address}, &admin, &port);
    if (!started.ok()) {
      stop_stream();
      return started.status();
    }
    grpc_server = std::move(*started);
    spdlog::info("admin RPC (trickle.admin.v1) on {}{}", config.grpc_address,
                 config.auth_token.empty() ? "" : " (token required)");
  }
  // Ready (/readyz) from here on: the catalog is migrated and the admin RPC
  // listens.
  status.SetCatalogReady();
  status.SetWorkers(std::max(1, config.max_parallel_workers));  // 0 = one, in the coordinator
  status.Start();
  std::thread refresh_thread([&] { (*manager)->RunScheduler(g_stop); });
  scheduler::HistoryRetentionOptions retention_options;
  retention_options.dsn = config.dsn;
  retention_options.max_age = absl::Hours(24) * config.history_retention_days;
  retention_options.max_rows_per_stream_table = config.history_max_rows;
  scheduler::HistoryRetention retention(retention_options);
  std::thread retention_thread([&] { retention.Run(g_stop); });

  // Progress once in a while, so an operator sees the capture move.
  uint64_t last_txns = 0;
  absl::Time next_report = absl::Now() + absl::Seconds(5);
  while (!g_stop.load()) {
    absl::SleepFor(absl::Milliseconds(100));
    if (absl::Now() >= next_report) {
      uint64_t txns = capture.stats().transactions.load();
      if (txns != last_txns) {
        spdlog::info("captured {} transactions, {} changes; durable up to {}", txns,
                     capture.stats().changes.load(), FormatLsn((*log)->durable_lsn()));
        last_txns = txns;
      }
      next_report = absl::Now() + absl::Seconds(5);
    }
    if (!stream_status.ok()) break;
  }
  g_stop = true;
  absl::Time stopping = absl::Now();
  // Calls in flight get a moment to finish; then they are cancelled.
  if (grpc_server) grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  status.Stop();
  http.reset();
  // Refreshes first: the coordinator dispatches nothing more, and the ones
  // in flight (in the coordinator or the worker pool) commit or roll back
  // while the stream still brings their fences in.
  refresh_thread.join();
  retention_thread.join();
  listener = nullptr;
  manager->reset();
  spdlog::info("refreshes stopped in {}", absl::FormatDuration(absl::Now() - stopping));
  stop_stream();
  if (auto s = (*log)->Sync(); !s.ok()) spdlog::error("final sync: {}", s.ToString());
  spdlog::info("stopped; change log durable up to {}", FormatLsn((*log)->durable_lsn()));
  return stream_status;
}

}  // namespace trickle::service

int main(int argc, char** argv) {
  auto config = trickle::service::ParseConfig(argc, argv);
  if (!config.ok()) {
    std::fprintf(stderr, "trickled: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  if (auto s = trickle::service::ConfigureLogging(config->log_level); !s.ok()) {
    std::fprintf(stderr, "trickled: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  // Debian's Abseil is built without NDEBUG, so by default every Mutex
  // acquisition is recorded in a lock-order graph (the capture thread alone
  // takes several locks per source transaction). The tests keep the check
  // and fail on a lock-order inversion; the service does not pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::signal(SIGTERM, HandleSignal);
  std::signal(SIGINT, HandleSignal);
  absl::Status status = trickle::service::Run(*config);
  if (!status.ok()) {
    spdlog::critical("{}", status.ToString());
    return 1;
  }
  return 0;
}
