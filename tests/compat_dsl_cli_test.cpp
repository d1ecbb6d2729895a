// The Python Tactus dialect end to end (docs/language.md, "Coming from Python Tactus"): its
// configuration keys, the 0.10 declaration forms, the input global, agents' toolsets and turn
// options against a fake provider, and its primitives. Written here from the dialect's
// documented behaviour; no file of Python Tactus is copied.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "tests/fixtures/fake_llm.h"
#include "tests/support/cli_runner.h"
#include "tests/support/http_test_server.h"

using namespace tactus::test;  // tests/support/
using Json = nlohmann::json;

namespace {

const std::string kKey = "sk-compat-test-key-9d1e";
const std::string kKeyEnv = "TACTUS_TEST_LLM_KEY=" + kKey;

// A project: dir/.tactus/config.yml naming the fake server as provider "fake", plus extra.
void project_config(const TempTac& tac, const FakeLlmServer& server, const std::string& extra) {
  write_file(tac.dir() + "/.tactus/config.yml",
             "providers:\n  fake: {base_url: \"" + server.base_url() +
                 "\", api_key: K, api: openai}\nsecrets:\n  K: {env: TACTUS_TEST_LLM_KEY}\n" +
                 extra);
}

CliRun run_in(const TempTac& tac, std::vector<std::string> args) {
  return run_tactus_in(tac.dir(), args, {kKeyEnv});
}

// The names of the tools offered in a provider request.
std::vector<std::string> offered(const FakeRequest& req) {
  std::vector<std::string> out;
  for (const auto& t : req.body.value("tools", Json::array()))
    out.push_back(t.contains("function") ? t["function"].value("name", "") : t.value("name", ""));
  return out;
}

}  // namespace

