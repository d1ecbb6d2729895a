// What a procedure prints is inert on a terminal: control characters are shown escaped, so it
// cannot redraw the screen, set the clipboard or rewrite the question a person approves.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/support/cli_runner.h"
#include "tools/terminal_text.h"

using tactus::test::TempTac;
using tactus::tools::inert_text;

namespace {

// Runs tactus with its stdin, stdout and stderr on one pseudo-terminal; types input, returns
// everything it wrote (bounded in time).
std::string run_on_pty(const std::vector<std::string>& args, const std::string& input = "") {
  int master = -1;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::vector<char*> argv;
    std::string bin = TACTUS_BIN;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::chdir(tactus::test::default_cwd().c_str());
    char* env[] = {nullptr};
    ::execve(TACTUS_BIN, argv.data(), env);
    ::_exit(127);
  }
  std::string out;
  bool typed = input.empty();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      char buf[4096];
      const ssize_t n = ::read(master, buf, sizeof buf);
      if (n <= 0) break;  // EIO: the child closed the terminal
      out.append(buf, static_cast<std::size_t>(n));
    }
    if (!typed && out.find("[y/n]") != std::string::npos) {
      REQUIRE(::write(master, input.data(), input.size()) == static_cast<ssize_t>(input.size()));
      typed = true;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      break;
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(master);
  return out;
}

}  // namespace

TEST_CASE("terminal: control characters are escaped, UTF-8 text is kept", "[terminal]") {
  CHECK(inert_text("a\x1b[2Jb\rc\x07\x7f") == "a\\x1b[2Jb\\x0dc\\x07\\x7f");
  CHECK(inert_text("tab\tand\nnewline") == "tab\tand\nnewline");
  CHECK(inert_text("\x1b]52;c;SGVsbG8=\x07") == "\\x1b]52;c;SGVsbG8=\\x07");
  CHECK(inert_text("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80") ==
        "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80");
  CHECK(inert_text("\xc2\x9b"
                   "2J") == "\\u009b2J");  // C1 CSI as UTF-8
  CHECK(inert_text("\x9b"
                   "2J \xff \xc3") == "\\x9b2J \\xff \\xc3");
  CHECK(inert_text("\xf8\x9b\x80") == "\\xf8\\x9b\\x80");  // no 5-byte forms
  CHECK(inert_text("abc\xe2\x80\xae"
                   "fdp.exe") == "abc\\u202efdp.exe");  // RIGHT-TO-LEFT OVERRIDE
  CHECK(inert_text("\xe2\x81\xa6x") == "\\u2066x");
}

TEST_CASE("terminal: print, Log and errors are inert on a terminal, raw with --raw-output",
          "[terminal][cli]") {
  TempTac tac("print('A\\27[2JB\\rC')\nLog.info('L\\27]52;c;eA==\\7')\nerror('E\\27[1A')\n");
  const std::string out = run_on_pty({"run", tac.path()});
  INFO(out);
  CHECK(out.find("A\\x1b[2JB\\x0dC") != std::string::npos);
  CHECK(out.find("L\\x1b]52;c;eA==\\x07") != std::string::npos);
  CHECK(out.find("E\\x1b[1A") != std::string::npos);
  CHECK(out.find('\x1b') == std::string::npos);
  CHECK(out.find('\x07') == std::string::npos);
  const std::string raw = run_on_pty({"run", tac.path(), "--raw-output"});
  CHECK(raw.find("A\x1b[2JB") != std::string::npos);
}

TEST_CASE("terminal: a Human.approve question cannot be redrawn", "[terminal][cli]") {
  TempTac tac(
      "local ok = Human.approve({ message = 'delete tmp?\\r\\27[2Kdelete nothing?' })\n"
      "return ok\n");
  const std::string out = run_on_pty({"run", tac.path(), "--raw-output"}, "n\n");
  INFO(out);
  CHECK(out.find("delete tmp?\\x0d\\x1b[2Kdelete nothing?") != std::string::npos);
  CHECK(out.find('\x1b') == std::string::npos);
  CHECK(out.find("false") != std::string::npos);
}

TEST_CASE("terminal: a Human.approve question shows no secret", "[terminal][cli][secrets]") {
  const std::string secret = "sk-prompt-secret-71c3e9";
  TempTac tac("return Human.approve({ message = 'send ' .. input.token .. '?' })\n");
  tactus::test::write_file(tac.dir() + "/token.txt", secret);
  tactus::test::write_file(tac.path() + ".yml",
                           "secrets:\n  TOKEN: {file: " + tac.dir() + "/token.txt}\n");
  const std::string asked = run_on_pty({"run", tac.path(), "--param", "token=" + secret}, "y\n");
  INFO(asked);
  CHECK(asked.find("[y/n]") != std::string::npos);
  CHECK(asked.find("send ***?") != std::string::npos);
  CHECK(asked.find(secret) == std::string::npos);
  CHECK(asked.find("true") != std::string::npos);
}

TEST_CASE("terminal: validate's names and notes and eval's case names are inert",
          "[terminal][cli][compat]") {
  TempTac tac(
      "agent('a\\27[2Jx', { provider = 'openai', initial_message = 'hi' })\n"
      "main = procedure('main', function() return {} end)\n"
      "evaluations({ dataset = { { name = 'c\\27]52;c;SGk=\\7x', inputs = {} } }, "
      "evaluators = {} })\n");
  const std::string v = run_on_pty({"validate", tac.path()});
  CHECK(v.find("\x1b[2J") == std::string::npos);
  CHECK(v.find("a\\x1b[2Jx") != std::string::npos);  // shown escaped, in the line and the note
  const std::string e = run_on_pty({"eval", tac.path(), "--mock"});
  CHECK(e.find("\x1b]52") == std::string::npos);
  CHECK(e.find("c\\x1b]52;c;SGk=\\x07x") != std::string::npos);
}
