// tactus eval on a file that declares evaluations({dataset, evaluators, thresholds}): each
// case runs `runs` times, each in a fresh jail with the case's inputs, and its evaluators judge
// it there (lua/tactus/testing/evaluators.lua); here the runs are counted against the
// thresholds (docs/testing.md, "Evaluations"). What the VM reports is untrusted: read typed.
#include "cli/evaluations.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "broker/random_hex.h"
#include "cli/run_command.h"
#include "tools/terminal_text.h"

namespace tactus::cli {
namespace {

using protocol::Json;

constexpr int kExitFailed = 1;
constexpr std::size_t kMaxCases = 10000;
constexpr int kMaxRuns = 10000;  // cases x runs, per tactus eval

class DropSink : public broker::OutputSink {
 public:
  void print(std::string_view) override {}
  void log(std::string_view) override {}
};

double number_or(const Json& j, const char* key, double fallback) {
  const Json v = j.is_object() ? j.value(key, Json()) : Json();
  return v.is_number() ? v.get<double>() : fallback;
}

std::string text_or(const Json& j, const char* key, const std::string& fallback) {
  const Json v = j.is_object() ? j.value(key, Json()) : Json();
  return v.is_string() ? v.get<std::string>().substr(0, 500) : fallback;
}

// The tokens a run used (input and output, cached ones included), or -1 when unknown.
double tokens_of(const Json& usage) {
  if (!usage.is_object()) return -1;
  if (usage.value("unknown_calls", 0) > 0) return -1;
  double sum = 0;
  for (const char* k :
       {"input_tokens", "cached_input_tokens", "cache_creation_input_tokens", "output_tokens"})
    sum += number_or(usage, k, 0);
  return sum;
}

struct Thresholds {
  double min_success_rate = 1.0;
  double max_cost = -1, max_duration = -1, max_tokens = -1;  // < 0: none
};

Thresholds thresholds_of(const Json& t) {
  Thresholds out;
  out.min_success_rate = std::clamp(number_or(t, "min_success_rate", 1.0), 0.0, 1.0);
  out.max_cost = number_or(t, "max_cost_per_run", -1);
  out.max_duration = number_or(t, "max_duration", -1);
  out.max_tokens = number_or(t, "max_tokens_per_run", -1);
  return out;
}

// One run of a case: passed when the run succeeded, every judged evaluator passed and the
// per-run thresholds hold. why: the first reason it did not.
struct CaseRun {
  bool passed = false;
  std::string why;
  int unjudged = 0;
};

CaseRun run_case(PreparedRun& p, const CliOptions& o, spawner::SpawnerClient& spawner,
                 std::size_t index, const Json& c, const Thresholds& th) {
  CaseRun out;
  p.req.mode = "test";
  p.req.run_id = broker::random_hex(8);
  p.req.input = c.value("inputs", Json::object());
  if (!p.req.input.is_object()) p.req.input = Json::object();
  p.req.options = runner_options(o, p, Json{{"case", index + 1}});
  *p.usage = broker::RunUsage{};
  DropSink sink;
  const auto start = std::chrono::steady_clock::now();
  const broker::RunResult r = execute_run(p, o, spawner, sink, false);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (r.status != broker::RunStatus::ok || !r.result.is_object()) {
    out.why = std::string(broker::to_string(r.status)) + ": " + r.message.substr(0, 500);
    return out;
  }
  if (!r.result.value("ok", false)) {
    out.why = "the procedure failed: " + text_or(r.result, "error", "?");
    return out;
  }
  for (const Json& e : r.result.value("results", Json::array())) {
    if (!e.is_object()) continue;
    const Json passed = e.value("passed", Json());
    if (passed.is_null()) {
      ++out.unjudged;
      continue;
    }
    if (passed != true && out.why.empty())
      out.why = text_or(e, "type", "?") + ": " + text_or(e, "reason", "failed");
  }
  const double cost = number_or(r.cost, "usd", -1);
  const double tokens = tokens_of(r.usage);
  char buf[160];
  if (out.why.empty() && th.max_duration >= 0 && seconds > th.max_duration) {
    std::snprintf(buf, sizeof buf, "max_duration: the run took %.2f s, more than %.2f s", seconds,
                  th.max_duration);
    out.why = buf;
  }
  if (out.why.empty() && th.max_cost >= 0 && (cost < 0 || cost > th.max_cost)) {
    std::snprintf(buf, sizeof buf, "max_cost_per_run: the run cost %s, more than %.4f USD",
                  cost < 0 ? "an unknown amount" : std::to_string(cost).c_str(), th.max_cost);
    out.why = buf;
  }
  if (out.why.empty() && th.max_tokens >= 0 && (tokens < 0 || tokens > th.max_tokens)) {
    std::snprintf(buf, sizeof buf, "max_tokens_per_run: the run used %s tokens, more than %.0f",
                  tokens < 0 ? "an unknown number of" : std::to_string(tokens).c_str(),
                  th.max_tokens);
    out.why = buf;
  }
  out.passed = out.why.empty();
  return out;
}

}  // namespace

int run_evaluations(const CliOptions& o, PreparedRun& p, spawner::SpawnerClient& spawner,
                    const Json& ev) {
  const Json cases = ev.value("cases", Json::array());
  int runs = o.runs;
  if (runs == 0) {
    const double asked = number_or(ev, "runs", 1);  // the VM's: checked before it is cast
    runs = asked >= 1 && asked <= 10000 ? static_cast<int>(asked) : 1;
  }
  const Thresholds th = thresholds_of(ev.value("thresholds", Json()));
  // The file decides how many runs: bounded, so a dataset cannot order 10^8 of them.
  if (static_cast<double>(cases.size()) * runs > kMaxRuns) {
    write_all(2, "tactus: " + std::to_string(cases.size()) + " cases x " + std::to_string(runs) +
                     " runs is more than " + std::to_string(kMaxRuns) +
                     " runs: lower runs (--runs) or split the dataset\n");
    return 2;
  }
  if (ev.value("dataset_file", Json()).is_string())
    write_all(2,
              tools::inert_text("tactus: note: dataset_file '" + text_or(ev, "dataset_file", "") +
                                "' is not read: tactus takes the cases from dataset = {...} "
                                "in the file\n"));
  Json results = Json::array();
  int total = 0, passed_total = 0, unjudged = 0;
  for (std::size_t i = 0; i < cases.size() && i < kMaxCases; ++i) {
    const Json& c = cases[i];
    const std::string name = text_or(c, "name", "case " + std::to_string(i + 1));
    int passed = 0;
    std::string last;
    for (int k = 0; k < runs; ++k) {
      const CaseRun r = run_case(p, o, spawner, i, c, th);
      passed += r.passed;
      unjudged += r.unjudged;
      if (!r.passed) last = r.why;
    }
    total += runs;
    passed_total += passed;
    results.push_back({{"name", name},
                       {"runs", runs},
                       {"passed", passed},
                       {"last_failure", last.empty() ? Json() : Json(last)}});
    if (o.json) continue;
    std::string line = std::string(passed == runs ? "PASS  " : "FAIL  ") + name + ": " +
                       std::to_string(passed) + "/" + std::to_string(runs) + " runs passed";
    if (!last.empty()) line += "; last failure: " + last;
    line += "\n";
    // Case names and reasons come from the procedure: inert on a terminal.
    write_all(1, tools::shows_inert(1, o.raw_output) ? tools::inert_text(line) : line);
  }
  const double rate = total > 0 ? static_cast<double>(passed_total) / total : 0;
  const bool ok = total > 0 && rate + 1e-9 >= th.min_success_rate;
  if (o.json) {
    write_all(1, protocol::dump_json(Json{{"file", o.file},
                                          {"status", ok ? "passed" : "failed"},
                                          {"runs", total},
                                          {"passed", passed_total},
                                          {"success_rate", rate},
                                          {"min_success_rate", th.min_success_rate},
                                          {"unjudged", unjudged},
                                          {"cases", std::move(results)}}) +
                     "\n");
  } else {
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "evaluations: %d/%d runs passed (%.0f%%, min_success_rate %.0f%%)", passed_total,
                  total, rate * 100, th.min_success_rate * 100);
    write_all(1, std::string(buf) + (total == 0 ? ": the dataset has no case" : "") + "\n");
    if (unjudged > 0)
      write_all(2, "tactus: note: " + std::to_string(unjudged) +
                       " evaluator results were not judged (llm_judge needs a model: run without "
                       "--mock)\n");
  }
  return ok ? 0 : kExitFailed;
}

}  // namespace tactus::cli
