// http.request end to end: the sidecar's sandbox.network decides, the jailed VM asks through
// Host.call, and a real server on 127.0.0.1 counts what reached it.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/support/cli_runner.h"
#include "tests/support/http_test_server.h"

using namespace tactus::test;  // tests/support/

namespace {

std::string fetch_source(const std::string& url) {
  return "local ok, r = pcall(Host.call, 'http.request', {url = '" + url +
         "'})\nif ok then return {status = r.status, body = r.body} end\nreturn {error = r}\n";
}

}  // namespace

TEST_CASE("http cli: allowed in tools.allow but network none: denied, nothing sent",
          "[http][cli]") {
  HttpTestServer server;
  TempTac tac(fetch_source(server.url("/hello")));
  tactus::test::write_file(tac.path() + ".yml", "tools:\n  allow: [http.request]\n");
  const auto r = run_tactus({"run", tac.path(), "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto doc = nlohmann::json::parse(r.out);
  CHECK(doc["result"]["error"] == "denied: network is none (sandbox.network)");
  CHECK(server.requests() == 0);
}

TEST_CASE("http cli: filtered network reaches an allowed host, deny wins", "[http][cli]") {
  HttpTestServer server;
  TempTac tac(fetch_source(server.url("/hello")));
  tactus::test::write_file(
      tac.path() + ".yml",
      "sandbox:\n  network: filtered\n  network_filter:\n    allow: ['^127\\.0\\.0\\.1$']\n"
      "tools:\n  allow: [http.request]\n");
  const auto r = run_tactus({"run", tac.path(), "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto doc = nlohmann::json::parse(r.out);
  CHECK(doc["result"]["status"] == 200);
  CHECK(doc["result"]["body"] == "hello");
  CHECK(server.requests() == 1);

  tactus::test::write_file(tac.path() + ".yml",
                           "sandbox:\n  network: filtered\n  network_filter:\n    allow: ['.*']\n"
                           "    deny: ['^127\\.']\ntools:\n  allow: [http.request]\n");
  const auto denied = run_tactus({"run", tac.path(), "--json"});
  REQUIRE(denied.exit_code == 0);
  CHECK(nlohmann::json::parse(denied.out)["result"]["error"] ==
        "denied: host '127.0.0.1' is denied by sandbox.network_filter.deny '^127\\.'");
  CHECK(server.requests() == 1);
}

TEST_CASE("http cli: an invalid network_filter regex is a config error", "[http][config]") {
  TempTac tac("return 1");
  tactus::test::write_file(tac.path() + ".yml",
                           "sandbox:\n  network: filtered\n  network_filter:\n    allow: ['(']\n");
  const auto r = run_tactus({"run", tac.path()});
  CHECK(r.exit_code == 2);
  CHECK(r.err.rfind("tactus: " + tac.path() + ".yml:4:", 0) == 0);
  CHECK(r.err.find("sandbox.network_filter.allow") != std::string::npos);
}

TEST_CASE("http cli: a 100,000-character host is an error, and the broker lives", "[http][cli]") {
  // Uncaught, so the run ends as the procedure's error, not as a crash of the broker.
  TempTac tac("Host.call('http.request', {url = 'http://' .. string.rep('a', 100000) .. '/'})\n");
  tactus::test::write_file(tac.path() + ".yml",
                           "sandbox:\n  network: filtered\n  network_filter:\n"
                           "    allow: ['.*']\n    deny: ['^127\\.', '^localhost$']\n"
                           "tools:\n  allow: [http.request]\n");
  const auto r = run_tactus({"run", tac.path()});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("invalid_args: url is 100008 bytes, over the limit of 8192") !=
        std::string::npos);
}
