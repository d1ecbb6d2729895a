// An agent with an MCP toolset against the fake model provider: the model is offered the
// server's tools as SERVER_TOOL, calls one, the real server answers, the answer reaches the
// next model turn; and a run killed with -9 after that resumes from its journal without
// starting the server again.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/fixtures/fake_llm.h"
#include "tests/support/cli_runner.h"
#include "tests/support/mcp_servers.h"

using namespace tactus::test;  // tests/support/
using Json = nlohmann::json;

namespace {

const std::string kKey = "sk-mcp-agent-key-2d8e4f6a";

const char* kReader = R"(
Toolset "files" { use = "mcp.fs", include = { "read_text_file", "list_directory" } }
reader = Agent {
  model = "fake/fake-model",
  initial_message = "Read the notes.",
  tools = { "files" },
}
Procedure {
  function()
    local first = reader()
    local second = reader()
    return { calls = #first.tool_calls, answer = second.output }
  end }
)";

// The names of the tools a chat request offered.
std::vector<std::string> offered(const Json& body) {
  std::vector<std::string> names;
  for (const auto& t : body.value("tools", Json::array()))
    names.push_back(t["function"]["name"].get<std::string>());
  return names;
}

}  // namespace

TEST_CASE(
    "mcp agent: the model calls fs_read_text_file, the real server answers, the next "
    "turn sees it, kill -9 and resume replay it without starting the server",
    "[mcp][agent][durable][cli]") {
  const std::string js = server_js("filesystem");
  const std::string mark = new_mark();
  FakeLlmServer llm(
      {FakeReply::call({{"call_1", "fs_read_text_file", R"({"path": "/workspace/notes.txt"})"}}),
       FakeReply::say("The notes say hello.")});
  // The second answer is held back until the run has been killed.
  std::atomic<bool> hold{true}, second_asked{false};
  llm.respond_with([&](const FakeRequest& req) {
    const bool second = req.body.dump().find("hello from the notes") != std::string::npos;
    if (!second)
      return FakeReply::call(
          {{"call_1", "fs_read_text_file", R"({"path": "/workspace/notes.txt"})"}});
    second_asked = true;
    // Held on the server's thread: the resume's request is answered once this one is.
    for (int i = 0; i < 3000 && hold; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return FakeReply::say("The notes say hello.");
  });
  TempTac tac(kReader);
  ::chmod(tac.dir().c_str(), 0755);
  write_file(tac.dir() + "/notes.txt", "hello from the notes");
  write_file(
      tac.path() + ".yml",
      mcp_sidecar("[\"mcp.fs.*\"]", "fs", {"node", js, "/workspace"}, mark, "",
                  "providers:\n  fake: {base_url: \"" + llm.base_url() +
                      "\", api_key: K, api: openai}\nsecrets:\n  K: {env: TACTUS_TEST_LLM_KEY}\n"));
  const std::vector<std::string> env = {"TACTUS_TEST_LLM_KEY=" + kKey};
  const pid_t pid = start_tactus(tac.dir(), {"run", tac.path(), "--run-id", "mcp1"}, env);
  REQUIRE(pid > 0);
  for (int i = 0; i < 400 && !second_asked; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  INFO(read_file(tac.dir() + "/killed.err"));
  REQUIRE(second_asked);
  ::kill(pid, SIGKILL);
  wait_exit_code(pid);
  hold = false;

  const auto requests = llm.requests();
  CHECK(offered(requests[0].body) ==
        std::vector<std::string>{"fs_read_text_file", "fs_list_directory"});
  // The tool's answer, from the real server, is in the second model request.
  const Json& messages = requests[1].body["messages"];
  bool seen = false;
  for (const auto& m : messages)
    seen = seen || (m.value("role", "") == "tool" &&
                    m.value("content", "").find("hello from the notes") != std::string::npos);
  CHECK(seen);
  CHECK(read_file(tac.dir() + "/killed.err").find("tactus: mcp fs: ") != std::string::npos);
  CHECK(processes_marked(mark) == 0);  // the server died with its broker

  const auto resumed = run_tactus_in(tac.dir(), {"resume", "mcp1", "--json"}, env, 60);
  INFO(resumed.out << resumed.err);
  REQUIRE(resumed.exit_code == 0);
  const Json result = Json::parse(resumed.out)["result"];
  CHECK(result["calls"] == 1);
  CHECK(result["answer"] == "The notes say hello.");
  CHECK(resumed.err.find("tactus: mcp") == std::string::npos);  // replayed, never started
  CHECK(llm.request_count() == 3);                              // only the one in flight again
}
