// Usage, cost and budgets end to end: the real binary, a jailed VM and the fake provider
// scripted with each API's usage fields. The run's usage is the sum of its calls as the
// providers reported them (cached input apart, reasoning where reported, "unknown" where a
// stream had none), on the result, the turn, the audit log and the journal; a budget stops the
// call that would pass it, and a raised budget resumes the run without repeating a call.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "tests/fixtures/fake_llm.h"
#include "tests/support/cli_runner.h"

using namespace tactus::test;
using Json = nlohmann::json;

namespace {

const std::string kKey = "sk-usage-test-key-7d1f0c3e";
const std::string kKeyEnv = "TACTUS_TEST_LLM_KEY=" + kKey;

std::string sidecar(const FakeLlmServer& server, const std::string& api,
                    const std::string& provider_extra = "", const std::string& extra = "") {
  return "providers:\n  fake:\n    base_url: \"" + server.base_url() + "\"\n    api_key: K\n" +
         "    api: " + api + "\n" + provider_extra +
         "secrets:\n  K: {env: TACTUS_TEST_LLM_KEY}\naudit:\n  path: audit.jsonl\n" + extra;
}

const char* kPrices =
    "    prices:\n      fake-model: {input: 1, cached_input: 0.5, output: 2, cache_write: 1.25}\n";

// Three turns of one agent; each turn's usage and cost come back.
std::string three_turns(const std::string& agent_fields = "") {
  return "greeter = Agent { model = \"fake/fake-model\", " + agent_fields +
         R"(system_prompt = "Be brief." }
local a = greeter("one")
local b = greeter("two")
local c = greeter("three")
return { a = a.usage, b = b.usage, c = c.usage, a_cost = a.cost, text = c.output }
)";
}
const std::string kThreeTurns = three_turns();

FakeReply usage_reply(const std::string& text, std::int64_t prompt, std::int64_t cached,
                      std::int64_t output, std::int64_t reasoning, std::int64_t creation = 0) {
  FakeReply r = FakeReply::say(text);
  r.prompt_tokens = prompt;
  r.cached_tokens = cached;
  r.completion_tokens = output;
  r.reasoning_tokens = reasoning;
  r.cache_creation_tokens = creation;
  return r;
}

CliRun run_in(const TempTac& tac, std::vector<std::string> args) {
  return run_tactus_in(tac.dir(), args, {kKeyEnv});
}

std::vector<Json> audit_lines(const TempTac& tac, const std::string& tool) {
  std::vector<Json> out;
  const std::string text = read_file(tac.dir() + "/audit.jsonl");
  for (std::size_t start = 0; start < text.size();) {
    const auto end = text.find('\n', start);
    const Json line = Json::parse(text.substr(start, end - start));
    if (line["tool"] == tool) out.push_back(line);
    start = end == std::string::npos ? text.size() : end + 1;
  }
  return out;
}

Json runs_json(const TempTac& tac) {
  const CliRun r = run_in(tac, {"runs", "--json"});
  REQUIRE(r.exit_code == 0);
  return Json::parse(r.out);
}

}  // namespace

