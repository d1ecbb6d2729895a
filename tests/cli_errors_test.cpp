// Every user-facing error through the real binary: one readable line first, naming the file
// (and line) where there is one, and the documented exit code.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "tests/support/cli_runner.h"

using namespace tactus::test;  // tests/support/

namespace {
std::string first_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}
}  // namespace

TEST_CASE("cli: examples/hello.tac prints, then its result", "[cli]") {
  const auto r = run_tactus({"run", TACTUS_SOURCE_DIR "/examples/hello.tac"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "Hello, world!\n{\"greeting\":\"Hello, world!\",\"ping\":\"hello.tac\"}\n");
  CHECK(r.err.empty());
}

TEST_CASE("cli: --json prints one document, printed lines go to stderr", "[cli]") {
  const auto r = run_tactus({"run", TACTUS_SOURCE_DIR "/examples/hello.tac", "--json", "--param",
                             "name=Ada", "--run-id", "r-1"});
  CHECK(r.exit_code == 0);
  CHECK(r.err == "Hello, Ada!\n");
  const auto doc = nlohmann::json::parse(r.out);
  CHECK(doc["run_id"] == "r-1");
  CHECK(doc["status"] == "ok");
  CHECK(doc["result"]["greeting"] == "Hello, Ada!");
  for (const char* t : {"spawn_ms", "ready_ms", "run_ms", "total_ms"})
    CHECK(doc["timings"][t].is_number());
  CHECK(doc["peak_rss_kib"].get<long>() > 0);
}

TEST_CASE("cli: a syntax error names file:line, exit 1", "[cli]") {
  TempTac tac("local a = 1\nlocal x = = 2\n", "syn.tac");
  const auto r = run_tactus({"run", tac.path()});
  CHECK(r.exit_code == 1);
  CHECK(first_line(r.err) == tac.path() + ":2: unexpected symbol near '='");
  CHECK(r.out.empty());
}

TEST_CASE("cli: a runtime error names file:line and the message, with a traceback after", "[cli]") {
  TempTac tac("local a = 1\n\nerror('boom')\n", "rt.tac");
  const auto r = run_tactus({"run", tac.path()});
  CHECK(r.exit_code == 1);
  CHECK(first_line(r.err) == tac.path() + ":3: boom");
  CHECK(r.err.find("stack traceback:") != std::string::npos);

  const auto j = run_tactus({"run", tac.path(), "--json"});
  CHECK(j.exit_code == 1);
  const auto doc = nlohmann::json::parse(j.out);
  CHECK(doc["status"] == "error");
  CHECK(doc["error"]["message"] == tac.path() + ":3: boom");
}

TEST_CASE("cli: an error with a table value is still one readable line", "[cli]") {
  TempTac tac("error({code = 7})\n");
  const auto r = run_tactus({"run", tac.path()});
  CHECK(r.exit_code == 1);
  CHECK(first_line(r.err) == tac.path() + ":1: error object: {\"code\":7}");
}

TEST_CASE("cli: file problems are usage errors, exit 2, naming the file", "[cli]") {
  SECTION("missing") {
    const auto r = run_tactus({"run", "/nonexistent/x.tac"});
    CHECK(r.exit_code == 2);
    CHECK(r.err == "tactus: cannot read '/nonexistent/x.tac': No such file or directory\n");
  }
  SECTION("a directory") {
    TempTac tac("x");
    const auto r = run_tactus({"run", tac.dir()});
    CHECK(r.exit_code == 2);
    CHECK(r.err == "tactus: '" + tac.dir() + "' is a directory, not a .tac file\n");
  }
  SECTION("empty, or only whitespace") {
    for (const char* src : {"", "  \n\t\n"}) {
      TempTac tac(src);
      const auto r = run_tactus({"run", tac.path()});
      CHECK(r.exit_code == 2);
      CHECK(r.err == "tactus: '" + tac.path() + "' is empty: there is no procedure to run\n");
    }
  }
  SECTION("a binary chunk") {
    TempTac tac(std::string("\x1bLJ\x02\x00junk", 9));
    const auto r = run_tactus({"run", tac.path()});
    CHECK(r.exit_code == 2);
    CHECK(r.err == "tactus: '" + tac.path() +
                       "' is a precompiled (binary) chunk; tactus runs Lua source text only\n");
  }
  SECTION("not a regular file") {
    TempTac tac("x");
    const std::string fifo = tac.dir() + "/pipe.tac";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    const auto r = run_tactus({"run", fifo}, {}, 5);
    CHECK(r.exit_code == 2);
    CHECK(r.err == "tactus: '" + fifo + "' is not a regular file\n");
  }
  SECTION("unreadable") {
    TempTac tac("return 1");
    if (::geteuid() == 0) {
      // root reads anything; a path through a file is unreadable for everyone.
      const auto r = run_tactus({"run", tac.path() + "/x.tac"});
      CHECK(r.exit_code == 2);
      CHECK(r.err == "tactus: cannot read '" + tac.path() + "/x.tac': Not a directory\n");
    } else {
      REQUIRE(::chmod(tac.path().c_str(), 0) == 0);
      const auto r = run_tactus({"run", tac.path()});
      CHECK(r.exit_code == 2);
      CHECK(r.err == "tactus: cannot read '" + tac.path() + "': Permission denied\n");
    }
  }
  SECTION("too large for the message limit") {
    TempTac tac("return '" + std::string(100 * 1024, 'x') + "'");
    const auto r = run_tactus({"run", tac.path(), "--message-limit", "64k"});
    CHECK(r.exit_code == 2);
    CHECK(r.err.rfind("tactus: '" + tac.path() + "' is too large", 0) == 0);
  }
  SECTION("with --json the error is the document") {
    const auto r = run_tactus({"run", "/nonexistent/x.tac", "--json"});
    CHECK(r.exit_code == 2);
    const auto doc = nlohmann::json::parse(r.out);
    CHECK(doc["status"] == "usage");
    CHECK(doc["error"]["message"] == "cannot read '/nonexistent/x.tac': No such file or directory");
  }
}

TEST_CASE("cli: command-line mistakes are usage errors, exit 2", "[cli]") {
  struct Case {
    std::vector<std::string> args;
    std::string err;
  };
  const Case cases[] = {
      {{}, "tactus: no command given (see 'tactus --help')\n"},
      {{"frob"}, "tactus: unknown command 'frob' (see 'tactus --help')\n"},
      {{"run"}, "tactus: 'tactus run' needs a FILE.tac (see 'tactus run --help')\n"},
      {{"run", "x.tac", "--frob"}, "tactus: unknown option '--frob' (see 'tactus run --help')\n"},
      {{"run", "x.tac", "y.tac"}, "tactus: unexpected argument 'y.tac' (one FILE.tac per run)\n"},
      {{"run", "x.tac", "--timeout"}, "tactus: option '--timeout' needs a value\n"},
      {{"run", "x.tac", "--timeout", "soon"},
       "tactus: option '--timeout': 'soon' is not a positive duration (e.g. 30, 30s, 5m)\n"},
      {{"run", "x.tac", "--memory", "lots"},
       "tactus: option '--memory': 'lots' is not a size (e.g. 512k, 128m, 2g)\n"},
      {{"run", "x.tac", "--memory", "100k"}, "tactus: option '--memory' must be at least 1 MiB\n"},
      {{"run", "x.tac", "--param", "novalue"},
       "tactus: option '--param': expected key=value, got 'novalue'\n"},
      {{"run", "x.tac", "--json=yes"}, "tactus: option '--json' takes no value\n"},
      {{"run", "x.tac", "--backend", "docker"},
       "tactus: option '--backend': 'docker' is not one of jail, pool, none\n"},
      {{"run", "x.tac", "--mock=1"}, "tactus: option '--mock' takes no value\n"},
      {{"run", "x.tac", "--scenario", "a"},
       "tactus: unknown option '--scenario' (see 'tactus run --help')\n"},
      {{"test"}, "tactus: 'tactus test' needs a FILE.tac (see 'tactus test --help')\n"},
      {{"test", "x.tac"}, "tactus: cannot read 'x.tac': No such file or directory\n"},
      {{"run", "x.tac", "--runs", "3"},
       "tactus: unknown option '--runs' (see 'tactus run --help')\n"},
      {{"test", "x.tac", "--workers", "0"},
       "tactus: option '--workers': '0' is not a count from 1 to 64\n"},
      {{"eval", "x.tac", "--parallel"},
       "tactus: unknown option '--parallel' (see 'tactus eval --help')\n"},
      {{"run", "x.tac", "--quick"}, "tactus: unknown option '--quick' (see 'tactus run --help')\n"},
      {{"run", "x.tac", "--mock-config", "m.json"},
       "tactus: --mock-config answers mocked runs only: add --mock\n"},
      {{"validate", "x.tac", "--mock-config", "m.json"},
       "tactus: unknown option '--mock-config' (see 'tactus run --help')\n"},
      {{"rn", "x.tac"},
       "tactus: unknown command 'rn' (did you mean 'run'?) (see 'tactus --help')\n"},
      {{"valdate", "x.tac"},
       "tactus: unknown command 'valdate' (did you mean 'validate'?) (see 'tactus --help')\n"},
      {{"test", "x.tac", "--run-id", "a"},
       "tactus: 'tactus test' takes no --run-id: each scenario is a run of its own\n"},
      {{"eval", "x.tac", "--runs", "0"},
       "tactus: option '--runs': '0' is not a count from 1 to 10000\n"},
      {{"eval", "x.tac", "--runs", "10001"},
       "tactus: option '--runs': '10001' is not a count from 1 to 10000\n"},
      {{"eval", "x.tac", "--runs", "3x"},
       "tactus: option '--runs': '3x' is not a count from 1 to 10000\n"},
      {{"test", "x.tac", "--scenario", ""},
       "tactus: option '--scenario' needs a scenario's name\n"},
      {{"test", "x.tac", "--junit="}, "tactus: option '--junit' needs a file name\n"},
      {{"resume", "abc", "--mock"},
       "tactus: 'tactus resume' takes no --mock: a mocked run is not journaled\n"},
      {{"eval", "x.tac", "--junit", "r.xml"},
       "tactus: unknown option '--junit' (see 'tactus eval --help')\n"},
      {{"validate", "x.tac", "--mock"},
       "tactus: 'tactus validate' takes no --mock: it runs no agent\n"},
      {{"validate"}, "tactus: 'tactus validate' needs a FILE.tac (see 'tactus validate --help')\n"},
      {{"validate", "x.tac"}, "tactus: cannot read 'x.tac': No such file or directory\n"},
      {{"run", "x.tac", "--log-format", "xml"},
       "tactus: option '--log-format': 'xml' is not one of text, json\n"},
  };
  for (const auto& c : cases) {
    INFO("args: " << nlohmann::json(c.args).dump());
    const auto r = run_tactus(c.args);
    CHECK(r.exit_code == 2);
    CHECK(r.err == c.err);
    CHECK(r.out.empty());
  }
}

TEST_CASE("cli: --help and --version exit 0", "[cli]") {
  const auto h = run_tactus({"--help"});
  CHECK(h.exit_code == 0);
  CHECK(h.out.find("usage: tactus COMMAND") != std::string::npos);
  const auto rh = run_tactus({"run", "--help"});
  CHECK(rh.exit_code == 0);
  CHECK(rh.out.find("usage: tactus run FILE.tac") != std::string::npos);
  const auto v = run_tactus({"--version"});
  CHECK(v.exit_code == 0);
  CHECK(v.out.rfind("tactus ", 0) == 0);
}

TEST_CASE("cli: --input reads a JSON object, a bad one is a usage error naming the file", "[cli]") {
  TempTac tac("return input.name .. '/' .. input.extra", "in.tac");
  const std::string good = tac.dir() + "/in.json";
  const std::string bad = tac.dir() + "/bad.json";
  FILE* f = std::fopen(good.c_str(), "w");
  std::fputs("{\"name\":\"Ada\"}", f);
  std::fclose(f);
  f = std::fopen(bad.c_str(), "w");
  std::fputs("{\"name\":", f);
  std::fclose(f);
  const auto r = run_tactus({"run", tac.path(), "--input", good, "--param", "extra=x"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "\"Ada/x\"\n");
  const auto b = run_tactus({"run", tac.path(), "--input", bad});
  CHECK(b.exit_code == 2);
  CHECK(b.err == "tactus: '" + bad + "': not valid JSON (at byte 9)\n");
}

TEST_CASE("cli: --no-sandbox warns on every run", "[cli]") {
  const auto r = run_tactus({"run", TACTUS_SOURCE_DIR "/examples/hello.tac", "--no-sandbox"});
  CHECK(r.exit_code == 0);
  CHECK(r.err.rfind("tactus: warning: running without the sandbox", 0) == 0);
}

TEST_CASE("cli: every error starts with FILE:LINE: or tactus:", "[cli]") {
  struct Case {
    const char* source;
    const char* start;  // after the file's path, or "tactus: " when empty path
    bool positioned;
  };
  const Case cases[] = {
      {"Host.call('file.read', {path = 'x'})\n", ":1: denied: host tool 'file.read'", true},
      {"error(nil)\n", ":1: error(nil): an error without a message", true},
      {"local function f() return f() + 1 end\nf()\n", "stack overflow", false},
      {"return function() end\n", "the result cannot be returned", false},
      {"local f = function() end\nfor i = 1, 1000000 do local g = f f = coroutine.wrap(function() "
       "return g() end) end\nf()\n",
       ":3: stack overflow (coroutines nested more than 200 deep)", true},
      {"require('a\\0b')\n", ":1: require: the module name contains a NUL byte", true},
  };
  for (const auto& c : cases) {
    TempTac tac(c.source);
    const auto r = run_tactus({"run", tac.path()});
    INFO(c.source << " -> " << r.err);
    CHECK(r.exit_code == 1);
    const std::string want =
        c.positioned ? tac.path() + c.start : std::string("tactus: ") + c.start;
    CHECK(r.err.rfind(want, 0) == 0);
  }
}

TEST_CASE("cli: --input must be a regular file within the message limit", "[cli]") {
  TempTac tac("return input\n");
  auto r = run_tactus({"run", tac.path(), "--input", "/dev/zero"});
  CHECK(r.exit_code == 2);
  CHECK(r.err ==
        "tactus: --input '/dev/zero' is not a regular file (write the input to a file "
        "first)\n");
  const std::string big = tac.dir() + "/big.json";
  tactus::test::write_file(big, "{\"x\": \"" + std::string(70000, 'x') + "\"}");
  r = run_tactus({"run", tac.path(), "--input", big, "--message-limit", "64k"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("is larger than the message limit of 64 KiB") != std::string::npos);
}

TEST_CASE("cli: a closed or full stdout is an error, SIGPIPE does not kill tactus", "[cli]") {
  TempTac tac("for i = 1, 100000 do print(i) end\nreturn 1\n");
  // Through a shell: stdout on /dev/full, then closed, then a pipe whose reader leaves.
  const auto sh = [&](const std::string& redirect) {
    return tactus::test::run_program(
        "/bin/sh", {"-c", std::string("\"$0\" run \"$1\" ") + redirect + "; echo \"rc=$?\" >&2",
                    TACTUS_BIN, tac.path()});
  };
  auto r = sh(">/dev/full");
  CHECK(r.err.find("tactus: output closed: writing to stdout failed: No space left on device") !=
        std::string::npos);
  CHECK(r.err.find("rc=1") != std::string::npos);
  r = sh(">&-");
  CHECK(r.err.find("writing to stdout failed: Bad file descriptor") != std::string::npos);
  CHECK(r.err.find("rc=1") != std::string::npos);
  r = tactus::test::run_program(
      "/bin/bash",
      {"-c", "\"$0\" run \"$1\" | head -1 >/dev/null; echo \"rc=${PIPESTATUS[0]}\" >&2", TACTUS_BIN,
       tac.path()});
  CHECK(r.err.find("writing to stdout failed: Broken pipe") != std::string::npos);
  CHECK(r.err.find("rc=1") != std::string::npos);  // not 141: SIGPIPE did not kill it
}
