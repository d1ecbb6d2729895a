// OpenTelemetry traces of one run (telemetry.otlp_endpoint; off by default): a span for the
// run, one invoke_agent span per agent turn and one execute_tool span per Lua tool call (both
// reported by the VM, which alone sees them), one chat span per model call and one execute_tool
// span per host tool call (seen by the broker), with the GenAI semantic conventions'
// attributes. No prompt, reply or tool argument is recorded unless telemetry.capture_content
// is true; every string is masked (secret values) before it is kept. The spans are sent when
// the run's session ends, over OTLP/HTTP as JSON (no SDK); a failed export is a warning, never
// the run's failure.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/protocol/message.h"
#include "tools/registry.h"

namespace tactus::broker {

class Redactor;

struct TraceConfig {
  std::string endpoint;  // OTLP/HTTP base ("http://127.0.0.1:4318"), or its /v1/traces URL
  bool capture_content = false;
  double timeout_seconds = 2;  // the export's whole POST
};

class RunTrace {
 public:
  using Clock = std::chrono::steady_clock;
  // The trace id is derived from run_id, so a resumed run's spans join its first session's.
  RunTrace(TraceConfig config, std::string run_id, std::string procedure,
           std::shared_ptr<const Redactor> redactor);
  ~RunTrace();
  RunTrace(const RunTrace&) = delete;
  RunTrace& operator=(const RunTrace&) = delete;

  // A model call the broker made (llm.chat's params, its outcome), from t0 to t1.
  void model_call(const protocol::Json& params, const tools::ToolOutcome& r, Clock::time_point t0,
                  Clock::time_point t1);
  // A host tool call (Host.call).
  void tool_call(const std::string& name, const protocol::Json& args, const tools::ToolOutcome& r,
                 Clock::time_point t0, Clock::time_point t1);
  // The VM's "trace" notification: {event: "begin" | "end", op: "invoke_agent" |
  // "execute_tool", name, error?}. False with why when it is malformed (a protocol violation).
  // An end closes the innermost open span of its op and name; a begin past kMaxOpen open
  // spans, or past the trace's bounds, is dropped (and its end with it).
  bool vm_event(const protocol::Json& params, std::string& why);
  // Whether params are a well-formed "trace" notification (why: what is wrong).
  static bool valid_event(const protocol::Json& params, std::string& why);

  // Ends the open spans and the run's span (with the run's status), and sends them all.
  // Returns "" or why the export failed (a warning for the caller to print).
  std::string finish(const std::string& status);

  // The OTLP/JSON document of the spans so far (finish sends it); for tests.
  protocol::Json otlp_document() const;

  // What one session's trace may hold: past these, spans are dropped and counted
  // (tactus.dropped_spans on the run's span). Names are the VM's, so they are short.
  static constexpr std::size_t kMaxSpans = 10000;
  static constexpr std::size_t kMaxOpen = 64;         // VM spans open at once (nesting)
  static constexpr std::size_t kMaxName = 256;        // bytes of a name, after masking
  static constexpr std::size_t kMaxText = 64 << 10;   // bytes of one attribute, after masking
  static constexpr std::size_t kMaxBytes = 8u << 20;  // bytes of all names and attributes

 private:
  struct Span;
  Span* add(std::string name, int kind, std::string parent, Clock::time_point start);
  std::string parent_id() const;
  std::string text(const std::string& s, std::size_t max = kMaxText);  // masked, cut, counted
  std::string masked_prefix(const std::string& s, std::size_t max) const;
  std::uint64_t unix_nanos(Clock::time_point t) const;

  TraceConfig config_;
  std::string run_id_, procedure_, trace_id_, root_id_;
  std::shared_ptr<const Redactor> redactor_;
  std::vector<Span> spans_;
  std::vector<std::size_t> open_;  // indexes of the VM's open spans, innermost last
  std::size_t dropped_ = 0;
  std::size_t bytes_ = 0;         // of names and attributes kept
  std::size_t dropped_open_ = 0;  // VM begins dropped whose ends are still to come
  Clock::time_point started_;
  std::int64_t started_unix_ns_ = 0;
  bool finished_ = false;
};

}  // namespace tactus::broker
