// `tactus run`: read the procedure, build the run request, serve it, print the outcome.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "broker/audit_log.h"
#include "broker/journal/journal_secrets.h"
#include "broker/run_session.h"
#include "broker/run_setup.h"
#include "broker/secrets.h"
#include "broker/worker_pool.h"
#include "cli/args.h"
#include "runtime/spawner/spawner.h"
#include "sidecars/config.h"

namespace tactus::cli {

// Writes all of s to fd (retrying short writes and EINTR); gives up on an error.
// false with errno set when a write fails (EPIPE, ENOSPC, EBADF ...). Writing to a standard
// descriptor that was closed when tactus started fails with EBADF.
bool write_all(int fd, std::string_view s);

// Called first in main(): a closed stdin, stdout or stderr is opened on /dev/null, so no file
// tactus opens later (the journal, a socket) can take its number and receive printed lines,
// and is remembered as closed, so writing to it still fails.
void guard_standard_fds();

// The backend the options ask for (--no-sandbox and --backend none are the danger one).
spawner::Backend requested_backend(const CliOptions& options);

// `tactus config show FILE.tac`: reads the layers, resolves no secret.
int config_show_command(const CliOptions& options);

// Returns the process exit code (docs/cli.md).
int run_command(const CliOptions& options, spawner::SpawnerClient& spawner);

// One run of options.file made ready (broker/run_setup.h, the composition root), with its
// source and input. Shared by run, validate, resume, test and eval.
using PreparedRun = broker::RunSetup;

// false: error is one line (a usage or configuration error, exit code 2). Prints the warning
// of a run without the sandbox.
bool prepare_run(const CliOptions& options, PreparedRun& run, std::string& error);

// -v/--verbose: the configuration layers options.file reads, one line on stderr.
void print_layers(const CliOptions& options);

// The runner's options for a run of p: options plus {mock, mock_config} when --mock is given.
protocol::Json runner_options(const CliOptions& options, const PreparedRun& run,
                              protocol::Json extra);

// Serves a prepared run with the tools its configuration allows; printed lines reach out
// masked, and the result is masked. show_tokens: stream a model's reply on a terminal. pool:
// warm jails to take one from (tactus serve); null: a jail of its own (backend pool: a pool of
// one).
broker::RunResult execute_run(PreparedRun& run, const CliOptions& options,
                              spawner::SpawnerClient& spawner, broker::OutputSink& out,
                              bool show_tokens, broker::WorkerPool* pool = nullptr);

}  // namespace tactus::cli
