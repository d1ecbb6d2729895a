// tactus test --parallel: scenarios in worker processes (cli/parallel_scenarios.cpp).
#pragma once

#include <string>
#include <vector>

#include "runtime/protocol/message.h"

namespace tactus::cli {

// Runs scenarios 0..count-1 of the test command given by argv (this process's arguments), each
// in a fresh `tactus test ... --scenario-index K --json` process, workers at once (0: one per
// core). reports[K] is scenario K's report as `tactus test --json` gives one. false: error says
// why (a worker could not be started, or the run was interrupted).
bool run_parallel(const std::vector<std::string>& argv, int count, int workers,
                  std::vector<protocol::Json>& reports, std::string& error);

}  // namespace tactus::cli
