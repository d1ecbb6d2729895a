// MCP servers end to end: the real npm servers (tests/mcp/package.json, installed by npm ci),
// started by the broker in jails of their own, spoken to over stdio, called by procedures and
// agents. Each test crosses one of the walls around them. No test skips: without node or the
// installed servers, they fail and say how to install them.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/support/cli_runner.h"
#include "tests/support/http_test_server.h"
#include "tests/support/mcp_servers.h"

using namespace tactus::test;  // tests/support/
using Json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kSecret = "mcp-secret-7f3a9c2e1b5d";

// The procedure's directory, readable by the jail's user (nobody, when tests run as root).
void open_up(const TempTac& tac, bool writable = false) {
  ::chmod(tac.dir().c_str(), writable ? 0777 : 0755);
}

struct Ran {
  CliRun r;
  Json result;
};

Ran run_in(const TempTac& tac, const std::vector<std::string>& env = {},
           const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"run", tac.path(), "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  Ran out{run_tactus_in(tac.dir(), args, env, 60), Json()};
  INFO(out.r.out << out.r.err);
  REQUIRE(out.r.exit_code == 0);
  out.result = Json::parse(out.r.out)["result"];
  CHECK(processes_left_by(tac.path() + ".yml") == 0);  // no server of this run is left
  return out;
}

}  // namespace

TEST_CASE(
    "mcp filesystem: a file in the allowed dir comes back as text, /etc/passwd and an "
    "unknown tool come back as errors",
    "[mcp][cli]") {
  const std::string js = server_js("filesystem");
  const std::string mark = new_mark();
  TempTac tac(std::string(kTryCall) + R"(
reader = Tool { use = "mcp.fs.read_text_file" }
return {
  handle = reader({path = "/workspace/notes.txt"}).text,
  read = try("mcp.fs.read_text_file", {path = "/workspace/notes.txt"}),
  passwd = try("mcp.fs.read_text_file", {path = "/etc/passwd"}),
  unknown = try("mcp.fs.no_such_tool", {}),
  bad_args = try("mcp.fs.read_text_file", "just a string"),
  long_name = try("mcp.fs." .. string.rep("x", 100000), {}),
  hidden = try("mcp.fs.list_directory", {path = "/workspace/.tactus"}),
  listing = try("mcp.fs", {}),
})");
  open_up(tac);
  write_file(tac.dir() + "/notes.txt", "hello from the workspace");
  write_file(tac.path() + ".yml",
             mcp_sidecar("[\"mcp.fs.*\"]", "fs", {"node", js, "/workspace"}, mark));
  const Ran ran = run_in(tac);
  const Json& r = ran.result;
  CHECK(r["read"]["ok"] == true);
  CHECK(r["read"]["value"]["text"] == "hello from the workspace");
  CHECK(r["handle"] == "hello from the workspace");  // Tool { use = "mcp.fs.read_text_file" }
  CHECK(r["read"]["value"]["content"][0]["type"] == "text");
  CHECK(r["passwd"]["ok"] == false);
  CHECK(r["passwd"]["error"].get<std::string>().rfind("mcp: fs.read_text_file: ", 0) == 0);
  CHECK(r["passwd"]["error"].get<std::string>().find("root:") == std::string::npos);
  CHECK(r["bad_args"]["error"].get<std::string>().rfind(
            "invalid_args: mcp.fs.read_text_file: the arguments must be a table", 0) == 0);
  CHECK(r["long_name"]["error"].get<std::string>().rfind("not_found: mcp server 'fs' has no tool",
                                                         0) == 0);
  CHECK(r["unknown"]["ok"] == false);
  CHECK(r["unknown"]["error"].get<std::string>().rfind(
            "not_found: mcp server 'fs' has no tool 'no_such_tool' (it has: ", 0) == 0);
  // The journal's directory is there (the run journals), but not to the server.
  CHECK(fs::exists(tac.dir() + "/.tactus/journal.db"));
  CHECK(r["hidden"]["value"]["text"] == "");
  CHECK(r["listing"]["value"]["tools"].size() >= 10);
  // Its stderr is logged, prefixed with its name.
  CHECK(ran.r.err.find("tactus: mcp fs: Secure MCP Filesystem Server running on stdio") !=
        std::string::npos);
  CHECK(processes_marked(mark) == 0);
}

TEST_CASE("mcp: a tool tools.allow does not name is denied before any server starts",
          "[mcp][cli]") {
  const std::string js = server_js("filesystem");
  const std::string mark = new_mark();
  TempTac tac(std::string(kTryCall) + R"(
return { write = try("mcp.fs.write_file", {path = "/workspace/x", content = "x"}),
         listing = try("mcp.fs", {}), other = try("mcp.nope.tool", {}) })");
  open_up(tac);
  write_file(tac.path() + ".yml",
             mcp_sidecar("[\"mcp.other.*\"]", "fs", {"node", js, "/workspace"}, mark));
  const Ran ran = run_in(tac);
  CHECK(ran.result["write"]["error"].get<std::string>().rfind(
            "denied: host tool 'mcp.fs.write_file' is not allowed", 0) == 0);
  CHECK(ran.result["listing"]["error"].get<std::string>().rfind("denied: ", 0) == 0);
  CHECK(ran.result["other"]["error"].get<std::string>().rfind("denied: ", 0) == 0);
  CHECK(ran.r.err.find("tactus: mcp") == std::string::npos);  // no server ever started
  CHECK_FALSE(fs::exists(tac.dir() + "/x"));
}

