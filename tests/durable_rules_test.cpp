// The durability rules of docs/durability.md, each crossed: an effect is sent only after the
// effect-free answers before it are committed; a kill -9 at any of many points repeats at most
// the request in flight (with the same Idempotency-Key), counted in the run's record; SIGTERM
// and SIGINT end a run as interrupted (resumable, not a death) and leave no process behind; a
// setting written at its default does not strand a suspended run, a real change does.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "broker/journal/journal.h"
#include "tests/support/cli_runner.h"
#include "tests/support/http_test_server.h"
#include "tests/support/project_journal.h"

using namespace tactus::test;  // tests/support/
using Json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// n POSTs to the server, with effect-free requests (the time, a seed, a file probe) between.
const char* kPosts = R"(
local n = tonumber(input.n)
local seen = {}
for i = 1, n do
  local r = Host.call("http.request", { url = input.url .. "?i=" .. i, method = "POST", body = "x" })
  seen[#seen + 1] = r.status
  local t = os.time() + math.random(10)
  Host.call("file.exists", { path = "/workspace/none" })
end
return { posts = #seen }
)";

std::string sidecar_for(const HttpTestServer& server, bool keys) {
  (void)server;
  std::string yaml =
      "sandbox:\n  network: filtered\n  network_filter: {allow: ['^127\\.0\\.0\\.1$']}\n"
      "tools:\n  allow: [http.request, file.exists]\n";
  if (keys) yaml += "  http: {idempotency_key: true}\n";
  return yaml;
}

Json run_record(const std::string& dir, const std::string& id) {
  const CliRun r = run_tactus_in(dir, {"runs", "--json"});
  REQUIRE(r.exit_code == 0);
  for (const auto& run : Json::parse(r.out))
    if (run["run_id"] == id) return run;
  FAIL("no run " << id << " in " << r.out);
  return Json();
}

// The i of each request ("?i=N"), in arrival order.
std::vector<int> request_numbers(const HttpTestServer& server) {
  std::vector<int> out;
  for (const auto& t : server.targets()) out.push_back(std::stoi(t.substr(t.find("?i=") + 3)));
  return out;
}

// This test process's children (what a tactus that exited left behind, once we are the
// subreaper); zombies count.
std::vector<pid_t> children_of_this_process() {
  std::vector<pid_t> out;
  const std::string self = std::to_string(::getpid());
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream status(e.path() / "status");
    std::string line;
    while (std::getline(status, line))
      if (line.rfind("PPid:", 0) == 0) {
        if (line.substr(line.find_first_not_of(" \t", 5)) == self) out.push_back(std::stoi(name));
        break;
      }
  }
  return out;
}

// Makes this process the subreaper of what it starts for the scope: a process a tactus left
// behind is reparented here, where the test sees it (and reaps it). Children this process had
// before the scope (the spawners other tests keep in statics, when all tests share one
// process) are not tactus's and are left alone.
class Subreaper {
 public:
  Subreaper() : before_(children_of_this_process()) { ::prctl(PR_SET_CHILD_SUBREAPER, 1); }
  ~Subreaper() {
    for (pid_t pid : left_behind()) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    ::prctl(PR_SET_CHILD_SUBREAPER, 0);
  }
  Subreaper(const Subreaper&) = delete;
  Subreaper& operator=(const Subreaper&) = delete;

  // Each child that appeared in the scope, as /proc/PID/stat says it (name and state), so a
  // failure names what was left.
  std::vector<std::string> left_behind_described() const {
    std::vector<std::string> out;
    for (pid_t pid : left_behind())
      out.push_back(
          tactus::test::read_file("/proc/" + std::to_string(pid) + "/stat").substr(0, 80));
    return out;
  }

 private:
  std::vector<pid_t> left_behind() const {
    std::vector<pid_t> out;
    for (pid_t pid : children_of_this_process())
      if (std::find(before_.begin(), before_.end(), pid) == before_.end()) out.push_back(pid);
    return out;
  }
  std::vector<pid_t> before_;
};

}  // namespace

