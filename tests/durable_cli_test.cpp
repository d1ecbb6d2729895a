// Durable runs end to end: the journal, suspend and answer, resume without repeating work (the
// host killed with -9 at many points, a fake provider counting what it receives), refusals.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include <sqlite3.h>

#include "broker/journal/exchange_journal.h"
#include "broker/journal/journal.h"
#include "tests/fixtures/fake_llm.h"
#include "tests/support/cli_runner.h"
#include "tests/support/http_test_server.h"

using namespace tactus::test;  // tests/support/
using Json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A project directory holding proc.tac (and its journal, .tactus/journal.db, once run).
struct Project {
  TempTac tac;
  explicit Project(const std::string& source) : tac(source) {}
  const std::string& dir() const { return tac.dir(); }
  CliRun tactus(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
    return run_tactus_in(dir(), args, env);
  }
  CliRun run(const std::string& id, std::vector<std::string> extra = {},
             const std::vector<std::string>& env = {}) {
    std::vector<std::string> args = {"run", tac.path(), "--run-id", id};
    args.insert(args.end(), extra.begin(), extra.end());
    return tactus(args, env);
  }
};

const char* kApproval = R"(
print("first part", input.who)
local heavy = Step.checkpoint("heavy", function() print("computing once") return 6 * 7 end)
local t, r = os.time(), math.random(1000000)
local ok = Human.approve{ message = "Ship it?" }
local pick = Human.select{ message = "Which?", options = { "red", { label = "Blue!", value = "blue" } } }
print("after", ok, pick)
return { ok = ok, pick = pick, heavy = heavy, t = t, r = r }
)";

}  // namespace

