// `tactus test` and `tactus eval`: the scenarios of a file's Specification, each run in a
// fresh jail (docs/testing.md).
#pragma once

#include "cli/args.h"
#include "runtime/spawner/spawner.h"

namespace tactus::cli {

// Returns the process exit code: 0 all passed, 1 a scenario failed or the Specification is
// malformed, 2 usage or configuration error.
int test_command(const CliOptions& options, spawner::SpawnerClient& spawner);

// Runs each scenario N times and compares its pass rate with the threshold; exit code as above.
int eval_command(const CliOptions& options, spawner::SpawnerClient& spawner);

}  // namespace tactus::cli