TEST_CASE(
    "durable rules: an effect is sent only after the effect-free answers before it are "
    "committed, and is journaled in flight",
    "[durable][cli]") {
  HttpTestServer server;
  TempTac tac(kPosts);
  tactus::test::write_file(tac.path() + ".yml", sidecar_for(server, true));
  server.hold(2);  // the second POST waits: the host is "inside" an effect
  const pid_t pid = start_tactus(tac.dir(),
                                 {"run", tac.path(), "--run-id", "oc", "--param", "n=3", "--param",
                                  "url=" + server.url("/count")},
                                 {});
  REQUIRE(pid > 0);
  REQUIRE(server.wait_for_requests(2, 20000));
  // While the second POST is out: POST 1, its time, seed and probe are committed, and POST 2
  // is journaled without an answer.
  const auto entries = project_journal_entries(tac.dir(), "oc");
  std::vector<std::string> methods;
  for (const auto& e : entries) methods.push_back(e.method);
  INFO(Json(methods).dump());
  REQUIRE(entries.size() >= 5);
  CHECK(entries[0].method == "host.call");
  CHECK(entries[0].request_json.find("\"i=1\"") == std::string::npos);  // params as sent
  CHECK(!entries[0].response_json.empty());
  std::set<std::string> effect_free;
  for (std::size_t i = 1; i + 1 < entries.size(); ++i) {
    effect_free.insert(entries[i].method);
    CHECK(!entries[i].response_json.empty());
  }
  CHECK(effect_free.count("time.now") == 1);
  CHECK(effect_free.count("random.seed") == 1);
  CHECK(entries.back().method == "host.call");
  CHECK(entries.back().request_json.find("i=2") != std::string::npos);
  CHECK(entries.back().response_json.empty());  // in flight
  ::kill(pid, SIGKILL);
  wait_exit_code(pid);
  server.release();
}

