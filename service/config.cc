#include "service/config.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

// Each flag: what it is, its default, whether it can change at runtime.
// Environment: TRICKLE_<FLAG IN UPPER CASE>, e.g. TRICKLE_DSN.
ABSL_FLAG(std::string, dsn, "",
          "libpq connection string of the source database (key=value or postgresql:// URI). "
          "Required. Restart to change. Env TRICKLE_DSN.");
ABSL_FLAG(std::string, slot_name, "trickle",
          "Logical replication slot Trickle streams from (plugin pgoutput). Default trickle. "
          "Restart to change. Env TRICKLE_SLOT_NAME.");
ABSL_FLAG(std::string, publication_name, "trickle_sources",
          "Publication holding the source tables. Default trickle_sources. Restart to change. "
          "Env TRICKLE_PUBLICATION_NAME.");
ABSL_FLAG(std::string, data_dir, "./trickle-data",
          "Directory of the RocksDB change log (a persistent volume in production). "
          "Default ./trickle-data. Restart to change. Env TRICKLE_DATA_DIR.");
ABSL_FLAG(std::string, log_level, "info",
          "Log level: trace, debug, info, warn, error, critical or off. Default info. "
          "Env TRICKLE_LOG_LEVEL.");
ABSL_FLAG(bool, create_missing, true,
          "Create the slot and the publication when they do not exist. Default true. "
          "Env TRICKLE_CREATE_MISSING.");
ABSL_FLAG(bool, set_replica_identity, false,
          "Set REPLICA IDENTITY FULL on published source tables that lack it (else refuse "
          "with the statement to run). Default false. Env TRICKLE_SET_REPLICA_IDENTITY.");
ABSL_FLAG(bool, recreate_lost_slot, false,
          "When PostgreSQL has invalidated the slot (wal_status lost, past "
          "max_slot_wal_keep_size), drop it, create a new one and refresh every stream table in "
          "full (else refuse to start, saying so). Default false. Env TRICKLE_RECREATE_LOST_SLOT.");
ABSL_FLAG(int, protocol_version, 1,
          "pgoutput proto_version (1 or 2). Default 1. Restart to change. "
          "Env TRICKLE_PROTOCOL_VERSION.");
ABSL_FLAG(absl::Duration, status_interval, absl::Seconds(1),
          "Longest gap between standby status updates to the server (capped at "
          "wal_sender_timeout/2). Default 1s. Env TRICKLE_STATUS_INTERVAL.");
ABSL_FLAG(absl::Duration, sync_interval, absl::Milliseconds(100),
          "Group-commit interval: the change log is fsynced at least this often while "
          "changes arrive. Default 100ms. Env TRICKLE_SYNC_INTERVAL.");

ABSL_FLAG(std::string, grpc_address, "127.0.0.1:7433",
          "host:port of the admin RPC (gRPC, trickle.admin.v1; the trickle CLI talks to it). "
          "Default 127.0.0.1:7433 (loopback only); \"\" disables it. Restart to change. "
          "Env TRICKLE_GRPC_ADDRESS.");
ABSL_FLAG(std::string, http_address, "127.0.0.1:7434",
          "host:port of the HTTP endpoints /metrics, /healthz and /readyz. Default "
          "127.0.0.1:7434; use 0.0.0.0:7434 where Prometheus scrapes from elsewhere; \"\" "
          "disables it. Restart to change. Env TRICKLE_HTTP_ADDRESS.");
ABSL_FLAG(std::string, auth_token_file, "",
          "File holding the bearer token every admin RPC except GetHealth must present "
          "(surrounding whitespace ignored). The token may instead be given in "
          "TRICKLE_AUTH_TOKEN. Default none: no authentication. Restart to change. "
          "Env TRICKLE_AUTH_TOKEN_FILE.");

