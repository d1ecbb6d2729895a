// The trusted configuration end to end: sidecars set limits and allowlists, secrets are masked
// in everything the jail receives and everything written out, and mistakes are config errors.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/support/cli_runner.h"

using namespace tactus::test;  // tests/support/
namespace fs = std::filesystem;

namespace {

const std::string kSecret = "sk-test-9f8e7d6c5b4a";
const std::string kSecretEnv = "TACTUS_TEST_SECRET=" + kSecret;

std::string base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned v = 0;
  int bits = -6;
  for (unsigned char c : in) {
    v = (v << 8) | c;
    bits += 8;
    while (bits >= 0) {
      out.push_back(t[(v >> bits) & 63]);
      bits -= 6;
    }
  }
  if (bits > -6) out.push_back(t[((v << 8) >> (bits + 8)) & 63]);
  while (out.size() % 4) out.push_back('=');
  return out;
}

}  // namespace

TEST_CASE("config cli: sidecar limits apply, and flags override them", "[config][cli]") {
  TempTac tac("for i = 1, 300 do print(string.rep('x', 10)) end return 'done'");
  tactus::test::write_file(tac.path() + ".yml", "sandbox:\n  limits:\n    output: 1k\n");
  const auto r = run_tactus({"run", tac.path(), "--json"});
  CHECK(r.exit_code == 3);
  CHECK(nlohmann::json::parse(r.out)["status"] == "output");
  const auto flag = run_tactus({"run", tac.path(), "--json", "--output-limit", "1m"});
  CHECK(flag.exit_code == 0);
}

TEST_CASE("config cli: tools.allow opens a host tool, without it, denied", "[config][cli]") {
  TempTac tac("return Host.call('file.read', {path = 'data.txt'}).content");
  tactus::test::write_file(tac.dir() + "/data.txt", "hello from the workspace");
  const auto denied = run_tactus({"run", tac.path()});
  CHECK(denied.exit_code == 1);
  CHECK(denied.err.find(":1: denied: host tool 'file.read' is not allowed") != std::string::npos);
  tactus::test::write_file(tac.path() + ".yml", "tools:\n  allow: [\"file.*\"]\n");
  const auto allowed = run_tactus({"run", tac.path()});
  CHECK(allowed.exit_code == 0);
  CHECK(allowed.out == "\"hello from the workspace\"\n");
}

TEST_CASE("config cli: a secret in a tool result never reaches the VM", "[config][secrets]") {
  TempTac tac(R"(
local c = Host.call('file.read', {path = 'leak.txt'}).content
print(c)
return {seen = c, has_secret = c:find('sk-test-', 1, true) ~= nil})");
  tactus::test::write_file(tac.dir() + "/leak.txt", "token=" + kSecret + " b64=" + base64(kSecret));
  tactus::test::write_file(
      tac.path() + ".yml",
      "tools:\n  allow: [file.read]\nsecrets:\n  T: {env: TACTUS_TEST_SECRET}\n");
  const auto r = run_tactus({"run", tac.path(), "--json"}, {kSecretEnv});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find(kSecret) == std::string::npos);
  CHECK(r.err.find(kSecret) == std::string::npos);
  CHECK(r.out.find(base64(kSecret)) == std::string::npos);
  const auto doc = nlohmann::json::parse(r.out);
  CHECK(doc["result"]["has_secret"] == false);  // what the VM itself saw
  CHECK(doc["result"]["seen"].get<std::string>().rfind("token=***", 0) == 0);
  CHECK(r.err.rfind("token=***", 0) == 0);  // the printed line
}

