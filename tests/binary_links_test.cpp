// What the tactus binary loads at start: every shared library costs dynamic-loader time on
// each run, so libcurl (and its thirty dependencies) is opened only on the first HTTP request.
#include <catch2/catch.hpp>

#include "tests/support/cli_runner.h"

TEST_CASE("binary: tactus does not link libcurl or its TLS stacks at start", "[cli]") {
  const auto r = tactus::test::run_program("/usr/bin/ldd", {TACTUS_BIN});
  REQUIRE(r.exit_code == 0);
  INFO(r.out);
  for (const char* lib : {"libcurl", "libssl", "libcrypto", "libgnutls", "libkrb5", "libldap"})
    CHECK(r.out.find(lib) == std::string::npos);
  CHECK(r.out.find("libc.so") != std::string::npos);  // the check itself reads ldd right
}
