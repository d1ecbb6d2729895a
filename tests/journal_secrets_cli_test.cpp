// A run given a secret by --param: the journal's files hold no trace of it, and the resumed run
// returns what the same run returns without a journal.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "tests/support/cli_runner.h"

using namespace tactus::test;  // tests/support/
namespace fs = std::filesystem;

namespace {

const std::string kSecret = "sk-journal-5e6f7a8b9c0d";

// The secret goes into state, a checkpoint's value and a request's params; the run suspends on
// a human question unless input.direct is set (then nothing is journaled at all).
const char* kSource = R"(
state.token = input.token
local n = Step.checkpoint(function() return #input.token .. ":" .. input.token:sub(1, 3) end)
Host.call("host.ping", { t = input.token })
if not input.direct then Human.approve({ message = "go on?" }) end
return { len = #state.token, same = state.token == input.token, n = n }
)";

// Every byte the journal left on disk: the database, its WAL and whatever else .tactus holds.
std::string journal_bytes(const std::string& dir) {
  std::string all;
  for (const auto& e : fs::recursive_directory_iterator(dir + "/.tactus"))
    if (e.is_regular_file()) all += read_file(e.path().string());
  return all;
}

}  // namespace

TEST_CASE("journal secrets: a secret given by --param is on no journal page, resume is faithful",
          "[durable][secrets][cli]") {
  TempTac tac(kSource);
  write_file(tac.path() + ".yml", "secrets:\n  TOK: {env: TACTUS_TEST_TOK}\n");
  const std::vector<std::string> env = {"TACTUS_TEST_TOK=" + kSecret};
  const std::string param = "token=" + kSecret;

  const CliRun direct =
      run_tactus_in(tac.dir(), {"run", tac.path(), "--param", param, "--param", "direct=1"}, env);
  INFO(direct.err);
  REQUIRE(direct.exit_code == 0);

  CliRun r = run_tactus_in(tac.dir(), {"run", tac.path(), "--param", param, "--run-id", "s"}, env);
  INFO(r.err);
  REQUIRE(r.exit_code == 5);
  REQUIRE(run_tactus_in(tac.dir(), {"answer", "s", "--value", "yes"}, env).exit_code == 0);
  CHECK(journal_bytes(tac.dir()).find(kSecret) == std::string::npos);
  CHECK(journal_bytes(tac.dir()).find(kSecret.substr(3, 12)) == std::string::npos);

  r = run_tactus_in(tac.dir(), {"resume", "s"}, env);
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == direct.out);
  CHECK(r.out.find("\"same\":true") != std::string::npos);
  CHECK(r.out.find("\"len\":23") != std::string::npos);
  CHECK(journal_bytes(tac.dir()).find(kSecret) == std::string::npos);
  // Answering twice says the answer is there already.
  REQUIRE(run_tactus_in(tac.dir(), {"run", tac.path(), "--param", param, "--run-id", "t"}, env)
              .exit_code == 5);
  REQUIRE(run_tactus_in(tac.dir(), {"answer", "t", "--value", "yes"}, env).exit_code == 0);
  r = run_tactus_in(tac.dir(), {"answer", "t", "--value", "no"}, env);
  CHECK(r.exit_code == 2);
  CHECK(r.err == "tactus: run t has its answer already; continue it with 'tactus resume t'\n");
}
