// The broker's effect-free services to a run (docs/protocol.md): the clocks, the random seed,
// checkpoint acknowledgements, modules beside the procedure; and the lines a run writes about
// itself (Log.* lines, audit lines). The session (broker/run_session.cpp) decides when; these
// say what.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/protocol/message.h"
#include "tools/registry.h"

namespace tactus::broker::services {

double unix_now();                                  // seconds since the epoch, with fraction
protocol::Json time_now();                          // time.now: {unix}
protocol::Json time_clock(double seconds_elapsed);  // time.clock: {seconds} since the run began
protocol::Json random_seed();                       // random.seed: {seed}, 31 bits from getrandom
// checkpoint: without a journal entry to replay, its function runs ({replayed: false}); its
// checkpoint.result is acknowledged ({}), and journaled (docs/durability.md).
protocol::Json checkpoint_ack();
protocol::Json checkpoint_result_ack();

// module.load {name}: require("a.b") of a module beside the procedure, a/b.lua else a/b.tac,
// read with the file tools' resolution below procedure_dir (no escape by .. or symlinks), at
// most max_read bytes. Its result is {source, path}.
tools::ToolOutcome load_module(const std::string& procedure_dir, const protocol::Json& params,
                               std::size_t max_read, const tools::TrustedFiles& trusted);

// module.load {procedure}: Procedure.run("helpers/sum.tac") of a sub-procedure file. The path
// (relative, ending .tac, no .. and no .tactus part) is taken beside the procedure
// (procedure_dir), else from invocation_dir (where tactus was started, as Python Tactus takes
// it); either way it must lie beneath project_dir, and is read with the file tools' resolution
// below it (no escape by symlinks). Its result is {source, path}.
struct ProcedureRoots {
  std::string procedure_dir, project_dir, invocation_dir;
};
tools::ToolOutcome load_procedure(const ProcedureRoots& roots, const protocol::Json& params,
                                  std::size_t max_read, const tools::TrustedFiles& trusted);

// Log.debug/info/warn/error as one line: "[info] message key=value ..." or, as_json, one JSON
// object {time, run_id, level, message, fields}. "" with error for a malformed event.
std::string log_line(const protocol::Json& params, const std::string& run_id, bool as_json,
                     std::string& error);

// Idempotency-Key for request n of run_id (tools.http.idempotency_key): the same on a resume,
// which numbers its requests the same way, and telling nothing of the run but its identity.
std::string idempotency_key(const std::string& run_id, std::int64_t n);

// An llm.chat's audit args: who asked which model with how much, not what was said (the
// conversation can be large and is the procedure's own data).
protocol::Json llm_audit_args(const protocol::Json& params);

// One audit line {time, run_id, tool, args, outcome, duration_ms, message?, usage?, cost?}:
// spend is a model call's {usage, cost}, or null.
protocol::Json audit_line(const std::string& run_id, const std::string& tool,
                          const protocol::Json& args, const tools::ToolOutcome& r, double ms,
                          const protocol::Json& spend);

// "provider/model" of an llm.chat's params: the run's usage is broken down by it.
std::string model_name(const protocol::Json& params);

}  // namespace tactus::broker::services
