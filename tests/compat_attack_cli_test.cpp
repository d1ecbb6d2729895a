// The Python Tactus dialect under attack: what two outside reads of it tried, each kept as a
// test (docs/security.md, "Attacks and what stops them").
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "tests/fixtures/fake_llm.h"
#include "tests/support/cli_runner.h"

using namespace tactus::test;  // tests/support/
using Json = nlohmann::json;
namespace fs = std::filesystem;

TEST_CASE("compat attack: a .tac linked to a secret file is no module and no sub-procedure",
          "[compat][cli][secrets]") {
  TempTac tac(R"(
local ok1, e1 = pcall(Procedure.run, "helpers/k.tac", {})
local ok2, e2 = pcall(require, "helpers.k")
print(tostring(e1):reverse())
print(tostring(e2):reverse())
return { ok1 = ok1, ok2 = ok2 }
)");
  const std::string secret = "4f3c2a9b1e7d5566aa";
  write_file(tac.dir() + "/keys/k.txt", secret);
  write_file(tac.dir() + "/.tactus/config.yml",
             "secrets:\n  MYKEY: {file: " + tac.dir() + "/keys/k.txt}\n");
  fs::create_directories(tac.dir() + "/helpers");
  fs::create_symlink("../keys/k.txt", tac.dir() + "/helpers/k.tac");
  const auto r = run_tactus_in(tac.dir(), {"run", tac.path()});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::string reversed(secret.rbegin(), secret.rend());
  CHECK(r.out.find(reversed) == std::string::npos);
  CHECK(r.out.find(secret) == std::string::npos);
  CHECK(r.out.find(std::string("noitarugifnoc detsurt si")) != std::string::npos);
}

TEST_CASE("compat attack: replacing error or type does not lift max_depth", "[compat][cli]") {
  TempTac tac(R"(
local real_error = error
error = function(m, l) if tostring(m):find("max_depth") then return nil end return real_error(m, l) end
type = function() return "table" end
pcall = function(f, ...) return true, f(...) end
main = procedure("main", { input = { n = { type = "number", required = true } } }, function()
  if input.n <= 0 then return { n = 0 } end
  local r = Procedure.run("proc.tac", { n = input.n - 1 })
  return { n = (r and r.n or 0) + 1 }
end)
)");
  const auto r = run_tactus({"run", tac.path(), "--param", "n=40"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("proc.tac:8: Procedure.run('proc.tac'): sub-procedures nest deeper than "
                   "max_depth (5)") != std::string::npos);
  CHECK(r.err.find("lua/tactus/dsl") == std::string::npos);  // no inside position
}

TEST_CASE(
    "compat attack: a sub-procedure file runs again with its tools, named procedures and "
    "agents its own",
    "[compat][cli]") {
  TempTac tac(R"(
local function helper() return "CALLER's helper" end
procedure("helper", function() return { who = "the caller's" } end)
local a = Procedure.run("helpers/t.tac", { x = 1 })
local b = Procedure.run("helpers/t.tac", { x = 2 })
return { a = a.sum, b = b.sum, who = a.who, leaked = rawget(_G, "SubBot") ~= nil or rawget(_G, "Sub_bot") ~= nil }
)");
  write_file(tac.dir() + "/helpers/t.tac", R"(
tool("adder", { description = "a+1", parameters = {} }, function(args) return args.x + 1 end)
sub_bot = Agent { provider = "openai", model = "gpt-4o" }
agent("other_bot", { provider = "openai", model = "gpt-4o" })
local own = procedure("helper", function() return { who = "the sub's" } end)
main = procedure("main", { input = { x = { type = "number", required = true } } }, function()
  return { sum = Tool.get("adder")({ x = input.x }), who = own().who,
           alias = OtherBot ~= nil and SubBot ~= nil, via_run = Procedure.run("helper", {}).who }
end)
)");
  const auto r = run_tactus({"run", tac.path()});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Json::parse(r.out) == Json{{"a", 2}, {"b", 3}, {"who", "the sub's"}, {"leaked", false}});
}

TEST_CASE("compat attack: a duplicate tool() names the procedure's line", "[compat][cli]") {
  TempTac tac(
      "tool('t', { parameters = {} }, function() end)\n"
      "tool('t', { parameters = {} }, function() end)\n");
  const auto r = run_tactus({"run", tac.path()});
  CHECK(r.exit_code == 1);
  CHECK(r.err.rfind(tac.path() + ":2: a tool named 't' is already declared", 0) == 0);
}