TEST_CASE("compat: default_model, default_provider and default_toolsets from the configuration",
          "[compat][cli]") {
  FakeLlmServer server({FakeReply::call({{"c1", "done", R"({"reason": "hi there"})"}}, "Hello")});
  TempTac tac(R"(
agent("greeter", { system_prompt = "Greet.", initial_message = "Go" })
main = procedure("main", { output = { reason = { type = "string", required = true } } },
  function()
    Greeter.turn()
    return { reason = Tool.last_call("done").args.reason }
  end)
)");
  project_config(tac, server,
                 "default_provider: fake\ndefault_model: fake-model\ndefault_toolsets: [done]\n");
  const auto r = run_in(tac, {"run", tac.path(), "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Json::parse(r.out)["result"]["reason"] == "hi there");
  REQUIRE(server.requests().size() == 1);
  const FakeRequest req = server.requests()[0];
  CHECK(req.body["model"] == "fake-model");
  CHECK(offered(req) == std::vector<std::string>{"done"});
  // With no default, validate says which model the agent takes.
  write_file(tac.dir() + "/.tactus/config.yml", "default_toolsets: [done]\n");
  const auto v = run_in(tac, {"validate", tac.path()});
  CHECK(v.exit_code == 0);
  CHECK(v.err.find("note: agent 'greeter' names no model: it uses gpt-4o (Python Tactus's "
                   "default; set default_model)") != std::string::npos);
}

TEST_CASE(
    "compat: Python-only keys warn once each without their value, keys in text are "
    "refused, ours stay strict",
    "[compat][cli]") {
  TempTac tac("return 1\n");
  write_file(tac.dir() + "/.tactus/config.yml",
             "aws:\n  default_region: eu-west-1\ntool_paths: [./tools]\n");
  const auto r = run_tactus_in(tac.dir(), {"run", tac.path()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("config.yml:1:1: aws: ignored: AWS settings for Bedrock") != std::string::npos);
  CHECK(r.err.find("config.yml:3:1: tool_paths: ignored: Python plugin tools are not run") !=
        std::string::npos);
  CHECK(r.err.find("eu-west-1") == std::string::npos);
  // A credential written in configuration text is refused, its value never echoed.
  write_file(tac.dir() + "/.tactus/config.yml", "openai_api_key: sk-python-style-secret\n");
  const auto key = run_tactus_in(tac.dir(), {"run", tac.path()});
  CHECK(key.exit_code == 2);
  CHECK(key.err.find("config.yml:1:17: openai_api_key: a key written in configuration text is "
                     "refused: declare it under secrets:") != std::string::npos);
  CHECK(key.err.find("sk-python-style-secret") == std::string::npos);
  write_file(tac.path() + ".yml", "aws:\n  secret_access_key: AKIAEXAMPLESECRET\n");
  write_file(tac.dir() + "/.tactus/config.yml", "");
  const auto aws = run_tactus_in(tac.dir(), {"run", tac.path()});
  CHECK(aws.exit_code == 2);
  CHECK(aws.err.find("aws.secret_access_key: credentials written in configuration text are "
                     "refused") != std::string::npos);
  CHECK(aws.err.find("AKIAEXAMPLESECRET") == std::string::npos);
  write_file(tac.path() + ".yml", "");
  // A truly unknown key is an error naming the file and line, with a suggestion.
  write_file(tac.dir() + "/.tactus/config.yml", "defualt_model: x\n");
  const auto bad = run_tactus_in(tac.dir(), {"run", tac.path()});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("config.yml:1:1: defualt_model: unknown key (did you mean "
                     "'default_model'?)") != std::string::npos);
  write_file(tac.dir() + "/.tactus/config.yml", "toolsets:\n  x: {type: python}\n");
  const auto badtype = run_tactus_in(tac.dir(), {"run", tac.path()});
  CHECK(badtype.exit_code == 2);
  CHECK(badtype.err.find("toolsets.x.type: 'python' is not one of: mcp, filtered, combined, "
                         "plugin") != std::string::npos);
  write_file(tac.dir() + "/.tactus/config.yml",
             "toolsets:\n  x: {type: filtered, source: y, pattern: '(?!secret)\\w+'}\n");
  const auto look = run_tactus_in(tac.dir(), {"run", tac.path()});
  CHECK(look.exit_code == 2);
  CHECK(look.err.find("lookarounds and back-references are not supported here") !=
        std::string::npos);
}

TEST_CASE(
    "compat: config toolsets (filtered, combined, plugin) and toolset expressions decide "
    "the tools offered",
    "[compat][cli]") {
  FakeLlmServer server;
  for (int i = 0; i < 6; ++i) server.push(FakeReply::say("ok"));
  TempTac tac(R"(
tool("add", { description = "a+b", parameters = { a = { type = "number" }, b = { type = "number" } } },
  function(args) return args.a + args.b end)
tool("sub", { description = "a-b", parameters = {} }, function() return 0 end)
toolset("math", { type = "lua", tools = {
  { name = "mul", description = "a*b", parameters = {}, handler = function() return 1 end },
  { name = "div", description = "a/b", parameters = {}, handler = function() return 1 end } } })
agent("a1", { provider = "fake", model = "m", initial_message = "x", toolsets = { "only_add_sub" } })
agent("a2", { provider = "fake", model = "m", initial_message = "x",
  toolsets = { { name = "math", include = { "mul" } }, { name = "math", prefix = "calc_", exclude = { "mul" } } } })
agent("a3", { provider = "fake", model = "m", initial_message = "x", toolsets = { "py", "done" } })
agent("a4", { provider = "fake", model = "m", initial_message = "x", toolsets = {} })
agent("a5", { provider = "fake", model = "m", initial_message = "x",
  tools = { { name = "shout", description = "upper", parameters = { text = { type = "string" } },
              handler = function(args) return args.text:upper() end } } })
main = procedure("main", function()
  A1.turn() A2.turn() A3.turn() A4.turn() A5.turn()
  A3.turn({ message = "again", toolsets = {} })
  return { ok = true }
end)
)");
  project_config(tac, server,
                 "toolsets:\n  adds: {type: filtered, source: both, pattern: '^(add|sub)$'}\n"
                 "  both: {type: combined, sources: [add, sub, missing]}\n"
                 "  only_add_sub: {type: combined, sources: [adds]}\n"
                 "  py: {type: plugin, paths: [./tools.py]}\n");
  const auto v = run_in(tac, {"validate", tac.path()});
  INFO(v.out << v.err);
  REQUIRE(v.exit_code == 0);
  CHECK(v.err.find("note: toolset 'py' loads Python plugin files, which tactus does not run") !=
        std::string::npos);
  CHECK(v.err.find("toolset 'both': its source 'missing' is no toolset: skipped") !=
        std::string::npos);
  const auto r = run_in(tac, {"run", tac.path()});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto reqs = server.requests();
  REQUIRE(reqs.size() == 6);
  CHECK(offered(reqs[0]) == std::vector<std::string>{"add", "sub"});
  CHECK(offered(reqs[1]) == std::vector<std::string>{"mul", "calc_div"});
  CHECK(offered(reqs[2]) == std::vector<std::string>{"done"});
  CHECK(offered(reqs[3]).empty());
  CHECK(offered(reqs[4]) == std::vector<std::string>{"a5_shout"});
  CHECK(offered(reqs[5]).empty());  // a turn's toolsets = {} offers nothing
  CHECK(reqs[5].body["messages"].back()["content"] == "again");
}

TEST_CASE("compat: validate says valid only when every agent's toolsets resolve", "[compat][cli]") {
  TempTac tac(R"(
agent("a", { provider = "openai", model = "gpt-4o", toolsets = { "nowhere" } })
main = procedure("main", function() return {} end)
)");
  const auto r = run_tactus({"validate", tac.path()});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("agent 'a': no toolset named 'nowhere' (toolsets here: done)") !=
        std::string::npos);
}

TEST_CASE("compat: procedure(\"main\", {...}, fn), the input global and --param conversion",
          "[compat][cli]") {
  TempTac tac(R"(
local helper = procedure("double", { input = { n = { type = "number", required = true } } },
  function() return { n = input.n * 2 } end)
main = procedure("main", {
  input = {
    numbers = { type = "array", required = true },
    label = { type = "string", default = "sum" },
  },
  output = { total = { type = "number", required = true }, label = { type = "string" },
             same = { type = "boolean" }, doubled = { type = "number" } },
  state = { seen = { type = "number", default = 7 } },
}, function(arg)
  local t = 0
  for _, n in ipairs(input.numbers) do t = t + n end
  return { total = t, label = input.label, same = rawequal(arg, input),
           doubled = helper({ n = state.seen }).n }
end)
)");
  const auto r = run_tactus({"run", tac.path(), "--param", "numbers=[2,4,6]"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Json::parse(r.out) ==
        Json{{"total", 12}, {"label", "sum"}, {"same", true}, {"doubled", 14}});
  const auto typo = run_tactus({"run", tac.path(), "--param", "numbers=[1]", "--param", "lable=x"});
  CHECK(typo.exit_code == 1);
  CHECK(typo.err.find("invalid input: unknown field 'lable' (declared: label, numbers)") !=
        std::string::npos);
  const auto missing = run_tactus({"run", tac.path()});
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find("field 'numbers' is required") != std::string::npos);
  const auto opt = TempTac("procedure('main', { inputs = {} }, function() end)\n");
  const auto bad = run_tactus({"run", opt.path()});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("procedure(\"main\", ...): unknown option 'inputs'") != std::string::npos);
}

