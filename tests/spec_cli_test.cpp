// `tactus test` and `tactus eval` end to end: Gherkin parsing and its errors, every built-in
// step (passing, and failing with its message), custom steps, mocks (scenario, Mocks {...},
// defaults, tools, humans), real providers without --mock, reports, limits and isolation.
#include <catch2/catch.hpp>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "tests/fixtures/fake_llm.h"
#include "tests/support/cli_runner.h"

using namespace tactus::test;  // tests/support/
using Json = nlohmann::json;

namespace {

CliRun test_file(const TempTac& tac, std::vector<std::string> extra = {},
                 const std::vector<std::string>& env = {}) {
  std::vector<std::string> args = {"test", tac.path()};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_tactus(args, env);
}

// The procedure the step tests run: an agent with a Lua tool and done, state, a human.
const std::string kProcedure = R"(
local done = require("tactus.tools.done")
lookup = Tool { description = "look up", input = { q = field.string{} },
  function(args) return { answer = "real " .. (args.q or "") } end }
helper = Agent { model = "openai/gpt-4o-mini", tools = { lookup, done } }
Procedure {
  input = { name = field.string{ default = "world" }, n = field.number{}, flag = field.boolean{},
            list = field.array{} },
  output = { greeting = field.string{}, approved = field.boolean{}, note = field.string{},
             pick = field.string{}, looked = field.object{}, n = field.number{}, flag = field.boolean{},
             list = field.array{}, reply = field.string{}, first = field.string{} },
  state = { count = field.integer{ default = 0 } },
  function(input)
    local turns, reply = 0, nil
    repeat
      local t = helper()
      reply = reply or t.output
      turns = turns + 1
    until done.called() or turns == 3
    State.increment("count")
    local first = helper.history()[1]
    return {
      greeting = "Hello, " .. input.name .. "!",
      approved = Human.approve({ message = "ok?" }),
      note = Human.input({ message = "note?", default = "none" }),
      pick = Human.select({ message = "which?", options = { "red", "blue" } }),
      looked = lookup({ q = "direct" }),
      n = input.n, flag = input.flag, list = input.list, reply = reply,
      first = first and first.content or nil,
    }
  end,
}
)";

std::string with_spec(const std::string& gherkin, const std::string& extra = "") {
  return kProcedure + extra + "\nSpecification([[\n" + gherkin + "]])\n";
}

}  // namespace

