// What a run used, counted from answers as the session and the journal hold them, and the
// budget's checks at their edges.
#include <catch2/catch.hpp>

#include "broker/config_identity.h"
#include "broker/run_usage.h"
#include "tests/support/llm_test_support.h"
#include "tools/tool_context.h"

using namespace tactus;
using broker::Budget;
using broker::RunUsage;
using protocol::Json;

namespace {

broker::JournalEntry entry(const std::string& method, const Json& request, const Json& answer) {
  broker::JournalEntry e;
  e.method = method;
  e.request_json = protocol::dump_json(request);
  e.response_json = answer.is_null() ? "" : protocol::dump_json(answer);
  return e;
}

const Json kChat = {{"provider", "openai"}, {"model", "gpt-4o"}, {"messages", Json::array()}};

}  // namespace

TEST_CASE("run usage: the journal's answers count as the live ones did", "[usage]") {
  RunUsage u;
  u.add_entries({
      entry("llm.chat", kChat,
            {{"result", {{"usage", test::expected_usage(60, 20, 40)}, {"cost", 0.001}}}}),
      // Journaled before the input was split: its prompt_tokens count as input.
      entry("llm.chat", kChat,
            {{"result",
              {{"usage", {{"prompt_tokens", 10}, {"completion_tokens", 5}, {"total_tokens", 15}}},
               {"cost", 0.0005}}}}),
      // Sent, and refused by the provider: a call that used nothing.
      entry("llm.chat", kChat,
            {{"error", {{"code", "failed"}, {"message", "llm: openai: HTTP 500: overloaded"}}}}),
      // Refused before it was sent: not a call.
      entry("llm.chat", kChat, {{"error", {{"code", "denied"}, {"message", "no key"}}}}),
      entry("llm.chat", kChat, {{"error", {{"code", "invalid_args"}, {"message", "bad"}}}}),
      // In flight at a crash: its resume sends it again, and counts it then.
      entry("llm.chat", kChat, Json()),
      entry("host.call", {{"name", "host.ping"}}, {{"result", Json::object()}}),
      entry("host.call", {{"name", "file.write"}},
            {{"error", {{"code", "limit"}, {"message", "x"}}}}),
      entry("host.call", {{"name", "x"}}, {{"error", {{"code", "denied"}, {"message", "no"}}}}),
      entry("time.now", Json::object(), {{"result", {{"unix", 1}}}}),
  });
  CHECK(u.model_calls() == 3);
  CHECK(u.tool_calls() == 2);
  const Json usage = u.usage_json();
  CHECK(usage["input_tokens"] == 70);
  CHECK(usage["cached_input_tokens"] == 40);
  CHECK(usage["output_tokens"] == 25);
  CHECK(usage["total_tokens"] == 135);
  CHECK(usage["failed_calls"] == 1);
  CHECK(usage["by_model"]["openai/gpt-4o"]["model_calls"] == 3);
  CHECK(u.cost_json()["usd"].get<double>() == Approx(0.0015));
}

TEST_CASE("run usage: hostile counts saturate instead of overflowing", "[usage]") {
  RunUsage u;
  const Json huge = test::expected_usage(std::int64_t{1} << 40, std::int64_t{1} << 40,
                                         std::int64_t{1} << 40, std::int64_t{1} << 40);
  for (int i = 0; i < 300000; ++i) u.add_model_call("local/m", huge, 0.0);
  CHECK(u.total_tokens() > 0);
  CHECK(u.total_tokens() == std::int64_t{1} << 60);
  CHECK(u.usage_json()["total_tokens"] == std::int64_t{1} << 60);
}

