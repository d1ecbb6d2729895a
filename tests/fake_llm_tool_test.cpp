// tactus_fake_llm, the standalone fake provider: serves a JSON script, prints its base URL,
// logs what it received, and stops on SIGTERM.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "tests/support/cli_runner.h"
#include "tests/support/llm_test_support.h"
#include "tools/llm/llm_client.h"

using namespace tactus;
using protocol::Json;

namespace {

// The first line the process writes to fd, or "" after 10 s.
std::string read_line(int fd) {
  std::string line;
  char c;
  while (line.empty() || line.back() != '\n') {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0 || ::read(fd, &c, 1) != 1) return "";
    line.push_back(c);
  }
  line.pop_back();
  return line;
}

}  // namespace

TEST_CASE("fake llm tool: serves its script, logs requests, stops on SIGTERM", "[llm]") {
  test::TempTac dir("return 1");
  const std::string script = dir.dir() + "/script.json";
  const std::string log = dir.dir() + "/requests.jsonl";
  std::ofstream(script) << R"({"replies": [
      {"text": "Hello from the script", "model": "scripted"},
      {"tool_calls": [{"name": "lookup", "arguments": {"q": "x"}}]},
      {"status": 429, "error": "busy", "retry_after": "0"}]})";

  int out[2];
  REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  std::string bin = TACTUS_FAKE_LLM_BIN, log_flag = "--log";
  std::string script_arg = script, log_arg = log;
  char* argv[] = {bin.data(), script_arg.data(), log_flag.data(), log_arg.data(), nullptr};
  char* envp[] = {nullptr};
  pid_t pid = -1;
  REQUIRE(::posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv, envp) == 0);
  posix_spawn_file_actions_destroy(&fa);
  ::close(out[1]);
  const std::string base_url = read_line(out[0]);
  ::close(out[0]);
  INFO("base url: " << base_url);
  CHECK(base_url.rfind("http://127.0.0.1:", 0) == 0);

  tools::LlmConfig config;
  config.providers["fake"] = test::llm_provider("fake", "openai", base_url, "sk-tool-test-key", "");
  config.retries = 0;
  const auto first = tools::llm::chat(config, test::chat_params());
  CHECK(first.result["content"] == "Hello from the script");
  CHECK(first.result["model"] == "scripted");
  const auto second = tools::llm::chat(config, test::chat_params());
  CHECK(second.result["tool_calls"] ==
        Json::parse(R"([{"id": "call_1", "name": "lookup", "arguments": {"q": "x"}}])"));
  const auto third = tools::llm::chat(config, test::chat_params());
  CHECK(third.message == "llm: fake: HTTP 429: busy");
  const auto fourth = tools::llm::chat(config, test::chat_params());
  CHECK(fourth.message == "llm: fake: HTTP 400: fake llm: the script has no reply left");

  ::kill(pid, SIGTERM);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);

  std::ifstream in(log);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    const Json j = Json::parse(line);
    CHECK(j["path"] == "/v1/chat/completions");
    CHECK(j["headers"]["authorization"] == "Bearer sk-tool-test-key");
    CHECK(j["body"]["model"] == "fake-model");
    ++lines;
  }
  CHECK(lines == 4);
}

TEST_CASE("fake llm tool: a bad script is refused, naming the reply", "[llm]") {
  test::TempTac dir("return 1");
  const std::string script = dir.dir() + "/script.json";
  std::ofstream(script) << R"([{"text": "ok"}, {"txet": "typo"}])";
  const auto r = test::run_program(TACTUS_FAKE_LLM_BIN, {script});
  CHECK(r.exit_code == 2);
  CHECK(r.err == "tactus_fake_llm: " + script + ": reply 1: unknown key 'txet' in a reply\n");
}
