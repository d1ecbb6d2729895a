#include "cli/test_command.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "broker/random_hex.h"
#include "cli/evaluations.h"
#include "cli/parallel_scenarios.h"
#include "cli/run_command.h"
#include "tools/interrupt.h"

namespace tactus::cli {
namespace {

using protocol::Json;

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr std::size_t kKeptLines = 200;  // printed lines kept per scenario for the reports

// What a scenario prints is kept for the reports (its last lines), not shown among the
// one-line results.
class CaptureSink : public broker::OutputSink {
 public:
  void print(std::string_view line) override { keep(line); }
  void log(std::string_view line) override { keep(line); }
  std::vector<std::string> take() { return std::move(lines_); }

 private:
  void keep(std::string_view line) {
    if (lines_.size() == kKeptLines) lines_.erase(lines_.begin());
    lines_.emplace_back(line);
  }
  std::vector<std::string> lines_;
};

struct ScenarioReport {
  Json scenario;  // as listed: feature, name, outline, line, steps
  bool passed = false;
  std::string why;  // a failure, one line: "file:line: Then ...: reason"
  Json steps = Json::array();
  double ms = 0;
  std::vector<std::string> output;
  int runs = 1, passed_runs = 0;  // --runs N
};

std::string scenario_title(const Json& sc) {
  std::string t = sc.value("feature", std::string());
  if (!t.empty()) t += " \xe2\x80\xba ";  // ›
  return t + sc.value("name", std::string("?"));
}

// Lists the scenarios: the file runs in validate mode (declarations only), which also parses
// the Specification. false: message is the one line to print, code the exit code.
bool list_scenarios(PreparedRun& p, const CliOptions& o, spawner::SpawnerClient& spawner,
                    Json& spec, std::string& message, int& code) {
  p.req.mode = "validate";
  p.req.options = Json();
  p.req.run_id = broker::random_hex(8);
  *p.usage = broker::RunUsage{};  // each scenario is a run of its own
  CaptureSink sink;
  const broker::RunResult r = execute_run(p, o, spawner, sink, false);
  if (r.status != broker::RunStatus::ok) {
    message = r.status == broker::RunStatus::error ? r.message : "tactus: " + r.message;
    code = r.status == broker::RunStatus::error ? kExitFailed : broker::exit_code(r.status);
    return false;
  }
  spec = r.result.value("specification", Json());
  // tactus eval of a file with evaluations({...}) needs no scenario.
  if (o.command == Command::eval && o.scenario.empty() && spec.is_object() &&
      spec.value("evaluations", Json()).is_object())
    return true;
  if (!spec.is_object() || !spec.value("scenarios", Json()).is_array() ||
      spec["scenarios"].empty()) {
    message = o.file + ": no scenarios: the file declares no Specification([[ Feature: ... ]])";
    if (r.result.value("script_stopped_at_host_call", false))
      message += " before its first Host.call (declare it at the top of a script)";
    code = kExitFailed;
    return false;
  }
  return true;
}

// The scenarios --scenario selects (all without it); none: a usage error.
bool select_scenarios(const CliOptions& o, const Json& spec, std::vector<Json>& out,
                      std::string& error) {
  std::string names;
  for (const Json& sc : spec["scenarios"]) {
    if (!sc.is_object()) continue;
    const std::string name = sc.value("name", std::string());
    if (o.scenario.empty() || name == o.scenario || sc.value("outline", Json()) == o.scenario)
      out.push_back(sc);
    if (names.size() < 300) names += (names.empty() ? "" : ", ") + ("'" + name + "'");
  }
  if (out.empty()) error = "no scenario called '" + o.scenario + "' (scenarios: " + names + ")";
  if (!out.empty() && o.scenario_index >= 0) {  // a --parallel worker runs one
    if (o.scenario_index >= static_cast<int>(out.size())) {
      error = "--scenario-index " + std::to_string(o.scenario_index) + ": there are " +
              std::to_string(out.size()) + " scenarios";
      return false;
    }
    out = {out[static_cast<std::size_t>(o.scenario_index)]};
  }
  return !out.empty();
}

ScenarioReport run_scenario(PreparedRun& p, const CliOptions& o, spawner::SpawnerClient& spawner,
                            const Json& scenario) {
  ScenarioReport rep;
  rep.scenario = scenario;
  p.req.mode = "test";
  p.req.options = runner_options(o, p, Json{{"scenario", scenario}, {"mock", o.mock}});
  p.req.run_id = broker::random_hex(8);
  *p.usage = broker::RunUsage{};  // each scenario is a run of its own
  CaptureSink sink;
  const auto start = std::chrono::steady_clock::now();
  const broker::RunResult r = execute_run(p, o, spawner, sink, false);
  rep.ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  rep.output = sink.take();
  const Json& report = r.result;
  if (r.status != broker::RunStatus::ok || !report.is_object() ||
      !report.value("status", Json()).is_string()) {
    // The run itself ended badly: a limit, a violation, an error outside any step.
    rep.why = std::string(broker::to_string(r.status)) + ": " +
              (r.status == broker::RunStatus::ok ? "the scenario returned no report" : r.message);
    return rep;
  }
  rep.steps = report.value("steps", Json::array());
  if (!rep.steps.is_array()) rep.steps = Json::array();
  rep.passed = report["status"] == "passed";
  if (rep.passed) return rep;
  if (report.value("error", Json()).is_string()) {
    rep.why = report["error"].get<std::string>();
    return rep;
  }
  for (const Json& st : rep.steps) {
    if (!st.is_object()) continue;
    const std::string status = st.value("status", std::string());
    if (status != "failed" && status != "undefined") continue;
    rep.why = o.file + ":" + std::to_string(st.value("line", 0)) + ": " +
              st.value("keyword", std::string()) + " " + st.value("text", std::string()) + ": " +
              st.value("error", std::string("failed"));
    break;
  }
  if (rep.why.empty()) rep.why = "failed";
  return rep;
}

// --runs N: the scenario N times; it passes when every run does (the first failure is said).
ScenarioReport run_times(PreparedRun& p, const CliOptions& o, spawner::SpawnerClient& spawner,
                         const Json& scenario) {
  const int runs = o.runs > 0 ? o.runs : 1;
  ScenarioReport first;
  int passed = 0;
  double ms = 0;
  for (int i = 0; i < runs; ++i) {
    ScenarioReport r = run_scenario(p, o, spawner, scenario);
    ms += r.ms;
    passed += r.passed;
    if (i == 0 || (first.passed && !r.passed)) {
      if (!r.passed && runs > 1) r.why = "run " + std::to_string(i + 1) + ": " + r.why;
      first = std::move(r);
    }
  }
  first.ms = ms;
  first.runs = runs;
  first.passed_runs = passed;
  first.passed = passed == runs;
  if (runs > 1 && !first.passed)
    first.why = std::to_string(passed) + "/" + std::to_string(runs) + " runs passed; " + first.why;
  return first;
}

// A --parallel worker's report (as `tactus test --json` gives one scenario) as ours.
ScenarioReport from_worker(const Json& scenario, const Json& doc) {
  ScenarioReport r;
  r.scenario = scenario;
  r.passed = doc.value("status", Json()) == "passed";
  r.why = doc.value("error", Json()).is_string() ? doc["error"].get<std::string>() : "";
  if (!r.passed && r.why.empty()) r.why = "failed";
  r.steps = doc.value("steps", Json::array());
  r.ms = doc.value("duration_ms", Json(0.0)).is_number() ? doc["duration_ms"].get<double>() : 0;
  r.runs = doc.value("runs", Json(1)).is_number_integer() ? doc["runs"].get<int>() : 1;
  r.passed_runs = doc.value("passed_runs", Json(0)).is_number_integer()
                      ? doc["passed_runs"].get<int>()
                      : (r.passed ? r.runs : 0);
  for (const Json& line : doc.value("output", Json::array()))
    if (line.is_string()) r.output.push_back(line.get<std::string>());
  return r;
}

std::string ms_text(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f ms", ms);
  return buf;
}

std::string xml_escape(std::string_view s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // XML 1.0 has no way to carry other control characters.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t' && c != '\r')
          out += "?";
        else
          out += c;
    }
  }
  return out;
}

