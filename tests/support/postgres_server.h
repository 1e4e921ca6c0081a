// A throwaway PostgreSQL 15 for tests: initdb into a temp dir,
// wal_level=logical, a free port, the unix socket in the temp dir; when the
// test runs as root, the server runs as the `postgres` user. Removed on Stop().
//
// Every integration test binary links trickle_test_main_pg, whose main()
// starts one server per binary (a gtest Environment) and stops it at exit;
// tests reach it through TestPostgres().
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/pg_connection.h"

namespace trickle::testing {

struct PostgresServerOptions {
  // Extra postgresql.conf settings, e.g. {"synchronous_commit", "off"}.
  std::map<std::string, std::string> settings;
  // The cluster starts at this xid epoch (pg_resetwal -e), like a database
  // past 2^32 transactions: every 64-bit xid (pg_current_snapshot) is then
  // above 2^32 while pgoutput sends 32-bit xids. Default 1; 0 for none.
  uint32_t xid_epoch = 1;
  // When non-zero, the next 32-bit xid (pg_resetwal -x), e.g. just below
  // 2^32 to cross the wrap. The cluster gets there in hops of 2^30 xids,
  // frozen before each (so initdb's rows and every database's frozen-xid
  // horizon stay in the past, as in a real database that old).
  uint32_t next_xid = 0;
  // When set, the cluster is a hot standby of this (running) server: a
  // pg_basebackup -R of it instead of initdb, streaming from it, read-only.
  // Not owned; must outlive the standby.
  const class PostgresServer* standby_of = nullptr;
};

class PostgresServer {
 public:
  explicit PostgresServer(PostgresServerOptions options = {});
  ~PostgresServer();  // stops and removes the cluster

  absl::Status Start();
  absl::Status Stop();
  // Stops with "immediate" (a crash) and starts again on the same data.
  absl::Status CrashRestart();

  int port() const { return port_; }
  const std::string& socket_dir() const { return dir_; }
  const std::string& data_dir() const { return data_dir_; }
  // libpq DSN for a database (default "postgres") as superuser "postgres".
  std::string Dsn(const std::string& dbname = "postgres") const;
  absl::StatusOr<std::unique_ptr<PgConnection>> Connect(const std::string& dbname = "postgres") const;
  // Directory with initdb, pg_ctl, pg_recvlogical, pgbench, ...
  static std::string BinDir();

 private:
  absl::Status RunAsServerUser(const std::string& command) const;
  absl::Status PgCtl(const std::string& action) const;
  // pg_resetwal -e/-x on the stopped cluster, as options_ ask.
  absl::Status SetXidPosition();
  // VACUUM FREEZE of every database (starts and stops the server).
  absl::Status FreezeAll();
  // pg_resetwal -e / -x (0: leave as is) on the stopped cluster.
  absl::Status ResetWal(uint32_t epoch, uint32_t next_xid);
  PostgresServerOptions options_;
  std::string dir_;
  std::string data_dir_;
  int port_ = 0;
  bool running_ = false;
};

// The server of this test binary (started by trickle_test_main_pg).
PostgresServer& TestPostgres();

// Runs a shell command; returns its exit status as an error when non-zero.
absl::Status RunCommand(const std::string& command);
// A TCP port nothing listens on right now.
int FreePort();
// A new empty temp dir (removed by the caller or at exit).
std::string MakeTempDir(const std::string& prefix);

}  // namespace trickle::testing
