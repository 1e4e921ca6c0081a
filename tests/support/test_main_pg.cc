// main() for test binaries that need PostgreSQL: one throwaway server per
// binary, started before the first test and removed after the last.
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "gtest/gtest.h"
#include "tests/support/postgres_server.h"

namespace trickle::testing {
namespace {
PostgresServer* g_server = nullptr;

class PostgresEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    PostgresServerOptions options;
    // TRICKLE_TEST_NEXT_XID: start the cluster's 32-bit xids there (e.g. just
    // below 2^32, so the test's transactions cross the wrap).
    if (const char* next = std::getenv("TRICKLE_TEST_NEXT_XID")) {
      options.next_xid = static_cast<uint32_t>(std::strtoul(next, nullptr, 10));
    }
    g_server = new PostgresServer(options);
    absl::Status status = g_server->Start();
    if (!status.ok()) {
      std::fprintf(stderr, "cannot start the test PostgreSQL: %s\n", status.ToString().c_str());
      std::abort();
    }
  }
  void TearDown() override {
    delete g_server;
    g_server = nullptr;
  }
};
}  // namespace

PostgresServer& TestPostgres() { return *g_server; }

}  // namespace trickle::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new trickle::testing::PostgresEnvironment());
  return RUN_ALL_TESTS();
}
