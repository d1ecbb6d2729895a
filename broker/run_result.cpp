#include "broker/run_result.h"

#include <cstring>

namespace tactus::broker {

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
  return doc;
}

}  // namespace tactus::broker