TEST_CASE("usage: the run's usage is the sum of its calls, per dialect, cached input apart",
          "[usage][cli]") {
  const std::string api = GENERATE(as<std::string>{}, "chat", "responses", "anthropic");
  const bool anthropic = api == "anthropic";
  FakeLlmServer server({usage_reply("first", 100, 40, 20, 5, 7),
                        usage_reply("second", 50, 0, 10, 0), usage_reply("third", 30, 10, 5, 1)});
  TempTac tac(three_turns(api == "responses" ? "model_type = \"responses\", " : ""));
  write_file(tac.path() + ".yml", sidecar(server, anthropic ? "anthropic" : "openai", kPrices));
  const CliRun r = run_in(tac, {"run", tac.path(), "--json"});
  INFO(api << "\n" << r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const Json doc = Json::parse(r.out);
  const Json& usage = doc["usage"];
  CHECK(usage["model_calls"] == 3);
  CHECK(usage["tool_calls"] == 0);
  // OpenAI's prompt tokens include the cached ones (100 with 40 cached is 60 uncached);
  // Anthropic's input_tokens exclude them, and its cache writes are a count of their own.
  const std::int64_t input = anthropic ? 100 + 50 + 30 : 60 + 50 + 20;
  const std::int64_t creation = anthropic ? 7 : 0;
  CHECK(usage["input_tokens"] == input);
  CHECK(usage["cached_input_tokens"] == 50);
  CHECK(usage["cache_creation_input_tokens"] == creation);
  CHECK(usage["output_tokens"] == 35);
  CHECK(usage["total_tokens"] == input + 50 + creation + 35);
  if (anthropic)
    CHECK_FALSE(usage.contains("reasoning_tokens"));  // Anthropic reports none
  else
    CHECK(usage["reasoning_tokens"] == 6);
  CHECK(usage["by_model"]["fake/fake-model"]["model_calls"] == 3);
  CHECK(usage["by_model"]["fake/fake-model"]["input_tokens"] == input);

  // USD per million: input 1, cached 0.5, output 2, cache writes 1.25.
  const double usd = (input * 1 + 50 * 0.5 + creation * 1.25 + 35 * 2) / 1e6;
  CHECK(doc["cost"]["usd"].get<double>() == Approx(usd));
  CHECK(doc["cost"]["by_model"]["fake/fake-model"].get<double>() == Approx(usd));

  // Each turn's usage in Lua is its own call's.
  const Json& a = doc["result"]["a"];
  CHECK(a["cached_input_tokens"] == 40);
  CHECK(a["input_tokens"] == (anthropic ? 100 : 60));
  CHECK(a["prompt_tokens"] == (anthropic ? 147 : 100));  // the Python dialect's name
  CHECK(a["completion_tokens"] == 20);
  CHECK(doc["result"]["c"]["output_tokens"] == 5);
  CHECK(doc["result"]["a_cost"].get<double>() ==
        Approx(((anthropic ? 100 : 60) + 40 * 0.5 + creation * 1.25 + 20 * 2) / 1e6));

  // The audit log has each call's usage and cost; the journal has them in its answers.
  const auto lines = audit_lines(tac, "llm.chat");
  REQUIRE(lines.size() == 3);
  CHECK(lines[0]["usage"]["cached_input_tokens"] == 40);
  CHECK(lines[1]["usage"]["output_tokens"] == 10);
  CHECK(lines[2]["cost"].get<double>() > 0);
  const Json runs = runs_json(tac);
  REQUIRE(runs.size() == 1);
  CHECK(runs[0]["usage"] == usage);
  CHECK(runs[0]["cost"]["usd"].get<double>() == Approx(usd));
}

TEST_CASE("usage: a stream without usage reports unknown, never 0, and so does the cost",
          "[usage][cli]") {
  const std::string api = GENERATE(as<std::string>{}, "openai", "anthropic");
  FakeReply silent = FakeReply::say("no usage here");
  silent.no_usage = true;
  FakeLlmServer server({FakeReply::say("counted"), silent, FakeReply::say("counted too")});
  TempTac tac(kThreeTurns);
  write_file(tac.path() + ".yml", sidecar(server, api, kPrices));
  const CliRun r = run_in(tac, {"run", tac.path(), "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const Json doc = Json::parse(r.out);
  CHECK(doc["result"]["b"] == "unknown");
  CHECK(doc["result"]["a"]["total_tokens"] == 18);
  const Json& usage = doc["usage"];
  CHECK(usage["model_calls"] == 3);
  CHECK(usage["unknown_calls"] == 1);
  for (const char* key : {"input_tokens", "output_tokens", "total_tokens", "cached_input_tokens"})
    CHECK(usage[key] == "unknown");
  CHECK(doc["cost"]["usd"] == "unknown");
  CHECK(audit_lines(tac, "llm.chat")[1]["usage"] == "unknown");
}

TEST_CASE("usage: a model without a price costs unknown, the built-in table prices openai's",
          "[usage][cli]") {
  FakeLlmServer server({FakeReply::say("one"), FakeReply::say("two")});
  TempTac tac(R"(
local priced = Agent { model = "openai/gpt-4o-mini-2024-07-18", max_tokens = 50 }
local unpriced = Agent { model = "fake/fake-model" }
local a = priced("hi")
local b = unpriced("hi")
return { a = a.cost, b = b.cost }
)");
  // Provider "openai" at the fake server: the built-in prices still apply (a proxy to OpenAI
  // costs what OpenAI costs), and the compatible URL keeps max_tokens.
  write_file(tac.path() + ".yml",
             sidecar(server, "openai",
                     "  openai:\n    base_url: \"" + server.base_url() + "\"\n    api_key: K\n"));
  const CliRun r = run_in(tac, {"run", tac.path(), "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const Json doc = Json::parse(r.out);
  // gpt-4o-mini: 0.15 input, 0.60 output per million; 11 in, 7 out.
  const double a = (11 * 0.15 + 7 * 0.60) / 1e6;
  CHECK(doc["result"]["a"].get<double>() == Approx(a));
  CHECK(doc["result"]["b"] == "unknown");
  CHECK(doc["cost"]["usd"] == "unknown");
  CHECK(doc["cost"]["by_model"]["openai/gpt-4o-mini-2024-07-18"].get<double>() == Approx(a));
  CHECK(doc["cost"]["by_model"]["fake/fake-model"] == "unknown");
  const auto requests = server.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].body["max_tokens"] == 50);
  CHECK_FALSE(requests[0].body.contains("max_completion_tokens"));
}

TEST_CASE("usage: max_tokens_field sends max_completion_tokens, Anthropic keeps max_tokens",
          "[usage][cli]") {
  FakeLlmServer server({FakeReply::say("one")});
  TempTac tac(R"(
local a = Agent { model = "fake/o4-mini", max_tokens = 64 }
return a("hi").output
)");
  write_file(tac.path() + ".yml",
             sidecar(server, "openai", "    max_tokens_field: max_completion_tokens\n"));
  const CliRun r = run_in(tac, {"run", tac.path()});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto requests = server.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].body["max_completion_tokens"] == 64);
  CHECK_FALSE(requests[0].body.contains("max_tokens"));
  // A bad value is a configuration error naming the key.
  write_file(tac.path() + ".yml", sidecar(server, "openai", "    max_tokens_field: max_toks\n"));
  const CliRun bad = run_in(tac, {"run", tac.path()});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("providers.fake.max_tokens_field: 'max_toks' is not one of: max_tokens, "
                     "max_completion_tokens (did you mean 'max_tokens'?)") != std::string::npos);
}

