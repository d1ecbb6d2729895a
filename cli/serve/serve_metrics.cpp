#include "cli/serve/serve_metrics.h"

#include <cstdio>

namespace tactus::cli::serve {

std::string label_value(const std::string& v) {
  std::string out;
  for (char c : v.substr(0, 200)) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    // Other control bytes (a carriage return, an escape) and bytes past ASCII, which may not
    // be UTF-8, become '?': the exposition stays one line per sample, readable everywhere.
    const auto u = static_cast<unsigned char>(c);
    out += u < 0x20 || u >= 0x7f ? '?' : c;
  }
  return out;
}

namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

// key, or "(other)" once the family has kMaxSeries series and key is not among them.
template <class Map, class Key>
Key bounded(const Map& m, Key key, Key other) {
  return m.count(key) || m.size() < Metrics::kMaxSeries ? key : other;
}

}  // namespace

void Histogram::observe(double seconds) {
  for (std::size_t i = 0; i < kBounds.size(); ++i)
    if (seconds <= kBounds[i]) ++counts_[i];
  ++count_;
  sum_ += seconds;
}

std::string Histogram::text(const std::string& name, const std::string& help) const {
  std::string out = "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  for (std::size_t i = 0; i < kBounds.size(); ++i)
    out += name + "_bucket{le=\"" + number(kBounds[i]) + "\"} " + std::to_string(counts_[i]) + "\n";
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  out += name + "_sum " + number(sum_) + "\n" + name + "_count " + std::to_string(count_) + "\n";
  return out;
}

void Metrics::run_ended(const std::string& status, double seconds) {
  ++runs_[status];
  if (seconds >= 0) duration_.observe(seconds);
}

void Metrics::jail_started(double seconds) {
  jail_.observe(seconds);
}

void Metrics::tool_call(const std::string& tool, const std::string& outcome) {
  // A denied name is whatever the procedure wrote: it is not a label.
  if (outcome == "denied") return void(++tools_[{"(denied)", outcome}]);
  ++tools_[bounded(tools_, std::make_pair(tool, outcome),
                   std::make_pair(std::string("(other)"), outcome))];
}

void Metrics::tokens(const std::string& model, const std::string& type, double n) {
  const auto slash = model.find('/');
  const std::string provider = slash == std::string::npos ? "" : model.substr(0, slash);
  tokens_[bounded(tokens_, std::make_tuple(provider, model, type),
                  std::make_tuple(std::string("(other)"), std::string("(other)"), type))] += n;
}

std::string Metrics::text(std::size_t active, std::size_t queued, std::size_t pool_idle) const {
  std::string out =
      "# HELP tactus_runs_total Runs that ended (or suspended), by status.\n"
      "# TYPE tactus_runs_total counter\n";
  for (const auto& [status, n] : runs_)
    out += "tactus_runs_total{status=\"" + label_value(status) + "\"} " + std::to_string(n) + "\n";
  out += "# HELP tactus_runs_active Runs being served now.\n# TYPE tactus_runs_active gauge\n";
  out += "tactus_runs_active " + std::to_string(active) + "\n";
  out += "# HELP tactus_runs_queued Runs accepted and waiting.\n# TYPE tactus_runs_queued gauge\n";
  out += "tactus_runs_queued " + std::to_string(queued) + "\n";
  out += "# HELP tactus_pool_idle Warm jails ready.\n# TYPE tactus_pool_idle gauge\n";
  out += "tactus_pool_idle " + std::to_string(pool_idle) + "\n";
  out += jail_.text("tactus_jail_start_seconds",
                    "From asking for a jail to its run message sent (a warm one: the handoff).");
  out += duration_.text("tactus_run_duration_seconds", "A run served, start to end.");
  out +=
      "# HELP tactus_tool_calls_total Host tool and model calls, by tool and outcome.\n"
      "# TYPE tactus_tool_calls_total counter\n";
  for (const auto& [k, n] : tools_)
    out += "tactus_tool_calls_total{tool=\"" + label_value(k.first) + "\",outcome=\"" +
           label_value(k.second) + "\"} " + std::to_string(n) + "\n";
  out +=
      "# HELP tactus_llm_tokens_total Model tokens, by provider, model and type.\n"
      "# TYPE tactus_llm_tokens_total counter\n";
  for (const auto& [k, n] : tokens_)
    out += "tactus_llm_tokens_total{provider=\"" + label_value(std::get<0>(k)) + "\",model=\"" +
           label_value(std::get<1>(k)) + "\",type=\"" + label_value(std::get<2>(k)) + "\"} " +
           number(n) + "\n";
  return out;
}

}  // namespace tactus::cli::serve
