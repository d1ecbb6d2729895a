// Traces end to end: a loopback OTLP/HTTP collector receives the run's spans (the run,
// invoke_agent per turn, chat per model call, execute_tool per Lua and host tool call) with
// the GenAI attributes, never a secret value, content only when asked; a collector that is
// down does not fail the run.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "tests/fixtures/fake_llm.h"
#include "tests/support/cli_runner.h"
#include "tests/support/otlp_stub.h"

using namespace tactus::test;
using Json = nlohmann::json;

namespace {

const std::string kKey = "sk-telemetry-test-key-5b2e9a71";
const std::string kKeyEnv = "TACTUS_TEST_LLM_KEY=" + kKey;

const char* kAgent = R"(
word_length = Tool { description = "Length of a word",
  input = { word = field.string{required = true} },
  function(args) return { length = #args.word } end }
helper = Agent { model = "fake/fake-model", tools = { word_length, "host.ping" } }
local first = helper("measure tactus")
local second = helper("thanks")
return second.output
)";

std::string sidecar(const FakeLlmServer& server, const std::string& endpoint,
                    bool capture = false) {
  return "providers:\n  fake: {base_url: \"" + server.base_url() +
         "\", api_key: K, api: openai}\nsecrets:\n  K: {env: TACTUS_TEST_LLM_KEY}\n"
         "telemetry:\n  otlp_endpoint: \"" +
         endpoint + "\"\n  capture_content: " + (capture ? "true" : "false") + "\n";
}

std::vector<FakeReply> script() {
  return {FakeReply::call({{"call_1", "word_length", R"({"word": "tactus"})"},
                           {"call_2", "host_ping", R"({"from": "model"})"}}),
          // The model repeats the key it should never have seen: content capture must mask it.
          FakeReply::say("Six letters. (Your key is " + kKey + ".)")};
}

const Json* find_span(const std::vector<Json>& spans, const std::string& name, int nth = 0) {
  for (const auto& s : spans)
    if (s["name"] == name && nth-- == 0) return &s;
  return nullptr;
}

}  // namespace

TEST_CASE("telemetry: the collector receives the run's spans with the GenAI attributes",
          "[telemetry][cli]") {
  FakeLlmServer server(script());
  OtlpStub collector;
  TempTac tac(kAgent);
  write_file(tac.path() + ".yml", sidecar(server, collector.endpoint()));
  const CliRun r = run_tactus_in(tac.dir(), {"run", tac.path(), "--run-id", "traced1"}, {kKeyEnv});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(collector.targets() == std::vector<std::string>{"POST /v1/traces"});
  CHECK(collector.content_types()[0] == "application/json");
  const auto spans = collector.spans();
  INFO(collector.all_bodies());
  REQUIRE(spans.size() == 7);  // run, 2 turns, 2 chats, 2 tools

  const Json* run = find_span(spans, "run proc.tac");
  REQUIRE(run);
  CHECK_FALSE(run->contains("parentSpanId"));
  CHECK(run->at("attrs")["tactus.run_id"] == "traced1");
  CHECK(run->at("attrs")["tactus.status"] == "ok");
  const std::string trace = run->at("traceId");
  CHECK(trace.size() == 32);
  for (const auto& s : spans) CHECK(s["traceId"] == trace);

  const Json* turn1 = find_span(spans, "invoke_agent helper", 0);
  const Json* turn2 = find_span(spans, "invoke_agent helper", 1);
  REQUIRE(turn1);
  REQUIRE(turn2);
  CHECK(turn1->at("parentSpanId") == run->at("spanId"));
  CHECK(turn1->at("attrs")["gen_ai.operation.name"] == "invoke_agent");
  CHECK(turn1->at("attrs")["gen_ai.agent.name"] == "helper");

  const Json* chat = find_span(spans, "chat fake-model", 0);
  REQUIRE(chat);
  CHECK(chat->at("parentSpanId") == turn1->at("spanId"));
  CHECK(chat->at("kind") == 3);  // CLIENT
  const Json& a = chat->at("attrs");
  CHECK(a["gen_ai.operation.name"] == "chat");
  CHECK(a["gen_ai.provider.name"] == "fake");
  CHECK(a["gen_ai.request.model"] == "fake-model");
  CHECK(a["gen_ai.response.model"] == "fake-model");
  CHECK(a["gen_ai.usage.input_tokens"] == 11);
  CHECK(a["gen_ai.usage.output_tokens"] == 7);
  CHECK(a["gen_ai.response.finish_reasons"] == Json::array({"tool_calls"}));
  CHECK(a["gen_ai.agent.name"] == "helper");
  CHECK_FALSE(a.contains("gen_ai.input.messages"));  // no content unless capture_content
  CHECK_FALSE(a.contains("gen_ai.output.messages"));
  CHECK(find_span(spans, "chat fake-model", 1)->at("parentSpanId") == turn2->at("spanId"));

  const Json* lua_tool = find_span(spans, "execute_tool word_length");
  const Json* host_tool = find_span(spans, "execute_tool host.ping");
  REQUIRE(lua_tool);
  REQUIRE(host_tool);
  CHECK(lua_tool->at("parentSpanId") == turn1->at("spanId"));
  CHECK(host_tool->at("parentSpanId") == turn1->at("spanId"));
  CHECK(lua_tool->at("attrs")["gen_ai.tool.name"] == "word_length");
  CHECK(host_tool->at("attrs")["gen_ai.operation.name"] == "execute_tool");
  CHECK_FALSE(host_tool->at("attrs").contains("gen_ai.tool.call.arguments"));
  for (const auto& s : spans) {
    CHECK(std::stoull(s["endTimeUnixNano"].get<std::string>()) >=
          std::stoull(s["startTimeUnixNano"].get<std::string>()));
  }
  CHECK(collector.all_bodies().find(kKey) == std::string::npos);
  CHECK(collector.all_bodies().find("Six letters") == std::string::npos);
}

TEST_CASE("telemetry: capture_content records prompts and replies, every secret masked",
          "[telemetry][cli]") {
  FakeLlmServer server(script());
  OtlpStub collector;
  TempTac tac(kAgent);
  write_file(tac.path() + ".yml", sidecar(server, collector.endpoint(), true));
  const CliRun r = run_tactus_in(tac.dir(), {"run", tac.path()}, {kKeyEnv});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto spans = collector.spans();
  const Json* chat = find_span(spans, "chat fake-model", 1);
  REQUIRE(chat);
  const std::string input = chat->at("attrs")["gen_ai.input.messages"];
  const std::string output = chat->at("attrs")["gen_ai.output.messages"];
  CHECK(input.find("measure tactus") != std::string::npos);
  CHECK(output.find("Six letters. (Your key is ***.)") != std::string::npos);
  const Json* host_tool = find_span(spans, "execute_tool host.ping");
  REQUIRE(host_tool);
  CHECK(host_tool->at("attrs")["gen_ai.tool.call.arguments"] == R"({"from":"model"})");
  CHECK(collector.all_bodies().find(kKey) == std::string::npos);
}

TEST_CASE("telemetry: a collector that is down leaves the run as it was, with a warning",
          "[telemetry][cli]") {
  FakeLlmServer server(script());
  TempTac tac(kAgent);
  const std::string endpoint = "http://127.0.0.1:" + std::to_string(LoopbackServer::closed_port());
  write_file(tac.path() + ".yml", sidecar(server, endpoint));
  const CliRun r = run_tactus_in(tac.dir(), {"run", tac.path(), "--json"}, {kKeyEnv});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Json::parse(r.out)["status"] == "ok");
  CHECK(r.err.find("tactus: warning: telemetry: the spans were not sent to " + endpoint +
                   "/v1/traces") != std::string::npos);
  CHECK(r.err.find(kKey) == std::string::npos);
}

TEST_CASE("telemetry: off by default, the VM sends no trace events and nothing is exported",
          "[telemetry][cli]") {
  FakeLlmServer server(script());
  OtlpStub collector;
  TempTac tac(kAgent);
  write_file(tac.path() + ".yml",
             "providers:\n  fake: {base_url: \"" + server.base_url() +
                 "\", api_key: K, api: openai}\nsecrets:\n  K: {env: TACTUS_TEST_LLM_KEY}\n");
  const CliRun r = run_tactus_in(tac.dir(), {"run", tac.path()}, {kKeyEnv});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(collector.targets().empty());
  // An invalid endpoint is a configuration error naming the key.
  write_file(tac.path() + ".yml", "telemetry:\n  otlp_endpoint: \"grpc://collector:4317\"\n");
  const CliRun bad = run_tactus_in(tac.dir(), {"run", tac.path()}, {kKeyEnv});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("telemetry.otlp_endpoint: must be an http:// or https:// URL") !=
        std::string::npos);
}
