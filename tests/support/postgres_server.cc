#include "tests/support/postgres_server.h"

#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace trickle::testing {
namespace {
std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}
}  // namespace

absl::Status RunCommand(const std::string& command) {
  int rc = std::system(command.c_str());
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("command failed (status ", rc, "): ", command));
  }
  return absl::OkStatus();
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

std::string MakeTempDir(const std::string& prefix) {
  std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "XXXXXX")).string();
  char* made = mkdtemp(tmpl.data());
  return made ? std::string(made) : std::string();
}

std::string PostgresServer::BinDir() {
  if (const char* dir = std::getenv("TRICKLE_PG_BINDIR")) return dir;
  return "/usr/lib/postgresql/15/bin";
}

PostgresServer::PostgresServer(PostgresServerOptions options) : options_(std::move(options)) {}

PostgresServer::~PostgresServer() {
  if (running_) (void)Stop();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

absl::Status PostgresServer::RunAsServerUser(const std::string& command) const {
  if (geteuid() == 0) {
    return RunCommand(absl::StrCat("runuser -u postgres -- sh -c ", ShellQuote(command)));
  }
  return RunCommand(command);
}

absl::Status PostgresServer::Start() {
  dir_ = MakeTempDir("trickle-pg-");
  if (dir_.empty()) return absl::InternalError("cannot create a temp dir for PostgreSQL");
  data_dir_ = dir_ + "/data";
  port_ = FreePort();
  if (geteuid() == 0) {
    struct passwd* pw = getpwnam("postgres");
    if (pw == nullptr) {
      return absl::FailedPreconditionError(
          "running as root but there is no `postgres` user; install postgresql-15 "
          "(scripts/install-deps.sh)");
    }
    if (chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      return absl::InternalError(absl::StrCat("cannot chown ", dir_, " to postgres"));
    }
  }
  std::string bin = BinDir();
  if (options_.standby_of != nullptr) {
    // A copy of the primary that streams from it (-R: standby.signal and
    // primary_conninfo); its own port and socket directory come below.
    const PostgresServer& primary = *options_.standby_of;
    TRICKLE_RETURN_IF_ERROR(RunAsServerUser(absl::StrCat(
        bin, "/pg_basebackup -R -X stream -c fast -D ", ShellQuote(data_dir_), " -h ",
        ShellQuote(primary.socket_dir()), " -p ", primary.port(), " -U postgres > ", ShellQuote(dir_),
        "/basebackup.log 2>&1")));
  } else {
    TRICKLE_RETURN_IF_ERROR(RunAsServerUser(absl::StrCat(
        bin, "/initdb -D ", ShellQuote(data_dir_),
        " -U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 > ", ShellQuote(dir_),
        "/initdb.log 2>&1")));
  }
  std::map<std::string, std::string> settings = {
      {"wal_level", "logical"},
      {"max_replication_slots", "20"},
      {"max_wal_senders", "20"},
      {"max_connections", "200"},
      {"port", std::to_string(port_)},
      {"listen_addresses", "'127.0.0.1'"},
      {"unix_socket_directories", absl::StrCat("'", dir_, "'")},
      {"fsync", "off"},
      {"shared_buffers", "256MB"},
      {"max_wal_size", "2GB"},
      {"log_min_messages", "warning"},
      {"wal_sender_timeout", "60s"},
  };
  for (const auto& [k, v] : options_.settings) settings[k] = v;
  {
    std::ofstream conf(data_dir_ + "/postgresql.conf", std::ios::app);
    for (const auto& [k, v] : settings) conf << k << " = " << v << "\n";
  }
  // A standby has the primary's xid position already.
  if (options_.standby_of == nullptr) TRICKLE_RETURN_IF_ERROR(SetXidPosition());
  TRICKLE_RETURN_IF_ERROR(PgCtl("-w -t 60 start"));
  running_ = true;
  return absl::OkStatus();
}

absl::Status PostgresServer::PgCtl(const std::string& action) const {
  return RunAsServerUser(absl::StrCat(BinDir(), "/pg_ctl -D ", ShellQuote(data_dir_), " -l ",
                                      ShellQuote(dir_ + "/server.log"), " ", action,
                                      " > /dev/null"));
}

absl::Status PostgresServer::FreezeAll() {
  // Every database, template0 included, so that no datfrozenxid is left
  // behind: one more than 2^31 xids behind the next xid would be "in the
  // future" (a state PostgreSQL's wraparound protection never allows).
  TRICKLE_RETURN_IF_ERROR(PgCtl("-w -t 60 start"));
  std::string psql = absl::StrCat(BinDir(), "/psql -X -q -h ", ShellQuote(dir_), " -p ", port_,
                                  " -U postgres -d postgres -c ");
  absl::Status frozen = RunAsServerUser(
      psql + ShellQuote("UPDATE pg_database SET datallowconn = true WHERE datname = 'template0'"));
  if (frozen.ok()) {
    frozen = RunAsServerUser(absl::StrCat(BinDir(), "/vacuumdb -h ", ShellQuote(dir_), " -p ",
                                          port_, " -U postgres --all --freeze --quiet"));
  }
  if (frozen.ok()) {
    frozen = RunAsServerUser(psql + ShellQuote(
        "UPDATE pg_database SET datallowconn = false WHERE datname = 'template0'"));
  }
  TRICKLE_RETURN_IF_ERROR(PgCtl("-m fast -w -t 60 stop"));
  return frozen;
}

absl::Status PostgresServer::ResetWal(uint32_t epoch, uint32_t next_xid) {
  std::string args;
  if (epoch != 0) args += absl::StrCat(" -e ", epoch);
  if (next_xid != 0) {
    args += absl::StrCat(" -x ", next_xid);
    // The commit log has a 256 kB segment per 2^20 xids; the server reads
    // the next xid's page from it, so the segment must exist (zeroed).
    std::string segment =
        absl::StrCat(data_dir_, "/pg_xact/", absl::StrFormat("%04X", next_xid >> 20));
    TRICKLE_RETURN_IF_ERROR(RunAsServerUser(absl::StrCat(
        "test -e ", ShellQuote(segment), " || dd if=/dev/zero of=", ShellQuote(segment),
        " bs=262144 count=1 status=none")));
  }
  if (args.empty()) return absl::OkStatus();
  return RunAsServerUser(absl::StrCat(BinDir(), "/pg_resetwal", args, " ", ShellQuote(data_dir_),
                                      " > /dev/null"));
}

absl::Status PostgresServer::SetXidPosition() {
  if (options_.next_xid != 0) {
    // Rows initdb wrote carry xids near 700, and every table and database
    // records the oldest xid it may hold: moving the next xid by 2^31 or
    // more at once would put them "in the future". So move in hops of less
    // than 2^31, freezing everything before each.
    uint32_t xid = 1000;  // above initdb's
    while (options_.next_xid - xid > (uint32_t{1} << 30) && options_.next_xid > xid) {
      xid += uint32_t{1} << 30;
      TRICKLE_RETURN_IF_ERROR(FreezeAll());
      TRICKLE_RETURN_IF_ERROR(ResetWal(0, xid));
    }
    TRICKLE_RETURN_IF_ERROR(FreezeAll());
  }
  return ResetWal(options_.xid_epoch, options_.next_xid);
}

absl::Status PostgresServer::Stop() {
  if (!running_) return absl::OkStatus();
  running_ = false;
  return PgCtl("-m fast -w -t 60 stop");
}

absl::Status PostgresServer::CrashRestart() {
  TRICKLE_RETURN_IF_ERROR(PgCtl("-m immediate -w stop"));
  return PgCtl("-w -t 60 start");
}

std::string PostgresServer::Dsn(const std::string& dbname) const {
  return absl::StrCat("host=", dir_, " port=", port_, " dbname=", dbname, " user=postgres");
}

absl::StatusOr<std::unique_ptr<PgConnection>> PostgresServer::Connect(
    const std::string& dbname) const {
  return PgConnection::Connect(Dsn(dbname));
}

}  // namespace trickle::testing