TEST_CASE("durable: a run without a terminal suspends on Human.*, is answered and resumed",
          "[durable][cli]") {
  Project p(kApproval);
  auto r = p.run("s1", {"--param", "who=ada"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 5);
  CHECK(r.out == "first part\tada\ncomputing once\n");
  CHECK(r.err ==
        "tactus: run s1 is waiting for an answer to human.approve: answer it with 'tactus answer "
        "s1 --value VALUE', then 'tactus resume s1'\n");

  auto runs = p.tactus({"runs", "--json"});
  REQUIRE(runs.exit_code == 0);
  CHECK(Json::parse(runs.out)[0]["status"] == "suspended");

  // A wrong answer is refused; the run stays suspended.
  auto bad = p.tactus({"answer", "s1", "--value", "perhaps"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err == "tactus: Human.approve takes yes or no (got 'perhaps')\n");

  CHECK(p.tactus({"answer", "s1", "--value", "yes"}).exit_code == 0);
  r = p.tactus({"resume", "s1"});
  CHECK(r.exit_code == 5);  // now waiting on the select
  CHECK(r.out.empty());     // nothing printed again, the checkpoint not run again
  CHECK(r.err.find("human.select") != std::string::npos);

  r = p.tactus({"answer", "s1", "--value", "Blue!", "--resume"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.rfind("after\ttrue\tblue\n", 0) == 0);
  const Json result = Json::parse(r.out.substr(r.out.find('\n') + 1));
  CHECK(result["ok"] == true);
  CHECK(result["pick"] == "blue");
  CHECK(result["heavy"] == 42);

  // The time and random numbers the first run drew are the ones the result holds.
  const Json entries_seen = Json::parse(p.tactus({"runs", "--json"}).out);
  CHECK(entries_seen[0]["status"] == "completed");
  auto again = p.tactus({"resume", "s1"});
  CHECK(again.exit_code == 2);
  CHECK(again.err == "tactus: run s1 has completed; there is nothing to resume\n");
}

TEST_CASE("durable: time, random and checkpoints replay exactly", "[durable][cli]") {
  Project p(R"(
local t, c, r = os.time(), os.clock(), math.random()
local calls = Step.checkpoint(function() return { math.random(100), 7 } end)
local ok = Human.approve{ message = "go?" }
return { t = t, c = c, r = r, calls = calls })");
  auto first = p.run("t1");
  REQUIRE(first.exit_code == 5);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // os.time moves on
  REQUIRE(p.tactus({"answer", "t1", "--value", "y"}).exit_code == 0);
  auto r = p.tactus({"resume", "t1", "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const Json doc = Json::parse(r.out);
  // Replayed from the journal: recorded before the suspension, identical after it.
  const Json res = doc["result"];
  CHECK(res["calls"][1] == 7);
  // The first run's values are the journal's entries; the result must hold exactly those.
  auto journal_path = p.dir() + "/.tactus/journal.db";
  std::string error;
  auto j = tactus::broker::Journal::open(journal_path, error);
  REQUIRE(j);
  const auto entries = j->entries("t1", error);
  REQUIRE(entries.size() >= 4);
  CHECK(entries[0].method == "time.now");
  const double t = Json::parse(entries[0].response_json)["result"]["unix"].get<double>();
  CHECK(res["t"] == static_cast<long long>(t));
  CHECK(entries[1].method == "time.clock");
  CHECK(res["c"] == Json::parse(entries[1].response_json)["result"]["seconds"]);
  CHECK(entries[2].method == "random.seed");
  CHECK(entries[3].method == "checkpoint");
  CHECK(entries[4].method == "checkpoint.result");
}

TEST_CASE("durable: a changed source or sidecar is refused on resume", "[durable][cli]") {
  Project p("local ok = Human.approve{ message = 'x' } return ok");
  REQUIRE(p.run("c1").exit_code == 5);
  REQUIRE(p.tactus({"answer", "c1", "--value", "no"}).exit_code == 0);
  tactus::test::write_file(p.tac.path() + ".yml", "sandbox:\n  timeout: 99\n");
  auto r = p.tactus({"resume", "c1"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("its configuration (sidecar or config layers) changed") != std::string::npos);
  fs::remove(p.tac.path() + ".yml");
  tactus::test::write_file(p.tac.path(), "local ok = Human.approve{ message = 'y' } return ok");
  r = p.tactus({"resume", "c1"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("changed since the run started") != std::string::npos);
  tactus::test::write_file(p.tac.path(), "local ok = Human.approve{ message = 'x' } return ok");
  r = p.tactus({"resume", "c1"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "false\n");
}

TEST_CASE("durable: a corrupted or locked journal is a clear error, and nothing is lost",
          "[durable][cli]") {
  // Human.notify has an outside effect (it is written out), so the run is journaled.
  Project p("Human.notify{ message = 'hi' } return Host.call('host.ping', {x = 1}).x");
  REQUIRE(p.run("k1").exit_code == 0);
  const std::string db = p.dir() + "/.tactus/journal.db";
  // Locked: another connection holds an exclusive transaction past the busy timeout.
  {
    sqlite3* other = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &other) == SQLITE_OK);
    REQUIRE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
    auto r = p.run("k-locked");
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("journal '" + db + "': locked by another process") != std::string::npos);
    sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(other);
  }
  // The run before the lock is still there, completed.
  auto listed = p.tactus({"runs", "--json"});
  REQUIRE(listed.exit_code == 0);
  CHECK(Json::parse(listed.out)[0]["run_id"] == "k1");
  CHECK(Json::parse(listed.out)[0]["status"] == "completed");
  // Corrupted: garbage over the file. The error names it; the file is left as it was.
  fs::remove(db + "-wal");
  fs::remove(db + "-shm");
  {
    std::ofstream f(db, std::ios::binary | std::ios::trunc);
    f << std::string(8192, 'x');
  }
  auto r = p.run("k2");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("journal '" + db + "'") != std::string::npos);
  CHECK(r.err.find("not a database") != std::string::npos);
  CHECK(fs::file_size(db) == 8192);
  auto runs = p.tactus({"runs"});
  CHECK(runs.exit_code == 2);
}

TEST_CASE("durable: two resumes of one run at once: one wins, the other is refused",
          "[durable][cli]") {
  Project p(R"(local ok = Human.approve{ message = 'x' }
local n = 0 for i = 1, 3e7 do n = n + i end
return ok)");
  REQUIRE(p.run("w1").exit_code == 5);
  REQUIRE(p.tactus({"answer", "w1", "--value", "yes"}).exit_code == 0);
  CliRun a, b;
  std::thread ta([&] { a = p.tactus({"resume", "w1"}); });
  std::thread tb([&] { b = p.tactus({"resume", "w1"}); });
  ta.join();
  tb.join();
  INFO(a.err << " | " << b.err);
  CHECK(((a.exit_code == 0 && b.exit_code == 2) || (a.exit_code == 2 && b.exit_code == 0)));
  const std::string& loser = a.exit_code == 2 ? a.err : b.err;
  CHECK((loser.find("is being run by process") != std::string::npos ||
         loser.find("has completed") != std::string::npos));
}

TEST_CASE("durable: a diverging replay stops with both requests shown", "[durable]") {
  using tactus::broker::ExchangeJournal;
  TempTac dir("unused");
  std::string error;
  auto journal = tactus::broker::Journal::open(dir.dir() + "/j.db", error);
  REQUIRE(journal);
  tactus::broker::JournalEntry e;
  e.seq = 1;
  e.method = "host.call";
  e.request_json = R"({"args":{"x":1},"name":"host.ping"})";
  e.response_json = R"({"result":{"x":1}})";
  tactus::protocol::Message m;
  m.kind = tactus::protocol::MessageKind::request;
  m.id = 1;
  m.method = "host.call";
  m.params = Json{{"name", "host.ping"}, {"args", {{"x", 2}}}};
  ExchangeJournal differs(journal.get(), "r", {e}, nullptr);
  const auto next = differs.next(m);
  CHECK(next.step == ExchangeJournal::Step::diverged);
  CHECK(next.message ==
        "the resumed run diverged from its journal at request 1: the journal has host.call "
        "{\"args\":{\"x\":1},\"name\":\"host.ping\"}, the procedure now asks host.call "
        "{\"args\":{\"x\":2},\"name\":\"host.ping\"}");
  m.params = Json{{"name", "host.ping"}, {"args", {{"x", 1}}}};
  m.id = 9;
  ExchangeJournal same(journal.get(), "r", {e}, nullptr);
  const auto ok = same.next(m);
  CHECK(ok.step == ExchangeJournal::Step::replayed);
  CHECK(Json::parse(ok.payload)["result"]["x"] == 1);
  CHECK(Json::parse(ok.payload)["id"] == 9);
}

namespace {}  // namespace

TEST_CASE("durable: the host killed with -9 at many points, resume repeats no model or tool call",
          "[durable][cli]") {
  const std::string key = "sk-durable-test-key-31337";
  const char* source = R"(
local done = require("tactus.tools.done")
lookup = Tool { input = { q = field.string{required = true} },
  function(a) return Host.call("http.request", { url = input.url .. "?q=" .. a.q }).status end }
a = Agent { model = "fake/m", tools = { lookup, done } }
local outputs = {}
for i = 1, 3 do
  local t = a("step " .. i)              -- the model calls lookup
  if #t.tool_calls > 0 then t = a() end  -- and then answers
  outputs[#outputs + 1] = t.output
  Host.call("http.request", { url = input.url .. "?direct=" .. i })
end
return { outputs = outputs, calls = lookup.call_count() }
)";
  // The reply depends on the conversation so far (its length), not on arrival order: the one
  // request in flight when the host died is sent again by the resume and must get the same
  // answer. Each reply takes a while, so the kills land in different places: while a model
  // call is outstanding, between calls, during a tool call.
  const auto responder = [](const tactus::test::FakeRequest& req) {
    const std::size_t n = req.body.value("messages", Json::array()).size();
    const std::string step = std::to_string((n - 1) / 4 + 1);  // 1, 5, 9 messages: a new step
    FakeReply reply = FakeReply::say("answer " + step);
    if ((n - 1) % 4 == 0)
      reply = FakeReply::call({{"c" + step, "lookup", "{\"q\": \"q" + step + "\"}"}});
    reply.delay_seconds = 0.15;
    return reply;
  };
  std::set<std::size_t> points_seen;  // journal sizes the kills left behind
  for (int point = 0; point < 8; ++point) {
    FakeLlmServer server;
    server.respond_with(responder);
    tactus::test::HttpTestServer tools_server;  // counts the tool calls that reach the network
    Project p(source);
    tactus::test::write_file(
        p.tac.path() + ".yml",
        "providers:\n  fake: {base_url: \"" + server.base_url() +
            "\", api_key: K}\nsecrets:\n  K: {env: TACTUS_TEST_KEY}\n"
            "sandbox:\n  network: filtered\n  network_filter: {allow: ['^127\\.0\\.0\\.1$']}\n"
            "tools:\n  allow: [http.request]\n");
    const std::vector<std::string> env = {"TACTUS_TEST_KEY=" + key};
    const std::string id = "kill" + std::to_string(point);
    const pid_t pid = start_tactus(
        p.dir(),
        {"run", p.tac.path(), "--run-id", id, "--param", "url=" + tools_server.url("/hello")}, env);
    REQUIRE(pid > 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(40 + 120 * point));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    std::string error;
    {
      auto j = tactus::broker::Journal::open(p.dir() + "/.tactus/journal.db", error);
      REQUIRE(j);
      points_seen.insert(j->entries(id, error).size());
    }
    const int before = server.request_count();
    CliRun r = p.tactus({"resume", id, "--json"}, env);
    if (r.exit_code == 2 && (r.out + r.err).find("no run '" + id + "'") != std::string::npos) {
      // The kill came before the run was recorded (a slow start, under ASan): nothing it did
      // reached the outside, so there is nothing to resume.
      CHECK(server.request_count() == 0);
      CHECK(tools_server.requests() == 0);
      continue;
    }
    if (r.exit_code == 2 && r.err.find("has completed") != std::string::npos) {
      // The kill came after the end: nothing to resume.
      CHECK(server.request_count() == 6);
      CHECK(tools_server.requests() == 6);
      continue;
    }
    INFO("kill point " << point << ": " << r.out << r.err);
    REQUIRE(r.exit_code == 0);
    const Json doc = Json::parse(r.out);
    CHECK(doc["result"]["outputs"] == Json{"answer 1", "answer 2", "answer 3"});
    CHECK(doc["result"]["calls"] == 3);
    // Every model request whose answer the journal got reached the provider once; only the one
    // in flight at the kill (its answer lost with the host) may have been sent twice, and then
    // it is the last request of the killed run.
    const auto reqs = server.requests();
    std::set<std::string> distinct;
    for (const auto& q : reqs) distinct.insert(q.raw_body);
    CHECK(distinct.size() == 6);
    CHECK(reqs.size() <= 7);
    if (reqs.size() == 7 && before > 0)
      CHECK(reqs[static_cast<std::size_t>(before) - 1].raw_body ==
            reqs[static_cast<std::size_t>(before)].raw_body);
    CHECK(tools_server.requests() >= 6);  // 3 through the agent's Lua tool, 3 direct
    CHECK(tools_server.requests() <= 7);  // the same rule for a tool call in flight
    CHECK(r.out.find(key) == std::string::npos);
  }
  CHECK(points_seen.size() >= 4);  // the kills really landed at different points
}

TEST_CASE("durable: journal.enabled false runs without a journal, and Human.* then fails clearly",
          "[durable][cli]") {
  Project p("print(Host.call('host.ping', {x = 1}).x) return Human.approve{ message = 'x' }");
  tactus::test::write_file(p.tac.path() + ".yml", "journal:\n  enabled: false\n");
  const auto r = p.run("n1");
  CHECK(r.exit_code == 1);
  CHECK(r.out == "1\n");
  CHECK(r.err.find("failed: Human.approve needs a person at a terminal, or a journal to suspend "
                   "the run in") != std::string::npos);
  CHECK_FALSE(fs::exists(p.dir() + "/.tactus"));
  const auto show = p.tactus({"config", "show", p.tac.path()});
  CHECK(show.out.find("journal.enabled: false") != std::string::npos);
}

TEST_CASE("durable: an unwritable project refuses the run, naming the journal", "[durable][cli]") {
  if (::geteuid() == 0) SUCCEED("root can write anywhere; checked when run unprivileged");
  Project p("return 1");
  fs::create_directories(p.dir() + "/ro");
  tactus::test::write_file(p.dir() + "/ro/proc.tac", "Human.notify{ message = 'hi' } return 1");
  fs::permissions(p.dir() + "/ro", fs::perms::owner_read | fs::perms::owner_exec);
  if (::geteuid() != 0) {
    const auto r = run_tactus_in(p.dir() + "/ro", {"run", p.dir() + "/ro/proc.tac"});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("journal '" + p.dir() + "/ro/.tactus/journal.db'") != std::string::npos);
  }
  fs::permissions(p.dir() + "/ro", fs::perms::owner_all);
}

TEST_CASE("durable: a request whose timeout passed while suspended takes its default",
          "[durable][cli]") {
  Project p(R"(local ok = Human.approve{ message = 'deploy?', timeout = 1, default = true }
local name = Human.input{ message = 'name?', default = 'anon', timeout = 3600 }
return { ok = ok, name = name })");
  REQUIRE(p.run("d1").exit_code == 5);
  // Not yet past its timeout: still waiting.
  auto r = p.tactus({"resume", "d1"});
  CHECK(r.exit_code == 5);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  r = p.tactus({"resume", "d1"});
  CHECK(r.exit_code == 5);  // the approve took its default; the input still waits (1 h)
  CHECK(r.err.find("human.input") != std::string::npos);
  r = p.tactus({"answer", "d1", "--value", "Ada", "--resume"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Json::parse(r.out) == Json{{"ok", true}, {"name", "Ada"}});
}

TEST_CASE("durable: runs, answer and resume outside any project create nothing", "[durable][cli]") {
  TempTac empty("return 1");
  auto r = run_tactus_in(empty.dir(), {"runs"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.rfind("no runs: there is no journal at " + empty.dir() + "/.tactus/journal.db", 0) ==
        0);
  r = run_tactus_in(empty.dir(), {"resume", "nope"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("there is no journal at") != std::string::npos);
  r = run_tactus_in(empty.dir(), {"answer", "nope", "--value", "y"});
  CHECK(r.exit_code == 2);
  CHECK_FALSE(fs::exists(empty.dir() + "/.tactus"));
}

TEST_CASE("durable: a run without an outside effect leaves no journal, one with one does",
          "[durable][cli]") {
  Project p(
      "print(Host.call('host.ping', {x = 1}).x, os.time() > 0, math.random(10) > 0) return 1");
  auto r = p.run("pure");
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == "1\ttrue\ttrue\n1\n");
  CHECK_FALSE(fs::exists(p.dir() + "/.tactus"));  // nothing a resume could save
  tactus::test::write_file(p.tac.path(),
                           "print(os.time() > 0) Human.notify{ message = 'x' } return 2");
  r = p.run("effect");
  REQUIRE(r.exit_code == 0);
  auto runs = p.tactus({"runs", "--json"});
  REQUIRE(runs.exit_code == 0);
  const Json list = Json::parse(runs.out);
  REQUIRE(list.size() == 1);
  CHECK(list[0]["run_id"] == "effect");
  CHECK(list[0]["status"] == "completed");
}

TEST_CASE("durable: tactus runs fail marks a stuck run failed, a finished one is refused",
          "[durable][cli]") {
  Project p("local ok = Human.approve({ message = 'go?' })\nreturn ok\n");
  REQUIRE(p.run("stuck").exit_code == 5);
  CliRun r = p.tactus({"runs", "fail", "stuck", "--reason", "nobody will answer"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.err ==
        "tactus: run stuck (suspended) marked failed by 'tactus runs fail': nobody will answer\n");
  r = p.tactus({"runs", "--json"});
  CHECK(r.out.find("\"status\":\"failed\"") != std::string::npos);
  r = p.tactus({"resume", "stuck"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("has failed; there is nothing to resume") != std::string::npos);
  r = p.tactus({"runs", "fail", "stuck"});
  CHECK(r.exit_code == 2);
  CHECK(r.err == "tactus: run stuck has failed already\n");
  CHECK(p.tactus({"runs", "fail"}).exit_code == 2);
  CHECK(p.tactus({"runs", "fail", "nope"}).err.find("no run 'nope'") != std::string::npos);
}

TEST_CASE("durable: a run whose resume dies twice at the same entry is marked failed",
          "[durable][cli]") {
  // A journaled effect, then a loop the host is killed in, every time.
  Project p("Human.notify({ message = 'journaled' })\nwhile true do end\n");
  const auto kill_after = [&](std::vector<std::string> args) {
    const pid_t pid = start_tactus(p.dir(), args, {});
    REQUIRE(pid > 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
  };
  kill_after({"run", p.tac.path(), "--run-id", "loop"});
  kill_after({"resume", "loop"});  // dies where the run died: first time, retried
  kill_after({"resume", "loop"});  // dies there again
  const CliRun r = p.tactus({"resume", "loop"});
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("run loop: its last 2 resumes died at entry 2 without journaling it") !=
        std::string::npos);
  CHECK(p.tactus({"runs", "--json"}).out.find("\"status\":\"failed\"") != std::string::npos);
}
