// trickled as a child process for the admin tests: the real binary, started
// against the test PostgreSQL with its own slot, publication, change log and
// free ports, stopped with SIGTERM. Plus small clients: a gRPC stub, raw
// HTTP, and running the `trickle` CLI.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "admin.grpc.pb.h"

namespace trickle::testing {

struct TrickledOptions {
  // Names the slot, publication and data dir (unique per test).
  std::string name;
  // The database trickled serves; empty = the test PostgreSQL's "postgres".
  std::string dsn;
  // Bearer token (passed through TRICKLE_AUTH_TOKEN); empty = none.
  std::string auth_token;
  std::vector<std::string> extra_args;
  // Wait until /readyz says ready (else only until /healthz answers).
  bool wait_ready = true;
  // Drop the catalog (schema pgtrickle) first, so stream tables of earlier
  // tests in the same database are not this service's.
  bool fresh_catalog = true;
};

class TrickledProcess {
 public:
  static absl::StatusOr<std::unique_ptr<TrickledProcess>> Start(TrickledOptions options);
  ~TrickledProcess();  // SIGTERM (SIGKILL after 20 s), then drops the slot

  // SIGTERM and wait; returns the exit status as waitpid reports it.
  int Stop();
  // Still running (not exited, not killed)?
  bool Alive();

  std::string grpc_address() const { return "127.0.0.1:" + std::to_string(grpc_port_); }
  int grpc_port() const { return grpc_port_; }
  int http_port() const { return http_port_; }
  const std::string& log_path() const { return log_path_; }
  std::string Log() const;  // the process's output so far
  const std::string& slot() const { return slot_; }

  // A stub on a fresh channel; `token` is sent as a bearer token when set.
  std::unique_ptr<admin::v1::TrickleAdmin::Stub> Stub() const;

 private:
  TrickledProcess() = default;
  pid_t pid_ = -1;
  int grpc_port_ = 0;
  int http_port_ = 0;
  std::string data_dir_;
  std::string log_path_;
  std::string slot_;
  std::string publication_;
};

// A client context with a deadline and, when `token` is set, the bearer token.
std::unique_ptr<grpc::ClientContext> Context(const std::string& token = "",
                                             absl::Duration timeout = absl::Seconds(120));

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};
// GET over a plain socket (HTTP/1.1, Connection: close).
absl::StatusOr<HttpReply> HttpGet(int port, const std::string& path);
// Sends raw bytes, then reads what comes back until the server closes or
// `timeout` passes; "" when nothing came back.
std::string SendRaw(int port, const std::string& bytes, absl::Duration timeout = absl::Seconds(5));
// The status code of a raw HTTP reply ("HTTP/1.1 400 ..."), 0 if none.
int StatusOf(const std::string& reply);

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs the trickle CLI with `args` (each one argument, no shell), with
// `env` added to the environment and `stdin_text` on its standard input.
CliResult RunCli(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {},
                 const std::string& stdin_text = "");

}  // namespace trickle::testing
