// `tactus run`: read the procedure, build the run request, serve it, print the outcome.
#pragma once

#include "broker/cli_args.h"
#include "runtime/spawner/spawner.h"

namespace tactus::cli {

// Returns the process exit code (docs/cli.md).
int run_command(const CliOptions& options, spawner::SpawnerClient& spawner);

}  // namespace tactus::cli
