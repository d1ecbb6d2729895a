// The durable-run side of the command line: where the project's journal is, `tactus answer` and
// `tactus runs` (docs/durability.md).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "broker/journal/journal.h"
#include "cli/args.h"
#include "runtime/protocol/message.h"
#include "sidecars/config.h"

namespace tactus::cli {

// The journal of the project the current directory is in (found through ~/.tactus/config.yml
// and the nearest .tactus/config.yml), for resume, answer and runs; nothing is created. Null
// with error set when it cannot be read; null with error empty when there is none, path then
// saying where it would be.
std::unique_ptr<broker::Journal> existing_project_journal(std::string& path, std::string& error);
// "no run 'ID': there is no journal at PATH (...)".
std::string no_journal_message(const std::string& run_id, const std::string& path);

int answer_command(const CliOptions& options);
// Answers run's pending Human.* request with text, as `tactus answer --value` does (tactus
// serve's POST /v1/runs/ID/answers too). seq: the request's entry when the caller names it, or
// 0. false: error is one line. method: the request answered ("human.approve").
bool answer_pending(broker::Journal& journal, const broker::RunRecord& run, const std::string& text,
                    std::int64_t seq, std::string& error, std::string* method = nullptr);
int runs_command(const CliOptions& options);
// tactus runs fail RUN_ID: marks a run that is not finished failed (claiming it first).
int runs_fail_command(const CliOptions& options);

}  // namespace tactus::cli