TEST_CASE(
    "mcp everything: echo round-trips, get-env shows only PATH, HOME, LANG, the env "
    "literals and the declared secret, masked everywhere",
    "[mcp][cli][secrets]") {
  const std::string js = server_js("everything");
  const std::string mark = new_mark();
  TempTac tac(std::string(kTryCall) + R"(
local env = try("mcp.everything.get-env", {})
print("env: " .. tostring(env.value and env.value.text))
return { echo = try("mcp.everything.echo", {message = "ping"}), env = env })");
  open_up(tac);
  write_file(tac.path() + ".yml",
             mcp_sidecar(
                 "[\"mcp.everything.*\"]", "everything", {"node", js}, mark, "    secrets: [TOK]\n",
                 "secrets:\n  TOK: {env: TACTUS_TEST_TOK}\n  OTHER: {env: TACTUS_TEST_OTHER}\n"
                 "audit:\n  path: audit.jsonl\n"));
  const Ran ran = run_in(tac, {"TACTUS_TEST_TOK=" + kSecret, "TACTUS_TEST_OTHER=other-secret-9",
                               "BROKER_ONLY=set-in-the-broker"});
  const Json& r = ran.result;
  CHECK(r["echo"]["value"]["text"] == "Echo: ping");
  REQUIRE(r["env"]["ok"] == true);
  const Json env = Json::parse(r["env"]["value"]["text"].get<std::string>());
  std::vector<std::string> names;
  for (const auto& [k, v] : env.items()) names.push_back(k);
  CHECK(names == std::vector<std::string>{"HOME", "LANG", "PATH", "TACTUS_TEST_MARK", "TOK"});
  CHECK(env["HOME"] == "/home");
  INFO(env.dump());
  CHECK(env["TOK"] != kSecret);  // it was the secret, masked on its way back
  CHECK(env["TOK"].get<std::string>().find("***") != std::string::npos);
  const std::string journal = read_file(tac.dir() + "/.tactus/journal.db");
  REQUIRE(!journal.empty());
  for (const std::string& where : {ran.r.out, ran.r.err, read_file(tac.dir() + "/audit.jsonl"),
                                   journal, read_file(tac.dir() + "/.tactus/journal.db-wal")})
    CHECK(where.find(kSecret) == std::string::npos);
  CHECK(ran.r.out.find("set-in-the-broker") == std::string::npos);
  CHECK(processes_marked(mark) == 0);
}

TEST_CASE(
    "mcp everything: a long tool past a short timeout is cancelled, its late progress "
    "ignored, and the run goes on with the same server",
    "[mcp][cli]") {
  const std::string js = server_js("everything");
  const std::string mark = new_mark();
  TempTac tac(std::string(kTryCall) + R"(
local slow = try("mcp.everything.trigger-long-running-operation", {duration = 3, steps = 3})
return { slow = slow, after = try("mcp.everything.echo", {message = "still here"}) })");
  open_up(tac);
  write_file(tac.path() + ".yml", mcp_sidecar("[\"mcp.everything.*\"]", "everything", {"node", js},
                                              mark, "    timeout: 0.4s\n"));
  const auto t0 = std::chrono::steady_clock::now();
  const Ran ran = run_in(tac);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(ran.result["slow"]["ok"] == false);
  CHECK(ran.result["slow"]["error"].get<std::string>().rfind(
            "timeout: mcp everything.trigger-long-running-operation timed out after 0.4 s "
            "without progress",
            0) == 0);
  CHECK(ran.result["after"]["value"]["text"] == "Echo: still here");
  CHECK(s < 3);  // it did not wait for the operation
  CHECK(processes_marked(mark) == 0);
}

TEST_CASE("mcp everything: progress keeps a call alive past its timeout", "[mcp][cli]") {
  const std::string js = server_js("everything");
  TempTac tac(std::string(kTryCall) + R"(
return try("mcp.everything.trigger-long-running-operation", {duration = 2, steps = 4}))");
  open_up(tac);
  write_file(tac.path() + ".yml", mcp_sidecar("[\"mcp.everything.*\"]", "everything", {"node", js},
                                              new_mark(), "    timeout: 1.2s\n"));
  const Ran ran = run_in(tac);
  CHECK(ran.result["ok"] == true);
  CHECK(ran.result["value"]["text"].get<std::string>().find("completed") != std::string::npos);
}