ABSL_FLAG(int, max_parallel_workers, 2,
          "Refresh workers, each with its own connection (0 = refresh serially in the "
          "coordinator; at most 32). Default 2. Restart to change. Env TRICKLE_MAX_PARALLEL_WORKERS.");
ABSL_FLAG(int, max_consecutive_failures, 5,
          "After this many consecutive failed refreshes a stream table's status becomes ERROR "
          "(definite errors such as a dropped source do so at once; an outage of the database or "
          "of the replication stream never does). Default 5. "
          "Env TRICKLE_MAX_CONSECUTIVE_FAILURES.");
ABSL_FLAG(int, history_retention_days, 7,
          "Refresh history (pgtrickle.refresh_history) older than this many days is deleted in the "
          "background (0 = keep any age). The newest successful FULL refresh of each stream table is "
          "kept. Default 7. Restart to change. Env TRICKLE_HISTORY_RETENTION_DAYS.");
ABSL_FLAG(int64_t, history_max_rows, 1000,
          "At most this many refresh-history rows are kept per stream table, the newest (0 = no "
          "limit). Default 1000. Restart to change. Env TRICKLE_HISTORY_MAX_ROWS.");
ABSL_FLAG(absl::Duration, debounce, absl::Milliseconds(10),
          "How long an on-change stream table waits after the first change arrives, to coalesce "
          "bursts. Default 10ms. Env TRICKLE_DEBOUNCE.");

namespace trickle::service {
namespace {

constexpr const char* kEnvFlags[] = {"dsn",           "slot_name",        "publication_name",
                                     "data_dir",      "log_level",        "create_missing",
                                     "set_replica_identity", "recreate_lost_slot", "protocol_version",
                                     "status_interval", "sync_interval",
                                     "max_parallel_workers", "max_consecutive_failures",
                                     "debounce", "history_retention_days", "history_max_rows",
                                     "grpc_address",  "http_address",     "auth_token_file"};

// The admin RPC's token: from the file, or TRICKLE_AUTH_TOKEN (not both).
absl::StatusOr<std::string> ReadAuthToken(const std::string& file) {
  const char* env = std::getenv("TRICKLE_AUTH_TOKEN");
  if (!file.empty() && env != nullptr && *env != '\0') {
    return absl::InvalidArgumentError(
        "both --auth-token-file and TRICKLE_AUTH_TOKEN are set; keep one");
  }
  std::string token;
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) {
      return absl::InvalidArgumentError(absl::StrCat("--auth-token-file=", file,
                                                     ": cannot read it (does it exist, is it readable?)"));
    }
    token.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (std::string(absl::StripAsciiWhitespace(token)).empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--auth-token-file=", file, " is empty"));
    }
  } else if (env != nullptr) {
    token = env;
  }
  return std::string(absl::StripAsciiWhitespace(token));
}