TEST_CASE("config cli: a print of a secret is masked, in every output", "[config][secrets]") {
  TempTac tac("print('key is ' .. input.k) error('failed with ' .. input.k)");
  tactus::test::write_file(tac.path() + ".yml", "secrets:\n  T: {env: TACTUS_TEST_SECRET}\n");
  const auto r = run_tactus({"run", tac.path(), "--param", "k=" + kSecret}, {kSecretEnv});
  CHECK(r.exit_code == 1);
  CHECK(r.out == "key is ***\n");
  CHECK(r.err.find(kSecret) == std::string::npos);
  CHECK(r.err.find("failed with ***") != std::string::npos);
}

TEST_CASE("config cli: a missing secret is a config error naming it", "[config][secrets]") {
  TempTac tac("return 1");
  tactus::test::write_file(tac.path() + ".yml",
                           "secrets:\n  GH: {file: missing-token}\n  T: {env: NOT_SET_HERE}\n");
  const auto r = run_tactus({"run", tac.path()});
  CHECK(r.exit_code == 2);
  CHECK(r.err.rfind("tactus: " + tac.path() + ".yml:2:7: secrets.GH: ", 0) == 0);
  CHECK(r.err.find(tac.dir() + "/missing-token") != std::string::npos);
  CHECK(r.out.empty());
}

TEST_CASE("config cli: the audit log records each Host.call, redacted", "[config][secrets]") {
  TempTac tac(R"(Host.call('host.ping', {key = input.k})
pcall(Host.call, 'file.read', {path = 'x'})
return 1)");
  tactus::test::write_file(
      tac.path() + ".yml",
      "secrets:\n  T: {env: TACTUS_TEST_SECRET}\naudit:\n  path: logs/audit.jsonl\n");
  const auto r = run_tactus({"run", tac.path(), "--run-id", "audit-1", "--param", "k=" + kSecret},
                            {kSecretEnv});
  REQUIRE(r.exit_code == 0);
  const std::string log = tactus::test::read_file(tac.dir() + "/logs/audit.jsonl");
  CHECK(log.find(kSecret) == std::string::npos);
  std::istringstream lines(log);
  std::string first, second;
  std::getline(lines, first);
  std::getline(lines, second);
  const auto a = nlohmann::json::parse(first);
  CHECK(a["run_id"] == "audit-1");
  CHECK(a["tool"] == "host.ping");
  CHECK(a["args"]["key"] == "***");
  CHECK(a["outcome"] == "ok");
  CHECK(a["duration_ms"].is_number());
  const auto b = nlohmann::json::parse(second);
  CHECK(b["tool"] == "file.read");
  CHECK(b["outcome"] == "denied");
}

TEST_CASE("config cli: config show prints every value's origin, secrets by name only",
          "[config][cli]") {
  TempTac tac("return 1");
  tactus::test::write_file(tac.path() + ".yml",
                           "sandbox:\n  timeout: 42\nsecrets:\n  T: {env: TACTUS_TEST_SECRET}\n");
  const auto r = run_tactus({"config", "show", tac.path()}, {kSecretEnv});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("sandbox.timeout: 42") != std::string::npos);
  CHECK(r.out.find("# " + tac.path() + ".yml:2:12") != std::string::npos);
  CHECK(r.out.find("secrets.T: <secret:T> from env TACTUS_TEST_SECRET") != std::string::npos);
  CHECK(r.out.find(kSecret) == std::string::npos);
  CHECK(r.out.find("sandbox.backend: jail") != std::string::npos);
}

TEST_CASE("config cli: a bad sidecar is a usage error naming file:line:column", "[config][cli]") {
  TempTac tac("return 1");
  tactus::test::write_file(tac.path() + ".yml", "sandbox:\n  limits:\n    memroy: 1g\n");
  const auto r = run_tactus({"run", tac.path()});
  CHECK(r.exit_code == 2);
  CHECK(r.err == "tactus: " + tac.path() +
                     ".yml:3:5: sandbox.limits.memroy: unknown key (did you mean 'memory'?); "
                     "known here: memory, cpu, output, instructions, message, disk\n");
  const auto show = run_tactus({"config", "show", tac.path()});
  CHECK(show.exit_code == 2);
}