TEST_CASE("mcp everything: an image arrives as its type and size, without the data", "[mcp][cli]") {
  const std::string js = server_js("everything");
  TempTac tac(std::string(kTryCall) + R"(return try("mcp.everything.get-tiny-image", {}))");
  open_up(tac);
  write_file(tac.path() + ".yml",
             mcp_sidecar("[\"mcp.everything.*\"]", "everything", {"node", js}, new_mark()));
  const Ran ran = run_in(tac);
  const Json& content = ran.result["value"]["content"];
  bool image = false;
  for (const auto& b : content)
    if (b["type"] == "image") {
      image = true;
      CHECK(b["mimeType"] == "image/png");
      CHECK(b["bytes"].get<int>() > 100);
      CHECK_FALSE(b.contains("data"));
    }
  CHECK(image);
}

TEST_CASE("mcp memory: create_entities then read_graph returns structured content", "[mcp][cli]") {
  const std::string js = server_js("memory");
  TempTac tac(std::string(kTryCall) + R"(
local made = try("mcp.memory.create_entities", {entities = {
  {name = "Ada", entityType = "person", observations = {"wrote the first program"}}}})
return { made = made, graph = try("mcp.memory.read_graph", {}) })");
  open_up(tac);
  // Its graph file goes to the jail's /tmp: the install dir is read-only.
  write_file(tac.path() + ".yml",
             mcp_sidecar("[\"mcp.memory.*\"]", "memory", {"node", js}, new_mark(), "", "",
                         Json{{"MEMORY_FILE_PATH", "/tmp/memory.jsonl"}}));
  const Ran ran = run_in(tac);
  INFO(ran.result.dump());
  CHECK(ran.result["made"]["ok"] == true);
  const Json& g = ran.result["graph"]["value"]["structured"];
  REQUIRE(g.is_object());
  CHECK(g["entities"][0]["name"] == "Ada");
  CHECK(g["entities"][0]["observations"][0] == "wrote the first program");
}

TEST_CASE("mcp: workspace ro refuses the server's write, rw allows it", "[mcp][cli]") {
  const std::string js = server_js("filesystem");
  for (const std::string mode : {"ro", "rw"}) {
    TempTac tac(std::string(kTryCall) + R"(
return { w = try("mcp.fs.write_file", {path = "/workspace/out.txt", content = "written"}),
         sidecar = try("mcp.fs.write_file", {path = "/workspace/proc.tac.yml", content = "x"}),
         code = try("mcp.fs.write_file", {path = "/workspace/proc.tac", content = "x"}) })");
    open_up(tac, mode == "rw");
    const std::string yml = mcp_sidecar("[\"mcp.fs.*\"]", "fs", {"node", js, "/workspace"},
                                        new_mark(), "    workspace: " + mode + "\n");
    write_file(tac.path() + ".yml", yml);
    const Ran ran = run_in(tac);
    INFO(mode << ": " << ran.result.dump());
    CHECK(ran.result["w"]["ok"] == (mode == "rw"));
    CHECK(fs::exists(tac.dir() + "/out.txt") == (mode == "rw"));
    // The sidecar and the procedure stay as they were, rw or not.
    CHECK(ran.result["sidecar"]["ok"] == false);
    CHECK(ran.result["code"]["ok"] == false);
    CHECK(read_file(tac.path() + ".yml") == yml);
  }
}

TEST_CASE("mcp: without network: true a server cannot reach 127.0.0.1", "[mcp][cli]") {
  const std::string js = server_js("everything");
  HttpTestServer http;
  TempTac tac(std::string(kTryCall) + R"(
return try("mcp.everything.gzip-file-as-resource", {name = "x", data = input.url}))");
  open_up(tac);
  const std::string mark = new_mark();
  const Json env{{"GZIP_ALLOWED_DOMAINS", "127.0.0.1"}};
  write_file(tac.path() + ".yml",
             mcp_sidecar("[\"mcp.everything.*\"]", "everything", {"node", js}, mark, "", "", env));
  const Ran ran = run_in(tac, {}, {"--param", "url=" + http.url("/file")});
  INFO(ran.result.dump());
  CHECK(ran.result["ok"] == false);
  CHECK(http.requests() == 0);

  // With network: true (root only: an unprivileged spawner has left the host's network).
  write_file(tac.path() + ".yml", mcp_sidecar("[\"mcp.everything.*\"]", "everything", {"node", js},
                                              mark, "    network: true\n", "", env));
  const Ran net = run_in(tac, {}, {"--param", "url=" + http.url("/file")});
  INFO(net.result.dump());
  if (::geteuid() == 0) {
    CHECK(http.requests() == 1);
  } else {
    CHECK(net.result["error"].get<std::string>().find(
              "network: host needs tactus to run as root") != std::string::npos);
    CHECK(http.requests() == 0);
  }
  CHECK(processes_marked(mark) == 0);
}
