// Agents end to end: the real binary, a jailed VM, the broker's providers and a fake provider
// server that counts what it receives. The API key is a secret of the trusted configuration and
// must reach the provider's Authorization header and nothing else.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/fixtures/fake_llm.h"
#include "tests/support/cli_runner.h"

using namespace tactus::test;  // tests/support/
using Json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kKey = "sk-agent-test-key-4c7e1a9b";
const std::string kKeyEnv = "TACTUS_TEST_LLM_KEY=" + kKey;

// A sidecar naming the fake server as provider "fake" (api openai unless given), the key as a
// secret, an audit log, and extra YAML (tools.allow and the like).
std::string sidecar(const FakeLlmServer& server, const std::string& extra = "",
                    const std::string& api = "openai") {
  return "providers:\n  fake: {base_url: \"" + server.base_url() + "\", api_key: K, api: " + api +
         "}\nsecrets:\n  K: {env: TACTUS_TEST_LLM_KEY}\naudit:\n  path: audit.jsonl\n" + extra;
}

struct Ran {
  int exit_code;
  std::string out, err, audit;
};

Ran run(const TempTac& tac, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"run", tac.path()};
  args.insert(args.end(), extra.begin(), extra.end());
  const auto r = run_tactus(args, {kKeyEnv});
  return {r.exit_code, r.out, r.err, tactus::test::read_file(tac.dir() + "/audit.jsonl")};
}

void check_key_absent(const Ran& r) {
  CHECK(r.out.find(kKey) == std::string::npos);
  CHECK(r.err.find(kKey) == std::string::npos);
  CHECK(r.audit.find(kKey) == std::string::npos);
}

const Json* find_message(const Json& messages, const std::string& role, std::size_t nth = 0) {
  for (const auto& m : messages)
    if (m.value("role", "") == role && nth-- == 0) return &m;
  return nullptr;
}

}  // namespace

