// The audit log's bounds, crossed: a line never passes audit.max_line (the largest fields cut,
// with a marker and their size, no fragment of a secret at the cut); the file rotates past
// audit.max_bytes, keeping three, with no line lost or split between concurrent writers.
#include "broker/audit_log.h"

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "broker/secrets.h"

using tactus::broker::audit_line;
using tactus::broker::AuditLog;
using tactus::broker::kAuditKeep;
using Json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/tactus-audit-test.XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::vector<std::string> lines_of(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

Json call_line(const std::string& arg) {
  return Json{
      {"time", 1.5},     {"run_id", "r1"},    {"tool", "http.request"}, {"args", {{"body", arg}}},
      {"outcome", "ok"}, {"duration_ms", 2.0}};
}

}  // namespace

TEST_CASE("audit: a line within max_line is kept whole, a longer one has its args cut", "[audit]") {
  const std::string whole = audit_line(call_line("small"), 1024, nullptr);
  CHECK(Json::parse(whole)["args"]["body"] == "small");

  const std::string big(100000, 'a');
  const std::string cut = audit_line(call_line(big), 1024, nullptr);
  CHECK(cut.size() <= 1024);
  const Json doc = Json::parse(cut);
  CHECK(doc["args"]["truncated"] == true);
  CHECK(doc["args"]["bytes"] == Json{{"body", big}}.dump().size());
  CHECK(doc["args"]["head"].get<std::string>().rfind("{\"body\":\"aaa", 0) == 0);
  CHECK(doc["tool"] == "http.request");
  CHECK(doc["outcome"] == "ok");

  // Escapes (each control byte becomes 6 in JSON) still fit.
  const std::string controls(50000, '\x01');
  CHECK(audit_line(call_line(controls), 1024, nullptr).size() <= 1024);
  // A message too, when args alone are not enough.
  Json both = call_line(big);
  both["message"] = std::string(100000, 'm');
  const std::string two = audit_line(both, 2048, nullptr);
  CHECK(two.size() <= 2048);
  CHECK(Json::parse(two)["message"]["truncated"] == true);
  // Nothing cuttable left: the fixed fields alone, marked.
  Json huge_tool = call_line("x");
  huge_tool["tool"] = std::string(100000, 't');
  const std::string fixed = audit_line(huge_tool, 1024, nullptr);
  CHECK(fixed.size() <= 1024);
  CHECK(Json::parse(fixed)["truncated"] == true);
}

TEST_CASE("audit: no fragment of a secret at the cut, wherever it falls", "[audit]") {
  tactus::broker::Redactor redactor;
  const std::string secret = "sk-audit-secret-0123456789";
  redactor.add(secret);
  for (std::size_t at = 900; at < 1100; ++at) {
    Json line = call_line(std::string(at, 'a') + secret + std::string(2000, 'b'));
    redactor.redact_in_place(line);  // as the session does before appending
    const std::string text = audit_line(line, 1024, &redactor);
    INFO("secret at " << at);
    CHECK(text.size() <= 1024);
    for (std::size_t n = 4; n <= secret.size(); ++n)
      for (std::size_t i = 0; i + n <= secret.size(); ++i)
        if (text.find(secret.substr(i, n)) != std::string::npos) FAIL(secret.substr(i, n));
  }
}

TEST_CASE("audit: the file rotates past max_bytes, keeping three", "[audit]") {
  TempDir dir;
  const std::string path = (dir.path / "audit.log").string();
  AuditLog log;
  std::string error;
  REQUIRE(log.open(path, {1024, 16 * 1024}, error));
  for (int i = 0; i < 2000; ++i) log.append(call_line("line " + std::to_string(i)), nullptr);
  CHECK(fs::exists(path));
  for (int i = 1; i <= kAuditKeep; ++i) CHECK(fs::exists(path + "." + std::to_string(i)));
  CHECK(!fs::exists(path + "." + std::to_string(kAuditKeep + 1)));
  for (const std::string& p : {path, path + ".1", path + ".2", path + ".3"}) {
    CHECK(fs::file_size(p) <= 16 * 1024);
    for (const auto& l : lines_of(p)) CHECK(Json::parse(l, nullptr, false).is_object());
  }
  // The newest line is in the current file, the ones before it in .1.
  CHECK(Json::parse(lines_of(path).back())["args"]["body"] == "line 1999");
  const auto previous = lines_of(path + ".1");
  const int last_of_previous =
      std::stoi(Json::parse(previous.back())["args"]["body"].get<std::string>().substr(5));
  CHECK(Json::parse(lines_of(path).front())["args"]["body"] ==
        "line " + std::to_string(last_of_previous + 1));
}

TEST_CASE("audit: concurrent writers rotating one file lose and split no line", "[audit]") {
  TempDir dir;
  const std::string path = (dir.path / "audit.log").string();
  constexpr int kWriters = 4, kLines = 300;
  std::vector<pid_t> pids;
  for (int w = 0; w < kWriters; ++w) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      AuditLog log;
      std::string error;
      if (!log.open(path, {1024, 48 * 1024}, error)) ::_exit(1);
      for (int i = 0; i < kLines; ++i)
        log.append(call_line("w" + std::to_string(w) + " " + std::to_string(i)), nullptr);
      ::_exit(0);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  // 1200 lines of ~110 bytes: about 130 KB, rotated twice or so; four files of 48 KB hold it.
  std::size_t total = 0;
  for (const std::string& p : {path, path + ".1", path + ".2", path + ".3"}) {
    if (!fs::exists(p)) continue;
    for (const auto& l : lines_of(p)) {
      CHECK(Json::parse(l, nullptr, false).is_object());
      ++total;
    }
  }
  CHECK(total == static_cast<std::size_t>(kWriters * kLines));
}
