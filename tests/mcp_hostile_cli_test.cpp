// What an MCP server sends is untrusted: a misbehaving one (tests/fixtures/
// mcp_hostile_server.mjs, MODE chooses how) ends its own call with an error, never the broker;
// and the walls around an install dir and a writable workspace hold against the procedure.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "tests/support/cli_runner.h"
#include "tests/support/mcp_servers.h"

using namespace tactus::test;  // tests/support/
using Json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kHostile =
    std::string(TACTUS_SOURCE_DIR) + "/tests/fixtures/mcp_hostile_server.mjs";

const std::string kPokeTwice = std::string(kTryCall) + R"(
return { first = try("mcp.h.poke", {}), ping = Host.call("host.ping", {alive = true}) })";

// Runs source (kPokeTwice by default) against the hostile server in mode, with extra lines
// under it; the run itself must succeed, and leave no process of the server behind.
Json poke(const std::string& mode, const std::string& extra = "",
          const std::string& source = kPokeTwice) {
  server_js("everything");  // node and the installed servers are there
  const std::string mark = new_mark();
  TempTac tac(source);
  ::chmod(tac.dir().c_str(), 0755);
  write_file(tac.path() + ".yml", mcp_sidecar("[\"mcp.h.*\"]", "h", {"node", kHostile}, mark,
                                              "    timeout: 1s\n    startup_timeout: 5s\n" + extra,
                                              "", Json{{"MODE", mode}}));
  const auto r = run_tactus_in(tac.dir(), {"run", tac.path(), "--json"}, {}, 60);
  INFO(mode << ": " << r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const Json result = Json::parse(r.out)["result"];
  CHECK(processes_marked(mark) == 0);
  if (source != kPokeTwice) return result;
  CHECK(result["ping"]["alive"] == true);
  return result["first"];
}

// Runs tac with the filesystem server on a writable workspace (open to the jail's user).
CliRun run_rw_filesystem(const TempTac& tac, const std::string& js) {
  ::chmod(tac.dir().c_str(), 0777);
  write_file(tac.path() + ".yml", mcp_sidecar("[\"mcp.fs.*\"]", "fs", {"node", js, "/workspace"},
                                              new_mark(), "    workspace: rw\n"));
  return run_tactus_in(tac.dir(), {"run", tac.path(), "--json"}, {}, 60);
}

}  // namespace

TEST_CASE("mcp hostile: a line nested too deep is dropped, and the call times out", "[mcp][cli]") {
  const Json r = poke("deep");
  CHECK(r["error"].get<std::string>().rfind("timeout: mcp h.poke timed out", 0) == 0);
}

TEST_CASE("mcp hostile: a line past the message limit stops the server", "[mcp][cli]") {
  const Json r = poke("huge");
  CHECK(r["error"].get<std::string>().find("sent a line longer than") != std::string::npos);
}

TEST_CASE("mcp hostile: wrong types, stray lines, its own requests and a second answer",
          "[mcp][cli]") {
  const Json r = poke("shapes");
  INFO(r.dump());
  REQUIRE(r["ok"] == true);  // isError that is not true is not an error
  CHECK(r["value"]["text"] == "");
  CHECK_FALSE(r["value"].contains("structured"));
}

TEST_CASE("mcp hostile: a JSON-RPC error with a message that is not text", "[mcp][cli]") {
  const Json r = poke("rpcerror");
  CHECK(r["error"] == "mcp: h.poke: (no message) (JSON-RPC error -32602)");
}

TEST_CASE("mcp hostile: a protocol version that is not a string", "[mcp][cli]") {
  const Json r = poke("version");
  CHECK(r["error"].get<std::string>().find("speaks MCP revision '(none)'") != std::string::npos);
}

TEST_CASE("mcp hostile: a server that exits mid-call, with its stderr's end", "[mcp][cli]") {
  const Json r = poke("exit");
  CHECK(r["error"] == "failed: mcp server 'h' exited with status 3: hostile: giving up");
}

