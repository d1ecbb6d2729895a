// The audit log through real runs: a procedure's 100,000-character argument leaves a line within
// audit.max_line; its 500 calls rotate the file at audit.max_bytes, keeping three; and the rotated
// files, beside the procedure in a writable workspace, are as closed to the file tools as the
// log itself.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/support/cli_runner.h"

using namespace tactus::test;  // tests/support/
using Json = nlohmann::json;
namespace fs = std::filesystem;

TEST_CASE(
    "audit: a run's lines stay within max_line, the file rotates, and no file tool "
    "reaches the rotated files",
    "[audit][cli][limits]") {
  TempTac tac(R"(
Host.call("host.ping", { big = string.rep("a", 100000) })
local pad = string.rep("b", 5000)
for i = 1, 500 do Host.call("host.ping", { i = i, pad = pad }) end
local out = {}
for _, call in ipairs({
  { "file.read", { path = "/workspace/audit.jsonl.1" } },
  { "file.write", { path = "/workspace/audit.jsonl.2", content = "forged" } },
}) do
  local ok, e = pcall(Host.call, call[1], call[2])
  out[#out + 1] = ok and "ok" or tostring(e)
end
return out
)");
  tactus::test::write_file(tac.path() + ".yml",
                           "audit:\n  path: audit.jsonl\n  max_line: 1k\n  max_bytes: 32k\n"
                           "sandbox:\n  workspace: rw\n"
                           "tools:\n  allow: [file.read, file.write]\n");
  const CliRun r = run_tactus_in(tac.dir(), {"run", tac.path(), "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const Json out = Json::parse(r.out)["result"];
  REQUIRE(out.size() == 2);
  CHECK(out[0].get<std::string>().find("denied") != std::string::npos);
  CHECK(out[1].get<std::string>().find("denied") != std::string::npos);
  const std::string log = tac.dir() + "/audit.jsonl";
  std::size_t lines = 0;
  for (const std::string& p : {log, log + ".1", log + ".2", log + ".3"}) {
    REQUIRE(fs::exists(p));
    CHECK(fs::file_size(p) <= 32 * 1024);
    std::ifstream in(p);
    for (std::string line; std::getline(in, line); ++lines) {
      CHECK(line.size() <= 1024);
      const Json doc = Json::parse(line, nullptr, false);
      REQUIRE(doc.is_object());
      if (doc["tool"] == "host.ping") CHECK(doc["args"]["truncated"] == true);
    }
  }
  CHECK(!fs::exists(log + ".4"));
  CHECK(tactus::test::read_file(log + ".2").find("forged") == std::string::npos);
  // 503 lines of about 300 bytes (each cut to its marker and a short head) in four files of
  // 32 KB: the oldest were dropped with the rotations.
  CHECK(lines >= 300);
  CHECK(lines < 503);
}