absl::Status ApplyEnvironment() {
  for (const char* name : kEnvFlags) {
    std::string env = absl::StrCat("TRICKLE_", absl::AsciiStrToUpper(name));
    const char* value = std::getenv(env.c_str());
    if (value == nullptr) continue;
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    std::string error;
    if (flag == nullptr || !flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(
          absl::StrCat("environment variable ", env, "=\"", value, "\" is invalid: ", error));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServiceConfig> ParseConfig(int argc, char** argv) {
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::StrContains(file, "service/");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  usage.normalize_filename = [](absl::string_view f) { return std::string(f); };
  usage.version_string = []() { return std::string("trickled 0.1.0\n"); };
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "trickled: keeps stream tables fresh for PostgreSQL from outside the database.\n"
      "Every flag can also be set with an environment variable TRICKLE_<FLAG>, e.g. "
      "TRICKLE_DSN.\nUsage: trickled --dsn='host=... dbname=...' [--data-dir=DIR] ...");
  if (absl::Status s = ApplyEnvironment(); !s.ok()) return s;
  // Accept --slot-name as well as --slot_name: hyphens read better on a
  // command line and in Kubernetes manifests.
  std::vector<std::string> args(argv, argv + argc);
  std::vector<char*> normalized;
  for (std::string& arg : args) {
    if (absl::StartsWith(arg, "--")) {
      size_t end = std::min(arg.find('='), arg.size());
      for (size_t i = 2; i < end; ++i) {
        if (arg[i] == '-') arg[i] = '_';
      }
    }
    normalized.push_back(arg.data());
  }
  absl::ParseCommandLine(static_cast<int>(normalized.size()), normalized.data());

  ServiceConfig config;
  config.dsn = absl::GetFlag(FLAGS_dsn);
  config.slot_name = absl::GetFlag(FLAGS_slot_name);
  config.publication_name = absl::GetFlag(FLAGS_publication_name);
  config.data_dir = absl::GetFlag(FLAGS_data_dir);
  config.log_level = absl::GetFlag(FLAGS_log_level);
  config.create_missing = absl::GetFlag(FLAGS_create_missing);
  config.set_replica_identity = absl::GetFlag(FLAGS_set_replica_identity);
  config.recreate_lost_slot = absl::GetFlag(FLAGS_recreate_lost_slot);
  config.protocol_version = absl::GetFlag(FLAGS_protocol_version);
  config.status_interval = absl::GetFlag(FLAGS_status_interval);
  config.sync_interval = absl::GetFlag(FLAGS_sync_interval);
  config.max_parallel_workers = absl::GetFlag(FLAGS_max_parallel_workers);
  config.max_consecutive_failures = absl::GetFlag(FLAGS_max_consecutive_failures);
  config.debounce = absl::GetFlag(FLAGS_debounce);
  config.history_retention_days = absl::GetFlag(FLAGS_history_retention_days);
  config.history_max_rows = absl::GetFlag(FLAGS_history_max_rows);
  if (config.history_retention_days < 0 || config.history_max_rows < 0) {
    return absl::InvalidArgumentError(
        "--history-retention-days and --history-max-rows must not be negative (0 = no limit)");
  }
  if (config.max_parallel_workers < 0 || config.max_parallel_workers > 32) {
    return absl::InvalidArgumentError(absl::StrCat("--max-parallel-workers=", config.max_parallel_workers,
                                                   " is outside 0..32"));
  }
  if (config.max_consecutive_failures < 1) {
    return absl::InvalidArgumentError("--max-consecutive-failures must be at least 1");
  }
  config.grpc_address = absl::GetFlag(FLAGS_grpc_address);
  config.http_address = absl::GetFlag(FLAGS_http_address);
  auto token = ReadAuthToken(absl::GetFlag(FLAGS_auth_token_file));
  if (!token.ok()) return token.status();
  config.auth_token = *token;
  if (!config.grpc_address.empty() && config.grpc_address.find(':') == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--grpc-address=", config.grpc_address, " is not host:port, e.g. 127.0.0.1:7433"));
  }

  if (config.dsn.empty()) {
    return absl::InvalidArgumentError(
        "no source database: pass --dsn='host=... dbname=... user=...' or set TRICKLE_DSN");
  }
  if (config.protocol_version < 1 || config.protocol_version > 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--protocol-version=", config.protocol_version, " is not supported; use 1 or 2"));
  }
  if (config.slot_name.empty() || config.publication_name.empty() || config.data_dir.empty()) {
    return absl::InvalidArgumentError(
        "--slot-name, --publication-name and --data-dir must not be empty");
  }
  if (config.status_interval <= absl::ZeroDuration() ||
      config.sync_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--status-interval and --sync-interval must be positive");
  }
  return config;
}

absl::Status ConfigureLogging(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--log-level=", level, " is not a level; use trace, debug, info, warn, error, critical or off"));
  }
  spdlog::set_level(parsed);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ [%t] %v");
  return absl::OkStatus();
}

}  // namespace trickle::service
