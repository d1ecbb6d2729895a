// The Python Tactus dialect's sub-procedures, validation, specification steps, evaluations and
// command-line flags, end to end (docs/language.md, "Coming from Python Tactus";
// docs/testing.md).
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "tests/support/cli_runner.h"

using namespace tactus::test;  // tests/support/
using Json = nlohmann::json;

namespace {

const char* kSum = R"(
main = procedure("main", {
  input = { values = { type = "array", required = true } },
  output = { result = { type = "number", required = true } },
  state = { total = { type = "number", default = 0 } },
}, function()
  for _, v in ipairs(input.values) do state.total = state.total + v end
  return { result = state.total }
end)
)";

}  // namespace

TEST_CASE("compat: Procedure.run loads a sub-procedure file from beneath the project",
          "[compat][cli]") {
  TempTac tac("unused");
  write_file(tac.dir() + "/proj/main.tac", R"(
main = procedure("main", { input = { numbers = { type = "array", required = true } } },
  function()
    local a = Procedure.run("helpers/sum.tac", { values = input.numbers })
    local b = Procedure.run("proj/helpers/sum.tac", { values = { 1 } })
    local ok, bad = pcall(Procedure.run, "helpers/sum.tac", { wrong = 1 })
    local ok2, up = pcall(Procedure.run, "../outside.tac", {})
    local ok3, trusted = pcall(Procedure.run, ".tactus/x.tac", {})
    local ok4, nowhere = pcall(Procedure.run, "helpers/none.tac", {})
    return { a = a.result, b = b.result, bad = bad, up = up, trusted = trusted, nowhere = nowhere,
             leaked = state.total }
  end)
)");
  write_file(tac.dir() + "/proj/.tactus/config.yml", "");
  write_file(tac.dir() + "/proj/helpers/sum.tac", kSum);
  write_file(tac.dir() + "/outside.tac", kSum);
  // Run from the project's parent: "proj/helpers/sum.tac" is found from there, as Python
  // Tactus finds it from where it was started.
  const auto r =
      run_tactus_in(tac.dir(), {"run", tac.dir() + "/proj/main.tac", "--param", "numbers=[2,3,4]"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const Json j = Json::parse(r.out);
  CHECK(j["a"] == 9);
  CHECK(j["b"] == 1);
  CHECK(j["bad"].get<std::string>().find("unknown field 'wrong'") == std::string::npos);
  CHECK(j["bad"].get<std::string>().find("field 'values' is required") != std::string::npos);
  CHECK(j["up"].get<std::string>().find("no .. or .tactus in a sub-procedure's path") !=
        std::string::npos);
  CHECK(j["trusted"].get<std::string>().find("no .. or .tactus") != std::string::npos);
  CHECK(j["nowhere"].get<std::string>().find("no 'helpers/none.tac' beneath the project") !=
        std::string::npos);
  CHECK_FALSE(j.contains("leaked"));                  // the sub-procedure's state is its own
  CHECK(r.out.find(tac.dir()) == std::string::npos);  // no host directory reaches the jail
  // The chunk is named by the path as given: no host directory reaches the jail.
  write_file(tac.dir() + "/proj/helpers/boom.tac", "error('boom')\n");
  write_file(tac.dir() + "/proj/b.tac", "return Procedure.run('helpers/boom.tac', {})\n");
  const auto boom = run_tactus_in(tac.dir(), {"run", tac.dir() + "/proj/b.tac"});
  CHECK(boom.exit_code == 1);
  CHECK(boom.err.find("helpers/boom.tac:1: boom") != std::string::npos);
  CHECK(boom.err.find(tac.dir() + "/proj/helpers") == std::string::npos);
}

TEST_CASE("compat: a sub-procedure's declarations are its own", "[compat][cli]") {
  TempTac tac(R"(
Procedure {
  function()
    local r = Procedure.run("helpers/modern.tac", { n = 2 })
    return { r = r.n, agent_leaked = rawget(_G, "helper_agent") ~= nil }
  end
}
)");
  write_file(tac.dir() + "/helpers/modern.tac", R"(
agent("helper_agent", { provider = "openai", model = "gpt-4o" })
Specification([[
Feature: not the caller's
  Scenario: x
    Then the output n should be 99
]])
Procedure { input = { n = field.number{ required = true } }, function(input) return { n = input.n * 3 } end }
)");
  const auto r = run_tactus({"run", tac.path()});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Json::parse(r.out) == Json{{"r", 6}, {"agent_leaked", false}});
  // The caller's scenarios are its own: the sub's Specification is not listed.
  const auto v = run_tactus({"validate", tac.path()});
  CHECK(v.out.find("scenarios") == std::string::npos);
}

TEST_CASE("compat: ~/.tactus is a layer, not a project: $HOME is no root for sub-procedures",
          "[compat][cli]") {
  TempTac home("unused");
  write_file(home.dir() + "/.tactus/config.yml", "");
  write_file(home.dir() + "/other/secret.tac", "return { stolen = true }\n");
  write_file(home.dir() + "/proj/a.tac",
             "local ok, err = pcall(Procedure.run, 'other/secret.tac', {})\n"
             "return { ok = ok, err = tostring(err) }\n");
  const auto r =
      run_tactus_in(home.dir(), {"run", home.dir() + "/proj/a.tac"}, {"HOME=" + home.dir()});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const Json j = Json::parse(r.out);
  CHECK(j["ok"] == false);
  CHECK(j["err"].get<std::string>().find("no 'other/secret.tac' beneath the project") !=
        std::string::npos);
}

TEST_CASE("compat: sub-procedures recurse up to max_depth", "[compat][cli]") {
  TempTac tac(R"(
main = procedure("main", { input = { n = { type = "number", required = true } } }, function()
  if input.n <= 1 then return { result = 1 } end
  return { result = input.n * Procedure.run("proc.tac", { n = input.n - 1 }).result }
end)
)");
  const auto ok = run_tactus({"run", tac.path(), "--param", "n=5"});
  INFO(ok.out << ok.err);
  REQUIRE(ok.exit_code == 0);
  CHECK(Json::parse(ok.out)["result"] == 120);
  const auto deep = run_tactus({"run", tac.path(), "--param", "n=10"});
  CHECK(deep.exit_code == 1);
  CHECK(deep.err.find("sub-procedures nest deeper than max_depth (5)") != std::string::npos);
}

TEST_CASE("compat: validate runs no script body, prints nothing and makes no host call",
          "[compat][cli]") {
  TempTac tac(R"(
input { name = { type = "string", required = true } }
output { greeting = { type = "string", required = true } }
print("should not print")
Log.info("nor log")
return { greeting = "Hello, " .. input.name }
)");
  const auto v = run_tactus({"validate", tac.path()});
  INFO(v.out << v.err);
  REQUIRE(v.exit_code == 0);
  CHECK(v.out ==
        tac.path() + ": valid: script (its top level was checked up to its first print)\n");
  CHECK(v.err.find("should not print") == std::string::npos);
  TempTac reads(
      "input { name = { type = 'string', required = true } }\n"
      "return { g = 'Hi ' .. input.name }\n");
  const auto r = run_tactus({"validate", reads.path()});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("checked up to its first input.name") != std::string::npos);
  const auto quick = run_tactus({"validate", "--quick", tac.path()});
  CHECK(quick.exit_code == 0);
  CHECK(quick.out == tac.path() + ": valid: it compiles (--quick: no declaration was run)\n");
  TempTac broken("procedure('main', function() end\n");
  CHECK(run_tactus({"validate", "--quick", broken.path()}).exit_code == 1);
}

