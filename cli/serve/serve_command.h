// `tactus serve`: a long-lived runtime with an HTTP API (docs/server.md). Many runs at once on
// a warm pool of jails, each run journaled before it is acknowledged.
#pragma once

#include "cli/args.h"
#include "runtime/spawner/spawner.h"

namespace tactus::cli {

// Serves until SIGTERM or SIGINT has drained it; the process exit code (0 after a drain, 2 on
// a configuration or listen error).
int serve_command(const CliOptions& options, spawner::SpawnerClient& spawner);

}  // namespace tactus::cli