TEST_CASE("mcp hostile: tools/list is read page by page, and again after list_changed",
          "[mcp][cli]") {
  const Json r = poke("changed", "", std::string(kTryCall) + R"(
local names = {}
for _, t in ipairs(Host.call("mcp.h", {}).tools) do names[#names + 1] = t.name end
local before = try("mcp.h.fresh", {})
local poked = try("mcp.h.poke", {})
return { names = names, before = before, poked = poked, after = try("mcp.h.fresh", {}) })");
  INFO(r.dump());
  CHECK(r["names"] == Json{"poke", "second"});  // the nameless one is left out
  CHECK(r["before"]["error"].get<std::string>().rfind(
            "not_found: mcp server 'h' has no tool 'fresh'", 0) == 0);
  CHECK(r["poked"]["ok"] == true);
  CHECK(r["after"]["ok"] == true);
}

TEST_CASE("mcp hostile: memory past mcp_servers.NAME.memory ends the server, under it, not",
          "[mcp][cli][limits]") {
  const Json small = poke("alloc", "    memory: 128m\n");
  INFO(small.dump());
  CHECK(small["ok"] == false);
  CHECK(small["error"].get<std::string>().rfind("failed: mcp server 'h' ", 0) == 0);
  const Json enough = poke("alloc", "    memory: 1g\n");
  CHECK(enough["value"]["text"] == "allocated 256 MiB");
}

TEST_CASE("mcp hostile: a server cannot start more than its process limit", "[mcp][cli][limits]") {
  const Json r = poke("fork");
  INFO(r.dump());
  REQUIRE(r["ok"] == true);
  const int started = std::stoi(r["value"]["text"].get<std::string>());
  CHECK(started > 0);
  CHECK(started < 64);  // RLIMIT_NPROC 64, its own threads included
}

TEST_CASE(
    "mcp: an install dir that holds the workspace is refused, one inside it is not "
    "written by the file tools",
    "[mcp][cli]") {
  TempTac tac(R"lua(
local function try(name, args)
  local ok, r = pcall(Host.call, name, args)
  return ok and "ok" or r
end
return { start = try("mcp.here.x", {}),
         write = try("file.write", {path = "node_modules/srv/index.js", content = "evil()"}) })lua");
  ::chmod(tac.dir().c_str(), 0755);
  write_file(tac.dir() + "/server.js", "");
  write_file(tac.dir() + "/node_modules/srv/index.js", "good()");
  write_file(tac.path() + ".yml",
             "sandbox:\n  workspace: rw\ntools:\n  allow: [\"mcp.*\", file.write]\n"
             "mcp_servers:\n  here: {command: [node, ./server.js]}\n"
             "  inside: {command: [node, ./node_modules/srv/index.js]}\n");
  const auto r = run_tactus_in(tac.dir(), {"run", tac.path(), "--json"}, {}, 60);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const Json result = Json::parse(r.out)["result"];
  CHECK(result["start"].get<std::string>().rfind("failed: mcp server 'here' cannot start: its "
                                                 "install dir " +
                                                     tac.dir() + " holds ",
                                                 0) == 0);
  CHECK(result["write"].get<std::string>().find("inside an MCP server's install dir") !=
        std::string::npos);
  CHECK(read_file(tac.dir() + "/node_modules/srv/index.js") == "good()");
}

TEST_CASE(
    "mcp: a server with a writable workspace that makes a trusted file ends the run, and "
    "the file is removed",
    "[mcp][cli]") {
  const std::string js = server_js("filesystem");
  TempTac tac(R"lua(
local function try(name, args)
  local ok, r = pcall(Host.call, name, args)
  return ok and "ok" or r
end
print("plain: " .. try("mcp.fs.write_file", {path = "/workspace/out.txt", content = "fine"}))
print("dir: " .. try("mcp.fs.create_directory", {path = "/workspace/sub"}))
print("code: " .. try("mcp.fs.write_file", {path = "/workspace/sub/x.lua", content = "evil()"}))
print("not reached")
return "not reached")lua");
  const auto r = run_rw_filesystem(tac, js);
  INFO(r.out << r.err);
  CHECK(r.exit_code != 0);
  const Json j = Json::parse(r.out);
  CHECK(j["status"] == "violation");
  CHECK(j["error"]["message"].get<std::string>().find(
            "mcp: mcp server 'fs' wrote trusted files (" + tac.dir() +
            "/sub/x.lua): they were removed, and the run is ended") != std::string::npos);
  CHECK(r.out.find("not reached") == std::string::npos);
  CHECK_FALSE(fs::exists(tac.dir() + "/sub/x.lua"));
  CHECK(fs::is_directory(tac.dir() + "/sub"));  // only what is trusted goes
  CHECK(read_file(tac.dir() + "/out.txt") == "fine");
  CHECK(r.err.find("tactus: warning: mcp server 'fs' wrote trusted files") != std::string::npos);
  CHECK(processes_left_by(tac.path() + ".yml") == 0);
}

TEST_CASE("mcp: a writable server cannot rename away a directory that holds a trusted file",
          "[mcp][cli]") {
  const std::string js = server_js("filesystem");
  TempTac tac(std::string(kTryCall) + R"(
return { moved = try("mcp.fs.move_file", {source = "/workspace/lib", destination = "/workspace/lib2"}),
         file = try("mcp.fs.move_file", {source = "/workspace/lib/util.lua", destination = "/workspace/u.txt"}),
         other = try("mcp.fs.move_file", {source = "/workspace/data", destination = "/workspace/data2"}) })");
  write_file(tac.dir() + "/lib/util.lua", "return 1");
  write_file(tac.dir() + "/data/a.txt", "a");
  ::chmod((tac.dir() + "/lib").c_str(), 0777);
  ::chmod((tac.dir() + "/data").c_str(), 0777);
  const auto r = run_rw_filesystem(tac, js);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const Json out = Json::parse(r.out)["result"];
  CHECK(out["moved"]["ok"] == false);  // a mount point: EBUSY
  CHECK(out["file"]["ok"] == false);   // itself a mount point
  CHECK(out["other"]["ok"] == true);   // a directory with nothing trusted moves
  CHECK(read_file(tac.dir() + "/lib/util.lua") == "return 1");
  CHECK(fs::exists(tac.dir() + "/data2/a.txt"));
  CHECK(processes_left_by(tac.path() + ".yml") == 0);
}
