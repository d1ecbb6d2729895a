// Every example runs as its README says, from a copy of its files.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/support/cli_runner.h"

using tactus::test::run_tactus;
namespace fs = std::filesystem;

TEST_CASE("examples: report.tac reads a CSV and writes its summary through the file tools",
          "[examples][cli]") {
  tactus::test::TempTac dir("unused");
  for (const char* f : {"report.tac", "report.tac.yml", "sales.csv"})
    fs::copy_file(fs::path(TACTUS_SOURCE_DIR) / "examples" / f, fs::path(dir.dir()) / f);
  const auto r = run_tactus({"run", dir.dir() + "/report.tac"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(
      r.out ==
      "3 rows, total 245\n{\"by_region\":{\"north\":165,\"south\":80},\"rows\":3,\"total\":245}\n");
  std::ifstream f(dir.dir() + "/summary.json");
  std::stringstream ss;
  ss << f.rdbuf();
  CHECK(nlohmann::json::parse(ss.str())["total"] == 245);
}

TEST_CASE("examples: every example's Specification passes under tactus test --mock",
          "[examples][spec][cli]") {
  tactus::test::TempTac dir("unused");
  std::vector<std::string> tacs;
  for (const auto& e : fs::directory_iterator(fs::path(TACTUS_SOURCE_DIR) / "examples")) {
    fs::copy_file(e.path(), fs::path(dir.dir()) / e.path().filename());
    if (e.path().extension() == ".tac") tacs.push_back(e.path().filename().string());
  }
  REQUIRE(tacs.size() >= 4);
  for (const auto& tac : tacs) {
    const auto r = run_tactus({"test", dir.dir() + "/" + tac, "--mock"});
    INFO(tac << "\n" << r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("PASS  ") != std::string::npos);
    CHECK(r.out.find("FAIL") == std::string::npos);
  }
  // The report's write was mocked: nothing was written.
  CHECK_FALSE(fs::exists(fs::path(dir.dir()) / "summary.json"));
}
