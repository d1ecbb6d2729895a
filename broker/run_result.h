// The typed result of one run (Sandbox2-style): a status and the fields that status carries,
// never log text to be parsed.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "runtime/protocol/message.h"

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
  std::string pending;  // suspended: the request waiting for an answer ("human.approve")

  Timings timings;
  long peak_rss_kib = 0;  // of the child, from its rusage
};

// Makes r an interrupted run's result: status, signal and "interrupted by SIGTERM".
void mark_interrupted(RunResult& r, int signal);

// {run_id, status, result | error, timings, ...}
protocol::Json to_json(const RunResult& r);

}  // namespace tactus::broker
