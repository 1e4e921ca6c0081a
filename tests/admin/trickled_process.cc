#include "tests/admin/trickled_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpcpp/grpcpp.h"
#include "tests/support/postgres_server.h"

extern char** environ;

namespace trickle::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// posix_spawn with `env` added to (or replacing in) the environment.
pid_t Spawn(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
            const std::string& stdin_path, const std::string& stdout_path, const std::string& stderr_path) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    std::string key = entry.substr(0, entry.find('='));
    if (!env.contains(key)) env_strings.push_back(entry);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings = args;
  std::vector<char*> argv;
  for (auto& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, stdin_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  pid_t pid = -1;
  if (posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data()) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TrickledProcess>> TrickledProcess::Start(TrickledOptions options) {
  if (options.fresh_catalog) {
    auto conn = TestPostgres().Connect();
    if (!conn.ok()) return conn.status();
    auto dropped = (*conn)->Exec("SET client_min_messages = warning; DROP SCHEMA IF EXISTS pgtrickle CASCADE");
    if (!dropped.ok()) return dropped.status();
  }
  std::unique_ptr<TrickledProcess> p(new TrickledProcess());
  p->grpc_port_ = FreePort();
  p->http_port_ = FreePort();
  while (p->http_port_ == p->grpc_port_) p->http_port_ = FreePort();
  p->data_dir_ = MakeTempDir("trickle-admin-" + options.name + "-");
  p->log_path_ = p->data_dir_ + ".log";
  p->slot_ = "slot_" + options.name;
  p->publication_ = "pub_" + options.name;
  std::vector<std::string> args = {TRICKLED_PATH,
                                   "--dsn=" + (options.dsn.empty() ? TestPostgres().Dsn() : options.dsn),
                                   "--data-dir=" + p->data_dir_,
                                   "--slot-name=" + p->slot_,
                                   "--publication-name=" + p->publication_,
                                   "--grpc-address=" + p->grpc_address(),
                                   "--http-address=127.0.0.1:" + std::to_string(p->http_port_),
                                   "--status-interval=200ms",
                                   "--log-level=info"};
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  std::map<std::string, std::string> env;
  if (!options.auth_token.empty()) env["TRICKLE_AUTH_TOKEN"] = options.auth_token;
  p->pid_ = Spawn(args, env, "/dev/null", p->log_path_, p->log_path_);
  if (p->pid_ < 0) return absl::InternalError(absl::StrCat("cannot start ", TRICKLED_PATH));
  absl::Time deadline = absl::Now() + absl::Seconds(90);
  while (absl::Now() < deadline) {
    if (!p->Alive()) {
      return absl::InternalError(absl::StrCat("trickled exited during startup:\n", p->Log()));
    }
    auto reply = HttpGet(p->http_port_, options.wait_ready ? "/readyz" : "/healthz");
    if (reply.ok() && reply->status == 200) return p;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat("trickled did not become ready:\n", p->Log()));
}

TrickledProcess::~TrickledProcess() {
  Stop();
  auto conn = TestPostgres().Connect();
  if (conn.ok()) {
    (void)(*conn)->ExecParams(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 "
        "AND NOT active",
        {slot_});
  }
  std::error_code ignored;
  std::filesystem::remove_all(data_dir_, ignored);
}

bool TrickledProcess::Alive() {
  if (pid_ < 0) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

int TrickledProcess::Stop() {
  if (pid_ < 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  for (int i = 0; i < 200; ++i) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

std::string TrickledProcess::Log() const { return ReadFile(log_path_); }

std::unique_ptr<admin::v1::TrickleAdmin::Stub> TrickledProcess::Stub() const {
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(64 << 20);  // let oversized requests reach the server
  args.SetMaxReceiveMessageSize(64 << 20);
  return admin::v1::TrickleAdmin::NewStub(
      grpc::CreateCustomChannel(grpc_address(), grpc::InsecureChannelCredentials(), args));
}

std::unique_ptr<grpc::ClientContext> Context(const std::string& token, absl::Duration timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
  if (!token.empty()) context->AddMetadata("authorization", "Bearer " + token);
  return context;
}

std::string SendRaw(int port, const std::string& bytes, absl::Duration timeout) {
  int fd = Connect(port);
  if (fd < 0) return "";
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may close early (e.g. after a 431)
    sent += static_cast<size_t>(n);
  }
  std::string reply;
  absl::Time deadline = absl::Now() + timeout;
  char buf[8192];
  while (absl::Now() < deadline) {
    pollfd pfd{fd, POLLIN, 0};
    int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (poll(&pfd, 1, std::max(ms, 1)) <= 0) break;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return reply;
}

int StatusOf(const std::string& reply) {
  std::vector<std::string> parts = absl::StrSplit(reply.substr(0, reply.find("\r\n")), ' ');
  int status = 0;
  if (parts.size() >= 2 && absl::StartsWith(parts[0], "HTTP/")) absl::SimpleAtoi(parts[1], &status);
  return status;
}

absl::StatusOr<HttpReply> HttpGet(int port, const std::string& path) {
  std::string raw = SendRaw(
      port, absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
  if (raw.empty()) return absl::UnavailableError("no HTTP reply");
  HttpReply reply;
  reply.status = StatusOf(raw);
  size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return absl::DataLossError("no end of headers");
  std::vector<std::string> lines = absl::StrSplit(raw.substr(0, end), "\r\n");
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    reply.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
  }
  reply.body = raw.substr(end + 4);
  return reply;
}

CliResult RunCli(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
                 const std::string& stdin_text) {
  std::string dir = MakeTempDir("trickle-cli-");
  std::string in = dir + "/in", out = dir + "/out", err = dir + "/err";
  std::ofstream(in) << stdin_text;
  std::vector<std::string> argv = {TRICKLE_CLI_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  std::map<std::string, std::string> full_env = env;
  // The tests' own environment must not leak a token or address in.
  if (!full_env.contains("TRICKLE_AUTH_TOKEN")) full_env["TRICKLE_AUTH_TOKEN"] = "";
  if (!full_env.contains("TRICKLE_ADDRESS")) full_env["TRICKLE_ADDRESS"] = "";
  CliResult result;
  pid_t pid = Spawn(argv, full_env, in, out, err);
  if (pid > 0) {
    int status = 0;
    waitpid(pid, &status, 0);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  result.out = ReadFile(out);
  result.err = ReadFile(err);
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return result;
}

}  // namespace trickle::testing
