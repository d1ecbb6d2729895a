#include "broker/run_result.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <linux/audit.h>
#include <seccomp.h>

#include "runtime/protocol/exit_codes.h"
#include "sidecars/units.h"

namespace tactus::broker {
namespace {

const char* arch_name(std::uint32_t arch) {
  switch (arch) {
    case AUDIT_ARCH_X86_64:
      return "x86_64";
    case AUDIT_ARCH_I386:
      return "x86";
    case AUDIT_ARCH_AARCH64:
      return "aarch64";
    case AUDIT_ARCH_ARM:
      return "arm";
    default:
      return "unknown";
  }
}

// The syscall's name for its architecture; x32 numbers come with the x86_64 token and bit 30.
std::string syscall_name(std::uint32_t arch, long nr, std::string& arch_text) {
  arch_text = arch_name(arch);
  constexpr long kX32Bit = 0x40000000;
  if (arch == AUDIT_ARCH_X86_64 && (nr & kX32Bit)) {
    arch = SCMP_ARCH_X32;
    arch_text = "x32";
  }
  char* name = seccomp_syscall_resolve_num_arch(arch, static_cast<int>(nr));
  std::string out = name ? name : "?";
  std::free(name);
  return out;
}

std::string describe_signal(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return std::to_string(sig) + (abbrev ? std::string(", SIG") + abbrev : std::string());
}

// A VM that ended with an error: its kind decides the status.
void classify_done(ChildOutcome& o, const sidecars::RunLimits& L, RunResult& r) {
  if (o.done_ok) {
    r.status = RunStatus::ok;
    r.result = std::move(o.done_result);
    return;
  }
  r.status = o.done_kind == "memory"         ? RunStatus::memory
             : o.done_kind == "instructions" ? RunStatus::cpu
             : o.done_kind == "output"       ? RunStatus::output
                                             : RunStatus::error;
  r.message = o.done_message;
  if (r.status == RunStatus::memory)
    r.message =
        "memory limit of " + sidecars::format_size(L.memory) + " exceeded: " + o.done_message;
  r.traceback = o.done_traceback;
}

// A child that ended without a result, a limit or a violation.
void classify_exit(const ChildOutcome& o, const sidecars::RunLimits& L, RunResult& r) {
  if (o.exit_signal == SIGXCPU || o.exit_code == protocol::kExitCpuLimit) {
    r.status = RunStatus::cpu;
    r.message = "CPU time limit of " + std::to_string(L.cpu_seconds) + " s exceeded";
  } else if (o.exit_signal != 0) {
    r.status = RunStatus::crashed;
    r.signal = o.exit_signal;
    r.message = "the procedure's process was killed by signal " + describe_signal(o.exit_signal);
  } else {
    r.status = RunStatus::crashed;
    r.exit_code = o.exit_code;
    r.message = std::string("the procedure's process exited (code ") + std::to_string(o.exit_code) +
                ") without a result" + (o.truncated ? " in the middle of a message" : "");
  }
}

}  // namespace

std::string setup_hint(bool jailed) {
  if (!jailed) return "";
  return "; the jail cannot be built here (see 'tactus sandbox status'); --no-sandbox runs "
         "without it, with no isolation";
}

void classify(ChildOutcome o, const std::string& run_id, const sidecars::RunLimits& L, bool jailed,
              const std::string& explanation, RunResult& r) {
  r.peak_rss_kib = o.peak_rss_kib;
  // Interrupted, unless something else had ended the run first (a limit, a violation, a
  // journal failure, a result or a suspension): those keep their own status.
  if (o.interrupted && !o.done && !o.suspended && !o.stopped && !o.violated &&
      !o.seccomp_reported && !o.timed_out && !o.output_exceeded && !o.over_budget) {
    mark_interrupted(r, o.interrupted);
  } else if (o.over_budget) {
    r.status = RunStatus::budget;
    r.message = o.budget_message;
  } else if (o.suspended) {
    r.status = RunStatus::suspended;
    r.pending = o.pending;
    r.message = "run " + run_id + " is waiting for an answer to " + o.pending +
                ": answer it with 'tactus answer " + run_id +
                " --value VALUE', then 'tactus resume " + run_id + "'";
  } else if (o.stopped) {
    r.status = RunStatus::error;
    r.message = o.stop_message;
  } else if (o.seccomp_reported || o.exit_signal == SIGSYS) {
    r.status = RunStatus::violation;
    r.violation = "seccomp";
    if (o.seccomp_nr >= 0) {
      r.syscall = syscall_name(o.seccomp_arch, o.seccomp_nr, r.arch);
      r.syscall_nr = o.seccomp_nr;
      r.message = "sandbox violation: syscall " + r.syscall + " (" + std::to_string(o.seccomp_nr) +
                  ", " + r.arch + ")";
    } else {
      r.message = "sandbox violation: a syscall outside the allowlist (killed by SIGSYS)";
    }
  } else if (o.violated) {
    r.status = RunStatus::violation;
    r.violation = o.violation;
    r.message = "sandbox violation: " + o.violation;
  } else if (o.timed_out) {
    r.status = RunStatus::timeout;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", L.timeout_seconds);
    r.message = std::string("wall-clock timeout of ") + buf + " s exceeded; the run was killed";
  } else if (o.output_exceeded) {
    r.status = RunStatus::output;
    r.message = "output limit exceeded (" + sidecars::format_size(L.output) + ")";
  } else if (o.done) {
    classify_done(o, L, r);
  } else if (o.setup_failed) {
    r.status = RunStatus::setup;
    r.setup_step = o.setup_step;
    r.setup_errno = o.setup_errno;
    r.message = "sandbox setup failed at step '" + o.setup_step +
                "': " + std::strerror(o.setup_errno) + setup_hint(jailed);
    r.setup_hint = explanation;
  } else {
    classify_exit(o, L, r);
  }
}

const char* to_string(RunStatus s) {
  switch (s) {
    case RunStatus::ok:
      return "ok";
    case RunStatus::error:
      return "error";
    case RunStatus::timeout:
      return "timeout";
    case RunStatus::memory:
      return "memory";
    case RunStatus::cpu:
      return "cpu";
    case RunStatus::output:
      return "output";
    case RunStatus::violation:
      return "violation";
    case RunStatus::crashed:
      return "crashed";
    case RunStatus::setup:
      return "setup";
    case RunStatus::suspended:
      return "suspended";
    case RunStatus::interrupted:
      return "interrupted";
    case RunStatus::budget:
      return "budget";
  }
  return "error";
}

int exit_code(RunStatus s) {
  switch (s) {
    case RunStatus::ok:
      return 0;
    case RunStatus::error:
      return 1;
    case RunStatus::timeout:
    case RunStatus::memory:
    case RunStatus::cpu:
    case RunStatus::output:
      return 3;
    case RunStatus::violation:
    case RunStatus::crashed:
    case RunStatus::setup:
      return 4;
    case RunStatus::suspended:
      return 5;
    case RunStatus::interrupted:
      return 130;
    case RunStatus::budget:
      return 6;
  }
  return 1;
}

void mark_interrupted(RunResult& r, int signal) {
  r.status = RunStatus::interrupted;
  r.signal = signal;
  const char* name = ::sigabbrev_np(signal);
  r.message = std::string("interrupted by ") + (name ? std::string("SIG") + name : "a signal");
}

protocol::Json to_json(const RunResult& r) {
  using protocol::Json;
  Json doc = {{"run_id", r.run_id}, {"status", to_string(r.status)}};
  if (r.status == RunStatus::ok) {
    doc["result"] = r.result;
  } else {
    Json error = {{"message", r.message}};
    if (!r.traceback.empty()) error["traceback"] = r.traceback;
    if (r.status == RunStatus::suspended) error["pending"] = r.pending;
    if (r.status == RunStatus::violation) {
      error["violation"] = r.violation;
      if (r.syscall_nr >= 0) {
        error["syscall"] = r.syscall;
        error["nr"] = r.syscall_nr;
        error["arch"] = r.arch;
      }
    }
    if (r.status == RunStatus::crashed) {
      if (r.signal) {
        error["signal"] = r.signal;
        error["signal_name"] = sigabbrev_np(r.signal) ? sigabbrev_np(r.signal) : "?";
      } else {
        error["exit_code"] = r.exit_code;
      }
    }
    if (r.status == RunStatus::setup) {
      error["step"] = r.setup_step;
      error["errno"] = r.setup_errno;
      if (!r.setup_hint.empty()) error["hint"] = r.setup_hint;
    }
    doc["error"] = std::move(error);
  }
  doc["timings"] = {{"spawn_ms", r.timings.spawn_ms},
                    {"ready_ms", r.timings.ready_ms},
                    {"run_ms", r.timings.run_ms},
                    {"total_ms", r.timings.total_ms}};
  Json steps = Json::array();
  for (const auto& [step, us] : r.timings.setup_steps_us)
    steps.push_back({{"step", step}, {"us", us}});
  doc["timings"]["setup"] = std::move(steps);
  if (r.timings.handoff_ms >= 0) doc["timings"]["handoff_ms"] = r.timings.handoff_ms;
  doc["peak_rss_kib"] = r.peak_rss_kib;
  if (!r.usage.is_null()) doc["usage"] = r.usage;
  if (!r.cost.is_null()) doc["cost"] = r.cost;
  return doc;
}

}  // namespace tactus::broker