TEST_CASE("spec: passing and failing scenarios, one line each, exit code", "[spec][cli]") {
  TempTac tac(with_spec(R"(Feature: Basics
  Scenario: passes
    Given the input name is "Ada"
    When the procedure runs
    Then the procedure should complete successfully
    And the output greeting should be "Hello, Ada!"

  Scenario: fails on a Then
    Given the input name is "Bo"
    Then the output greeting should be "Hi"
    And the procedure should complete successfully
)"));
  const auto r = test_file(tac, {"--mock"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("PASS  Basics \xe2\x80\xba passes (") != std::string::npos);
  // The failing step's file:line, its text and why; the steps after it do not run.
  CHECK(r.out.find("FAIL  Basics \xe2\x80\xba fails on a Then (") != std::string::npos);
  CHECK(r.out.find(": Then the output greeting should be \"Hi\": the output greeting is "
                   "\"Hello, Bo!\", not \"Hi\"\n") != std::string::npos);
  CHECK(r.out.find("2 scenarios: 1 passed, 1 failed") != std::string::npos);

  // Only the passing one: exit 0.
  const auto one = test_file(tac, {"--mock", "--scenario", "passes"});
  CHECK(one.exit_code == 0);
  CHECK(one.out.find("1 scenario: 1 passed, 0 failed") != std::string::npos);
  const auto none = test_file(tac, {"--mock", "--scenario", "nope"});
  CHECK(none.exit_code == 2);
  CHECK(none.err == "tactus: no scenario called 'nope' (scenarios: 'passes', 'fails on a Then')\n");
}

TEST_CASE("spec: the failing step is named by its file line", "[spec][cli]") {
  TempTac tac(R"(Procedure { function() return { x = 1 } end }
Specification([[
Feature: Lines
  Scenario: wrong
    When the procedure runs
    Then the output x should be 2
]])
)");
  const auto r = test_file(tac);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("FAIL  Lines \xe2\x80\xba wrong (") != std::string::npos);
  CHECK(r.out.find("): " + tac.path() +
                   ":6: Then the output x should be 2: the output x is 1, not 2\n") !=
        std::string::npos);
}

TEST_CASE("spec: malformed Gherkin fails with the file and line, in test and validate",
          "[spec][cli]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"  Scenario: no feature\n    Given x\n",
       ":4: Specification: expected 'Feature:' before "
       "'Scenario: no feature'"},
      {"Feature: F\n  Given a step too early\n",
       ":5: Specification: the step 'Given a step too early' is outside a Scenario or Background"},
      {"Feature: F\n  Scenario: s\n    Given x\n    not a step\n",
       ":7: Specification: expected a step (Given, When, Then, And, But), a table or a doc "
       "string, got 'not a step'"},
      {"Feature: F\n  Scenario Outline: o\n    Given the input name is \"<n>\"\n",
       ":5: Specification: Scenario Outline 'o' has no Examples"},
      {"Feature: F\n  Scenario Outline: o\n    Given x <n>\n    Examples:\n      | n |\n",
       ":7: Specification: Examples have a header row but no row of values"},
      {"Feature: F\n  Scenario Outline: o\n    Given x <n>\n    Examples:\n      | n |\n      | "
       "1 | 2 |\n",
       ":9: Specification: this row has 2 cells; the header has 1"},
      {"Feature: F\n  Scenario: s\n    Given x\n      \"\"\"\n      never closed\n",
       ":7: Specification: doc string opened here is not closed with \"\"\""},
      {"Feature: F\n  Scenario: s\n    Given x\n    Examples:\n",
       ":7: Specification: Examples: belongs to a Scenario Outline"},
      {"Feature: F\nFeature: G\n",
       ":5: Specification: a second Feature: (one Feature per "
       "Specification)"},
      {"", ": Specification: expected 'Feature:' (the Specification is empty)"},
  };
  for (const auto& [gherkin, message] : cases) {
    TempTac tac("Procedure { function() return {} end }\n\nSpecification([[\n" + gherkin + "]])\n");
    const auto r = test_file(tac);
    INFO(gherkin << "\n" << r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err == tac.path() + message + "\n");
    CHECK(r.out.empty());
    const auto j = test_file(tac, {"--json"});
    CHECK(j.exit_code == 1);
    CHECK(Json::parse(j.out) ==
          Json{{"file", tac.path()}, {"status", "error"}, {"error", tac.path() + message}});
    const auto v = run_tactus({"validate", tac.path()});
    CHECK(v.exit_code == 1);
    CHECK(v.err.find(tac.path() + message) == 0);
  }
}

TEST_CASE("spec: Gherkin errors name the right line in a file with CRLF line endings",
          "[spec][cli]") {
  TempTac tac(
      "Procedure { function() return {} end }\r\n\r\nSpecification([[\r\nFeature: F\r\n"
      "  Scenario: s\r\n    Given x\r\n    oops\r\n]])\r\n");
  const auto r = test_file(tac);
  CHECK(r.exit_code == 1);
  CHECK(r.err == tac.path() +
                     ":7: Specification: expected a step (Given, When, Then, And, But), a table "
                     "or a doc string, got 'oops'\n");
}

TEST_CASE("spec: a file without a Specification, and a script declaring it too late",
          "[spec][cli]") {
  TempTac none("return 1\n");
  auto r = test_file(none);
  CHECK(r.exit_code == 1);
  CHECK(r.err ==
        none.path() + ": no scenarios: the file declares no Specification([[ Feature: ... ]])\n");
  TempTac late(
      "local p = Host.call('host.ping', {})\nSpecification([[\nFeature: F\n  Scenario: s\n    "
      "Then the output should exist\n]])\nreturn 1\n");
  r = test_file(late);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("before its first Host.call (declare it at the top of a script)") !=
        std::string::npos);
}

