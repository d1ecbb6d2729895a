// Trusted files end to end: a hostile procedure with every file tool and a writable workspace
// tries to rewrite its own policy, and the next run still runs under the original one.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/cli_runner.h"

using namespace tactus::test;  // tests/support/
using Json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A project: its config layer (with an audit log outside .tactus), a procedure with a sidecar
// that allows every file tool on a writable workspace and mounts the project a second time at
// /alias, and another procedure beside it.
struct Project {
  fs::path dir;
  std::string sidecar;

  Project() {
    char tmpl[] = "/tmp/tactus-trusted-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    write_file((dir / ".tactus/config.yml").string(), "audit:\n  path: audit.jsonl\n");
    sidecar = "sandbox:\n  workspace: rw\n  volumes: [\"" + dir.string() +
              ":/alias:rw\"]\ntools:\n  allow: [file.read, file.write, file.list, file.exists]\n";
    write_file((dir / "proc.tac.yml").string(), sidecar);
    write_file((dir / "other.tac").string(), "return 'other'\n");
  }
  ~Project() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string path(const std::string& rel) const { return (dir / rel).string(); }

  Json run(const std::string& source) const {
    write_file(path("proc.tac"), source);
    const auto r = run_tactus_in(dir.string(), {"run", path("proc.tac"), "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    return Json::parse(r.out)["result"];
  }
};

// A procedure that makes each call and returns, per call, "ok" or the error's text.
std::string attempts(const std::vector<std::pair<std::string, std::string>>& calls) {
  std::string src = "local out = {}\n";
  for (const auto& [tool, args] : calls)
    src += "do local ok, e = pcall(Host.call, '" + tool + "', " + args +
           ")\n out[#out + 1] = ok and 'ok' or tostring(e) end\n";
  return src + "return out\n";
}

std::string lua_quote(const std::string& s) {
  return Json(s).dump();
}

}  // namespace

TEST_CASE("trusted files: no file tool writes a sidecar, config, .tac, journal or audit log",
          "[trusted][cli]") {
  Project p;
  // A first run that writes, so the journal and the audit log exist.
  CHECK(p.run(attempts({{"file.write", "{path = 'notes.txt', content = 'n'}"}}))[0] == "ok");
  REQUIRE(fs::exists(p.path(".tactus/journal.db")));
  REQUIRE(fs::exists(p.path("audit.jsonl")));
  // Links made before the run: symlinks and hard links to each trusted file.
  fs::create_symlink("proc.tac.yml", p.path("sym-sidecar"));
  fs::create_symlink(".tactus", p.path("sym-tactus"));
  fs::create_hard_link(p.path("proc.tac.yml"), p.path("hard-sidecar"));
  fs::create_hard_link(p.path(".tactus/config.yml"), p.path("hard-config"));
  fs::create_hard_link(p.path(".tactus/journal.db"), p.path("hard-journal"));
  fs::create_hard_link(p.path("audit.jsonl"), p.path("hard-audit"));
  fs::create_hard_link(p.path("other.tac"), p.path("hard-other"));

  const std::vector<std::string> targets = {
      "proc.tac.yml",
      "./proc.tac.yml",
      "sub/../proc.tac.yml",
      "/alias/proc.tac.yml",
      "PROC.TAC.YML",
      "new.tac.yml",
      "other.tac",
      "/alias/other.tac",
      "proc.tac",
      ".tactus/config.yml",
      ".tactus/new.yml",
      "/alias/.tactus/config.yml",
      "sym-tactus/config.yml",
      ".tactus/journal.db",
      ".tactus/journal.db-wal",
      "audit.jsonl",
      "/alias/audit.jsonl",
      "sym-sidecar",
      "hard-sidecar",
      "hard-config",
      "hard-journal",
      "hard-audit",
      "hard-other",
      ".tactus",
  };
  fs::create_directories(p.path("sub"));
  const std::vector<std::string> before = {read_file(p.path("proc.tac.yml")),
                                           read_file(p.path(".tactus/config.yml")),
                                           read_file(p.path("other.tac"))};
  const auto audit_before = fs::file_size(p.path("audit.jsonl"));
  std::vector<std::pair<std::string, std::string>> calls;
  for (const auto& t : targets)
    for (const char* append : {"true", "false"})  // append first: a replace breaks a link
      calls.emplace_back("file.write",
                         "{path = " + lua_quote(t) +
                             ", content = 'tools: {allow: [\"*\"]}', append = " + append + "}");
  const std::string source = attempts(calls);
  // The procedure's own source is the file written above; it must not change during the run.
  const Json out = p.run(source);
  REQUIRE(out.size() == calls.size());
  for (std::size_t i = 0; i < calls.size(); ++i) {
    INFO(calls[i].second << " -> " << out[i]);
    const std::string e = out[i].get<std::string>();
    // Replacing hard-other renames a new file over that name: other.tac keeps its inode and
    // its content (checked below). Everything else is refused.
    if (targets[i / 2] == "hard-other" && i % 2 == 1) {
      CHECK(e == "ok");
      continue;
    }
    CHECK(e.rfind("denied: ", 0) == 0);
    CHECK(e.find("is trusted configuration") != e.npos);
  }
  CHECK(read_file(p.path("proc.tac.yml")) == before[0]);
  CHECK(read_file(p.path(".tactus/config.yml")) == before[1]);
  CHECK(read_file(p.path("other.tac")) == before[2]);
  CHECK(read_file(p.path("proc.tac")) == source);
  CHECK(!fs::exists(p.path("new.tac.yml")));
  CHECK(!fs::exists(p.path(".tactus/new.yml")));
  // The audit log grew by the broker's own lines: one per refused call, each naming it.
  CHECK(fs::file_size(p.path("audit.jsonl")) > audit_before);
  const std::string audit = read_file(p.path("audit.jsonl"));
  CHECK(audit.substr(0, audit.find('\n')).find("notes.txt") != std::string::npos);

  // A second run is under the original policy: http.request is still not allowed.
  const Json second = p.run(attempts({{"http.request", "{url = 'http://127.0.0.1:1/'}"}}));
  CHECK(second[0].get<std::string>().find("denied") == 0);
}

TEST_CASE("trusted files: nothing under .tactus is read, listed or probed", "[trusted][cli]") {
  Project p;
  CHECK(p.run(attempts({{"file.write", "{path = 'notes.txt', content = 'n'}"}}))[0] == "ok");
  fs::create_symlink(".tactus", p.path("sym-tactus"));
  fs::create_symlink(".tactus/journal.db", p.path("sym-journal"));
  fs::create_hard_link(p.path(".tactus/journal.db"), p.path("hard-journal"));
  fs::create_hard_link(p.path(".tactus/config.yml"), p.path("hard-config"));
  std::vector<std::pair<std::string, std::string>> calls;
  for (const char* path : {".tactus/config.yml", ".tactus/journal.db", "/alias/.tactus/journal.db",
                           "sym-tactus/config.yml", "sym-journal", "hard-journal", "hard-config",
                           "audit.jsonl", "/alias/audit.jsonl"})
    calls.emplace_back("file.read", "{path = " + lua_quote(path) + "}");
  for (const char* path : {".tactus", "sym-tactus", "/alias/.tactus", ".tactus/"})
    calls.emplace_back("file.list", "{path = " + lua_quote(path) + "}");
  for (const char* path : {".tactus/journal.db", "sym-journal", ".tactus"})
    calls.emplace_back("file.exists", "{path = " + lua_quote(path) + "}");
  // Still readable: the procedure's own files.
  calls.emplace_back("file.read", "{path = 'notes.txt'}");
  calls.emplace_back("file.read", "{path = 'proc.tac.yml'}");
  calls.emplace_back("file.list", "{path = '.'}");
  const Json out = p.run(attempts(calls));
  REQUIRE(out.size() == calls.size());
  for (std::size_t i = 0; i + 3 < calls.size(); ++i) {
    INFO(calls[i].first << " " << calls[i].second << " -> " << out[i]);
    const std::string e = out[i].get<std::string>();
    CHECK(e.rfind("denied: ", 0) == 0);
    CHECK(e.find("is trusted configuration") != e.npos);
  }
  for (std::size_t i = calls.size() - 3; i < calls.size(); ++i) CHECK(out[i] == "ok");
}

TEST_CASE("trusted files: the workspace is read-only unless a sidecar says rw", "[trusted][cli]") {
  Project p;
  write_file(p.path("proc.tac.yml"), "tools:\n  allow: [file.read, file.write]\n");
  const Json out = p.run(attempts({{"file.write", "{path = 'notes.txt', content = 'n'}"},
                                   {"file.read", "{path = 'proc.tac.yml'}"}}));
  const std::string e = out[0].get<std::string>();
  CHECK(e.rfind("denied: file.write: '/workspace' is mounted read-only", 0) == 0);
  CHECK(e.find("sandbox.workspace: rw") != e.npos);
  CHECK(out[1] == "ok");
  CHECK(!fs::exists(p.path("notes.txt")));
  write_file(p.path("proc.tac.yml"),
             "sandbox:\n  workspace: \"off\"\ntools:\n  allow: [file.read]\n");
  const Json off = p.run(attempts({{"file.read", "{path = 'proc.tac'}"}}));
  CHECK(off[0].get<std::string>().find("no workspace is mounted") != std::string::npos);
}

TEST_CASE("trusted files: sandbox.limits.disk bounds what a run writes, across resumes",
          "[trusted][limits][cli]") {
  Project p;
  write_file(p.path("proc.tac.yml"),
             "sandbox:\n  workspace: rw\n  limits:\n    disk: 1k\ntools:\n  allow: [file.write]\n");
  const std::string chunk = "string.rep('x', 300)";
  const Json out = p.run(attempts({
      {"file.write", "{path = 'a.txt', content = " + chunk + "}"},
      {"file.write", "{path = 'a.txt', content = " + chunk + ", append = true}"},
      {"file.write", "{path = 'a.txt', content = " + chunk + "}"},
      {"file.write", "{path = 'b.txt', content = " + chunk + "}"},
      {"file.write", "{path = 'b.txt', content = 'x'}"},
  }));
  CHECK(out[0] == "ok");
  CHECK(out[1] == "ok");
  CHECK(out[2] == "ok");
  const std::string e = out[3].get<std::string>();
  CHECK(e.rfind("limit: file.write: disk limit of 1024 bytes exceeded (sandbox.limits.disk)", 0) ==
        0);
  CHECK(e.find("this run has written 900 bytes") != e.npos);
  CHECK(out[4] == "ok");  // 901 of 1024
  CHECK(fs::file_size(p.path("a.txt")) == 300);
  CHECK(fs::file_size(p.path("b.txt")) == 1);
}

TEST_CASE("trusted files: the disk limit counts what a run wrote before it suspended",
          "[trusted][limits][durable][cli]") {
  Project p;
  write_file(p.path("proc.tac.yml"),
             "sandbox:\n  workspace: rw\n  limits:\n    disk: 1k\ntools:\n  allow: [file.write]\n");
  write_file(p.path("proc.tac"), R"(
Host.call("file.write", { path = "a.txt", content = string.rep("x", 600) })
Human.approve({ message = "more?" })
local ok, e = pcall(Host.call, "file.write", { path = "b.txt", content = string.rep("y", 600) })
return tostring(e)
)");
  auto r = run_tactus_in(p.dir.string(), {"run", p.path("proc.tac"), "--run-id", "q"});
  REQUIRE(r.exit_code == 5);
  REQUIRE(run_tactus_in(p.dir.string(), {"answer", "q", "--value", "yes"}).exit_code == 0);
  r = run_tactus_in(p.dir.string(), {"resume", "q"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("limit: file.write: disk limit of 1024 bytes exceeded") != std::string::npos);
  CHECK(r.out.find("this run has written 600 bytes") != std::string::npos);
  CHECK(!fs::exists(p.path("b.txt")));
}

TEST_CASE(
    "trusted files: a journal made during the run, modules, sidecars of any file, secret "
    "files",
    "[trusted][cli]") {
  Project p;
  fs::create_directories(p.path("data"));
  write_file(p.path("data/o.lua"), "return 'mine'\n");
  write_file(p.path("data/helper.lua"), "return 'helper'\n");
  write_file(p.path("token.txt"), "tok-file-secret-0123\n");
  // The journal outside .tactus, created by this run's first write; a secret read from a file.
  write_file(p.path("proc.tac.yml"),
             p.sidecar + "journal:\n  path: j.db\nsecrets:\n  T: {file: token.txt}\n");
  std::vector<std::pair<std::string, std::string>> calls = {
      {"file.write", "{path = 'first.txt', content = 'x'}"},  // the journal exists from here on
      {"file.read", "{path = 'j.db'}"},
      {"file.read", "{path = 'j.db-wal'}"},
      {"file.read", "{path = '/alias/j.db'}"},
      {"file.write", "{path = 'j.db-wal', content = 'x', append = true}"},
      {"file.read", "{path = 'token.txt'}"},
      {"file.exists", "{path = 'token.txt'}"},
      {"file.write", "{path = 'data/helper.lua', content = 'return 1'}"},
      {"file.write", "{path = 'new.LUA', content = 'return 1'}"},
      {"file.write", "{path = 'data/o.lua.yml', content = 'tools: {allow: [x]}'}"},
      {"file.write", "{path = 'data/.TACTUS', content = 'x'}"},
      {"file.write", "{path = 'notes.txt.yaml', content = 'x'}"},  // no notes.txt: allowed
  };
  const Json out = p.run(attempts(calls));
  REQUIRE(out.size() == calls.size());
  CHECK(out[0] == "ok");
  for (std::size_t i = 1; i + 1 < calls.size(); ++i) {
    INFO(calls[i].second << " -> " << out[i]);
    CHECK(out[i].get<std::string>().find("is trusted configuration") != std::string::npos);
  }
  CHECK(out.back() == "ok");
  CHECK(read_file(p.path("data/helper.lua")) == "return 'helper'\n");
  CHECK(!fs::exists(p.path("data/o.lua.yml")));
}