TEST_CASE(
    "durable rules: kill -9 at 50 points, each resume repeats exactly the request in "
    "flight, with its Idempotency-Key, and counts it",
    "[durable][cli]") {
  constexpr int kPoints = 50;
  int tried = 0;
  for (int point = 1; point <= kPoints; ++point) {
    HttpTestServer server;
    TempTac tac(kPosts);
    tactus::test::write_file(tac.path() + ".yml", sidecar_for(server, true));
    const std::string id = "k" + std::to_string(point);
    const std::vector<std::string> run = {"run",      tac.path(),
                                          "--run-id", id,
                                          "--param",  "n=" + std::to_string(kPoints),
                                          "--param",  "url=" + server.url("/count")};
    server.hold(point);
    const pid_t pid = start_tactus(tac.dir(), run, {});
    REQUIRE(pid > 0);
    INFO("point " << point << ": " << tactus::test::read_file(tac.dir() + "/killed.err"));
    REQUIRE(server.wait_for_requests(point, 20000));
    ::kill(pid, SIGKILL);  // while POST `point` is out, its answer not journaled
    wait_exit_code(pid);
    server.release();
    ++tried;
    const CliRun r = run_tactus_in(tac.dir(), {"resume", id, "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(Json::parse(r.out)["result"]["posts"] == kPoints);
    // 1..point, then point again (the one in flight), then the rest: once each.
    const auto numbers = request_numbers(server);
    std::vector<int> expected;
    for (int i = 1; i <= kPoints; ++i) {
      expected.push_back(i);
      if (i == point) expected.push_back(i);
    }
    CHECK(numbers == expected);
    // The repeat carries the first sending's key; every other request a key of its own.
    const auto keys = server.idempotency_keys();
    REQUIRE(keys.size() == expected.size());
    CHECK(keys[static_cast<std::size_t>(point - 1)] == keys[static_cast<std::size_t>(point)]);
    CHECK(std::set<std::string>(keys.begin(), keys.end()).size() ==
          static_cast<std::size_t>(kPoints));
    CHECK(keys.front().rfind("tactus-", 0) == 0);
    CHECK(run_record(tac.dir(), id)["repeated"] == 1);
  }
  std::printf(
      "durable rules: kill -9 tried at %d points, each repeating only its request in "
      "flight\n",
      tried);
  CHECK(tried == kPoints);
}

TEST_CASE("durable rules: kill -9 at timed points repeats at most one request", "[durable][cli]") {
  int tried = 0;
  for (int point = 0; point < 10; ++point) {
    HttpTestServer server;
    TempTac tac(kPosts);
    tactus::test::write_file(tac.path() + ".yml", sidecar_for(server, false));
    const std::string id = "t" + std::to_string(point);
    const pid_t pid = start_tactus(tac.dir(),
                                   {"run", tac.path(), "--run-id", id, "--param", "n=400",
                                    "--param", "url=" + server.url("/count")},
                                   {});
    REQUIRE(pid > 0);
    REQUIRE(server.wait_for_requests(1, 20000));
    std::this_thread::sleep_for(std::chrono::milliseconds(3 + 7 * point));
    ::kill(pid, SIGKILL);
    wait_exit_code(pid);
    ++tried;
    // What the killed run had sent is recorded before it is counted.
    REQUIRE(server.wait_quiet(50, 5000));
    const int before = server.requests();
    const CliRun r = run_tactus_in(tac.dir(), {"resume", id, "--json"});
    if (r.exit_code == 2 && r.err.find("has completed") != std::string::npos) continue;
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    const auto numbers = request_numbers(server);
    // Without keys nothing is sent with them.
    for (const auto& k : server.idempotency_keys()) CHECK(k.empty());
    // The resume's first request is the killed run's last one again, or the next.
    REQUIRE(numbers.size() >= 400);
    CHECK(numbers.size() <= 401);
    const int repeated = static_cast<int>(numbers.size()) - 400;
    if (repeated == 1 && before > 0)
      CHECK(numbers[static_cast<std::size_t>(before)] ==
            numbers[static_cast<std::size_t>(before - 1)]);
    // The record counts what the resume sent again: the request in flight, which the server
    // may not have received before the kill (then it sees it once).
    const int recorded = run_record(tac.dir(), id)["repeated"].get<int>();
    CHECK(recorded <= 1);
    CHECK(repeated <= recorded);
  }
  std::printf("durable rules: kill -9 tried at %d timed points\n", tried);
}

TEST_CASE(
    "durable rules: SIGTERM and SIGINT interrupt a run, kill and reap its jail and "
    "spawner, and leave it resumable",
    "[durable][cli]") {
  Subreaper reaper;
  HttpTestServer server;
  TempTac tac(kPosts);
  tactus::test::write_file(tac.path() + ".yml", sidecar_for(server, true));
  server.hold(3);
  const pid_t pid = start_tactus(tac.dir(),
                                 {"run", tac.path(), "--run-id", "term", "--param", "n=5",
                                  "--param", "url=" + server.url("/count")},
                                 {});
  REQUIRE(pid > 0);
  REQUIRE(server.wait_for_requests(3, 20000));
  ::kill(pid, SIGTERM);
  const int code = wait_exit_code(pid);
  server.release();
  INFO(tactus::test::read_file(tac.dir() + "/killed.err"));
  CHECK(code == 128 + SIGTERM);
  CHECK(tactus::test::read_file(tac.dir() + "/killed.err").find("interrupted by SIGTERM") !=
        std::string::npos);
  // No spawner, no jail, no zombie left to us.
  CHECK(reaper.left_behind_described() == std::vector<std::string>{});
  CHECK(run_record(tac.dir(), "term")["status"] == "interrupted");
  const CliRun r = run_tactus_in(tac.dir(), {"resume", "term", "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(request_numbers(server) == std::vector<int>{1, 2, 3, 3, 4, 5});
  CHECK(run_record(tac.dir(), "term")["repeated"] == 1);

  SECTION("Ctrl-C in a busy loop, again and again, is not a death") {
    TempTac loop("Human.notify({ message = 'journaled' })\nwhile true do end\n");
    const auto interrupt = [&](std::vector<std::string> args) {
      const pid_t p = start_tactus(loop.dir(), args, {});
      REQUIRE(p > 0);
      std::this_thread::sleep_for(std::chrono::milliseconds(400));
      ::kill(p, SIGINT);
      CHECK(wait_exit_code(p) == 128 + SIGINT);
      CHECK(reaper.left_behind_described() == std::vector<std::string>{});
    };
    interrupt({"run", loop.path(), "--run-id", "loop"});
    for (int i = 0; i < 3; ++i) interrupt({"resume", "loop"});
    CHECK(run_record(loop.dir(), "loop")["status"] == "interrupted");  // not failed
  }
}

TEST_CASE("durable rules: tactus run returns with nothing left behind", "[durable][cli]") {
  Subreaper reaper;
  const pid_t pid =
      start_tactus(tactus::test::default_cwd(),
                   {"run", std::string(TACTUS_SOURCE_DIR) + "/examples/hello.tac"}, {});
  REQUIRE(pid > 0);
  CHECK(wait_exit_code(pid) == 0);
  CHECK(reaper.left_behind_described() == std::vector<std::string>{});
}

TEST_CASE(
    "durable rules: a setting at its default does not strand a suspended run, a real "
    "change refuses it, naming the setting",
    "[durable][cli]") {
  TempTac tac("local ok = Human.approve{ message = 'go?' } return ok");
  tactus::test::write_file(tac.path() + ".yml", "tools:\n  allow: [host.ping]\n");
  REQUIRE(run_tactus_in(tac.dir(), {"run", tac.path(), "--run-id", "cfg"}).exit_code == 5);
  REQUIRE(run_tactus_in(tac.dir(), {"answer", "cfg", "--value", "yes"}).exit_code == 0);
  // A project config that writes settings at their defaults (one of them new in this version),
  // and changes the bounds of the host's own records: nothing the procedure sees.
  tactus::test::write_file(tac.dir() + "/.tactus/config.yml",
                           "sandbox:\n  timeout: 3600\n  workspace: ro\n"
                           "tools:\n  http: {idempotency_key: false}\n"
                           "journal:\n  max_bytes: 512m\n"
                           "audit:\n  max_line: 8k\n  max_bytes: 1g\n");
  SECTION("resumes") {
    const CliRun r = run_tactus_in(tac.dir(), {"resume", "cfg"});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == "true\n");
  }
  SECTION("a different allowed tool refuses, saying which setting changed") {
    tactus::test::write_file(tac.path() + ".yml", "tools:\n  allow: [host.ping, file.read]\n");
    const CliRun r = run_tactus_in(tac.dir(), {"resume", "cfg"});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("its configuration (sidecar or config layers) changed since the run "
                     "started: tools.allow is now [\"host.ping\", \"file.read\"] (was "
                     "[\"host.ping\"])") != std::string::npos);
  }
}

TEST_CASE(
    "durable rules: a run suspended under the schema-3 fingerprint is migrated once and "
    "resumes, changed, it is refused",
    "[durable][cli]") {
  TempTac tac("local ok = Human.approve{ message = 'go?' } return ok");
  tactus::test::write_file(tac.path() + ".yml", "sandbox:\n  timeout: 99\n");
  REQUIRE(run_tactus_in(tac.dir(), {"run", tac.path(), "--run-id", "v3"}).exit_code == 5);
  REQUIRE(run_tactus_in(tac.dir(), {"answer", "v3", "--value", "yes"}).exit_code == 0);
  // The journal as the tactus of schema 3 left it: its runs table and its fingerprint.
  const std::string db = tac.dir() + "/.tactus/journal.db";
  const std::string old_hash = tactus::test::scheme1_config_hash(tac.dir(), tac.path(), true);
  sql(db,
      "PRAGMA foreign_keys = OFF; BEGIN;"
      "CREATE TABLE runs3 (run_id TEXT NOT NULL PRIMARY KEY, procedure TEXT NOT NULL,"
      " source_hash TEXT NOT NULL, config_hash TEXT NOT NULL, input_json TEXT NOT NULL,"
      " status TEXT NOT NULL CHECK (status IN ('running', 'suspended', 'completed', "
      "'failed')), started_at REAL NOT NULL, updated_at REAL NOT NULL,"
      " result_json TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '',"
      " state_journaled INTEGER NOT NULL DEFAULT 0, resume_seq INTEGER NOT NULL DEFAULT -1,"
      " resume_deaths INTEGER NOT NULL DEFAULT 0, sealed INTEGER NOT NULL DEFAULT 0);"
      "INSERT INTO runs3 SELECT run_id, procedure, source_hash, '" +
          old_hash +
          "', input_json, status, started_at, updated_at, result_json, error, "
          "state_journaled, resume_seq, resume_deaths, sealed FROM runs;"
          "DROP TABLE runs; ALTER TABLE runs3 RENAME TO runs; PRAGMA user_version = 3; "
          "COMMIT;");
  SECTION("unchanged: migrated and resumed") {
    const CliRun r = run_tactus_in(tac.dir(), {"resume", "v3"});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == "true\n");
    std::string error;
    auto j = tactus::broker::Journal::open(db, error);
    REQUIRE(j);
    const auto run = j->find_run("v3", error);
    REQUIRE(run);
    CHECK(run->config_scheme == 2);
    CHECK(run->config_text == "sandbox.timeout: 99\n");
    CHECK(run->status == "completed");
  }
  SECTION("changed: refused, and left at scheme 1") {
    tactus::test::write_file(tac.path() + ".yml", "sandbox:\n  timeout: 98\n");
    const CliRun r = run_tactus_in(tac.dir(), {"resume", "v3"});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("its configuration (sidecar or config layers) changed since the run "
                     "started; restore it") != std::string::npos);
    tactus::test::write_file(tac.path() + ".yml", "sandbox:\n  timeout: 99\n");
    CHECK(run_tactus_in(tac.dir(), {"resume", "v3"}).exit_code == 0);
  }
}
