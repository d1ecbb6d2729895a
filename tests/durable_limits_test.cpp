// journal.max_bytes: what one run may journal. The procedure is untrusted and every request it
// makes, every answer and every state it reports is written to the host's disk; the bound is
// crossed here through params, through state, through the answer of a request with an effect
// (journaled in flight first), and across a resume.
#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "tests/support/cli_runner.h"
#include "tests/support/http_test_server.h"
#include "tests/support/project_journal.h"

using namespace tactus::test;  // tests/support/
using Json = nlohmann::json;

namespace {

// Entries the run's journal holds, and their bytes (params and answers).
std::pair<std::size_t, std::size_t> journaled(const TempTac& tac, const std::string& run_id) {
  const auto entries = tactus::test::project_journal_entries(tac.dir(), run_id);
  std::size_t bytes = 0;
  for (const auto& e : entries) bytes += e.request_json.size() + e.response_json.size();
  return {entries.size(), bytes};
}

std::string status_of(const TempTac& tac, const std::string& run_id) {
  const CliRun r = run_tactus_in(tac.dir(), {"runs", "--json"});
  REQUIRE(r.exit_code == 0);
  for (const auto& run : Json::parse(r.out))
    if (run["run_id"] == run_id) return run["status"];
  return "";
}

}  // namespace

TEST_CASE(
    "journal limit: a run whose requests pass journal.max_bytes stops, what came before is "
    "kept",
    "[durable][cli][limits]") {
  TempTac tac(R"(
Human.notify({ message = "journaled" })
local pad = string.rep("x", 100000)
for i = 1, 30 do Host.call("host.ping", { i = i, pad = pad }) end
return "done"
)");
  tactus::test::write_file(tac.path() + ".yml", "journal:\n  max_bytes: 1m\n");
  const CliRun r = run_tactus_in(tac.dir(), {"run", tac.path(), "--run-id", "big"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("journal: run big has journaled more than journal.max_bytes (1 MiB, " +
                   tac.path() +
                   ".yml:2:14) allows (entry 7, host.call); the entries before it "
                   "are kept") != std::string::npos);
  CHECK(status_of(tac, "big") == "failed");
  const auto [count, bytes] = journaled(tac, "big");
  CHECK(count == 6);  // the notify and five pings of about 200 KB each (params and answer)
  CHECK(bytes <= (1u << 20));
}

TEST_CASE("journal limit: an effect's answer counts, its entry stays in flight",
          "[durable][cli][limits]") {
  tactus::test::HttpTestServer server;
  TempTac tac(R"(
for i = 1, 10 do Host.call("http.request", { url = input.url }) end
return "done"
)");
  tactus::test::write_file(tac.path() + ".yml",
                           "journal:\n  max_bytes: 1m\n"
                           "sandbox:\n  network: filtered\n"
                           "  network_filter: {allow: ['^127\\.0\\.0\\.1$']}\n"
                           "tools:\n  allow: [http.request]\n");
  const CliRun r = run_tactus_in(tac.dir(), {"run", tac.path(), "--run-id", "ans", "--param",
                                             "url=" + server.url("/big?n=300000")});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("allows (entry 4, host.call's answer); the entries before it are kept") !=
        std::string::npos);
  CHECK(status_of(tac, "ans") == "failed");
  const auto entries = tactus::test::project_journal_entries(tac.dir(), "ans");
  REQUIRE(entries.size() == 4);
  CHECK(entries.back().response_json.empty());  // the answer that did not fit is not kept
  CHECK(journaled(tac, "ans").second <= (1u << 20));
}

TEST_CASE("journal limit: state counts too", "[durable][cli][limits]") {
  TempTac tac(R"(
Human.notify({ message = "journaled" })
for i = 1, 30 do
  state.note = string.rep(tostring(i % 10), 300000)
  Host.call("host.ping", {})
end
return "done"
)");
  tactus::test::write_file(tac.path() + ".yml", "journal:\n  max_bytes: 1m\n");
  const CliRun r = run_tactus_in(tac.dir(), {"run", tac.path(), "--run-id", "st"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("allows (entry 8, state); the entries before it are kept") != std::string::npos);
  CHECK(status_of(tac, "st") == "failed");
}

TEST_CASE(
    "journal limit: a resume counts what the journal holds, raising the limit is not a "
    "changed configuration",
    "[durable][cli][limits]") {
  const char* source = R"(
Human.notify({ message = "journaled" })
local pad = string.rep("x", 100000)
for i = 1, 3 do Host.call("host.ping", { i = i, pad = pad }) end
local ok = Human.approve({ message = "more?" })
for i = 4, 6 do Host.call("host.ping", { i = i, pad = pad }) end
return ok
)";
  TempTac tac(source);
  tactus::test::write_file(tac.path() + ".yml", "journal:\n  max_bytes: 1m\n");
  // About 600 KB before the question, as much after it: 1m holds either half, not both.
  REQUIRE(run_tactus_in(tac.dir(), {"run", tac.path(), "--run-id", "a"}).exit_code == 5);
  REQUIRE(run_tactus_in(tac.dir(), {"run", tac.path(), "--run-id", "b"}).exit_code == 5);
  REQUIRE(run_tactus_in(tac.dir(), {"answer", "a", "--value", "yes"}).exit_code == 0);
  REQUIRE(run_tactus_in(tac.dir(), {"answer", "b", "--value", "yes"}).exit_code == 0);
  CliRun r = run_tactus_in(tac.dir(), {"resume", "a"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("journal: run a has journaled more than journal.max_bytes (1 MiB") !=
        std::string::npos);
  CHECK(status_of(tac, "a") == "failed");

  tactus::test::write_file(tac.path() + ".yml", "journal:\n  max_bytes: 4m\n");
  r = run_tactus_in(tac.dir(), {"resume", "b"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "true\n");
}
