// /metrics' bounds: label values a procedure chooses (tool and model names) cannot grow the
// exposition without end or break its lines.
#include "cli/serve/serve_metrics.h"

#include <catch2/catch.hpp>
#include <string>

using tactus::cli::serve::Metrics;

namespace {

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("serve metrics: 600 tool names make 500 series and (other), denied names none",
          "[serve]") {
  Metrics m;
  for (int i = 0; i < 600; ++i) m.tool_call("tool" + std::to_string(i), "ok");
  for (int i = 0; i < 50; ++i) m.tool_call("anything at all " + std::to_string(i), "denied");
  m.tool_call("tool0", "ok");  // a known series still counts as itself
  const std::string text = m.text(0, 0, 0);
  // 500 named series, then "(other)" and "(denied)".
  CHECK(count(text, "tactus_tool_calls_total{") == Metrics::kMaxSeries + 2);
  CHECK(text.find("tactus_tool_calls_total{tool=\"(other)\",outcome=\"ok\"} 100\n") !=
        std::string::npos);
  CHECK(text.find("tactus_tool_calls_total{tool=\"tool0\",outcome=\"ok\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("tactus_tool_calls_total{tool=\"(denied)\",outcome=\"denied\"} 50\n") !=
        std::string::npos);
  CHECK(text.find("anything at all") == std::string::npos);
}

TEST_CASE("serve metrics: label values are escaped, cut at 200 bytes, and stay on one line",
          "[serve]") {
  Metrics m;
  m.tool_call("evil\"}\r\ntactus_runs_total 1e9 \x1b[2J\xff", "ok");
  m.tool_call(std::string(100000, 'x'), "ok");
  m.tokens("openai/gpt\n4", "input_tokens", 7);
  const std::string text = m.text(0, 0, 0);
  CHECK(text.find("tool=\"evil\\\"}?\\ntactus_runs_total 1e9 ?[2J?\"") != std::string::npos);
  CHECK(text.find("\r") == std::string::npos);
  std::string cut(200, 'x');
  cut.push_back('"');
  CHECK(text.find(cut) != std::string::npos);
  CHECK(text.find(std::string(201, 'x')) == std::string::npos);
  CHECK(text.find("provider=\"openai\",model=\"openai/gpt\\n4\",type=\"input_tokens\"} 7\n") !=
        std::string::npos);
  for (std::size_t at = text.find('\n'), from = 0; at != std::string::npos;
       from = at + 1, at = text.find('\n', from))
    CHECK(text.substr(from, at - from).find('\n') == std::string::npos);
}