TEST_CASE("compat: agent turn options and the result's text, data, new_messages and usage",
          "[compat][cli]") {
  FakeLlmServer server({FakeReply::say("first"), FakeReply::say(R"({"city": "Paris"})")});
  TempTac tac(R"(
agent("talker", { provider = "fake", model = "m", initial_message = "hello",
  model_settings = { temperature = 0.3, max_tokens = 50 } })
agent("extract", { provider = "fake", model = "m",
  output_type = { city = { type = "string", required = true } } })
main = procedure("main", function()
  local t = Talker.turn({ inject = "more please" })
  MessageHistory.append({ role = "user", content = "city?" })
  local e = Extract.turn({ model_settings = { temperature = 0.5 } })
  return { text = t.text, msgs = #t.new_messages(), first_role = t.new_messages()[1].role,
           usage = t.usage.total_tokens, city = e.data.city, history = #MessageHistory.get(),
           output = Talker.output }
end)
)");
  project_config(tac, server, "");
  const auto r = run_in(tac, {"run", tac.path()});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const Json j = Json::parse(r.out);
  CHECK(j["text"] == "first");
  CHECK(j["msgs"] == 3);  // the initial message, the injected one, the reply
  CHECK(j["first_role"] == "user");
  CHECK(j["usage"].is_number());
  CHECK(j["city"] == "Paris");
  CHECK(j["history"] == 2);
  CHECK(j["output"] == "first");
  const auto reqs = server.requests();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[0].body["temperature"] == 0.3);
  CHECK(reqs[0].body["messages"][1]["content"] == "more please");
  CHECK(reqs[1].body["messages"].back()["content"] == "city?");
  CHECK(reqs[1].body["temperature"] == 0.5);
}

