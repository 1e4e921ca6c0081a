// trickled: the Trickle service. Streams the source database's logical slot
// into the durable change log (and, as later stages land, refreshes stream
// tables from it). SIGTERM/SIGINT stop it cleanly: the stream confirms what
// is durable and closes.
#include <csignal>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/pg_connection.h"
#include "pgoutput/replication_stream.h"
#include "pgoutput/source_setup.h"
#include "service/capture.h"
#include "service/config.h"
#include "service/fence.h"
#include "scheduler/stream_table_manager.h"
#include "spdlog/spdlog.h"
#include "storage/change_log.h"

namespace {
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
  {
    auto conn = PgConnection::Connect(config.dsn);
    if (!conn.ok()) return conn.status();
    if (auto s = pgoutput::EnsurePublication(**conn, setup); !s.ok()) return s;
    auto slot = pgoutput::EnsureSlot(**conn, setup);
    if (!slot.ok()) return slot.status();
    spdlog::info("{} slot \"{}\" (confirmed flush {})", slot->created ? "created" : "using",
                 setup.slot_name, FormatLsn(slot->confirmed_flush));
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

  absl::Status stream_status;
  std::thread stream_thread([&] { stream_status = stream.Run(g_stop); });

  // Refreshes: the catalog in the target database, stream tables on their
  // interval schedules. A refresh in flight finishes before shutdown.
  FenceEmitter fences(config.dsn, &capture);
  scheduler::ManagerOptions manager_options;
  manager_options.dsn = config.dsn;
  manager_options.publication_name = config.publication_name;
  manager_options.set_replica_identity = config.set_replica_identity;
  auto manager = scheduler::StreamTableManager::Open(manager_options, log->get(),
                                                     [&fences] { return fences.Emit(); });
  if (!manager.ok()) {
    g_stop = true;
    stream_thread.join();
    return manager.status();
  }
  std::thread refresh_thread([&] {
    while (!g_stop.load()) {
      (*manager)->RunDueRefreshes(g_stop);
      absl::SleepFor(absl::Milliseconds(20));
    }
  });

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
  refresh_thread.join();  // lets the refresh in flight commit or roll back
  stream_thread.join();
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
  std::signal(SIGTERM, HandleSignal);
  std::signal(SIGINT, HandleSignal);
  absl::Status status = trickle::service::Run(*config);
  if (!status.ok()) {
    spdlog::critical("{}", status.ToString());
    return 1;
  }
  return 0;
}
