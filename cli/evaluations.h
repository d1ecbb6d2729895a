// tactus eval of evaluations({dataset, evaluators, thresholds}) (cli/evaluations.cpp).
#pragma once

#include "cli/args.h"
#include "cli/run_command.h"
#include "runtime/spawner/spawner.h"

namespace tactus::cli {

// Runs each case of ev (the listing's "evaluations": cases, runs, thresholds) and prints the
// runs that passed per case and in all; 0 when the success rate reaches min_success_rate.
int run_evaluations(const CliOptions& options, PreparedRun& run, spawner::SpawnerClient& spawner,
                    const protocol::Json& ev);

}  // namespace tactus::cli
