// Command tools end to end: each call runs a real program in a jail of its own, args as JSON on
// stdin, its JSON stdout as the result. Each test crosses one of its walls.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/support/cli_runner.h"
#include "tests/support/http_test_server.h"

using namespace tactus::test;  // tests/support/
using Json = nlohmann::json;

namespace {

const std::string kSecret = "tok-5a6b7c8d9e0f";

// A procedure that calls tool with args and returns {ok, value|error}.
std::string call_source(const std::string& tool, const std::string& args = "{}") {
  return "local ok, r = pcall(Host.call, '" + tool + "', " + args +
         ")\nif ok then return {ok = true, value = r} end\nreturn {ok = false, error = r}\n";
}

// Declares one command tool `t` running /bin/sh -c script, allowed in tools.allow.
std::string sidecar(const std::string& script, const std::string& extra = "") {
  Json quoted = script;  // a JSON string is a valid YAML flow scalar
  return "tools:\n  allow: [t]\n  commands:\n    t:\n      command: [/bin/sh, -c, " +
         quoted.dump() + "]\n" + extra;
}

Json run_json(const TempTac& tac, const std::vector<std::string>& env = {}) {
  const auto r = run_tactus({"run", tac.path(), "--json"}, env);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  return Json::parse(r.out)["result"];
}

}  // namespace

TEST_CASE("command: args go in on stdin, the JSON on stdout comes back", "[command][cli]") {
  TempTac tac(call_source("t", "{a = 1, b = {c = 'x'}}"));
  tactus::test::write_file(tac.path() + ".yml",
                           sidecar("read x; printf '{\"got\": %s, \"n\": 7}' \"$x\""));
  const Json r = run_json(tac);
  CHECK(r["ok"] == true);
  CHECK(r["value"]["got"]["a"] == 1);
  CHECK(r["value"]["got"]["b"]["c"] == "x");
  CHECK(r["value"]["n"] == 7);
}

TEST_CASE("command: a declared tool not in tools.allow is denied", "[command][cli]") {
  TempTac tac(call_source("t"));
  tactus::test::write_file(tac.path() + ".yml",
                           "tools:\n  commands:\n    t:\n      command: [/bin/sh, -c, 'echo 1']\n");
  const Json r = run_json(tac);
  CHECK(r["ok"] == false);
  CHECK(r["error"].get<std::string>().rfind("denied: host tool 't' is not allowed", 0) == 0);
}

TEST_CASE("command: the environment holds only the secrets named for the tool",
          "[command][cli][secrets]") {
  TempTac tac(call_source("t"));
  // The script reports what it sees without printing the secret itself.
  tactus::test::write_file(tac.path() + ".yml",
                           sidecar("if [ \"$TOK\" = '" + kSecret +
                                       "' ]; then tok=yes; else tok=no; fi; "
                                       "printf '{\"tok\": \"%s\", \"names\": \"%s\"}' $tok "
                                       "\"$(env | cut -d= -f1 | sort | tr '\\n' ' ')\"",
                                   "      secrets: [TOK]\nsecrets:\n  TOK: {env: TACTUS_TEST_TOK}\n"
                                   "  OTHER: {env: TACTUS_TEST_OTHER}\n"));
  const Json r = run_json(tac, {"TACTUS_TEST_TOK=" + kSecret, "TACTUS_TEST_OTHER=other-secret-1",
                                "OPENAI_API_KEY=sk-not-for-tools-123"});
  REQUIRE(r["ok"] == true);
  CHECK(r["value"]["tok"] == "yes");
  // sh adds PWD itself; nothing of the caller's environment, no undeclared secret.
  CHECK(r["value"]["names"] == "HOME LANG PATH PWD TMPDIR TOK ");
}

TEST_CASE("command: a secret the tool prints is masked before the VM sees it",
          "[command][cli][secrets]") {
  TempTac tac(call_source("t"));
  tactus::test::write_file(tac.path() + ".yml",
                           sidecar("printf '{\"leak\": \"%s\"}' \"$TOK\"",
                                   "      secrets: [TOK]\nsecrets:\n  TOK: {env: T}\n"));
  const auto r = run_tactus({"run", tac.path(), "--json"}, {"T=" + kSecret});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find(kSecret) == std::string::npos);
  CHECK(Json::parse(r.out)["result"]["value"]["leak"] == "***");
}