TEST_CASE("compat: a provider tactus does not serve validates, mocks, and names its route live",
          "[compat][cli]") {
  TempTac tac(R"(
agent("g", { provider = "google-gla", model = "gemini-2.0-flash", initial_message = "hi",
  toolsets = { "done" } })
main = procedure("main", function() G.turn() return { done = Tool.called("done") } end)
)");
  CHECK(run_tactus({"validate", tac.path()}).exit_code == 0);
  const auto mocked = run_tactus({"run", tac.path(), "--mock"});
  REQUIRE(mocked.exit_code == 0);
  CHECK(Json::parse(mocked.out)["done"] == true);
  const auto live = run_tactus({"run", tac.path()});
  CHECK(live.exit_code == 1);
  CHECK(live.err.find("unknown provider 'google-gla'") != std::string::npos);
  CHECK(live.err.find("Gemini has an OpenAI-compatible API") != std::string::npos);
}

TEST_CASE(
    "compat: stages, Iterations, python.iter, Stop, Json, Retry, Session and the "
    "recorded settings",
    "[compat][cli]") {
  TempTac tac(R"(
stages({ "one", "two" })
default_model("gpt-4o-mini")
default_provider("openai")
max_turns(5)
max_depth(3)
return_prompt("Summarise.")
error_prompt("Say what failed.")
status_prompt("Say where you are.")
prompt("greeting", "Hello {name}")
main = procedure("main", function()
  Stage.set("one")
  Stage.set("two")
  local bad = pcall(Stage.set, "three")
  Iterations.increment()
  local n = 0
  for _, v in python.iter({ 4, 5 }) do n = n + v end
  Stop.request("finished")
  local tries = 0
  local r = Retry.with_backoff(function() tries = tries + 1 if tries < 2 then error("no") end return tries end)
  Session.append({ role = "user", content = "x" })
  return { stage = Stage.current(), bad = bad, iters = Iterations.current(), sum = n,
           stop = Stop.reason(), retry = r, json = Json.decode(Json.encode({ a = { 1 } })).a[1],
           session = #Session.history() }
end)
)");
  const auto r = run_tactus({"run", tac.path()});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Json::parse(r.out) == Json{{"stage", "two"},
                                   {"bad", false},
                                   {"iters", 1},
                                   {"sum", 9},
                                   {"stop", "finished"},
                                   {"retry", 2},
                                   {"json", 1},
                                   {"session", 1}});
  TempTac frozen("Stage.set = nil\n");
  const auto f = run_tactus({"run", frozen.path()});
  CHECK(f.exit_code == 1);
  CHECK(f.err.find("attempt to modify read-only table 'Stage'") != std::string::npos);
}

TEST_CASE("compat: Classify retries an invalid label, fuzzy and contains need no model",
          "[compat][cli]") {
  FakeLlmServer server({FakeReply::say("maybe"), FakeReply::say("Positive.")});
  TempTac tac(R"(
local llm = Classify { classes = { "positive", "negative" }, provider = "fake", model = "m",
  prompt = "Sentiment.", max_retries = 2 }
local fuzzy = Classify { classes = { "billing", "shipping" }, method = "fuzzy" }
local has = Classify { classes = { "red", "blue" }, method = "contains" }
local r = llm("I love it")
return { label = r.label, retries = r.retries, fuzzy = fuzzy("shiping").label,
         contains = has("a BLUE sky").label }
)");
  project_config(tac, server, "");
  const auto r = run_in(tac, {"run", tac.path()});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Json::parse(r.out) ==
        Json{{"label", "positive"}, {"retries", 1}, {"fuzzy", "shipping"}, {"contains", "blue"}});
  const auto reqs = server.requests();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[1].body["messages"].back()["content"].get<std::string>().find(
            "That is not one of the labels") != std::string::npos);
  // Never a valid label: an error after max_retries.
  FakeLlmServer never({FakeReply::say("x"), FakeReply::say("y"), FakeReply::say("z")});
  project_config(tac, never, "");
  const auto e = run_in(tac, {"run", tac.path()});
  CHECK(e.exit_code == 1);
  CHECK(e.err.find("Classify: no valid label after 2 retries") != std::string::npos);
}

