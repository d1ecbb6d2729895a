// The broker's effect-free services against what a procedure may ask of them: module.load of a
// sub-procedure file (Procedure.run), with malformed, oversized and escaping paths.
#include <catch2/catch.hpp>

#include <filesystem>

#include "broker/run_services.h"
#include "tests/support/cli_runner.h"

using namespace tactus;
using protocol::Json;

TEST_CASE("services: a sub-procedure's path is refused unless it is a .tac beneath the project",
          "[broker][compat]") {
  test::TempTac tac("unused");
  const std::string project = tac.dir() + "/proj";
  test::write_file(project + "/helpers/sum.tac", "return 1\n");
  test::write_file(project + "/proc.tac.yml", "tools: {allow: []}\n");
  test::write_file(tac.dir() + "/outside.tac", "return 2\n");
  const broker::services::ProcedureRoots roots{project, project, tac.dir()};
  const auto load = [&](const Json& params) {
    return broker::services::load_procedure(roots, params, 1 << 20, tools::TrustedFiles{});
  };
  const auto r = load(Json{{"procedure", "helpers/sum.tac"}});
  REQUIRE(r.ok);
  CHECK(r.result == Json{{"source", "return 1\n"}, {"path", "helpers/sum.tac"}});
  // From where tactus was started (the project's parent), still beneath the project.
  CHECK(load(Json{{"procedure", "proj/helpers/sum.tac"}}).ok);
  const std::vector<std::pair<Json, std::string>> refused = {
      {Json::object(), "needs a procedure's name or a path to a .tac file"},
      {Json{{"procedure", 5}}, "needs a procedure's name or a path to a .tac file"},
      {Json{{"procedure", ""}}, "is not a relative path to a .tac file"},
      {Json{{"procedure", std::string("helpers/sum.tac\0x", 17)}},
       "is not a relative path to a .tac file"},
      {Json{{"procedure", std::string(100000, 'a') + ".tac"}},
       "is not a relative path to a .tac file"},
      {Json{{"procedure", project + "/helpers/sum.tac"}}, "is not a relative path to a .tac file"},
      {Json{{"procedure", "proc.tac.yml"}}, "is not a relative path to a .tac file"},
      {Json{{"procedure", "../outside.tac"}}, "no .. or .tactus in a sub-procedure's path"},
      {Json{{"procedure", "helpers/../../outside.tac"}}, "no .. or .tactus"},
      {Json{{"procedure", ".tactus/x.tac"}}, "no .. or .tactus"},
      {Json{{"procedure", "outside.tac"}}, "no 'outside.tac' beneath the project"},
  };
  for (const auto& [params, why] : refused) {
    const auto out = load(params);
    INFO(params.dump().substr(0, 200));
    CHECK_FALSE(out.ok);
    CHECK(out.message.find(why) != std::string::npos);
    CHECK(out.message.size() < 400);  // a 100,000-character path is not echoed whole
    // No host path reaches the jail but one the procedure wrote itself.
    if (params.dump().find(tac.dir()) == std::string::npos)
      CHECK(out.message.find(tac.dir()) == std::string::npos);
  }
}