TEST_CASE("compat: the Python steps: stages, similarity, called with, output keys, literals",
          "[compat][cli]") {
  TempTac tac(R"(
stages({ "start", "end" })
tool("echo", { description = "echo", parameters = { text = { type = "string" } } },
  function(args) return args.text end)
agent("worker", { provider = "openai", model = "gpt-4o", initial_message = "go",
  toolsets = { "echo", "done" } })
main = procedure("main", { output = { answer = { type = "string" }, n = { type = "number" } } },
  function()
    Stage.set("start")
    Worker.turn()
    Stage.set("end")
    return { answer = "HELLO WORLD!", n = 3 }
  end)
specifications([[
Feature: Python steps
  Scenario: all of them
    Given the worker agent calls tool "echo" with args {'text': 'hello world', 'loud': True}
    When the procedure runs
    Then the stage should be end
    And the stage should transition from start to end
    And the output answer should be similar to "HELLO WORLD"
    And the output answer should be similar to "HELLO" with 50% similarity
    And the echo tool should be called with text=hello world
    And the echo tool should be called with text="hello world"
    And the echo tool should be called with text matching pattern "^hel+o"
    And the echo tool should be called at least once
    And the output should contain answer
    And the total iterations should be greater than 0
    And the total iterations should be between 1 and 2
    And the state should contain nothing_here_is_not_checked_here
]])
)");
  const auto r = run_tactus({"test", tac.path(), "--mock", "--json"});
  INFO(r.out << r.err);
  const Json doc = Json::parse(r.out);
  REQUIRE(doc["scenarios"].size() == 1);
  const Json steps = doc["scenarios"][0]["steps"];
  // Every step passes but the last, which checks a key the state lacks.
  for (std::size_t i = 0; i + 1 < steps.size(); ++i) {
    INFO(steps[i].dump());
    CHECK(steps[i]["status"] == "passed");
  }
  CHECK(steps.back()["error"] == "the state has no key nothing_here_is_not_checked_here");
}