TEST_CASE("agent: a multi-turn agent calls a Lua tool, a host tool and done", "[agent][cli]") {
  FakeLlmServer server({
      FakeReply::call({{"call_1", "word_length", R"({"word": "tactus"})"},
                       {"call_2", "file_read", R"({"path": "notes.txt"})"}},
                      "Let me look."),
      FakeReply::call({{"call_3", "done", R"({"reason": "found it"})"}}, "The notes say hello."),
  });
  TempTac tac(R"(
local done = require("tactus.tools.done")
word_length = Tool { description = "Length of a word",
  input = { word = field.string{required = true} },
  function(args) return { length = #args.word } end }
helper = Agent {
  model = "fake/fake-model",
  system_prompt = "You help {input.name}.",
  initial_message = "Read the notes.",
  tools = { word_length, "file.read", done },
  temperature = 0.1, max_tokens = 300,
}
Procedure {
  input = { name = field.string{required = true} },
  function(input)
    local turns, texts, calls = 0, {}, {}
    repeat
      local t = helper()
      turns = turns + 1
      texts[#texts + 1] = t.output
      for _, c in ipairs(t.tool_calls) do calls[#calls + 1] = c.name end
    until done.called() or turns == 4
    return { turns = turns, texts = texts, calls = calls, length = word_length.last_result().length,
             reason = done.last_call().args.reason, history = #helper.history(),
             seen = require("tactus.io.json").encode(helper.history()) }
  end }
)");
  tactus::test::write_file(tac.path() + ".yml", sidecar(server, "tools:\n  allow: [file.read]\n"));
  tactus::test::write_file(tac.dir() + "/notes.txt", "hello from the notes");
  const Ran r = run(tac, {"--param", "name=Ada"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const Json j = Json::parse(r.out);
  CHECK(j["turns"] == 2);
  CHECK(j["texts"] == Json{"Let me look.", "The notes say hello."});
  CHECK(j["calls"] == Json{"word_length", "file.read", "done"});
  CHECK(j["length"] == 6);
  CHECK(j["reason"] == "found it");
  // user, assistant(2 calls), tool, tool, assistant(done), tool
  CHECK(j["history"] == 6);
  CHECK(j["seen"].get<std::string>().find("hello from the notes") != std::string::npos);
  REQUIRE(server.request_count() == 2);

  const auto requests = server.requests();
  const Json& first = requests[0].body;
  CHECK(requests[0].headers.at("authorization") == "Bearer " + kKey);
  CHECK(first["model"] == "fake-model");
  CHECK(first["temperature"] == 0.1);
  CHECK(first["max_tokens"] == 300);
  const Json* system = find_message(first["messages"], "system");
  REQUIRE(system);
  CHECK((*system)["content"] == "You help Ada.");
  CHECK((*find_message(first["messages"], "user"))["content"] == "Read the notes.");
  std::vector<std::string> offered;
  for (const auto& t : first["tools"]) offered.push_back(t["function"]["name"]);
  std::sort(offered.begin(), offered.end());
  CHECK(offered == std::vector<std::string>{"done", "file_read", "word_length"});

  // The second request carries both tool results, the file's text among them.
  const Json& second = requests[1].body;
  const Json* r1 = find_message(second["messages"], "tool", 0);
  const Json* r2 = find_message(second["messages"], "tool", 1);
  REQUIRE(r1);
  REQUIRE(r2);
  CHECK((*r1)["tool_call_id"] == "call_1");
  CHECK(Json::parse((*r1)["content"].get<std::string>()) == Json{{"length", 6}});
  CHECK((*r2)["content"].get<std::string>().find("hello from the notes") != std::string::npos);

  // The audit log has the host tool and both model requests, never the key.
  CHECK(r.audit.find("\"tool\":\"file.read\"") != std::string::npos);
  CHECK(r.audit.find("\"tool\":\"llm.chat\"") != std::string::npos);
  check_key_absent(r);
}

TEST_CASE("agent: a host tool the sidecar does not allow is refused, and the model hears why",
          "[agent][cli]") {
  FakeLlmServer server(
      {FakeReply::call({{"c1", "file_read", R"({"path": "x"})"}}), FakeReply::say("ok")});
  TempTac tac(R"(a = Agent { model = "fake/m", tools = { "file.read" } }
local t = a("go")
a()
return { err = t.tool_calls[1].error })");
  tactus::test::write_file(tac.path() + ".yml", sidecar(server));
  const Ran r = run(tac);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Json::parse(r.out)["err"].get<std::string>().find(
            "denied: host tool 'file.read' is not allowed") != std::string::npos);
  const auto reqs = server.requests();  // a copy: keep it alive while pointing into it
  REQUIRE(reqs.size() == 2);
  const Json* tool = find_message(reqs[1].body["messages"], "tool");
  REQUIRE(tool);
  CHECK((*tool)["content"].get<std::string>().rfind("error: denied:", 0) == 0);
}

TEST_CASE("agent: output_type validates the reply and retries once", "[agent][cli]") {
  FakeLlmServer server({FakeReply::say("Sure! Here it is."),
                        FakeReply::say("```json\n{\"title\": \"Tactus\", \"score\": 9}\n```")});
  TempTac tac(R"(a = Agent { model = "fake/m",
  output_type = { title = field.string{required = true}, score = field.integer{} } }
local t = a("Rate it")
return { output = t.output, tokens = t.usage.total_tokens })");
  tactus::test::write_file(tac.path() + ".yml", sidecar(server));
  Ran r = run(tac);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const Json j = Json::parse(r.out);
  CHECK(j["output"] == Json{{"title", "Tactus"}, {"score", 9}});
  CHECK(j["tokens"] == 36);  // two requests of 11 + 7
  REQUIRE(server.request_count() == 2);
  const auto reqs = server.requests();  // a copy: keep it alive while pointing into it
  const Json& retry = reqs[1].body["messages"];
  CHECK(retry.back()["content"].get<std::string>().rfind("Your reply was not valid", 0) == 0);
  CHECK((*find_message(retry, "system"))["content"].get<std::string>().find("JSON Schema") !=
        std::string::npos);

  FakeLlmServer bad({FakeReply::say("no"), FakeReply::say("{\"score\": \"high\"}")});
  tactus::test::write_file(tac.path() + ".yml", sidecar(bad));
  r = run(tac);
  INFO("second run: " << r.out << r.err);
  CHECK(r.exit_code == 1);
  // Fields are checked in name order: score before title.
  CHECK(r.err.find("agent 'a': the structured reply is invalid after a retry: field 'score' must "
                   "be an integer, got 'high'") != std::string::npos);
}

TEST_CASE("agent: provider errors reach the procedure as catchable errors, without the key",
          "[agent][cli]") {
  FakeLlmServer server({FakeReply::error(401, "Incorrect API key provided: " + kKey)});
  TempTac tac(R"(a = Agent { model = "fake/m" }
local ok, err = pcall(a, "hi")
return { ok = ok, err = err })");
  tactus::test::write_file(tac.path() + ".yml", sidecar(server));
  const Ran r = run(tac);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const Json j = Json::parse(r.out);
  CHECK(j["ok"] == false);
  CHECK(j["err"].get<std::string>().rfind("failed: llm: fake: HTTP 401: Incorrect API key", 0) ==
        0);
  check_key_absent(r);

  TempTac unknown(R"(a = Agent { model = "nowhere/m" } return a("hi"))");
  const auto u = run_tactus({"run", unknown.path()});
  CHECK(u.exit_code == 1);
  CHECK(u.err.find("denied: ") != std::string::npos);
  CHECK(u.err.find("nowhere") != std::string::npos);
}

TEST_CASE("agent: each agent keeps its own history, Name.turn() is an alias", "[agent][cli]") {
  FakeLlmServer server({FakeReply::say("one"), FakeReply::say("two"), FakeReply::say("three")});
  TempTac tac(R"(writer = Agent { model = "fake/m", system_prompt = "W" }
critic = Agent { model = "fake/m", system_prompt = "C" }
local a = writer("draft")
local b = critic("judge")
local c = Writer.turn("again")
return { a.output, b.output, c.output, #writer.history(), #critic.history() })");
  tactus::test::write_file(tac.path() + ".yml", sidecar(server));
  const Ran r = run(tac);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Json::parse(r.out) == Json{"one", "two", "three", 4, 2});
  const auto reqs = server.requests();
  REQUIRE(reqs.size() == 3);
  CHECK(reqs[2].body["messages"].size() == 4);  // system, draft, one, again: not the critic's
  CHECK(reqs[2].body["messages"][1]["content"] == "draft");
}

TEST_CASE("agent: an Anthropic provider and the Responses API work through the same Agent",
          "[agent][cli]") {
  FakeLlmServer server({FakeReply::say("from anthropic"), FakeReply::say("from responses")});
  TempTac tac(R"(a = Agent { model = "ant/claude-x", system_prompt = "S", max_tokens = 50 }
r = Agent { provider = "fake", model = "gpt-x", model_type = "responses" }
return { a("hi").output, r("hi").output })");
  tactus::test::write_file(tac.path() + ".yml", sidecar(server) + "  ant: {base_url: \"" +
                                                    server.base_url() +
                                                    "\", api_key: K, api: anthropic}\n");
  // The second provider entry must be under providers:, so write the YAML whole.
  tactus::test::write_file(tac.path() + ".yml",
                           "providers:\n  fake: {base_url: \"" + server.base_url() +
                               "\", api_key: K, api: openai}\n  ant: {base_url: \"" +
                               server.base_url() +
                               "\", api_key: K, api: anthropic}\nsecrets:\n  K: {env: "
                               "TACTUS_TEST_LLM_KEY}\n");
  const auto r = run_tactus({"run", tac.path()}, {kKeyEnv});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Json::parse(r.out) == Json{"from anthropic", "from responses"});
  const auto reqs = server.requests();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[0].api == "anthropic");
  CHECK(reqs[0].headers.at("x-api-key") == kKey);
  CHECK(reqs[0].body["system"] == "S");
  CHECK(reqs[1].api == "responses");
}

TEST_CASE("agent: the examples run against the fake provider", "[agent][examples][cli]") {
  TempTac dir("unused");
  for (const char* f :
       {"greeter.tac", "greeter.tac.yml", "researcher.tac", "researcher.tac.yml", "notes.txt"})
    fs::copy_file(fs::path(TACTUS_SOURCE_DIR) / "examples" / f, fs::path(dir.dir()) / f);
  FakeLlmServer server({
      // greeter: a greeting, then done when asked.
      FakeReply::say("Hello, Ada! Lovely to meet you."),
      FakeReply::call({{"g1", "done", R"({"reason": "greeted"})"}}),
      // researcher: reads the notes, counts words, answers and calls done.
      FakeReply::call({{"r1", "file_read", R"({"path": "notes.txt"})"}}),
      FakeReply::call({{"r2", "word_count", R"({"text": "Tactus runs agent procedures"})"}}),
      FakeReply::call({{"r3", "done", R"({"reason": "answered"})"}}, "There are 13 words."),
  });
  // The examples name provider openai; the user's config points it at the fake server.
  const std::string home = dir.dir() + "/home";
  tactus::test::write_file(home + "/.tactus/config.yml",
                           "providers:\n  openai: {base_url: \"" + server.base_url() +
                               "\", api_key: K}\nsecrets:\n  K: {env: TACTUS_TEST_LLM_KEY}\n");

  auto r = run_tactus({"run", dir.dir() + "/greeter.tac", "--param", "name=Ada"},
                      {kKeyEnv, "HOME=" + home});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Json::parse(r.out) == Json{{"greeting", "Hello, Ada! Lovely to meet you."}, {"turns", 2}});
  CHECK(r.err == "[info] greeted name=Ada turns=2\n");

  r = run_tactus({"run", dir.dir() + "/researcher.tac"}, {kKeyEnv, "HOME=" + home});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Json::parse(r.out) == Json{{"answer", "There are 13 words."},
                                   {"tools_used", {"file.read", "word_count", "done"}}});
  CHECK(server.request_count() == 5);
  CHECK(r.out.find(kKey) == std::string::npos);
}

TEST_CASE("agent: a Toolset offers its tools, inline ones as set_tool, include/exclude honoured",
          "[agent][cli]") {
  FakeLlmServer server({FakeReply::call({{"c1", "words_count", R"({"text": "a b c"})"},
                                         {"c2", "shout", R"({"text": "hi"})"}}),
                        FakeReply::say("done")});
  TempTac tac(R"(
shout = Tool { input = { text = field.string{required = true} },
  function(a) return a.text:upper() end }
whisper = Tool { function(a) return "psst" end }
Toolset "words" {
  tools = { shout, whisper,
    { name = "count", description = "Count words", input = { text = field.string{} },
      handler = function(a) local n = 0 for _ in a.text:gmatch("%S+") do n = n + 1 end return n end } },
  exclude = { "whisper" },
}
a = Agent { model = "fake/m", tools = { "words" } }
local t = a("go")
return { t.tool_calls[1].result, t.tool_calls[2].result, Tool.called("words_count") })");
  tactus::test::write_file(tac.path() + ".yml", sidecar(server));
  const Ran r = run(tac);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Json::parse(r.out) == Json{3, "HI", true});
  const auto reqs = server.requests();
  std::vector<std::string> offered;
  for (const auto& t : reqs[0].body["tools"]) offered.push_back(t["function"]["name"]);
  std::sort(offered.begin(), offered.end());
  CHECK(offered == std::vector<std::string>{"shout", "words_count"});
}