Json report_json(const CliOptions& o, const std::vector<ScenarioReport>& reps) {
  Json scenarios = Json::array();
  int passed = 0;
  for (const auto& r : reps) {
    passed += r.passed;
    Json s = {{"feature", r.scenario.value("feature", Json())},
              {"name", r.scenario.value("name", Json())},
              {"line", r.scenario.value("line", Json())},
              {"status", r.passed ? "passed" : "failed"},
              {"duration_ms", r.ms},
              {"steps", r.steps},
              {"output", r.output},
              {"runs", r.runs},
              {"passed_runs", r.passed_runs}};
    if (!r.passed) s["error"] = r.why;
    scenarios.push_back(std::move(s));
  }
  const int failed = static_cast<int>(reps.size()) - passed;
  return {{"file", o.file},
          {"status", failed == 0 ? "passed" : "failed"},
          {"passed", passed},
          {"failed", failed},
          {"scenarios", std::move(scenarios)}};
}

bool write_junit(const CliOptions& o, const std::vector<ScenarioReport>& reps, std::string& error) {
  double total_ms = 0;
  int failures = 0;
  std::string cases;
  for (const auto& r : reps) {
    total_ms += r.ms;
    failures += !r.passed;
    char time[32];
    std::snprintf(time, sizeof time, "%.3f", r.ms / 1000);
    cases += "    <testcase classname=\"" + xml_escape(r.scenario.value("feature", "")) +
             "\" name=\"" + xml_escape(r.scenario.value("name", "")) + "\" time=\"" + time +
             "\">\n";
    if (!r.passed)
      cases += "      <failure message=\"" + xml_escape(r.why) + "\">" + xml_escape(r.why) +
               "</failure>\n";
    if (!r.output.empty()) {
      std::string out;
      for (const auto& l : r.output) out += l + "\n";
      cases += "      <system-out>" + xml_escape(out) + "</system-out>\n";
    }
    cases += "    </testcase>\n";
  }
  char time[32];
  std::snprintf(time, sizeof time, "%.3f", total_ms / 1000);
  const std::string xml =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n"
      "  <testsuite name=\"" +
      xml_escape(o.file) + "\" tests=\"" + std::to_string(reps.size()) + "\" failures=\"" +
      std::to_string(failures) + "\" time=\"" + time + "\">\n" + cases +
      "  </testsuite>\n</testsuites>\n";
  // Written whole to a temporary file and renamed: a reader never sees half a report.
  const std::string tmp = o.junit_file + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << xml;
    f.flush();
    if (!f) {
      error = "cannot write '" + o.junit_file + "'";
      return false;
    }
  }
  if (std::rename(tmp.c_str(), o.junit_file.c_str()) != 0) {
    std::remove(tmp.c_str());
    error = "cannot write '" + o.junit_file + "'";
    return false;
  }
  return true;
}

