// One run, as the broker serves it: spawn a child, hand it the source, answer its requests,
// enforce the wall clock, and turn what happened into a typed RunResult.
#pragma once

#include <string>
#include <string_view>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "broker/audit_log.h"
#include "broker/journal/exchange_journal.h"
#include "broker/policy.h"
#include "broker/run_result.h"
#include "broker/run_usage.h"
#include "broker/secrets.h"
#include "runtime/spawner/spawner.h"
#include "sidecars/run_limits.h"
#include "tools/registry.h"

namespace tactus::broker {

class RunTrace;

// Stops one run from another thread (tactus serve's cancel): the session ends it as an error,
// "run cancelled", its jail killed, its end journaled like any failure. A host tool or model
// call in progress ends first (within its deadline); no later request is answered.
class RunStop {
 public:
  void stop();  // any thread, any time (before the run starts too)
  bool stopped() const;
  // The session's half: how to stop it while it is served; cleared when it ends.
  void arm(std::function<void()> kill);
  void disarm();

 private:
  mutable std::mutex m_;
  std::function<void()> kill_;
  bool stopped_ = false;
};

// What a run did, as it did it, for a watcher (tactus serve's event stream and metrics):
// {"type": "tool_call", "tool", "outcome", "ms"}, {"type": "model_call", "model", "outcome",
// "usage"}, {"type": "human_request", "kind", "request"}, {"type": "agent_chunk", "text"}.
// Masked like all output. Called on the run's thread.
using RunEventHook = std::function<void(const protocol::Json& event)>;

struct RunRequest {
  std::string run_id;
  std::string source;
  std::string chunkname;  // "@path/to/file.tac": what errors and tracebacks name
  protocol::Json input = protocol::Json::object();
  sidecars::RunLimits limits;
  RunPolicy policy;
  spawner::Backend backend = spawner::Backend::jail;
  bool danger_allow_exec = false;  // sandbox.jit
  // Secret values to mask in everything sent into the jail and written out. May be null.
  std::shared_ptr<const Redactor> redactor;
  // Where require("helpers.util") finds helpers/util.lua (or .tac). Empty: no such modules.
  std::string procedure_dir;
  AuditLog* audit = nullptr;  // audit.path; may be null
  // Durable runs: numbers, replays and journals every request (null: none is journaled).
  ExchangeJournal* exchanges = nullptr;
  // What the run has used so far (a resume's journaled calls included), counted on as it runs,
  // and what it may use: the call that would pass the budget ends the run (status budget).
  // usage may be null: nothing is counted, and no budget is kept.
  RunUsage* usage = nullptr;
  Budget budget;
  // OpenTelemetry spans of the run's agent turns, model and tool calls (telemetry:); null: off.
  RunTrace* trace = nullptr;
  // Asks a person at the terminal (Human.*); returns the answer's value, or nullopt when nobody
  // can be asked (no terminal, --no-input): the run then suspends if it has a journal.
  std::function<std::optional<protocol::Json>(const std::string& kind,
                                              const protocol::Json& params)>
      ask_human;
  // What the kernel's facts say about a jail that failed at setup step ("userns", "clone3",
  // ...), or "": a setup failure's RunResult::setup_hint. The CLI sets it from
  // runtime/jail/kernel_probes.h (the broker includes nothing from runtime/jail/). May be empty.
  std::function<std::string(const std::string& step)> explain_setup_failure;
  bool log_json = false;     // Log.* events as JSONL instead of readable lines
  std::string mode = "run";  // "validate": declarations only (tactus validate); "test"
  // The runner's options (tactus test: {scenario, mock}; run --mock: {mock}); null: none.
  protocol::Json options;
  // The trusted agent defaults and toolsets of the configuration (default_model,
  // default_provider, default_toolsets, toolsets; broker::dialect_of), sent with the options as
  // "dialect"; null: none set.
  protocol::Json dialect;
  // Where Procedure.run("path/to/sub.tac") may load from: beneath project_dir (the directory
  // holding the nearest .tactus/, else the procedure's), the path taken relative to the
  // procedure's directory, then to invocation_dir (the directory tactus was started in).
  std::string project_dir;
  std::string invocation_dir;
  std::shared_ptr<RunStop> stop;  // may be null
  RunEventHook on_event;          // may be empty
};

// Where the procedure's printed lines go. serve_child masks every secret value in what it
// writes here (and in the RunResult): an OutputSink never sees one.
class OutputSink {
 public:
  virtual ~OutputSink() = default;
  virtual void print(std::string_view line) = 0;
  // A Log.* event, formatted (a readable line, or one JSON object); stderr in the CLI.
  virtual void log(std::string_view line) { print(line); }
  // Why writing out failed (stdout on a full disk, a closed pipe), or "": the run then ends,
  // as "output closed: ...", instead of running on with nobody seeing what it prints.
  virtual std::string write_error() const { return ""; }
};

RunResult run_procedure(spawner::SpawnerClient& spawner, const RunRequest& request,
                        const tools::ToolRegistry& tools, OutputSink& out);

// The spawner's part of request: backend and OS-level limits.
spawner::SpawnRequest make_spawn_request(const RunRequest& request);

// A child that has already reported "ready" (a pool worker): the run message goes at once.
struct ReadyChild {
  std::vector<std::pair<std::string, long>> setup_steps_us;
};

// Serves a child that already exists: channel is the broker's end of its socketpair, and the
// child must be a child of this process (pidfd from CLONE_PIDFD or pidfd_open). Used by
// run_procedure, the worker pool (with ready set), and tests that play a misbehaving child.
RunResult serve_child(UniqueFd channel, UniqueFd pidfd, const RunRequest& request,
                      const tools::ToolRegistry& tools, OutputSink& out,
                      const ReadyChild* ready = nullptr);

}  // namespace tactus::broker