TEST_CASE("compat attack: ~/.tactus through a link to $HOME is still no project", "[compat][cli]") {
  TempTac home("unused");
  write_file(home.dir() + "/real/.tactus/config.yml", "");
  write_file(home.dir() + "/real/other/secret.tac", "return { stolen = true }\n");
  write_file(home.dir() + "/real/p/a.tac",
             "local ok, err = pcall(Procedure.run, 'other/secret.tac', {})\n"
             "return { ok = ok }\n");
  fs::create_directory_symlink(home.dir() + "/real", home.dir() + "/link");
  const auto r = run_tactus_in(home.dir() + "/link", {"run", "p/a.tac", "-v"},
                               {"HOME=" + home.dir() + "/link"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Json::parse(r.out)["ok"] == false);
  CHECK(r.err.find(", project (none),") != std::string::npos);
}

TEST_CASE("compat attack: renamed and prefixed tools are offered under safe names",
          "[compat][cli]") {
  FakeLlmServer server({FakeReply::say("ok")});
  TempTac tac(R"(
tool("word_count", { description = "n", parameters = {} }, function() return 1 end)
agent("a", { provider = "fake", model = "m", initial_message = "x",
  toolsets = { { name = "word_count", rename = { word_count = "count words!" } },
               { name = "done", prefix = "my." } } })
main = procedure("main", function() A.turn() return {} end)
)");
  write_file(tac.dir() + "/.tactus/config.yml",
             "providers:\n  fake: {base_url: \"" + server.base_url() + "\", api: openai}\n");
  const auto r = run_tactus_in(tac.dir(), {"run", tac.path()});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto reqs = server.requests();
  REQUIRE(reqs.size() == 1);
  std::vector<std::string> names;
  for (const auto& t : reqs[0].body["tools"]) names.push_back(t["function"]["name"]);
  CHECK(names == std::vector<std::string>{"count_words_", "my_done"});
}

TEST_CASE("compat attack: config edge cases: (?i) patterns, aws as a value", "[compat][cli]") {
  TempTac tac("return 1\n");
  write_file(tac.dir() + "/.tactus/config.yml",
             "toolsets:\n  x: {type: filtered, source: done, pattern: '(?i)^DONE$'}\n");
  CHECK(run_tactus_in(tac.dir(), {"run", tac.path()}).exit_code == 0);
  write_file(tac.dir() + "/.tactus/config.yml", "aws: AKIAEXAMPLEKEY\n");
  const auto aws = run_tactus_in(tac.dir(), {"run", tac.path()});
  CHECK(aws.exit_code == 2);
  CHECK(aws.err.find("aws: expected a mapping of settings") != std::string::npos);
  CHECK(aws.err.find("AKIAEXAMPLEKEY") == std::string::npos);
  write_file(tac.dir() + "/.tactus/config.yml", "aws:\n  nested: {secret_access_key: AKIAX}\n");
  const auto nested = run_tactus_in(tac.dir(), {"run", tac.path()});
  CHECK(nested.exit_code == 2);
  CHECK(nested.err.find("aws.nested: expected a plain value") != std::string::npos);
}

TEST_CASE("compat attack: the source, input and --mock-config must fit one message together",
          "[compat][cli]") {
  TempTac tac("return 1\n");
  // Each alone is within its own bound; together they would not fit the run message.
  write_file(tac.dir() + "/m.json", "{\"x\": \"" + std::string(450 * 1024, 'a') + "\"}");
  write_file(tac.dir() + "/in.json", "{\"y\": \"" + std::string(600 * 1024, 'b') + "\"}");
  const auto r = run_tactus({"run", tac.path(), "--mock", "--mock-config", tac.dir() + "/m.json",
                             "--input", tac.dir() + "/in.json", "--message-limit", "1m"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("the source, the input and --mock-config together") != std::string::npos);
}

TEST_CASE("compat attack: a dataset cannot order more than 10,000 evaluation runs",
          "[compat][cli]") {
  TempTac tac(
      "main = procedure('main', function() return {} end)\n"
      "local d = {} for i = 1, 200 do d[i] = { inputs = {} } end\n"
      "evaluations({ runs = 100, dataset = d, evaluators = {} })\n");
  const auto r = run_tactus({"eval", tac.path(), "--mock"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("200 cases x 100 runs is more than 10000 runs") != std::string::npos);
}