// A failure before any scenario ran: one line on stderr, and with --json a report saying so
// on stdout. Returns code.
int failure(const CliOptions& o, int code, const std::string& line) {
  write_all(2, line + "\n");
  if (o.json)
    write_all(1, protocol::dump_json(Json{{"file", o.file},
                                          {"status", code == kExitUsage ? "usage" : "error"},
                                          {"error", line}}) +
                     "\n");
  return code;
}

// Prepares the file's runs and lists the scenarios to run; returns -1 to go on, else the exit
// code (the reason already printed).
int start(const CliOptions& o, spawner::SpawnerClient& spawner, PreparedRun& p,
          std::vector<Json>& selected, Json& spec) {
  std::string error;
  if (!prepare_run(o, p, error)) return failure(o, kExitUsage, "tactus: " + error);
  if (o.verbose && o.scenario_index < 0) print_layers(o);
  // Scenarios answer Human.* themselves and are never journaled or resumed.
  p.req.exchanges = nullptr;
  p.req.ask_human = nullptr;
  int code = 0;
  if (!list_scenarios(p, o, spawner, spec, error, code)) return failure(o, code, error);
  if (o.command == Command::eval && o.scenario.empty() &&
      spec.value("evaluations", Json()).is_object())
    return -1;  // the evaluations run instead of scenarios (cli/evaluations.cpp)
  if (!select_scenarios(o, spec, selected, error))
    return failure(o, kExitUsage, "tactus: " + error);
  return -1;
}

}  // namespace

