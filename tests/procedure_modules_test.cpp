// require("helpers.util"): text modules beside the procedure, served by the broker.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "tests/support/cli_runner.h"

using tactus::test::run_tactus;
namespace fs = std::filesystem;

TEST_CASE("modules: require loads helpers/util.lua beside the procedure, once", "[modules][cli]") {
  tactus::test::TempTac tac(R"(
local util = require("helpers.util")
local again = require("helpers.util")
local legacy = require("lib.old")
return {twice = util.twice(21), same = util == again, loads = loads, legacy = legacy.name})");
  tactus::test::write_file(
      tac.dir() + "/helpers/util.lua",
      "loads = (loads or 0) + 1\nlocal M = {}\nfunction M.twice(x) return 2 * x end\nreturn M\n");
  tactus::test::write_file(tac.dir() + "/lib/old.tac", "return {name = ...}\n");
  const auto r = run_tactus({"run", tac.path()});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "{\"legacy\":\"lib.old\",\"loads\":1,\"same\":true,\"twice\":42}\n");
}

TEST_CASE("modules: a missing, escaping or broken module is a clear error", "[modules][cli]") {
  tactus::test::TempTac tac(R"(
local names = {"helpers.missing", "helpers.evil", "helpers.bad", "..x", "tactus.nope"}
for _, n in ipairs(names) do print(select(2, pcall(require, n))) end)");
  tactus::test::write_file(tac.dir() + "/helpers/bad.lua", "local x = = 1\n");
  fs::create_symlink("/etc/passwd", tac.dir() + "/helpers/evil.lua");
  const auto r = run_tactus({"run", tac.path()});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out ==
        "not_found: module 'helpers.missing' not found: no helpers/missing.lua or "
        "helpers/missing.tac beside the procedure\n"
        "denied: file.read: '/procedure/helpers/evil.lua': path escapes its mount '/procedure'\n"
        "helpers/bad.lua:1: unexpected symbol near '='\n"
        "module '..x' not found (only tactus.* modules embedded in tactus can be required)\n"
        "module 'tactus.nope' not found (only tactus.* modules embedded in tactus can be "
        "required)\n");
}