TEST_CASE(
    "budget: two model calls stop the third (status budget, exit 6), a raised budget "
    "resumes the run without repeating a call",
    "[usage][budget][cli]") {
  FakeLlmServer server(
      {FakeReply::say("first"), FakeReply::say("second"), FakeReply::say("third")});
  TempTac tac(kThreeTurns);
  write_file(tac.path() + ".yml", sidecar(server, "openai", "", "budget:\n  model_calls: 2\n"));
  const CliRun r = run_in(tac, {"run", tac.path(), "--json", "--run-id", "b1"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 6);
  const Json doc = Json::parse(r.out);
  CHECK(doc["status"] == "budget");
  const std::string message = doc["error"]["message"];
  CHECK(message.rfind("budget: model_calls: the run has made 2 of its 2 model calls "
                      "(budget.model_calls, " +
                          tac.path() + ".yml:",
                      0) == 0);
  CHECK(message.find("the next would be the 3rd") != std::string::npos);
  CHECK(message.find("raise the budget and resume it with 'tactus resume b1'") !=
        std::string::npos);
  CHECK(doc["usage"]["model_calls"] == 2);
  CHECK(server.request_count() == 2);  // the third never reached the provider
  CHECK(runs_json(tac)[0]["status"] == "budget");

  // Not raised: the resume stops at the same place, and still sends nothing.
  const CliRun again = run_in(tac, {"resume", "b1", "--json"});
  CHECK(again.exit_code == 6);
  CHECK(server.request_count() == 2);

  write_file(tac.path() + ".yml", sidecar(server, "openai", "", "budget:\n  model_calls: 5\n"));
  const CliRun resumed = run_in(tac, {"resume", "b1", "--json"});
  INFO(resumed.out << resumed.err);
  REQUIRE(resumed.exit_code == 0);
  const Json done = Json::parse(resumed.out);
  CHECK(done["result"]["text"] == "third");
  CHECK(done["usage"]["model_calls"] == 3);  // the journaled calls count: resumes count
  CHECK(server.request_count() == 3);        // no call repeated
  const Json runs = runs_json(tac);
  CHECK(runs[0]["status"] == "completed");
  CHECK(runs[0]["repeated"] == 0);
  CHECK(runs[0]["usage"]["model_calls"] == 3);
}

TEST_CASE("budget: tool calls, tokens and dollars each stop the call that would pass them",
          "[usage][budget][cli]") {
  SECTION("tool_calls: the third Host.call is refused, even inside pcall") {
    TempTac tac(R"(
for i = 1, 3 do pcall(Host.call, "host.ping", { i = i }) end
return "not reached"
)");
    write_file(tac.path() + ".yml", "budget:\n  tool_calls: 2\n");
    const CliRun r = run_in(tac, {"run", tac.path(), "--json"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 6);
    const Json doc = Json::parse(r.out);
    CHECK(doc["status"] == "budget");
    CHECK(doc["error"]["message"].get<std::string>().rfind(
              "budget: tool_calls: the run has made 2 of its 2 tool calls", 0) == 0);
    CHECK(doc["usage"]["tool_calls"] == 2);
  }
  SECTION("tokens: what was used and the request's input (estimated) against 80") {
    FakeLlmServer server({FakeReply::say("1"), FakeReply::say("2"), FakeReply::say("3")});
    TempTac tac(kThreeTurns);
    write_file(tac.path() + ".yml", sidecar(server, "openai", "", "budget:\n  tokens: 80\n"));
    const CliRun r = run_in(tac, {"run", tac.path(), "--json"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 6);
    CHECK(Json::parse(r.out)["error"]["message"].get<std::string>().rfind(
              "budget: tokens: the run has used 36 tokens of its 80 (budget.tokens, " + tac.path() +
                  ".yml:11:11), and this request's input is about ",
              0) == 0);
    // The calls that went asked for no more output than remained.
    const auto requests = server.requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[0].body["max_tokens"].get<int>() < 80);
    CHECK(requests[1].body["max_tokens"].get<int>() < 80 - 18);
    CHECK(requests[1].body["max_tokens"].get<int>() >= 1);
  }
  SECTION("tokens: with plenty left, no max_tokens asks for 4096, and 100 stays 100") {
    FakeLlmServer server({FakeReply::say("1"), FakeReply::say("2")});
    TempTac tac(R"(
local free = Agent { model = "fake/fake-model" }
local bounded = Agent { model = "fake/fake-model", max_tokens = 100 }
return { free("a").output, bounded("b").output }
)");
    write_file(tac.path() + ".yml", sidecar(server, "openai", "", "budget:\n  tokens: 1000000\n"));
    const CliRun r = run_in(tac, {"run", tac.path(), "--json"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    const auto requests = server.requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[0].body["max_tokens"] == 4096);
    CHECK(requests[1].body["max_tokens"] == 100);
  }
  SECTION("tokens: a first request whose input alone passes the budget is not sent") {
    FakeLlmServer server({FakeReply::say("1")});
    TempTac tac(kThreeTurns);
    write_file(tac.path() + ".yml", sidecar(server, "openai", "", "budget:\n  tokens: 10\n"));
    const CliRun r = run_in(tac, {"run", tac.path(), "--json"});
    CHECK(r.exit_code == 6);
    CHECK(Json::parse(r.out)["error"]["message"].get<std::string>().find(
              "the run has used 0 tokens of its 10") != std::string::npos);
    CHECK(server.request_count() == 0);
  }
  SECTION("tokens: a call that reported no usage cannot be counted: the next is refused") {
    FakeReply silent = FakeReply::say("1");
    silent.no_usage = true;
    FakeLlmServer server({silent, FakeReply::say("2")});
    TempTac tac(kThreeTurns);
    write_file(tac.path() + ".yml", sidecar(server, "openai", "", "budget:\n  tokens: 1000\n"));
    const CliRun r = run_in(tac, {"run", tac.path(), "--json"});
    CHECK(r.exit_code == 6);
    CHECK(Json::parse(r.out)["error"]["message"].get<std::string>().find(
              "reported no usage, so its budget of 1000 tokens") != std::string::npos);
    CHECK(server.request_count() == 1);
  }
  SECTION("usd: a model without a price is refused before its first call") {
    FakeLlmServer server({FakeReply::say("1")});
    TempTac tac(kThreeTurns);
    write_file(tac.path() + ".yml", sidecar(server, "openai", "", "budget:\n  usd: 0.25\n"));
    const CliRun r = run_in(tac, {"run", tac.path(), "--json"});
    CHECK(r.exit_code == 6);
    CHECK(Json::parse(r.out)["error"]["message"].get<std::string>().rfind(
              "budget: usd: the model has no price, so the budget of USD 0.25 (budget.usd, ", 0) ==
          0);
    CHECK(server.request_count() == 0);
  }
  SECTION("usd: 18 millionths a call against 80: what was spent and the input's price") {
    FakeLlmServer server({FakeReply::say("1"), FakeReply::say("2"), FakeReply::say("3")});
    TempTac tac(kThreeTurns);
    write_file(tac.path() + ".yml",
               sidecar(server, "openai", "    prices:\n      fake-model: {input: 1, output: 1}\n",
                       "budget:\n  usd: 0.00008\n"));
    const CliRun r = run_in(tac, {"run", tac.path(), "--json"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 6);
    CHECK(Json::parse(r.out)["error"]["message"].get<std::string>().rfind(
              "budget: usd: the run has spent USD 3.6e-05 of its USD 8e-05", 0) == 0);
    const auto requests = server.requests();
    REQUIRE(requests.size() == 2);
    // At 1 USD per million output tokens, the first call could afford at most 80 of them.
    CHECK(requests[0].body["max_tokens"].get<int>() < 80);
  }
  SECTION("a bad budget is a configuration error naming file:line and the key") {
    TempTac tac("return 1");
    write_file(tac.path() + ".yml", "budget:\n  usd: lots\n");
    const CliRun r = run_in(tac, {"run", tac.path()});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(tac.path() + ".yml:2:8: budget.usd: 'lots' is not a number of US dollars") !=
          std::string::npos);
    write_file(tac.path() + ".yml", "budget:\n  model_cals: 2\n");
    const CliRun typo = run_in(tac, {"run", tac.path()});
    CHECK(typo.exit_code == 2);
    CHECK(typo.err.find("budget.model_cals: unknown key (did you mean 'model_calls'?)") !=
          std::string::npos);
  }
}