TEST_CASE("budget: the counts allow exactly N, tokens and usd cap the next call's output",
          "[usage][budget]") {
  RunUsage u;
  Budget b;
  b.model_calls = 2;
  CHECK(broker::check_budget(b, u, "llm.chat", nullptr, 0).refusal.empty());
  u.add_model_call("m", test::expected_usage(10, 10), "unknown");
  CHECK(broker::check_budget(b, u, "llm.chat", nullptr, 0).refusal.empty());
  u.add_model_call("m", test::expected_usage(10, 10), "unknown");
  CHECK(
      broker::check_budget(b, u, "llm.chat", nullptr, 0).refusal.rfind("budget: model_calls", 0) ==
      0);
  CHECK(broker::check_budget(b, u, "host.call", nullptr, 0).refusal.empty());
  CHECK_FALSE(broker::check_budget(b, u, "llm.chat", nullptr, 0).max_output);

  Budget t;
  t.tokens = 100;  // 40 used
  auto c = broker::check_budget(t, u, "llm.chat", nullptr, 25);
  CHECK(c.refusal.empty());
  CHECK(c.max_output == 35);
  CHECK(broker::check_budget(t, u, "llm.chat", nullptr, 60)
            .refusal.find("and this request's input is about 60 more") != std::string::npos);

  tools::ModelPrice price{1.0, 0.5, 2.0, 1.25};  // USD per million
  Budget d;
  d.usd = 0.0001;  // 0 spent: the calls above had no price
  RunUsage priced;
  c = broker::check_budget(d, priced, "llm.chat", &price, 20);
  CHECK(c.refusal.empty());
  CHECK(c.max_output == 40);  // (100 - 20) millionths left, at 2 a million tokens
  c = broker::check_budget(d, priced, "llm.chat", nullptr, 20);
  CHECK(c.refusal.rfind("budget: usd: the model has no price", 0) == 0);
  CHECK(broker::check_budget(d, u, "llm.chat", &price, 20)
            .refusal.rfind("budget: usd: a model call of this run had no price", 0) == 0);
  Budget both = d;
  both.tokens = 30;
  CHECK(broker::check_budget(both, priced, "llm.chat", &price, 20).max_output == 10);

  CHECK(broker::estimate_input_tokens({{"messages", {{{"role", "user"}, {"content", "hi"}}}}}) ==
        8);  // [{"content":"hi","role":"user"}] is 31 bytes
}

TEST_CASE("budget: budget, telemetry and prices are not part of a run's identity", "[usage]") {
  const auto identity = [](const std::string& yaml) {
    sidecars::Config c;
    std::string error;
    REQUIRE(sidecars::apply_layer(yaml, "/p/proc.tac.yml", c, error));
    return broker::config_identity(c, nullptr).hash;
  };
  const std::string base = identity("sandbox:\n  timeout: 30\n");
  CHECK(identity("sandbox:\n  timeout: 30\nbudget:\n  model_calls: 2\n  usd: 1\n") == base);
  CHECK(identity("sandbox:\n  timeout: 30\ntelemetry:\n  otlp_endpoint: \"http://h:1\"\n") == base);
  CHECK(identity("sandbox:\n  timeout: 30\nproviders:\n  openai:\n    prices:\n"
                 "      gpt-4o: {input: 1, output: 2}\n") ==
        identity("sandbox:\n  timeout: 30\nproviders:\n  openai: {}\n"));
  CHECK(identity("sandbox:\n  timeout: 31\n") != base);
}

TEST_CASE("run usage: a failed call used nothing only when the provider refused it", "[usage]") {
  CHECK(broker::unbilled_failure("failed",
                                 "llm: openai: HTTP 429: slow down (gave up after 4 "
                                 "attempts)"));
  CHECK(broker::unbilled_failure("failed", "llm: local: cannot reach the provider: refused"));
  // A reply that began and broke, was too large, or ran out of time may have been billed.
  CHECK_FALSE(broker::unbilled_failure(
      "failed", "llm: openai: the stream ended before the reply was complete"));
  CHECK_FALSE(broker::unbilled_failure("failed",
                                       "llm: openai: the connection broke: HTTP/2 "
                                       "stream 1 was reset"));
  CHECK_FALSE(broker::unbilled_failure(
      "failed", "the result of llm.chat (5000000 bytes) exceeds the message limit of 4 MiB"));
  CHECK_FALSE(broker::unbilled_failure("timeout", "llm: openai: no complete reply within 120 s"));

  RunUsage u;
  u.add_failed_model_call("openai/gpt-4o", "failed", "llm: openai: HTTP 400: bad request");
  CHECK(u.tokens_known());
  CHECK(u.cost_known());
  u.add_failed_model_call("openai/gpt-4o", "timeout", "llm: openai: no complete reply within 1 s");
  CHECK_FALSE(u.tokens_known());
  CHECK_FALSE(u.cost_known());
  CHECK(u.model_calls() == 2);
  const Json usage = u.usage_json();
  CHECK(usage["failed_calls"] == 2);
  CHECK(usage["unknown_calls"] == 1);
  CHECK(usage["total_tokens"] == "unknown");
  // A tokens budget cannot be kept past it: the next call is refused.
  Budget b;
  b.tokens = 1000;
  CHECK(broker::check_budget(b, u, "llm.chat", nullptr, 1).refusal.find("cannot be kept") !=
        std::string::npos);
}