int test_command(const CliOptions& o, spawner::SpawnerClient& spawner) {
  PreparedRun p;
  std::vector<Json> selected;
  Json spec;
  if (const int rc = start(o, spawner, p, selected, spec); rc >= 0) return rc;

  std::vector<ScenarioReport> reps;
  int failed = 0;
  double total_ms = 0;
  std::vector<Json> parallel;
  const auto started = std::chrono::steady_clock::now();
  if (o.parallel) {
    std::string error;
    if (!run_parallel(o.argv, static_cast<int>(selected.size()), o.workers, parallel, error))
      return failure(o, tools::interrupted() ? 128 + tools::interrupted() : kExitFailed,
                     "tactus: " + error);
  }
  for (std::size_t i = 0; i < selected.size(); ++i) {
    const Json& sc = selected[i];
    reps.push_back(o.parallel ? from_worker(sc, parallel[i]) : run_times(p, o, spawner, sc));
    const ScenarioReport& r = reps.back();
    failed += !r.passed;
    total_ms += r.ms;
    if (o.json) continue;
    std::string line =
        (r.passed ? "PASS  " : "FAIL  ") + scenario_title(sc) + " (" + ms_text(r.ms) +
        (r.runs > 1
             ? ", " + std::to_string(r.passed_runs) + "/" + std::to_string(r.runs) + " runs passed"
             : std::string()) +
        ")";
    if (!r.passed) line += ": " + r.why;
    write_all(1, line + "\n");
  }
  std::string error;
  if (!o.junit_file.empty() && !write_junit(o, reps, error)) {
    write_all(2, "tactus: " + error + "\n");
    return kExitUsage;
  }
  // Workers run at once: their time is the wall clock's, not the sum of theirs.
  if (o.parallel)
    total_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
                   .count();
  if (o.json) {
    write_all(1, protocol::dump_json(report_json(o, reps)) + "\n");
  } else {
    write_all(1, std::to_string(reps.size()) + (reps.size() == 1 ? " scenario: " : " scenarios: ") +
                     std::to_string(reps.size() - failed) + " passed, " + std::to_string(failed) +
                     " failed (" + ms_text(total_ms) + ")\n");
  }
  if (tools::interrupted()) return 128 + tools::interrupted();  // as `tactus run` ends
  return failed == 0 ? 0 : kExitFailed;
}

int eval_command(const CliOptions& o, spawner::SpawnerClient& spawner) {
  PreparedRun p;
  std::vector<Json> selected;
  Json spec;
  if (const int rc = start(o, spawner, p, selected, spec); rc >= 0) return rc;
  if (o.scenario.empty() && spec.value("evaluations", Json()).is_object())
    return run_evaluations(o, p, spawner, spec["evaluations"]);
  const Json evaluation = spec.value("evaluation", Json::object());
  int runs = o.runs;
  if (runs == 0 && evaluation.is_object() && evaluation.value("runs", Json()).is_number())
    runs = evaluation["runs"].get<int>();
  if (runs < 1) runs = 1;
  double threshold = 1.0;
  if (evaluation.is_object() && evaluation.value("threshold", Json()).is_number())
    threshold = evaluation["threshold"].get<double>();

  Json results = Json::array();
  int below = 0;
  for (const Json& sc : selected) {
    int passed = 0;
    std::string last_failure;
    for (int i = 0; i < runs; ++i) {
      const ScenarioReport r = run_scenario(p, o, spawner, sc);
      if (r.passed)
        ++passed;
      else
        last_failure = r.why;
    }
    const double rate = static_cast<double>(passed) / runs;
    const bool ok = rate + 1e-9 >= threshold;
    below += !ok;
    results.push_back({{"feature", sc.value("feature", Json())},
                       {"name", sc.value("name", Json())},
                       {"runs", runs},
                       {"passed", passed},
                       {"pass_rate", rate},
                       {"threshold", threshold},
                       {"status", ok ? "passed" : "failed"},
                       {"last_failure", last_failure.empty() ? Json() : Json(last_failure)}});
    if (o.json) continue;
    char buf[96];
    std::snprintf(buf, sizeof buf, " %d/%d passed (%.0f%%, threshold %.0f%%)", passed, runs,
                  rate * 100, threshold * 100);
    std::string line = (ok ? "PASS  " : "FAIL  ") + scenario_title(sc) + ":" + buf;
    if (!last_failure.empty()) line += "; last failure: " + last_failure;
    write_all(1, line + "\n");
  }
  if (o.json)
    write_all(1, protocol::dump_json(Json{{"file", o.file},
                                          {"status", below == 0 ? "passed" : "failed"},
                                          {"runs", runs},
                                          {"threshold", threshold},
                                          {"scenarios", std::move(results)}}) +
                     "\n");
  return below == 0 ? 0 : kExitFailed;
}

}  // namespace tactus::cli
