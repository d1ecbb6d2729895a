// One run of the command line's options, journaled when durable (docs/durability.md): a new
// run, or the resume of a journaled one (a suspended, interrupted or dead run, or one tactus
// serve accepted and queued). tactus run and resume print its outcome; tactus serve answers
// with it. The one place a run is claimed, replayed, served and its end journaled.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "broker/journal/journal.h"
#include "broker/run_result.h"
#include "broker/run_session.h"
#include "broker/run_trace.h"
#include "broker/worker_pool.h"
#include "cli/args.h"
#include "cli/run_command.h"
#include "runtime/spawner/spawner.h"

namespace tactus::cli {

// What a caller that is not a terminal's (tactus serve) adds to a run.
struct RunHooks {
  broker::WorkerPool* pool = nullptr;     // warm jails shared by runs (thread-safe); may be null
  std::shared_ptr<broker::RunStop> stop;  // stops the run from another thread; may be null
  broker::RunEventHook on_event;          // tool calls, human requests, model reply text
  // The project's journal for a resume, kept open by the caller (one per thread: a Journal is
  // not thread-safe); null: opened for the run.
  broker::Journal* journal = nullptr;
  // No person at a terminal: nothing is asked or said there; a Human.* request suspends.
  bool quiet = false;
};

struct DurableRun {
  broker::RunResult result;  // its run_id is set on a refusal too
  // Non-empty: refused before it ran, or the journal it needed could not be had (exit code 2).
  std::string usage_error;
  bool journaled = false;  // its end is in the journal (resumable when suspended, interrupted)
  // The run's trace, to be finished (sent) once its outcome is shown; null when off.
  std::unique_ptr<broker::RunTrace> trace;
};

// The journal's record of a new run of p (procedure as given: made absolute), with status:
// the hashes of its source and configuration, its input sealed and masked.
broker::RunRecord new_run_record(const PreparedRun& p, const std::string& procedure,
                                 const std::string& status);

// options.command is run or resume (resume: options.run_id names the journaled run). Printed
// lines reach out masked.
DurableRun run_durable(const CliOptions& options, spawner::SpawnerClient& spawner,
                       broker::OutputSink& out, const RunHooks& hooks);

}  // namespace tactus::cli
