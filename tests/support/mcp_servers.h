// The real MCP servers the tests start (tests/mcp/package.json, installed by npm ci) and how a
// test finds what it left running.
#pragma once

#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tactus::test {

// The entry file of an installed server ("filesystem", "everything", "memory").
inline std::string server_js(const std::string& name) {
  const std::string path = std::string(TACTUS_SOURCE_DIR) +
                           "/tests/mcp/node_modules/@modelcontextprotocol/server-" + name +
                           "/dist/index.js";
  INFO(
      "the MCP tests need node (20 or later) and the servers: run `npm ci --prefix tests/mcp` "
      "(scripts/setup does)");
  REQUIRE(::access("/usr/bin/node", X_OK) == 0);
  REQUIRE(std::filesystem::exists(path));
  return path;
}

// A unique mark in each server's environment: the processes carrying it are this test's.
inline std::string new_mark() {
  static int n = 0;
  return "m" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

// Processes (any user's) whose environment holds mark: servers of ours still running.
inline int processes_marked(const std::string& mark) {
  int count = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream env(e.path() / "environ", std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(env)), std::istreambuf_iterator<char>());
    if (text.find("TACTUS_TEST_MARK=" + mark) != std::string::npos) ++count;
  }
  return count;
}

// A sidecar declaring MCP server name (its command, env literals with the test's mark, extra
// lines under it), the allow list, and top-level YAML after.
inline std::string mcp_sidecar(const std::string& allow, const std::string& name,
                               const std::vector<std::string>& command, const std::string& mark,
                               const std::string& extra = "", const std::string& top = "",
                               nlohmann::json env = nlohmann::json::object()) {
  env["TACTUS_TEST_MARK"] = mark;  // JSON is YAML's flow style
  return "tools:\n  allow: " + allow + "\nmcp_servers:\n  " + name +
         ":\n    command: " + nlohmann::json(command).dump() + "\n    env: " + env.dump() + "\n" +
         extra + top;
}

// processes_marked of the mark in a sidecar's TACTUS_TEST_MARK (0 when it has none).
inline int processes_left_by(const std::string& sidecar_path) {
  std::ifstream in(sidecar_path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const std::string key : {"\"TACTUS_TEST_MARK\":\"", "TACTUS_TEST_MARK: \""}) {
    const auto at = text.find(key);
    if (at == std::string::npos) continue;
    const auto start = at + key.size();
    return processes_marked(text.substr(start, text.find('"', start) - start));
  }
  return 0;
}

// Lua: try(name, args) is {ok = true, value = result} or {ok = false, error = message}.
inline constexpr const char* kTryCall = R"(
local function try(name, args)
  local ok, r = pcall(Host.call, name, args)
  if ok then return {ok = true, value = r} end
  return {ok = false, error = r}
end
)";

}  // namespace tactus::test