TEST_CASE("compat: Model mock answers in turn, an http model goes through the HTTP policy",
          "[compat][cli]") {
  HttpTestServer server;
  TempTac tac(
      "model('echo', { type = 'mock', responses = { 'a', 'b' } })\n"
      "model('remote', { type = 'http', endpoint = '" +
      server.url("/hello") +
      "' })\n"
      "local ok, err = pcall(remote, { text = 'hi' })\n"
      "return { echo.predict(1), Model('echo')(2), echo(3), ok and err or tostring(err) }\n");
  const auto denied = run_tactus({"run", tac.path()});
  INFO(denied.out << denied.err);
  REQUIRE(denied.exit_code == 0);
  const Json d = Json::parse(denied.out);
  CHECK(d[0] == "a");
  CHECK(d[1] == "b");
  CHECK(d[2] == "b");
  CHECK(d[3].get<std::string>().find("host tool 'http.request' is not allowed") !=
        std::string::npos);
  CHECK(server.requests() == 0);
  write_file(tac.path() + ".yml",
             "sandbox:\n  network: filtered\n  network_filter:\n    allow: ['^127\\.0\\.0\\.1$']\n"
             "tools:\n  allow: [http.request]\n");
  const auto allowed = run_tactus({"run", tac.path()});
  INFO(allowed.out << allowed.err);
  REQUIRE(allowed.exit_code == 0);
  CHECK(Json::parse(allowed.out)[3] == "hello");
  CHECK(server.requests() == 1);
  TempTac bad("model('m', { type = 'pytorch', path = 'x.pt' })\n");
  const auto b = run_tactus({"run", bad.path()});
  CHECK(b.exit_code == 1);
  CHECK(b.err.find("type must be http or mock") != std::string::npos);
}

TEST_CASE("compat: File goes through the file tools, and a denial names the sidecar line",
          "[compat][cli]") {
  TempTac tac(
      "local ok, err = pcall(File.read, 'notes.txt')\n"
      "if not ok then return { err = err } end\n"
      "return { text = err, exists = File.exists('notes.txt'), size = File.size('notes.txt') }\n");
  write_file(tac.dir() + "/notes.txt", "hello");
  const auto denied = run_tactus({"run", tac.path()});
  REQUIRE(denied.exit_code == 0);
  CHECK(Json::parse(denied.out)["err"] ==
        "denied: host tool 'file.read' is not allowed (the sidecar's tools.allow decides: add "
        "tools: {allow: [\"file.read\"]} to the procedure's .tac.yml)");
  write_file(tac.path() + ".yml", "tools:\n  allow: [file.read, file.exists]\n");
  const auto ok = run_tactus({"run", tac.path()});
  INFO(ok.out << ok.err);
  REQUIRE(ok.exit_code == 0);
  CHECK(Json::parse(ok.out) == Json{{"text", "hello"}, {"exists", true}, {"size", 5}});
}

TEST_CASE("compat: procedure(\"name\", ...) checks its output as Python Tactus does",
          "[compat][cli]") {
  // Required fields present; types unchecked and undeclared fields kept (Python procedures
  // return a sub-procedure's result table where a number is declared).
  TempTac tac(R"(
main = procedure("main", { output = { sum = { type = "number", required = true } } },
  function() return { sum = { result = 9 }, extra = true } end)
)");
  const auto r = run_tactus({"run", tac.path()});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Json::parse(r.out) == Json{{"sum", {{"result", 9}}}, {"extra", true}});
  TempTac missing(R"(
main = procedure("main", { output = { sum = { type = "number", required = true } } },
  function() return { other = 1 } end)
)");
  const auto m = run_tactus({"run", missing.path()});
  CHECK(m.exit_code == 1);
  CHECK(m.err.find("invalid output: field 'sum' is required") != std::string::npos);
  // Ours keeps its typed check.
  TempTac ours(
      "Procedure { output = { sum = field.number{ required = true } }, "
      "function() return { sum = 'x' } end }\n");
  const auto o = run_tactus({"run", ours.path()});
  CHECK(o.exit_code == 1);
  CHECK(o.err.find("invalid output: field 'sum' must be a number") != std::string::npos);
}
