// trickled's configuration: command-line flags, each also settable through an
// environment variable (12-factor). A flag given on the command line wins over
// the environment. Every option is documented where it is declared
// (config.cc): one sentence, its default, whether it can change at runtime.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace trickle::service {

struct ServiceConfig {
  std::string dsn;
  std::string slot_name;
  std::string publication_name;
  std::string data_dir;
  std::string log_level;
  bool create_missing = true;
  bool set_replica_identity = false;
  bool recreate_lost_slot = false;
  int protocol_version = 1;
  absl::Duration status_interval;
  absl::Duration sync_interval;
  int max_parallel_workers = 2;
  int max_consecutive_failures = 5;
  absl::Duration debounce;
  // Refresh-history retention (0 = no limit of that kind).
  int history_retention_days = 7;
  int64_t history_max_rows = 1000;
  // Admin RPC and HTTP endpoints ("" disables one).
  std::string grpc_address;
  std::string http_address;
  // Bearer token for the admin RPC (from --auth-token-file or
  // TRICKLE_AUTH_TOKEN); empty = no authentication.
  std::string auth_token;
};

// Parses argv (handles --help) after applying TRICKLE_* environment variables;
// returns positional arguments through `positional` when non-null.
absl::StatusOr<ServiceConfig> ParseConfig(int argc, char** argv);

// Applies the log level ("trace".."off") to spdlog.
absl::Status ConfigureLogging(const std::string& level);

}  // namespace trickle::service