TEST_CASE("compat: the Python steps fail with a reason", "[compat][cli]") {
  TempTac tac(R"(
stages({ "a", "b" })
main = procedure("main", function() Stage.set("a") Stop.request("all done") return { x = "abc" } end)
specifications([[
Feature: Failing
  Scenario: s1
    Then the stage should be b
  Scenario: s2
    Then the stage should transition from b to a
  Scenario: s3
    Then the output x should be similar to "xyz"
  Scenario: s4
    Then the output should contain y
  Scenario: s5
    Then the total iterations should be greater than 3
  Scenario: s6
    Then the stop reason should be "all done"
  Scenario: s7
    Then the stop reason should contain "nope"
]])
)");
  const auto r = run_tactus({"test", tac.path(), "--mock", "--json"});
  const Json doc = Json::parse(r.out);
  REQUIRE(doc["scenarios"].size() == 7);
  const std::vector<std::string> want = {
      "the stage is \"a\", not b",
      "the stage never moved from b to a (stages: a)",
      "the output x is \"abc\": 0% similar to \"xyz\", less than 80%",
      "the output has no key y",
      "the agents took 0 turns in all, not more than 3",
      "",
      "the stop reason is \"all done\", which does not contain \"nope\""};
  for (std::size_t i = 0; i < want.size(); ++i) {
    const Json& s = doc["scenarios"][i];
    INFO(s.dump());
    if (want[i].empty()) {
      CHECK(s["status"] == "passed");
    } else {
      CHECK(s["error"].get<std::string>().find(want[i]) != std::string::npos);
    }
  }
}