TEST_CASE("config cli: sandbox.enabled false warns on every run, naming where", "[config][cli]") {
  TempTac tac("return 1");
  tactus::test::write_file(tac.path() + ".yml", "sandbox:\n  enabled: false\n");
  const auto r = run_tactus({"run", tac.path()});
  CHECK(r.exit_code == 0);
  CHECK(r.err.rfind("tactus: warning: running without the sandbox (sandbox.enabled: false at " +
                        tac.path() + ".yml:2:12)",
                    0) == 0);
}

TEST_CASE("config cli: unanchored network patterns are warned about, 0 s is refused clearly",
          "[config][cli]") {
  TempTac tac("return 1\n");
  tactus::test::write_file(tac.path() + ".yml",
                           "sandbox:\n  network: filtered\n  network_filter:\n"
                           "    allow: ['example\\.com', '^api\\.test$']\n    deny: ['evil']\n");
  auto r = run_tactus({"config", "show", tac.path()});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("tactus: warning: sandbox.network_filter.allow 'example\\.com'") !=
        std::string::npos);
  CHECK(r.err.find("as if it were '^example\\.com$'") != std::string::npos);
  CHECK(r.err.find("'^api\\.test$'") == std::string::npos);
  CHECK(r.err.find("tactus: warning: sandbox.network_filter.deny 'evil'") != std::string::npos);
  tactus::test::write_file(tac.path() + ".yml", "sandbox:\n  timeout: 0\n");
  r = run_tactus({"config", "show", tac.path()});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("sandbox.timeout: must be more than 0 s") != std::string::npos);
}

TEST_CASE("config cli: the limit flags are the last layer, shown with the flag as origin",
          "[config][cli]") {
  const auto hello =
      run_tactus({"config", "show", TACTUS_SOURCE_DIR "/examples/hello.tac", "--timeout", "2s"});
  INFO(hello.err);
  CHECK(hello.exit_code == 0);
  std::istringstream lines(hello.out);
  std::string line, timeout;
  while (std::getline(lines, line))
    if (line.rfind("sandbox.timeout:", 0) == 0) timeout = line;
  // config show aligns its origins in one column.
  CHECK(std::regex_match(timeout, std::regex("sandbox\\.timeout: 2 +# --timeout")));

  TempTac tac("return 1");
  tactus::test::write_file(tac.path() + ".yml",
                           "sandbox:\n  timeout: 60\n  limits:\n    memory: 256m\n    cpu: 30\n");
  const auto over =
      run_tactus({"config", "show", tac.path(), "--memory=64m", "--cpu", "5s", "--output-limit",
                  "1k", "--message-limit", "1m", "--instructions", "1000"});
  INFO(over.err);
  CHECK(over.exit_code == 0);
  CHECK(std::regex_search(over.out,
                          std::regex("sandbox\\.timeout: 60 +# " + tac.path() + "\\.yml:2:12\n")));
  for (const char* expected :
       {"sandbox\\.limits\\.memory: 64 MiB +# --memory\n", "sandbox\\.limits\\.cpu: 5 +# --cpu\n",
        "sandbox\\.limits\\.output: 1 KiB +# --output-limit\n",
        "sandbox\\.limits\\.message: 1 MiB +# --message-limit\n",
        "sandbox\\.limits\\.instructions: 1000 +# --instructions\n"}) {
    INFO(expected);
    CHECK(std::regex_search(over.out, std::regex(expected)));
  }

  // Anything else is refused, as a bad value is.
  const auto json = run_tactus({"config", "show", tac.path(), "--json"});
  CHECK(json.exit_code == 2);
  CHECK(json.err.find("unexpected argument '--json'") != std::string::npos);
  const auto bad = run_tactus({"config", "show", tac.path(), "--timeout", "soon"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("option '--timeout': 'soon' is not a positive duration") != std::string::npos);
}
