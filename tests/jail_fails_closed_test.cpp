// Fails closed: when the kernel will not give the jail, tactus refuses, names the step, and says
// how to opt out; --no-sandbox then runs with a warning.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "tests/support/cli_runner.h"

using tactus::test::run_program;

namespace {
// Runs tactus inside a user namespace of util-linux's unshare, where no further user namespace
// may be created (max_user_namespaces is per user namespace).
tactus::test::CliRun run_without_user_namespaces(const std::string& tactus_args) {
  return run_program("/bin/sh",
                     {"-c",
                      "exec unshare --user --map-root-user /bin/sh -c 'echo 0 > "
                      "/proc/sys/user/max_user_namespaces && exec " TACTUS_BIN " " +
                          tactus_args + "'"},
                     {"PATH=/usr/bin:/bin"});
}
}  // namespace

TEST_CASE("jail: without user namespaces a run refuses, naming the step and the opt-out",
          "[jail]") {
  const std::string hello = TACTUS_SOURCE_DIR "/examples/hello.tac";
  const auto r = run_without_user_namespaces("run " + hello);
  INFO(r.err);
  CHECK(r.exit_code == 4);
  CHECK(r.out.empty());
  CHECK(r.err.rfind("tactus: sandbox setup failed at step 'clone3': No space left on device; "
                    "the jail cannot be built here (see 'tactus sandbox status'); --no-sandbox "
                    "runs without it, with no isolation\n",
                    0) == 0);

  const auto j = run_without_user_namespaces("run " + hello + " --json");
  CHECK(j.exit_code == 4);
  const auto doc = nlohmann::json::parse(j.out);
  CHECK(doc["status"] == "setup");
  CHECK(doc["error"]["step"] == "clone3");
  CHECK(doc["error"]["errno"] == ENOSPC);

  const auto opt_out = run_without_user_namespaces("run " + hello + " --no-sandbox");
  CHECK(opt_out.exit_code == 0);
  CHECK(opt_out.out.find("Hello, world!") != std::string::npos);
  CHECK(opt_out.err.rfind("tactus: warning: running without the sandbox", 0) == 0);
}

TEST_CASE("jail: a run that fails closed says what the kernel's facts say about it", "[jail]") {
  const std::string hello = TACTUS_SOURCE_DIR "/examples/hello.tac";
  const auto r = run_without_user_namespaces("run " + hello);
  INFO(r.err);
  CHECK(r.exit_code == 4);
  CHECK(r.err.find("\ntactus: the kernel's facts: user namespaces are off "
                   "(user.max_user_namespaces = 0)\n") != std::string::npos);
  const auto j = run_without_user_namespaces("run " + hello + " --json");
  const auto doc = nlohmann::json::parse(j.out);
  CHECK(doc["error"]["hint"] == "user namespaces are off (user.max_user_namespaces = 0)");
}
