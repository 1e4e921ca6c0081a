// Child processes for tests (the real trickled, killed and restarted).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace trickle::testing {

// Starts argv[0] with `argv`, stdout and stderr appended to `log_path`.
// Returns the pid (0 and a test failure when it could not start).
pid_t SpawnLogged(const std::vector<std::string>& argv, const std::string& log_path);

// --grpc-address and --http-address on free loopback ports, so that trickled
// processes of tests running in parallel never fight over the default ports.
std::vector<std::string> FreeListenAddressArgs();

}  // namespace trickle::testing