TEST_CASE("command: the secret then N chosen bytes on stderr show no fragment at any cut",
          "[command][cli][secrets][cut]") {
  // The tool fails after writing the secret and then n bytes of padding to stderr; the error
  // carries the end of its stderr (2048 bytes). For every n around that cut, and around the
  // front of the buffer it rolls in, no 4 characters of the secret reach the procedure.
  TempTac tac(R"(
local out = {}
for n = 2000, 2100 do
  local ok, e = pcall(Host.call, "t", { n = n })
  out[#out + 1] = tostring(e)
end
return out
)");
  tactus::test::write_file(
      tac.path() + ".yml",
      sidecar("read x; n=$(echo \"$x\" | tr -dc 0-9); printf '%s' \"$TOK\" >&2; "
              "head -c \"$n\" /dev/zero | tr '\\0' y >&2; exit 1",
              "      secrets: [TOK]\nsecrets:\n  TOK: {env: T}\n"));
  const auto r = run_tactus({"run", tac.path(), "--json"}, {"T=" + kSecret}, 120);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const Json out = Json::parse(r.out)["result"];
  REQUIRE(out.size() == 101);
  for (const auto& e : out) {
    const std::string m = e.get<std::string>();
    REQUIRE(m.find("exited with status 1") != std::string::npos);
    REQUIRE(m.find("yyyy") != std::string::npos);
    for (std::size_t i = 0; i + 4 <= kSecret.size(); ++i) {
      INFO(m.substr(0, 120));
      CHECK(m.find(kSecret.substr(i, 4)) == std::string::npos);
    }
  }
}

TEST_CASE("command: a secret ending in whitespace is masked in the stderr tail",
          "[command][cli][secrets][cut]") {
  TempTac tac(call_source("t"));
  tactus::test::write_file(tac.path() + ".yml",
                           sidecar("printf 'x %s' \"$TOK\" >&2; exit 1",
                                   "      secrets: [TOK]\nsecrets:\n  TOK: {env: T}\n"));
  const auto r = run_tactus({"run", tac.path(), "--json"}, {"T=hunter2-very-secret "});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("hunter2") == std::string::npos);
  CHECK(Json::parse(r.out)["result"]["error"].get<std::string>().find("x ***") !=
        std::string::npos);
}

TEST_CASE("command: the jail shows /usr read-only, a scratch /tmp, nobody, pid 1",
          "[command][cli][jail]") {
  TempTac tac(call_source("t"));
  tactus::test::write_file(tac.dir() + "/workspace-file.txt", "not for tools");
  tactus::test::write_file(
      tac.path() + ".yml",
      sidecar("usr=$( (echo x > /usr/evil) 2>/dev/null && echo writable || echo ro); "
              "root=$( (echo x > /evil) 2>/dev/null && echo writable || echo ro); "
              "tmp=$( (echo x > /tmp/f && cat /tmp/f) 2>/dev/null); "
              "etc=$( [ -e /etc/passwd ] && echo yes || echo no); "
              "proc=$( [ -e /proc/self ] && echo yes || echo no); "
              "printf '{\"ls\": \"%s\", \"usr\": \"%s\", \"root\": \"%s\", \"tmp\": \"%s\", "
              "\"etc\": \"%s\", \"proc\": \"%s\", \"uid\": %s, \"gid\": %s, \"pid\": %s}' "
              "\"$(ls -A / | tr '\\n' ' ')\" $usr $root \"$tmp\" $etc $proc $(id -u) $(id -g) $$"));
  const Json r = run_json(tac);
  REQUIRE(r["ok"] == true);
  const Json v = r["value"];
  const std::string ls = v["ls"];
  CHECK(ls.find("usr ") != std::string::npos);
  CHECK(ls.find("tmp ") != std::string::npos);
  for (const char* absent : {"etc", "home", "root", "proc", "sys", "workspace", "var", "opt"})
    CHECK(ls.find(std::string(absent) + " ") == std::string::npos);
  CHECK(v["usr"] == "ro");
  CHECK(v["root"] == "ro");
  CHECK(v["tmp"] == "x");
  CHECK(v["etc"] == "no");
  CHECK(v["proc"] == "no");
  CHECK(v["uid"] == 65534);
  CHECK(v["gid"] == 65534);
  CHECK(v["pid"] == 1);
}

TEST_CASE("command: namespaces cannot be made inside (seccomp denylist)", "[command][cli][jail]") {
  TempTac tac(call_source("t"));
  tactus::test::write_file(
      tac.path() + ".yml",
      sidecar("u=$(/usr/bin/unshare -U /bin/true 2>&1 && echo escaped || echo denied); "
              "printf '{\"unshare\": \"%s\"}' \"$(echo $u | tr -d '\"')\""));
  const Json r = run_json(tac);
  REQUIRE(r["ok"] == true);
  const std::string u = r["value"]["unshare"];
  CHECK(u.find("escaped") == std::string::npos);
  CHECK(u.find("Operation not permitted") != std::string::npos);
}

TEST_CASE("command: network none reaches nothing, not even 127.0.0.1", "[command][cli][jail]") {
  tactus::test::HttpTestServer server;
  TempTac tac(call_source("t"));
  // bash's /dev/tcp is a plain connect(2).
  tactus::test::write_file(
      tac.path() + ".yml",
      "tools:\n  allow: [t]\n  commands:\n    t:\n      command: [/bin/bash, -c, "
      "'if exec 3<>/dev/tcp/127.0.0.1/" +
          std::to_string(server.port()) +
          "; then echo \"{\\\"net\\\": \\\"open\\\"}\"; else echo \"{\\\"net\\\": "
          "\\\"closed\\\"}\"; fi']\n");
  const Json r = run_json(tac);
  REQUIRE(r["ok"] == true);
  CHECK(r["value"]["net"] == "closed");
  CHECK(server.requests() == 0);
}

