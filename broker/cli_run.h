// `tactus run`: read the procedure, build the run request, serve it, print the outcome.
#pragma once

#include "broker/cli_args.h"
#include "runtime/spawner/spawner.h"

namespace tactus::cli {

// The backend the options ask for (--no-sandbox and --backend none are the danger one).
spawner::Backend requested_backend(const CliOptions& options);

// `tactus config show FILE.tac`: reads the layers, resolves no secret.
int config_show_command(const CliOptions& options);

// Returns the process exit code (docs/cli.md).
int run_command(const CliOptions& options, spawner::SpawnerClient& spawner);

}  // namespace tactus::cli
