// The language end to end (no model): Procedure and its legacy forms, fields with --param
// conversion, input and output validation, State, Log, Lua tools and their handles, and
// `tactus validate`.
#include <catch2/catch.hpp>

#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/support/cli_runner.h"

using namespace tactus::test;  // tests/support/
using Json = nlohmann::json;

namespace {

const char* kGreeter = R"(
Procedure {
  input = {
    name = field.string{required = true, description = "who"},
    times = field.integer{default = 2},
    loud = field.boolean{default = false},
    tags = field.array{items = field.string{}},
    mood = field.string{enum = {"happy", "sad"}, default = "happy"},
  },
  output = { greeting = field.string{required = true}, count = field.integer{} },
  function(input)
    local g = string.rep("hi " .. input.name .. " ", input.times)
    if input.loud then g = g:upper() end
    return { greeting = g .. input.mood, count = #(input.tags or {}), secret_extra = "dropped" }
  end
}
)";

}  // namespace

TEST_CASE("dsl: Procedure validates input, converts --param by type, keeps declared output",
          "[dsl][cli]") {
  TempTac tac(kGreeter);
  auto r = run_tactus({"run", tac.path(), "--param", "name=Ann", "--param", "times=1", "--param",
                       "loud=true", "--param", "tags=[\"a\",\"b\"]"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Json::parse(r.out) == Json{{"greeting", "HI ANN happy"}, {"count", 2}});

  // Defaults fill in; undeclared output fields are dropped.
  r = run_tactus({"run", tac.path(), "--param", "name=Bo"});
  REQUIRE(r.exit_code == 0);
  CHECK(Json::parse(r.out) == Json{{"greeting", "hi Bo hi Bo happy"}, {"count", 0}});
}

TEST_CASE("dsl: bad input names the field and fails before the procedure runs", "[dsl][cli]") {
  TempTac tac(kGreeter);
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{}, "invalid input: field 'name' is required"},
      {{"--param", "name=A", "--param", "times=2.5"},
       "invalid input: field 'times' must be an integer, got '2.5'"},
      {{"--param", "name=A", "--param", "loud=yes"},
       "invalid input: field 'loud' must be a boolean, got 'yes'"},
      {{"--param", "name=A", "--param", "mood=angry"},
       "invalid input: field 'mood' must be one of happy, sad, got 'angry'"},
      {{"--param", "name=A", "--param", "tags=[1]"},
       "invalid input: field 'tags[1]' must be a string, got 1"},
      {{"--param", "name=A", "--param", "tags=x"},
       "invalid input: field 'tags' must be an array, got 'x'"},
      // Integers beyond 2^53 are not exact; 1e400 is infinity; nan and inf are no numbers.
      {{"--param", "name=A", "--param", "times=9007199254740993"},
       "invalid input: field 'times' must be an integer, got '9007199254740993'"},
      {{"--param", "name=A", "--param", "times=1e400"},
       "invalid input: field 'times' must be an integer, got '1e400'"},
      {{"--param", "name=A", "--param", "times=inf"},
       "invalid input: field 'times' must be an integer, got 'inf'"},
      {{"--param", "name=A", "--param", "times=nan"},
       "invalid input: field 'times' must be an integer, got 'nan'"},
  };
  for (const auto& [params, message] : cases) {
    std::vector<std::string> args = {"run", tac.path()};
    args.insert(args.end(), params.begin(), params.end());
    const auto r = run_tactus(args);
    INFO(message);
    CHECK(r.exit_code == 1);
    CHECK(r.err ==
          "tactus: " + message + "\n");  // one line, no traceback into tactus's own modules
    CHECK(r.out.empty());
  }
}