TEST_CASE("spec: Given steps, typed values, Background, outlines and every Then check",
          "[spec][cli]") {
  TempTac tac(with_spec(R"(Feature: Steps
  Background:
    Given the procedure has started
    And the tool "lookup" returns {"answer": "mocked"}

  Scenario: values and checks
    Given the input name is 'Cy'
    And the input n is 2.5
    And the input flag is True
    And the input list is [1, "two", {"three": 3}]
    And the message is "Start here."
    And the agent "helper" responds with "Sure, here you go."
    And the agent "helper" calls tool "lookup" with args {"q": "a"}
    And the agent "helper" calls tool "done" with args {"reason": "ok"}
    And the human rejects
    And the human answers "blue"
    When the helper agent takes turns
    Then the procedure should complete successfully
    And the output should exist
    And the output greeting should exist
    And the output missing should not exist
    And the output greeting should be "Hello, Cy!"
    And the output greeting should not be "Hello, Bo!"
    And the output greeting should match pattern "^Hel{2}o, [A-Z]\w+!$"
    And the output greeting should contain "Cy"
    And the output greeting should fuzzy match "hello cy"
    And the output reply should fuzzy match "here you go sure" with threshold 0.95
    And the output greeting should fuzzy match any of ["goodbye", "hello, cy"] with threshold 0.9
    And the output n should be 2.5
    And the output flag should be true
    And the output list should be [1, "two", {"three": 3}]
    And the output list.3.three should be 3
    And the output approved should be false
    And the output note should be "blue"
    And the output pick should be "blue"
    And the output looked should be {"answer": "mocked"}
    And the output first should be "Start here."
    And the state count should be 1
    And the state count should exist
    And the done tool should be called
    And the done tool should be called exactly 1 time
    And the lookup tool should be called at least 2 times
    And the lookup tool should be called at most 2 times
    And the tool "lookup" should be called with args {"q": "direct"}
    And the tool "lookup" should be called with args {"q": "a"}
    And the total iterations should be less than 2

  Scenario: the human approves
    Given the human approves
    And the human answers "red"
    Then the output approved should be true
    And the output pick should be "red"
    And the output note should be "red"

  Scenario Outline: outline rows
    Given the input name is "<who>"
    Then the output greeting should be "Hello, <who>!"
    Examples:
      | who |
      | Ann |
      | Bo  |
)"));
  const auto r = test_file(tac, {"--mock"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("PASS  Steps \xe2\x80\xba values and checks") != std::string::npos);
  CHECK(r.out.find("PASS  Steps \xe2\x80\xba the human approves") != std::string::npos);
  CHECK(r.out.find("PASS  Steps \xe2\x80\xba outline rows (who=Ann)") != std::string::npos);
  CHECK(r.out.find("PASS  Steps \xe2\x80\xba outline rows (who=Bo)") != std::string::npos);
}

TEST_CASE("spec: each Then check fails with a message that says why", "[spec][cli]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"the procedure should fail", "the procedure completed, returning {"},
      {"the output greeting should not exist", "the output greeting exists: \"Hello, world!\""},
      {"the output nothing should exist", "the output nothing does not exist"},
      {"the output greeting should be \"x\"",
       "the output greeting is \"Hello, world!\", not \"x\""},
      {"the output n should be \"1\"", "the output n is absent, not \"1\""},
      {"the output greeting should not be \"Hello, world!\"",
       "the output greeting is \"Hello, world!\", and it should not be"},
      {"the output greeting should match pattern \"^bye\"",
       "the output greeting is \"Hello, world!\", which does not match /^bye/"},
      {"the output greeting should match pattern \"(\"", "invalid pattern /(/: unclosed ("},
      {"the output greeting should contain \"xyz\"",
       "the output greeting is \"Hello, world!\", which does not contain \"xyz\""},
      {"the output greeting should fuzzy match \"completely different\"",
       "the output greeting is \"Hello, world!\": similarity 0.26 to \"completely different\" is "
       "below the threshold 0.80"},
      {"the output greeting should fuzzy match \"x\" with threshold 2",
       "the threshold must be a number from 0 to 1, got 2"},
      {"the output greeting should wobble", "'should wobble' is not a check"},
      {"the state count should be 5", "the state count is 1, not 5"},
      {"the lookup tool should not be called",
       "the lookup tool was called 1 time, first with {\"q\":\"direct\"}"},
      {"the lookup tool should be called exactly 3 times",
       "the lookup tool was called 1 time, not 3 times"},
      {"the lookup tool should be called at least 2 times",
       "the lookup tool was called 1 time, fewer than 2"},
      {"the done tool should be called at most 0 times",
       "the done tool was called 1 time, more than 0"},
      {"the tool \"lookup\" should be called with args {\"q\": \"zz\"}",
       "no call of the lookup tool had args {\"q\":\"zz\"}; its calls had {\"q\":\"direct\"}"},
      {"the tool \"file.read\" should be called", "the file.read tool was not called"},
      {"the total iterations should be less than 1",
       "the agents took 1 turns in all, not fewer than 1"},
      {"the nobody agent takes turns", "the nobody agent took no turn"},
      {"the input n is {broken", "'{broken' is neither JSON nor a Python literal"},
  };
  std::string gherkin = "Feature: Failing\n";
  for (std::size_t i = 0; i < cases.size(); ++i)
    gherkin += "  Scenario: case " + std::to_string(i) + "\n    Then " + cases[i].first + "\n";
  TempTac tac(with_spec(gherkin));
  const auto r = test_file(tac, {"--mock", "--json"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  const Json report = Json::parse(r.out);
  REQUIRE(report["scenarios"].size() == cases.size());
  CHECK(report["failed"] == cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Json& s = report["scenarios"][i];
    INFO(cases[i].first << " -> " << s.dump());
    CHECK(s["status"] == "failed");
    CHECK(s["error"].get<std::string>().find(cases[i].second) != std::string::npos);
  }
}

TEST_CASE("spec: an undefined step fails and suggests the closest phrasing", "[spec][cli]") {
  TempTac tac(with_spec(R"(Feature: Undefined
  Scenario: typo
    Then the outptu greeting should exist
    And the procedure should complete successfully
  Scenario: custom typo
    Then the itmes are sorted
)",
                        "Step('the items are sorted', function(ctx) end)\n"));
  const auto r = test_file(tac, {"--mock", "--json"});
  const Json report = Json::parse(r.out);
  CHECK(report["scenarios"][0]["error"].get<std::string>().find(
            "Then the outptu greeting should exist: undefined step; the closest known step is "
            "\"the output NAME should exist\"") != std::string::npos);
  // The steps after the undefined one are skipped.
  CHECK(report["scenarios"][0]["steps"][0]["status"] == "undefined");
  CHECK(report["scenarios"][0]["steps"][1]["status"] == "skipped");
  CHECK(report["scenarios"][1]["error"].get<std::string>().find(
            "the closest known step is \"the items are sorted\"") != std::string::npos);
}

TEST_CASE("spec: custom steps see output, state and input, captures, a failed assert fails",
          "[spec][cli]") {
  TempTac tac(with_spec(R"(Feature: Custom
  Scenario: custom steps
    Given the input name is "Dee"
    And the name is upper-cased first
    When the procedure runs
    Then the greeting has 11 characters
    And the count in state is 1
    And the doc string is read
      """
      line one
        indented
      """
  Scenario: a failing assert
    Then the greeting has 3 characters
)",
                        R"(
Step("the name is upper-cased first", function(ctx) ctx.input.name = ctx.input.name:upper() end)
Step("the greeting has (%d+) characters", function(ctx, n)
  assert(#ctx.output.greeting == tonumber(n), "the greeting has " .. #ctx.output.greeting .. " characters")
end)
Step("the count in state is 1", function(ctx) assert(ctx.state.count == 1) end)
Step("the doc string is read", function(ctx) assert(ctx.doc == "line one\n  indented", ctx.doc) end)
)"));
  const auto r = test_file(tac, {"--mock", "--json"});
  INFO(r.out << r.err);
  const Json report = Json::parse(r.out);
  CHECK(report["scenarios"][0]["status"] == "passed");
  CHECK(report["scenarios"][1]["status"] == "failed");
  CHECK(report["scenarios"][1]["error"].get<std::string>().find(
            "the greeting has 3 characters: ") != std::string::npos);
  CHECK(report["scenarios"][1]["error"].get<std::string>().find("the greeting has 13 characters") !=
        std::string::npos);
}

TEST_CASE("spec: Mocks {...} with temporal replies, tool mocks and unmocked defaults",
          "[spec][cli]") {
  TempTac tac(R"(
local done = require("tactus.tools.done")
classifier = Agent { model = "openai/gpt-4o-mini",
  output_type = { category = field.string{ enum = {"billing", "tech"}, required = true } } }
plain = Agent { model = "openai/gpt-4o-mini" }
finisher = Agent { model = "openai/gpt-4o-mini", tools = { done } }
typed = Agent { model = "openai/gpt-4o-mini",
  output_type = { score = field.number{ required = true }, label = field.string{ enum = {"x", "y"} } } }
Mocks {
  classifier = { temporal = { { value = { category = "tech" } }, { value = { category = "billing" } } } },
  weather = { returns = { temp = 21 } },
}
weather = Tool { description = "weather", function() return { temp = -1 } end }
Procedure {
  function()
    local a = classifier().output.category
    local b = classifier().output.category
    local c = classifier().output.category
    local p = plain().output
    finisher()
    local t = typed().output
    return { a = a, b = b, c = c, plain = p, done = done.called(), temp = weather().temp,
             score = t.score, label = t.label, approved = Human.approve({ message = "ok?" }) }
  end,
}
Specification([[
Feature: Mocks
  Scenario: from the Mocks block
    Then the output a should be "tech"
    And the output b should be "billing"
    And the output c should be "billing"
    And the output plain should be "Mock reply from plain."
    And the output done should be true
    And the output temp should be 21
    And the output score should be 0
    And the output label should be "x"
    And the output approved should be true
]])
)");
  const auto r = test_file(tac, {"--mock"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  // The same file as a mocked run: the Mocks block answers, nobody is asked.
  const auto run = run_tactus({"run", tac.path(), "--mock"});
  INFO(run.err);
  CHECK(run.exit_code == 0);
  CHECK(Json::parse(run.out)["a"] == "tech");
  CHECK(Json::parse(run.out)["approved"] == true);
}

TEST_CASE("spec: without --mock agents call the provider, scenario mocks still answer",
          "[spec][cli]") {
  FakeLlmServer server({FakeReply::say("From the provider.")});
  TempTac tac(R"(
helper = Agent { model = "fake/fake-model", initial_message = "Hi." }
Procedure { function() return { reply = helper().output } end }
Specification([[
Feature: Real
  Scenario: the provider answers
    Then the output reply should be "From the provider."
  Scenario: the scenario answers
    Given the agent "helper" responds with "Scripted."
    Then the output reply should be "Scripted."
]])
)");
  tactus::test::write_file(tac.path() + ".yml",
                           "providers:\n  fake: {base_url: \"" + server.base_url() +
                               "\", api_key: K, api: openai}\nsecrets:\n  K: {env: SPEC_KEY}\n");
  const auto r = test_file(tac, {}, {"SPEC_KEY=sk-spec-test-key-123456"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(server.request_count() == 1);
  CHECK(r.out.find("sk-spec-test-key") == std::string::npos);
  // With --mock the provider is never asked.
  const auto m = test_file(tac, {"--mock"}, {"SPEC_KEY=sk-spec-test-key-123456"});
  CHECK(server.request_count() == 1);
  CHECK(m.out.find("FAIL  Real \xe2\x80\xba the provider answers") != std::string::npos);
  CHECK(m.out.find("PASS  Real \xe2\x80\xba the scenario answers") != std::string::npos);
}

TEST_CASE("spec: each scenario runs in a fresh jail, a limit fails only its scenario",
          "[spec][cli]") {
  TempTac tac(R"(
Procedure {
  input = { spin = field.boolean{ default = false } },
  state = { runs = field.integer{ default = 0 } },
  function(input)
    State.increment("runs")
    while input.spin do end
    return { runs = state.runs }
  end,
}
Specification([[
Feature: Isolation
  Scenario: first
    Then the output runs should be 1
  Scenario: spins
    Given the input spin is true
    Then the procedure should complete successfully
  Scenario: second
    Then the output runs should be 1
    And the state runs should be 1
]])
)");
  const auto r = test_file(tac, {"--instructions", "2000000", "--json"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  const Json report = Json::parse(r.out);
  CHECK(report["scenarios"][0]["status"] == "passed");
  CHECK(report["scenarios"][1]["status"] == "failed");
  CHECK(report["scenarios"][1]["error"].get<std::string>().find(
            "instruction limit exceeded (2000000)") != std::string::npos);
  CHECK(report["scenarios"][2]["status"] == "passed");

  // The wall clock too: a scenario stuck past --timeout is killed, the next one runs.
  const auto t = test_file(tac, {"--timeout", "0.5", "--scenario", "spins"});
  CHECK(t.exit_code == 1);
  CHECK(t.out.find("timeout: wall-clock timeout of 0.5 s exceeded") != std::string::npos);
}

TEST_CASE("spec: --json and --junit reports", "[spec][cli]") {
  TempTac tac(R"(
Procedure { function() print("a <printed> line") return { ok = true } end }
Specification([[
Feature: Reports & more
  Scenario: good
    Then the output ok should be true
  Scenario: bad "one"
    Then the output ok should be false
]])
)");
  const std::string xml_path = tac.dir() + "/report.xml";
  const auto r = test_file(tac, {"--json", "--junit", xml_path});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  const Json report = Json::parse(r.out);
  CHECK(report["status"] == "failed");
  CHECK(report["passed"] == 1);
  CHECK(report["failed"] == 1);
  CHECK(report["scenarios"][0]["output"] == Json{"a <printed> line"});
  CHECK(report["scenarios"][0]["steps"][0] == Json{{"keyword", "Then"},
                                                   {"text", "the output ok should be true"},
                                                   {"line", 6},
                                                   {"status", "passed"}});
  const std::string xml = tactus::test::read_file(xml_path);
  CHECK(xml.find("<testsuite name=\"" + tac.path() + "\" tests=\"2\" failures=\"1\"") !=
        std::string::npos);
  CHECK(xml.find("<testcase classname=\"Reports &amp; more\" name=\"good\"") != std::string::npos);
  CHECK(xml.find("name=\"bad &quot;one&quot;\"") != std::string::npos);
  CHECK(xml.find("<failure message=\"" + tac.path() +
                 ":8: Then the output ok should be false: the output ok is true, not false\">") !=
        std::string::npos);
  CHECK(xml.find("<system-out>a &lt;printed&gt; line\n</system-out>") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(xml_path + ".tmp"));

  // A report that cannot be written is a usage error, and leaves nothing behind.
  const std::string bad = tac.dir() + "/no-such-dir/report.xml";
  const auto w = test_file(tac, {"--junit", bad});
  CHECK(w.exit_code == 2);
  CHECK(w.err == "tactus: cannot write '" + bad + "'\n");
  CHECK_FALSE(std::filesystem::exists(tac.dir() + "/no-such-dir"));
}

TEST_CASE("eval: pass rates per scenario against the threshold", "[spec][cli]") {
  TempTac tac(R"(
Procedure { function() return { coin = math.random(2), one = 1 } end }
Evaluation({ runs = 3, threshold = 0.9 })
Specification([[
Feature: Eval
  Scenario: always
    Then the output one should be 1
  Scenario: coin
    Then the output coin should be 1
]])
)");
  auto r = run_tactus({"eval", tac.path(), "--scenario", "always"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "PASS  Eval \xe2\x80\xba always: 3/3 passed (100%, threshold 90%)\n");
  // A coin flip 40 times: below 90% (the odds of 36 heads or more are about 1 in 10 million).
  r = run_tactus({"eval", tac.path(), "--runs", "40", "--json"});
  CHECK(r.exit_code == 1);
  const Json report = Json::parse(r.out);
  CHECK(report["runs"] == 40);
  CHECK(report["scenarios"][0]["passed"] == 40);
  CHECK(report["scenarios"][1]["status"] == "failed");
  CHECK(report["scenarios"][1]["pass_rate"].get<double>() < 0.9);
  CHECK(report["scenarios"][1]["pass_rate"].get<double>() > 0.0);
}

TEST_CASE("spec: the pattern matcher", "[spec][cli]") {
  // Run in a VM of its own: the matcher is Lua, metered like the procedure.
  TempTac tac(R"lua(
local regex = require("tactus.testing.regex")
local cases = {
  { "^Hel+o, \\w+!$", "Hello, Ada!", true }, { "^Hel+o$", "Hello!", false },
  { "a|b", "xbx", true }, { "^(ab)+$", "ababab", true }, { "^(ab)+$", "ababa", false },
  { "^[a-c]{2,3}$", "abc", true }, { "^[a-c]{2,3}$", "abcd", false }, { "^[^0-9]*$", "ab1", false },
  { "\\d{3}-\\d{4}", "call 555-1234 now", true }, { "\\bcat\\b", "concat", false },
  { "\\bcat\\b", "a cat!", true }, { "(?i)HELLO", "hello", true }, { "colou?r", "color", true },
  { "^\\s*$", "  \t", true }, { "a.c", "a\nc", false }, { "x*", "", true }, { "\\.", "a.b", true },
  { "[.]", "ab", false }, { "^a{3}$", "aaa", true }, { "^(?:a|b)c$", "bc", true },
  { "(a*)*b", "aaaaaaaaaaaaaaaaaaaaaaaab", true }, { "[\\w-]+@[\\w.]+", "me-1@x.org", true },
}
local failed = {}
for i, c in ipairs(cases) do
  if regex.search(c[1], c[2]) ~= c[3] then failed[#failed + 1] = i end
end
local errors = {}
for _, bad in ipairs({ "(", "a)", "*a", "[a", "a{3,1}", "\\" }) do
  local ok, err = pcall(regex.search, bad, "x")
  errors[#errors + 1] = ok and "no error" or err
end
return { failed = failed, errors = errors }
)lua");
  const auto r = run_tactus({"run", tac.path()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const Json j = Json::parse(r.out);
  CHECK(j["failed"].empty());  // an empty Lua table: {}
  CHECK(j["errors"] == Json{"invalid pattern /(/: unclosed (", "invalid pattern /a)/: unbalanced )",
                            "invalid pattern /*a/: nothing to repeat before '*'",
                            "invalid pattern /[a/: unclosed [",
                            "invalid pattern /a{3,1}/: {n,m} with m < n",
                            "invalid pattern /\\/: trailing backslash"});

  // A catastrophic pattern is stopped by the instruction limit, not left to spin.
  TempTac evil(R"(
return require("tactus.testing.regex").search("^(a|a)*$", string.rep("a", 40) .. "b")
)");
  const auto e = run_tactus({"run", evil.path(), "--instructions", "5000000"});
  CHECK(e.exit_code == 3);
  CHECK(e.err.find("instruction limit exceeded") != std::string::npos);
}

TEST_CASE("spec: validate runs no host tool, not even through tactus.io", "[spec][cli]") {
  TempTac tac(R"(
local csv = require("tactus.io.csv")
Specification([[
Feature: F
  Scenario: s
    Then the output should exist
]])
local rows = csv.read("data.csv")
return rows
)");
  tactus::test::write_file(tac.dir() + "/data.csv", "a\n1\n");
  tactus::test::write_file(tac.path() + ".yml", "tools:\n  allow: [file.read]\n");
  const auto v = run_tactus({"validate", tac.path()});
  INFO(v.out << v.err);
  CHECK(v.exit_code == 0);
  CHECK(v.out == tac.path() +
                     ": valid: script (its top level was checked up to its first Host.call); "
                     "scenarios: 1\n");
  // The scenario itself reads the file for real.
  const auto t = test_file(tac);
  CHECK(t.exit_code == 0);
}

TEST_CASE("spec: Human.review and Human.select answers have the shapes tactus answer gives",
          "[spec][cli]") {
  TempTac tac(R"(
Procedure {
  function()
    local r = Human.review({ message = "look", artifact = "draft" })
    local s = Human.select({ message = "pick",
      options = { { label = "Red", value = "r" }, { label = "Blue", value = "b" } } })
    return { decision = r.decision, feedback = r.feedback, pick = s }
  end,
}
Specification([[
Feature: Humans
  Scenario: defaults
    Then the output decision should be "approved"
    And the output pick should be "r"
  Scenario: decisions and labels
    Given the human rejects
    And the human answers "Blue"
    Then the output decision should be "rejected"
    And the output pick should be "b"
  Scenario: feedback, then an option by number
    Given the human answers "fix the title"
    And the human answers 2
    Then the output feedback should be "fix the title"
    And the output pick should be "b"
  Scenario: not an option
    Given the human answers "Green"
    Then the procedure should complete successfully
]])
)");
  const auto r = test_file(tac, {"--json"});
  INFO(r.out << r.err);
  const Json report = Json::parse(r.out);
  CHECK(report["passed"] == 3);
  CHECK(report["scenarios"][3]["error"].get<std::string>().find(
            "Human.select (\"pick\"): the scenario's answer Green is not one of its options "
            "(Red, Blue)") != std::string::npos);
}

TEST_CASE("spec: under tactus test too, a procedure cannot install mocks of its own",
          "[spec][cli]") {
  TempTac tac(R"(Specification([[
Feature: Door
  Scenario: sealed
    Given the human rejects
    When the procedure runs
    Then the output sealed should be true
    And the output approved should be false
]])
local ok = pcall(require, "tactus.host")
return { sealed = not ok, approved = Human.approve({ message = "ok?" }) }
)");
  const auto r = test_file(tac);
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
}
