#include "tests/support/process.h"

#include <fcntl.h>
#include <spawn.h>

#include "gtest/gtest.h"
#include "tests/support/postgres_server.h"

extern char** environ;

namespace trickle::testing {

pid_t SpawnLogged(const std::vector<std::string>& args, const std::string& log_path) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0) << "cannot start " << args[0];
  return rc == 0 ? pid : 0;
}

std::vector<std::string> FreeListenAddressArgs() {
  int grpc_port = FreePort();
  int http_port = FreePort();
  while (http_port == grpc_port) http_port = FreePort();
  return {"--grpc-address=127.0.0.1:" + std::to_string(grpc_port),
          "--http-address=127.0.0.1:" + std::to_string(http_port)};
}

}  // namespace trickle::testing