TEST_CASE("dsl: --input FILE.json is validated the same way", "[dsl][cli]") {
  TempTac tac(kGreeter);
  std::ofstream(tac.dir() + "/in.json") << R"({"name": "Cy", "times": 1, "loud": "no"})";
  const auto r = run_tactus({"run", tac.path(), "--input", tac.dir() + "/in.json"});
  CHECK(r.exit_code == 1);
  CHECK(r.err == "tactus: invalid input: field 'loud' must be a boolean, got 'no'\n");
}

TEST_CASE("dsl: output failing its schema is an error naming the field", "[dsl][cli]") {
  TempTac tac(R"(Procedure {
  output = { n = field.integer{required = true}, s = field.string{} },
  function() return { n = "seven" } end
})");
  auto r = run_tactus({"run", tac.path()});
  CHECK(r.exit_code == 1);
  CHECK(r.err == "tactus: invalid output: field 'n' must be an integer, got 'seven'\n");

  TempTac missing(R"(Procedure { output = { n = field.integer{required = true} },
  function() return {} end })");
  r = run_tactus({"run", missing.path()});
  CHECK(r.err == "tactus: invalid output: field 'n' is required\n");
}

TEST_CASE("dsl: legacy procedure(), function main() and script-mode schemas", "[dsl][cli]") {
  TempTac legacy(R"(procedure({params = {x = {type = "number", required = true}},
                               outputs = {y = {type = "number"}}},
  function() return {y = params.x * 2, z = 1} end))");
  auto r = run_tactus({"run", legacy.path(), "--param", "x=21"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(Json::parse(r.out) == Json{{"y", 42}});

  TempTac main_fn("function main() return 'from main' end");
  r = run_tactus({"run", main_fn.path()});
  CHECK(r.out == "\"from main\"\n");

  TempTac script(R"(input { n = field.number{default = 4} }
output { sq = field.number{required = true} }
return { sq = input.n * input.n, junk = true })");
  r = run_tactus({"run", script.path()});
  CHECK(Json::parse(r.out) == Json{{"sq", 16}});
  r = run_tactus({"run", script.path(), "--param", "n=x"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("invalid input: field 'n' must be a number, got 'x'") != std::string::npos);
}

TEST_CASE("dsl: named sub-procedures run with their own schemas", "[dsl][cli]") {
  TempTac tac(R"(
Procedure "double" { input = { x = field.number{required = true} },
                     output = { y = field.number{required = true} },
                     function(i) return { y = i.x * 2 } end }
Procedure { function() 
  local ok, err = pcall(Procedure.run, "double", {})
  return { y = Procedure.run("double", { x = 5 }).y, err = err } end })");
  const auto r = run_tactus({"run", tac.path()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const Json j = Json::parse(r.out);
  CHECK(j["y"] == 10);
  CHECK(j["err"].get<std::string>().find(
            "procedure 'double': invalid input: field 'x' is required") != std::string::npos);
}

TEST_CASE("dsl: state and State, with declared defaults", "[dsl][cli]") {
  TempTac tac(R"(Procedure {
  state = { count = field.number{default = 10}, items = {} },
  function()
    State.increment("count")
    State.increment("count", 5)
    State.append("items", "a")
    State.append("items", "b")
    state.flag = true
    State.set("name", "x")
    return { count = state.count, items = state.items, flag = State.get("flag"), name = state.name }
  end })");
  const auto r = run_tactus({"run", tac.path()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Json::parse(r.out) ==
        Json{{"count", 16}, {"items", {"a", "b"}}, {"flag", true}, {"name", "x"}});
}

TEST_CASE("dsl: Log writes readable lines or JSONL to stderr, masked", "[dsl][cli]") {
  TempTac tac(R"(Log.info("starting", {step = 1, who = input.k})
Log.warn("careful")
Log.debug("detail", {list = {1, 2}})
return 1)");
  std::ofstream(tac.path() + ".yml") << "secrets:\n  T: {env: TACTUS_TEST_SECRET}\n";
  const std::string secret = "sk-log-secret-12345";
  auto r =
      run_tactus({"run", tac.path(), "--param", "k=" + secret}, {"TACTUS_TEST_SECRET=" + secret});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == "1\n");
  CHECK(r.err == "[info] starting step=1 who=***\n[warn] careful\n[debug] detail list=[1,2]\n");

  r = run_tactus({"run", tac.path(), "--param", "k=" + secret, "--log-format", "json"},
                 {"TACTUS_TEST_SECRET=" + secret});
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find(secret) == std::string::npos);
  const Json first = Json::parse(r.err.substr(0, r.err.find('\n')));
  CHECK(first["level"] == "info");
  CHECK(first["message"] == "starting");
  CHECK(first["fields"]["step"] == 1);
  CHECK(first["fields"]["who"] == "***");
  CHECK(first["run_id"].is_string());
  const auto bad = run_tactus({"run", tac.path(), "--log-format", "xml"});
  CHECK(bad.exit_code == 2);
}

TEST_CASE("dsl: Lua tools, handles and the Tool primitive", "[dsl][cli]") {
  TempTac tac(R"(
local done = require("tactus.tools.done")
lookup = Tool { description = "Look up a word", input = { word = field.string{required = true} },
  function(args) return { length = #args.word } end }
named = Tool { name = "counter", handler = function(args) return (args.n or 0) + 1 end }
local before = lookup.called()
local r1 = lookup({ word = "four" })
local ok, err = pcall(lookup, { word = 7 })
local d = done({ reason = "all good" })
return {
  before = before, r1 = r1, called = lookup.called(), count = lookup.call_count(),
  last = lookup.last_call(), last_result = lookup.last_result(), err = err,
  by_name = Tool.called("lookup"), tool_last = Tool.last_result("lookup"),
  counter = named({ n = 1 }), counter_name = named.name, get = Tool.get("counter") ~= nil,
  done = d, done_called = done.called(), done_reason = done.last_call().args.reason,
  calls = #lookup.calls(), tool_calls = #Tool.calls("lookup"),
}
)");
  const auto r = run_tactus({"run", tac.path()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const Json j = Json::parse(r.out);
  CHECK(j["before"] == false);
  CHECK(j["r1"] == Json{{"length", 4}});
  CHECK(j["called"] == true);
  CHECK(j["count"] == 1);  // the failed call (bad args) is not recorded
  CHECK(j["last"]["name"] == "lookup");
  CHECK(j["last"]["args"]["word"] == "four");
  CHECK(j["last_result"]["length"] == 4);
  CHECK(j["err"].get<std::string>().find(
            "tool 'lookup': invalid arguments: field 'word' must be a string, got 7") !=
        std::string::npos);
  CHECK(j["by_name"] == true);
  CHECK(j["tool_last"]["length"] == 4);
  CHECK(j["counter"] == 2);
  CHECK(j["counter_name"] == "counter");
  CHECK(j["get"] == true);
  CHECK(j["done"] == Json{{"status", "completed"}, {"reason", "all good"}, {"tool", "done"}});
  CHECK(j["done_called"] == true);
  CHECK(j["done_reason"] == "all good");
  CHECK(j["calls"] == 1);
  CHECK(j["tool_calls"] == 1);
}

TEST_CASE("dsl: declaration mistakes name file:line", "[dsl][cli]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"x = 1\nTool \"t\" { function() end }\n",
       ":2: Tool \"t\" {...} is not supported: write t = Tool {...}"},
      {"\nx = Tool { description = 'no function' }\n",
       ":2: Tool needs a function: Tool { ..., function(args) ... end } or handler = fn"},
      {"a = Agent { modle = 'openai/x' }\n", ":1: Agent: unknown field 'modle'"},
      {"a = Agent { model = 5 }\n", ":1: Agent: model must be a name"},
      {"Procedure { input = { a = 5 }, function() end }\n",
       ":1: Procedure input: 'a' must be a field"},
      {"Procedure { function() end }\n\nProcedure { function() end }\n",
       ":3: a main procedure is already declared"},
      {"Procedure { input = {} }\n", ":1: Procedure needs its function"},
  };
  for (const auto& [source, message] : cases) {
    TempTac tac(source);
    INFO(source);
    for (const char* cmd : {"run", "validate"}) {
      const auto r = run_tactus({cmd, tac.path()});
      CHECK(r.exit_code == 1);
      CHECK(r.err.rfind(tac.path() + message, 0) == 0);
    }
  }
}

TEST_CASE("dsl: validate reports the declarations and runs nothing brokered", "[dsl][cli]") {
  TempTac tac(R"(
local done = require("tactus.tools.done")
lookup = Tool { input = { q = field.string{} }, function(a) return a end }
greeter = Agent { model = "openai/gpt-4o-mini", tools = { done, lookup, "file.read" } }
Host.call("host.ping", {})  -- not run by validate
Procedure { input = { name = field.string{required = true} },
            output = { greeting = field.string{} },
            function(input) return { greeting = greeter().output } end })");
  auto r = run_tactus({"validate", tac.path()});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == tac.path() +
                     ": valid: script (its top level was checked up to its first Host.call); "
                     "agents: greeter; tools: done, lookup\n");

  TempTac clean(R"(
greeter = Agent { model = "anthropic/claude-x", system_prompt = "Greet {input.name}." }
Procedure { input = { name = field.string{required = true} },
            output = { greeting = field.string{} },
            function(input) return { greeting = greeter().output } end })");
  r = run_tactus({"validate", clean.path()});
  CHECK(r.exit_code == 0);
  CHECK(r.out ==
        clean.path() + ": valid: Procedure (input: name; output: greeting); agents: greeter\n");
  r = run_tactus({"validate", clean.path(), "--json"});
  const Json j = Json::parse(r.out);
  CHECK(j["status"] == "ok");
  CHECK(j["result"]["agents"] == Json{"greeter"});
  CHECK(run_tactus({"validate"}).exit_code == 2);
}

TEST_CASE("dsl: math.random is seeded by the broker per run, os.clock is the run's clock",
          "[dsl][cli]") {
  TempTac tac(R"(local a = math.random()
local c = os.clock()
math.randomseed(7)
return { a = a, fixed = math.random(1000000), clock_ok = c >= 0 and c < 30 })");
  const auto r1 = run_tactus({"run", tac.path()});
  const auto r2 = run_tactus({"run", tac.path()});
  REQUIRE(r1.exit_code == 0);
  REQUIRE(r2.exit_code == 0);
  const Json a = Json::parse(r1.out), b = Json::parse(r2.out);
  CHECK(a["a"] != b["a"]);          // a fresh seed each run
  CHECK(a["fixed"] == b["fixed"]);  // the procedure's own seed still rules
  CHECK(a["clock_ok"] == true);
}

TEST_CASE("dsl: Log lines count against the output limit like printed ones", "[dsl][cli][limits]") {
  TempTac tac("for i = 1, 1000 do Log.info(string.rep('x', 50)) end return 1");
  const auto r = run_tactus({"run", tac.path(), "--json", "--output-limit", "1k"});
  CHECK(r.exit_code == 3);
  CHECK(Json::parse(r.out)["status"] == "output");
  CHECK(r.err.size() < 2048);  // stopped near the limit, not after 50 KB of log
}

TEST_CASE("dsl: Human.notify lines count against the output limit too", "[dsl][cli][limits]") {
  TempTac tac("for i = 1, 1000 do Human.notify({ message = string.rep('x', 50) }) end return 1");
  tactus::test::write_file(tac.path() + ".yml", "journal:\n  enabled: false\n");
  const auto r = run_tactus({"run", tac.path(), "--json", "--output-limit", "1k"});
  CHECK(r.exit_code == 3);
  CHECK(Json::parse(r.out)["status"] == "output");
  CHECK(r.err.size() < 2048);
}
