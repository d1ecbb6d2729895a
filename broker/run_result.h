// The typed result of one run (Sandbox2-style): a status and the fields that status carries,
// never log text to be parsed.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "runtime/protocol/message.h"
#include "sidecars/run_limits.h"

namespace tactus::broker {

enum class RunStatus {
  ok,
  error,
  timeout,
  memory,
  cpu,
  output,
  violation,
  crashed,
  setup,
  suspended,    // waiting for a human (docs/durability.md); exit code 5
  interrupted,  // SIGINT, SIGTERM or SIGHUP; exit code 128 + the signal (exit_code: 130)
  budget,       // the call that would pass the run's budget was refused; resumable; exit code 6
};

const char* to_string(RunStatus s);
// The documented exit code of docs/cli.md.
int exit_code(RunStatus s);

struct Timings {
  double spawn_ms = 0;  // asking the spawner until the child exists
  double ready_ms = 0;  // child exists until it reported ready
  double run_ms = 0;    // run sent until the result arrived
  double total_ms = 0;  // the whole run, as the broker saw it
  // Pool runs: from taking an idle worker until its run message was written; -1 otherwise.
  double handoff_ms = -1;
  // The child's setup steps: microseconds from the clone to the end of each step.
  std::vector<std::pair<std::string, long>> setup_steps_us;
};

struct RunResult {
  std::string run_id;
  RunStatus status = RunStatus::error;
  std::string message;    // one readable line
  std::string traceback;  // details, may be empty
  protocol::Json result;  // status ok

  std::string violation;  // violation: what was violated ("protocol: ...", "seccomp")
  std::string syscall;    // violation by seccomp: the syscall's name ("?" if unknown)
  long syscall_nr = -1;
  std::string arch;        // "x86_64", "x86", "x32", ...
  int signal = 0;          // crashed: the signal, or 0 with exit_code set; interrupted: the signal
  int exit_code = 0;       // crashed without a signal
  std::string setup_step;  // setup
  int setup_errno = 0;
  // setup: what the kernel's facts say about the failed step ("" when they say nothing).
  std::string setup_hint;
  std::string pending;  // suspended: the request waiting for an answer ("human.approve")

  Timings timings;
  long peak_rss_kib = 0;  // of the child, from its rusage
  // What the run used and spent, resumes included (broker/run_usage.h); null when not counted.
  protocol::Json usage, cost;
};

// What the broker saw of one child's run (broker/run_session.cpp records it): classify turns it
// into the run's status. Fields are in the order that decides: the first that holds wins.
struct ChildOutcome {
  int interrupted = 0;  // the SIGINT/SIGTERM/SIGHUP that arrived, or 0
  bool suspended = false;
  std::string pending;   // suspended: the Human.* request waiting ("human.approve")
  bool stopped = false;  // ended by the broker: a diverged resume, a journal failure
  std::string stop_message;
  bool over_budget = false;  // a request would have passed the budget (budget_message says how)
  std::string budget_message;
  bool seccomp_reported = false;  // the jail's SIGSYS handler sent {nr, arch}
  long seccomp_nr = -1;
  std::uint32_t seccomp_arch = 0;
  bool violated = false;  // a protocol violation
  std::string violation;
  bool timed_out = false;
  bool output_exceeded = false;
  bool done = false, done_ok = false;  // the VM's result
  protocol::Json done_result;
  std::string done_kind, done_message, done_traceback;
  bool setup_failed = false;
  std::string setup_step;
  int setup_errno = 0;
  int exit_code = 0, exit_signal = 0;  // as waitid reported the child
  bool truncated = false;              // its channel ended in the middle of a frame
  long peak_rss_kib = 0;
};

// The run's status and the fields it carries (message, syscall and arch names, signal, ...);
// limits name what was crossed, jailed adds the fail-closed hint to a setup failure.
// explanation: what the kernel's facts say about a setup failure ("" for none: setup_hint).
void classify(ChildOutcome o, const std::string& run_id, const sidecars::RunLimits& limits,
              bool jailed, const std::string& explanation, RunResult& r);

// "; the jail cannot be built here (see 'tactus sandbox status'); --no-sandbox ..." when jailed.
std::string setup_hint(bool jailed);

// Makes r an interrupted run's result: status, signal and "interrupted by SIGTERM".
void mark_interrupted(RunResult& r, int signal);

// {run_id, status, result | error, timings, ...}
protocol::Json to_json(const RunResult& r);

}  // namespace tactus::broker
