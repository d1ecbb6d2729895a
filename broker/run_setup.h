// The composition root: one function turns a procedure's trusted configuration (its layers,
// merged) and what the caller says over it (the limit flags, the backend) into everything a
// run needs: the RunRequest, the redactor and sealed secrets, the backend, the audit log, and
// (tool_context) the host tools' context with the providers. tactus run, validate, resume,
// test and eval call it; tactus serve will too.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "broker/audit_log.h"
#include "broker/journal/journal_secrets.h"
#include "broker/run_session.h"
#include "broker/run_trace.h"
#include "broker/run_usage.h"
#include "broker/secrets.h"
#include "sidecars/config.h"
#include "tools/tool_context.h"

namespace tactus::broker {

// What a caller may say over the configuration.
struct RunFlags {
  sidecars::LimitFlags limits;  // the last configuration layer (sidecars/flag_layer.cpp)
  std::string backend;          // "" (the configuration decides), "jail", "pool" or "none"
  bool no_sandbox = false;      // --no-sandbox: backend none
  bool log_json = false;        // Log.* events as JSON lines
};

struct RunSetup {
  std::string procedure;    // the .tac file as given
  sidecars::Config config;  // its files' layers: a run's identity (config_identity)
  // Limits, policy, backend, redactor, chunkname, procedure_dir, audit and log format; the
  // caller adds run_id, source, input, mode, options, exchanges and ask_human.
  RunRequest req;
  std::shared_ptr<Redactor> redactor;
  SecretSeal seal;  // the secrets by name, for the journal (broker/journal/journal_secrets.h)
  std::map<std::string, std::string> secrets;  // for command tools and providers
  std::string backend;                         // "jail", "pool" or "none"
  // Backend none: what asked for it ("--no-sandbox", "sandbox.enabled: false at FILE:L:C").
  std::string unsandboxed_because;
  std::unique_ptr<AuditLog> audit;
  // What the run uses (req.usage points here; a resume adds its journal's entries first).
  std::unique_ptr<RunUsage> usage = std::make_unique<RunUsage>();
  // telemetry: where the run's trace goes; unset: not traced. The caller makes the RunTrace
  // (req.trace) once the run has its id (make_trace).
  std::optional<TraceConfig> trace_config;
  // The trace of the run last served (its spans are sent by RunTrace::finish once the run's
  // end is journaled); null when not traced.
  std::unique_ptr<RunTrace> trace;
  // What the file tools wrote in the journaled part of a resumed run (sandbox.limits.disk
  // counts across resumes); the caller sets it.
  std::uint64_t disk_used = 0;
  // --mock-config FILE as read (a JSON object: mocked tool results, human answers); null: none.
  // Mocked runs only: the caller puts it in the runner's options.
  protocol::Json mock_config;
};

// What no tool of a run may write, or (hidden) read either (tools/trusted_files.h): every
// configuration layer, the procedure, the journal and the audit log wherever configured, the
// secret files, each .tactus directory from the procedure's directory, the project's root and
// the user's home upwards, and the MCP servers' install dirs (docs/security.md).
struct TrustedPaths {
  std::vector<std::string> files, hidden, dirs, code_dirs;
};
TrustedPaths trusted_paths(const sidecars::Config& config, const std::string& procedure);
tools::TrustedFiles trusted_files(const sidecars::Config& config, const std::string& procedure);

// procedure's layers, merged (sidecars::find_layers from it and $HOME). false: error names the
// file, line and field.
bool load_procedure_config(const std::string& procedure, sidecars::Config& config,
                           std::string& error);

// Composes setup for one run of procedure. Secrets are resolved here, in the broker, after the
// spawner was forked. false: error is one line (a configuration error, exit code 2).
bool compose_run(const std::string& procedure, const RunFlags& flags, RunSetup& setup,
                 std::string& error);

// The Python Tactus dialect's agent defaults and toolsets the configuration sets, as the VM's
// runner reads them (options.dialect); null when none is set.
protocol::Json dialect_of(const sidecars::Config& config);

// The budget the configuration sets (budget:), with where each limit was set.
Budget budget_of(const sidecars::Config& config);

// The trace of setup's run (req.run_id), or null when telemetry is off.
std::unique_ptr<RunTrace> make_trace(const RunSetup& setup);

// The host tools' context of a composed run: mounts, trusted files, disk, network, command
// tools with their own secrets, the providers (broker/llm_providers.h). setup must outlive it.
tools::ToolContext tool_context(const RunSetup& setup, tools::CommandLauncher& launcher);

// The secrets procedure's configuration declares, resolved into seal and redactor (for what
// `tactus answer` journals). false: error says why.
bool procedure_secrets(const std::string& procedure, SecretSeal& seal, Redactor& redactor,
                       std::string& error);

// The journal's absolute path: journal.path as configured (resolved against its file's
// directory), or by default .tactus/journal.db in the project, the nearest directory from the
// current one upwards that has a .tactus directory (else the current directory).
std::string journal_path(const sidecars::Config& config);

}  // namespace tactus::broker
