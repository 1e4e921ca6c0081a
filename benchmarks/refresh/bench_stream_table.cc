// bench_stream_table: creates or drops stream tables in a running database
// for the benchmark scripts, until the admin RPC exists. Creating runs the
// capture in-process on a setup slot of its own (as
// tests/integration/refresh_crash_test.cc does): the frontier the initial
// refresh sets is a WAL position, valid for trickled's slot too provided
// that slot was created first. The setup slot is dropped on exit.
//
//   bench_stream_table --dsn=... --publication_name=P create NAME 'QUERY' [--schedule=1s]
//   bench_stream_table --dsn=... --publication_name=P drop NAME
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "benchmarks/refresh/in_process_capture.h"
#include "common/pg_connection.h"
#include "scheduler/stream_table_manager.h"
#include "spdlog/spdlog.h"
#include "tests/support/postgres_server.h"

ABSL_FLAG(std::string, dsn, "", "Target database.");
ABSL_FLAG(std::string, publication_name, "trickle_sources", "trickled's publication.");
ABSL_FLAG(std::string, schedule, "1s", "Interval schedule of a created stream table.");
ABSL_FLAG(std::string, mode, "differential", "differential, full or auto.");
ABSL_FLAG(bool, set_replica_identity, true, "Set REPLICA IDENTITY FULL on sources lacking it.");

namespace trickle::bench {
namespace {

absl::Status Run(const std::vector<char*>& args) {
  const std::string dsn = absl::GetFlag(FLAGS_dsn);
  if (dsn.empty()) return absl::InvalidArgumentError("--dsn is required");
  if (args.size() < 3 || (std::string(args[1]) == "create" && args.size() != 4) ||
      (std::string(args[1]) == "drop" && args.size() != 3)) {
    return absl::InvalidArgumentError("usage: bench_stream_table create NAME QUERY | drop NAME");
  }
  const std::string verb = args[1], name = args[2];
  const std::string setup_slot = absl::StrCat("bench_setup_", getpid());
  std::string log_dir = testing::MakeTempDir("trickle-bench-setup-");

  absl::Status status;
  {
    InProcessCaptureOptions options;
    options.dsn = dsn;
    options.slot_name = setup_slot;
    options.publication_name = absl::GetFlag(FLAGS_publication_name);
    options.data_dir = log_dir;
    auto capture = InProcessCapture::Start(options);
    if (!capture.ok()) return capture.status();
    scheduler::ManagerOptions manager_options;
    manager_options.dsn = dsn;
    manager_options.publication_name = options.publication_name;
    manager_options.set_replica_identity = absl::GetFlag(FLAGS_set_replica_identity);
    auto manager =
        scheduler::StreamTableManager::Open(manager_options, &(*capture)->log(), (*capture)->fence_fn());
    if (!manager.ok()) {
      status = manager.status();
    } else if (verb == "create") {
      const std::string mode_name = absl::GetFlag(FLAGS_mode);
      delta::RefreshMode mode = mode_name == "full"   ? delta::RefreshMode::kFull
                                : mode_name == "auto" ? delta::RefreshMode::kAuto
                                                      : delta::RefreshMode::kDifferential;
      scheduler::CreateRequest request;
      request.name = name;
      request.query = args[3];
      request.mode = mode;
      request.schedule = absl::GetFlag(FLAGS_schedule);
      auto created = (*manager)->Create(request);
      status = created.status();
      if (created.ok()) {
        std::printf("created %s (%s, every %s)\n", name.c_str(),
                    std::string(scheduler::ModeName(created->effective_mode)).c_str(),
                    created->schedule.c_str());
      }
    } else if (verb == "drop") {
      status = (*manager)->Drop(name, /*cascade=*/true);
      if (status.ok()) std::printf("dropped %s\n", name.c_str());
    } else {
      status = absl::InvalidArgumentError(absl::StrCat("unknown command \"", verb, "\""));
    }
  }
  auto conn = PgConnection::Connect(dsn);
  if (conn.ok()) {
    auto dropped = (*conn)->ExecParams("SELECT pg_drop_replication_slot($1)", {setup_slot});
    if (!dropped.ok()) spdlog::warn("dropping the setup slot: {}", dropped.status().ToString());
  }
  (void)testing::RunCommand(absl::StrCat("rm -rf '", log_dir, "'"));
  return status;
}

}  // namespace
}  // namespace trickle::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("bench_stream_table create NAME QUERY | drop NAME");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  spdlog::set_level(spdlog::level::warn);
  absl::Status s = trickle::bench::Run(args);
  if (!s.ok()) {
    std::fprintf(stderr, "bench_stream_table: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