TEST_CASE("compat: --mock-config answers tools and Human.*, Human takes its default",
          "[compat][cli]") {
  TempTac tac(R"(
tool("search", { description = "s", parameters = {} }, function() return "real" end)
main = procedure("main", function()
  local found = Tool.get("search")({})
  local ok = Human.approve({ message = "go?" })
  local name = Human.input({ message = "name?", default = "Ann" })
  return { found = found, ok = ok, name = name }
end)
specifications([[
Feature: m
  Scenario: s
    When the procedure runs
    Then the output found should be "mocked"
]])
)");
  write_file(tac.dir() + "/mock.json", R"({"search": "mocked", "Human.approve": false})");
  const auto r =
      run_tactus({"run", tac.path(), "--mock", "--mock-config", tac.dir() + "/mock.json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Json::parse(r.out) == Json{{"found", "mocked"}, {"ok", false}, {"name", "Ann"}});
  const auto t =
      run_tactus({"test", tac.path(), "--mock", "--mock-config", tac.dir() + "/mock.json"});
  CHECK(t.exit_code == 0);
  write_file(tac.dir() + "/bad.json", "[1]");
  const auto bad =
      run_tactus({"run", tac.path(), "--mock", "--mock-config", tac.dir() + "/bad.json"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("--mock-config must be a JSON object") != std::string::npos);
}

TEST_CASE("compat: evaluations run each case and count the runs against min_success_rate",
          "[compat][cli]") {
  TempTac tac(R"(
main = procedure("main", {
  input = { name = { type = "string", required = true } },
  output = { greeting = { type = "string", required = true }, score = { type = "number" } },
}, function()
  State.set("greeted", true)
  return { greeting = "Hello, " .. input.name .. "!", score = #input.name }
end)
evaluations({
  runs = 2,
  dataset = {
    { name = "ann", inputs = { name = "Ann" }, expected_output = { greeting = "Hello, Ann!" } },
    { name = "bo", inputs = { name = "Bo" }, expected_output = { greeting = "Hi, Bo!" } },
  },
  evaluators = {
    { type = "equals_expected", field = "greeting" },
    { type = "contains", field = "greeting", value = "Hello" },
    { type = "min_length", field = "greeting", value = 5 },
    { type = "regex", field = "greeting", value = "^hello", case_sensitive = false },
    { type = "range", field = "score", value = { min = 1, max = 10 } },
    { type = "json_schema", value = { type = "object", required = { "greeting" } } },
    { type = "state_check", field = "greeted", value = true },
    { type = "llm_judge", rubric = "Is it warm?" },
  },
  thresholds = { min_success_rate = 0.5 },
})
)");
  const auto r = run_tactus({"eval", tac.path(), "--mock", "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const Json doc = Json::parse(r.out);
  CHECK(doc["runs"] == 4);
  CHECK(doc["passed"] == 2);
  CHECK(doc["success_rate"] == 0.5);
  CHECK(doc["unjudged"] == 4);  // llm_judge under --mock
  CHECK(doc["cases"][0]["passed"] == 2);
  CHECK(doc["cases"][1]["last_failure"].get<std::string>().find("equals_expected") == 0);
  const auto text = run_tactus({"eval", tac.path(), "--mock", "--runs", "1"});
  CHECK(text.out.find("FAIL  bo: 0/1 runs passed; last failure: equals_expected:") !=
        std::string::npos);
  CHECK(text.out.find("evaluations: 1/2 runs passed (50%, min_success_rate 50%)") !=
        std::string::npos);
  TempTac unknown("evaluations({ dataset = {}, evaluators = { { type = 'vibes' } } })\n");
  const auto u = run_tactus({"validate", unknown.path()});
  CHECK(u.exit_code == 1);
  CHECK(u.err.find("evaluator 1 has an unknown type 'vibes'") != std::string::npos);
}

TEST_CASE("compat: test --runs, --parallel and --workers", "[compat][cli]") {
  TempTac tac(R"(
main = procedure("main", { input = { n = { type = "number", default = 2 } } },
  function() return { n = input.n } end)
specifications([[
Feature: f
  Scenario: one
    Then the output n should be 2
  Scenario: two
    Given the input n is 3
    Then the output n should be 3
  Scenario: three
    Then the output n should be 4
]])
)");
  const auto seq = run_tactus({"test", tac.path(), "--runs", "2", "--json"});
  const Json s = Json::parse(seq.out);
  CHECK(seq.exit_code == 1);
  CHECK(s["scenarios"][0]["passed_runs"] == 2);
  CHECK(s["scenarios"][2]["error"].get<std::string>().find("0/2 runs passed") == 0);
  const auto par = run_tactus({"test", tac.path(), "--parallel", "--workers", "2", "--json"});
  INFO(par.out << par.err);
  CHECK(par.exit_code == 1);
  const Json p = Json::parse(par.out);
  REQUIRE(p["scenarios"].size() == 3);
  CHECK(p["scenarios"][0]["status"] == "passed");
  CHECK(p["scenarios"][1]["status"] == "passed");
  CHECK(p["scenarios"][2]["status"] == "failed");
  CHECK(p["passed"] == 2);
  const auto plain = run_tactus({"test", tac.path(), "--parallel"});
  CHECK(plain.out.find("PASS  f \xe2\x80\xba two") != std::string::npos);
  CHECK(plain.out.find("3 scenarios: 2 passed, 1 failed") != std::string::npos);
}

TEST_CASE("compat: tactus version, -v and a typo'd command", "[compat][cli]") {
  const auto v = run_tactus({"version"});
  CHECK(v.exit_code == 0);
  CHECK(v.out.rfind("tactus ", 0) == 0);
  TempTac tac("return 1\n");
  const auto r = run_tactus({"run", tac.path(), "-v"});
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("tactus: layers: user ") != std::string::npos);
  CHECK(r.err.find(" ok: spawn ") != std::string::npos);
  const auto typo = run_tactus({"tset", tac.path()});
  CHECK(typo.exit_code == 2);
  CHECK(typo.err ==
        "tactus: unknown command 'tset' (did you mean 'test'?) (see 'tactus --help')\n");
}

TEST_CASE("compat: step(), evaluation(), Tool.reset, agent aliases and the parameter step",
          "[compat][cli]") {
  TempTac tac(R"(
agent("contact_formatter", { provider = "openai", model = "gpt-4o", initial_message = "x",
  toolsets = { "done" } })
main = procedure("main", { input = { who = { type = "string", default = "nobody" } } },
  function()
    ContactFormatter.turn()
    local before = Tool.called("done")
    Tool.reset()
    Contact_formatter.turn()
    contact_formatter.turn()
    return { before = before, after = Tool.called("done"), who = input.who,
             output = ContactFormatter.output }
  end)
step("the formatter was thorough", function(ctx)
  assert(ctx.output.before == true, "done was called before the reset")
end)
evaluation({ runs = 2, parallel = true })
specifications([[
Feature: f
  Scenario: s
    Given the who parameter is "Ann"
    When the contact_formatter agent takes turns
    Then the formatter was thorough
    And the output who should be "Ann"
    And the output after should be true
    And the done tool should be called exactly 3 times
    And the agent should take at least 3 turns
]])
)");
  const auto r = run_tactus({"test", tac.path(), "--mock"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  const auto e = run_tactus({"eval", tac.path(), "--mock"});
  INFO(e.out << e.err);
  CHECK(e.exit_code == 0);
  CHECK(e.out.find("2/2 passed") != std::string::npos);
}