TEST_CASE("command: network host reaches the host (as root), or is refused clearly",
          "[command][cli][jail]") {
  tactus::test::HttpTestServer server;
  TempTac tac(call_source("t"));
  tactus::test::write_file(
      tac.path() + ".yml",
      "tools:\n  allow: [t]\n  commands:\n    t:\n      network: host\n      command: "
      "[/bin/bash, -c, 'exec 3<>/dev/tcp/127.0.0.1/" +
          std::to_string(server.port()) +
          " && printf \"GET /hello HTTP/1.0\\r\\n\\r\\n\" >&3 && "
          "echo \"{\\\"first\\\": \\\"$(head -1 <&3 | tr -d \"\\r\")\\\"}\"']\n");
  const Json r = run_json(tac);
  INFO(r.dump());
  if (::geteuid() == 0) {
    REQUIRE(r["ok"] == true);
    CHECK(r["value"]["first"] == "HTTP/1.1 200 Test");
    CHECK(server.requests() == 1);
  } else {
    CHECK(r["ok"] == false);
    CHECK(r["error"] ==
          "failed: command tool 't' cannot start its jail: network: host needs tactus to run as "
          "root: an unprivileged spawner has left the host's network namespace for good");
    CHECK(server.requests() == 0);
  }
}

TEST_CASE("command: the timeout kills it", "[command][cli][limits]") {
  TempTac tac(call_source("t"));
  tactus::test::write_file(tac.path() + ".yml",
                           sidecar("sleep 30; echo 1", "      timeout: 0.3\n"));
  const auto t0 = std::chrono::steady_clock::now();
  const Json r = run_json(tac);
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(r["ok"] == false);
  CHECK(r["error"] == "timeout: command tool 't' timed out after 0.3 s");
  CHECK(took < std::chrono::seconds(5));
}

TEST_CASE("command: bad JSON, a failing exit and a missing program are clear failures",
          "[command][cli]") {
  TempTac tac(call_source("t"));
  tactus::test::write_file(tac.path() + ".yml", sidecar("echo 'this is not json'"));
  Json r = run_json(tac);
  CHECK(r["ok"] == false);
  CHECK(r["error"].get<std::string>().rfind(
            "failed: command tool 't' returned invalid JSON on stdout (parse error", 0) == 0);

  tactus::test::write_file(tac.path() + ".yml", sidecar("echo 'lint: 3 problems' >&2; exit 3"));
  r = run_json(tac);
  CHECK(r["error"] == "failed: command tool 't' exited with status 3: lint: 3 problems");

  tactus::test::write_file(
      tac.path() + ".yml",
      "tools:\n  allow: [t]\n  commands:\n    t:\n      command: [/opt/not-in-the-jail]\n");
  r = run_json(tac);
  CHECK(r["error"] ==
        "failed: command tool 't' cannot execute '/opt/not-in-the-jail': No such file or "
        "directory (its jail shows the host's /usr only)");
}

TEST_CASE("command: a result over the output cap fails", "[command][cli][limits]") {
  TempTac tac(call_source("t"));
  tactus::test::write_file(tac.path() + ".yml", sidecar("head -c 3000000 /dev/zero | tr '\\0' 'a'",
                                                        "sandbox:\n  limits:\n    message: 1m\n"));
  const Json r = run_json(tac);
  CHECK(r["ok"] == false);
  CHECK(r["error"] == "failed: command tool 't' wrote more than 524288 bytes to stdout");
}

TEST_CASE("command: network filtered is a config error for a command", "[command][config]") {
  TempTac tac("return 1");
  tactus::test::write_file(
      tac.path() + ".yml",
      "tools:\n  commands:\n    t:\n      command: [/bin/true]\n      network: filtered\n");
  const auto r = run_tactus({"run", tac.path()});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(".yml:5:16: tools.commands.t.network: ") != std::string::npos);
}

TEST_CASE("command: a long call does not hold the run past its own timeout",
          "[command][cli][limits]") {
  // The call is cut at the run's deadline; the run's own timer then ends the run.
  TempTac tac("pcall(Host.call, 't', {})\nwhile true do end\n");
  tactus::test::write_file(tac.path() + ".yml", sidecar("sleep 30; echo 1", "      timeout: 60\n"));
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = run_tactus({"run", tac.path(), "--json", "--timeout", "1"});
  const auto took = std::chrono::steady_clock::now() - t0;
  INFO(r.out << r.err);
  CHECK(r.exit_code == 3);
  CHECK(Json::parse(r.out)["status"] == "timeout");
  CHECK(took < std::chrono::seconds(5));
}
