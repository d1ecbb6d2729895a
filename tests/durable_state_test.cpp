// The procedure's state in the journal: sent by the VM when it changed, journaled as entries of
// their own, checked on resume, and given back when a checkpoint's function is not run again.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <sqlite3.h>

#include "broker/journal/exchange_journal.h"
#include "broker/journal/journal.h"
#include "tests/support/cli_runner.h"
#include "tests/support/project_journal.h"

using tactus::broker::ExchangeJournal;
using tactus::broker::JournalEntry;
using namespace tactus::test;  // tests/support/
using Json = nlohmann::json;

namespace {

JournalEntry entry(std::int64_t seq, const std::string& method, const std::string& request,
                   const std::string& response) {
  JournalEntry e;
  e.seq = seq;
  e.method = method;
  e.request_json = request;
  e.response_json = response;
  return e;
}

tactus::protocol::Message request(std::int64_t id, const std::string& method, Json params) {
  tactus::protocol::Message m;
  m.kind = tactus::protocol::MessageKind::request;
  m.id = id;
  m.method = method;
  m.params = std::move(params);
  return m;
}

}  // namespace

TEST_CASE("durable state: journaled as it changes, a checkpoint's changes come back on resume",
          "[durable][cli]") {
  TempTac tac(R"(
state.count = 0
local v = Step.checkpoint(function()
  state.summary = "computed"
  State.increment("count")
  return 42
end)
local ok = Human.approve({ message = "go on?" })
State.append("log", ok and "yes" or "no")
return { summary = state.summary, count = state.count, log = state.log, v = v }
)");
  CliRun r = run_tactus_in(tac.dir(), {"run", tac.path(), "--run-id", "s1"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 5);
  REQUIRE(run_tactus_in(tac.dir(), {"answer", "s1", "--value", "yes"}).exit_code == 0);
  r = run_tactus_in(tac.dir(), {"resume", "s1", "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  // The checkpoint's function is not run again (the broker answers it from the journal); the
  // state it left is given back with its result.
  CHECK(Json::parse(r.out)["result"] ==
        Json{{"summary", "computed"}, {"count", 1}, {"log", {"yes"}}, {"v", 42}});

  const auto entries = project_journal_entries(tac.dir(), "s1");
  std::vector<std::string> shape;
  for (const auto& e : entries) shape.push_back(e.method + " " + e.request_json);
  CHECK(shape == std::vector<std::string>{
                     R"(state {"count":0})",
                     "checkpoint {}",
                     R"(state {"count":1,"summary":"computed"})",
                     R"(checkpoint.result {"value":42})",
                     R"(human.approve {"message":"go on?"})",
                     R"(state {"count":1,"log":["yes"],"summary":"computed"})",
                 });
}

TEST_CASE("durable state: an unchanged or empty state is not sent again", "[durable][cli]") {
  TempTac tac(R"(
Human.notify({ message = "journaled from here" })
for i = 1, 3 do Host.call("host.ping", {}) end
state.n = 1
for i = 1, 3 do Host.call("host.ping", {}) end
state.n = 1 -- the same value: nothing new to journal
Host.call("host.ping", {})
state.n = nil
Host.call("host.ping", {})
state.list = { "a" }
Host.call("host.ping", {})
table.insert(state.list, "b") -- changed in place: still seen
Host.call("host.ping", {})
state.list[2] = "c"           -- another string of the same length
return Host.call("host.ping", { last = true }).last
)");
  CliRun r = run_tactus_in(tac.dir(), {"run", tac.path(), "--run-id", "u1"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::vector<std::string> states;
  for (const auto& e : project_journal_entries(tac.dir(), "u1"))
    if (e.method == "state") states.push_back(e.request_json);
  CHECK(states == std::vector<std::string>{R"({"n":1})", "{}", R"({"list":["a"]})",
                                           R"({"list":["a","b"]})", R"({"list":["a","c"]})"});
}

TEST_CASE("durable state: a value that is not JSON is refused, naming the field",
          "[durable][cli]") {
  const char* source = R"(
Human.notify({ message = "journaled" })
state.ok = 1
state.handler = function() end
return Host.call("host.ping", {}) ~= nil
)";
  TempTac tac(source);
  CliRun r = run_tactus_in(tac.dir(), {"run", tac.path(), "--run-id", "f1"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("invalid_args: state.handler: cannot encode a value of type function (state "
                   "is journaled with the run: it holds JSON values only)") != std::string::npos);
  // Without a journal the state is never sent, so any Lua value may sit in it.
  TempTac unjournaled(source);
  tactus::test::write_file(unjournaled.path() + ".yml", "journal:\n  enabled: false\n");
  r = run_tactus_in(unjournaled.dir(), {"run", unjournaled.path()});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "true\n");
}

TEST_CASE("durable state: a state over the message limit fails the request it would go with",
          "[durable][cli][limits]") {
  TempTac tac(R"(
Human.notify({ message = "journaled" })
state.big = string.rep("x", 70000)
return Host.call("host.ping", {}) ~= nil
)");
  CliRun r = run_tactus_in(tac.dir(), {"run", tac.path(), "--message-limit", "64k"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("invalid_args: state message of 700") != std::string::npos);
  CHECK(r.err.find("bytes exceeds the limit of 65536 bytes") != std::string::npos);
}

TEST_CASE("durable state: a replay whose state differs from the journal's stops, showing both",
          "[durable]") {
  TempTac dir("unused");
  std::string error;
  auto journal = tactus::broker::Journal::open(dir.dir() + "/j.db", error);
  REQUIRE(journal);
  const std::vector<JournalEntry> replay = {
      entry(1, "state", R"({"a":1})", R"({"result":{}})"),
      entry(2, "host.call", R"({"args":{},"name":"host.ping"})", R"({"result":{}})"),
  };
  SECTION("another state") {
    ExchangeJournal ex(journal.get(), "r", replay, nullptr);
    const auto next = ex.state(Json{{"a", 2}}, error);
    CHECK(next.step == ExchangeJournal::Step::diverged);
    CHECK(next.message ==
          "the resumed run diverged from its journal at entry 1: the journal has state "
          "{\"a\":1}, the procedure's state is now {\"a\":2}");
  }
  SECTION("a state where the journal has a request") {
    ExchangeJournal ex(journal.get(), "r", replay, nullptr);
    REQUIRE(ex.state(Json{{"a", 1}}, error).step == ExchangeJournal::Step::replayed);
    const auto next = ex.state(Json{{"a", 3}}, error);
    CHECK(next.step == ExchangeJournal::Step::diverged);
    CHECK(next.message.find("at entry 2: the journal has host.call") != std::string::npos);
  }
  SECTION("a request where the journal has a state") {
    ExchangeJournal ex(journal.get(), "r", replay, nullptr);
    const auto next =
        ex.next(request(1, "host.call", Json{{"name", "host.ping"}, {"args", Json::object()}}));
    CHECK(next.step == ExchangeJournal::Step::diverged);
    CHECK(next.message.find("the journal has state {\"a\":1}") != std::string::npos);
  }
}

TEST_CASE("durable state: a finished checkpoint is answered with the state its function left",
          "[durable]") {
  TempTac dir("unused");
  std::string error;
  auto journal = tactus::broker::Journal::open(dir.dir() + "/j.db", error);
  REQUIRE(journal);
  const std::vector<JournalEntry> replay = {
      entry(1, "checkpoint", "{}", R"({"result":{"replayed":false}})"),
      entry(2, "state", R"({"x":"set inside"})", R"({"result":{}})"),
      entry(3, "checkpoint.result", R"({"value":7})", R"({"result":{}})"),
      entry(4, "host.call", R"({"args":{},"name":"host.ping"})", R"({"result":{"p":1}})"),
  };
  ExchangeJournal ex(journal.get(), "r", replay, nullptr);
  const auto next = ex.next(request(5, "checkpoint", Json::object()));
  REQUIRE(next.step == ExchangeJournal::Step::replayed);
  CHECK(Json::parse(next.payload) ==
        Json{{"id", 5},
             {"result", {{"replayed", true}, {"value", 7}, {"state", {{"x", "set inside"}}}}}});
  // The function's entries are passed over: the next request is the journal's fourth.
  const auto after =
      ex.next(request(6, "host.call", Json{{"name", "host.ping"}, {"args", Json::object()}}));
  CHECK(after.step == ExchangeJournal::Step::replayed);
  CHECK(ex.seq() == 4);
}

TEST_CASE("durable state: a run journaled before schema 2 resumes without state entries",
          "[durable][cli]") {
  TempTac tac(R"(
local ok = Human.approve({ message = "go?" })
state.answer = ok
local c = Step.checkpoint(function() state.inside = 1 return 5 end)
return { answer = state.answer, c = c, inside = state.inside }
)");
  REQUIRE(run_tactus_in(tac.dir(), {"run", tac.path(), "--run-id", "old1"}).exit_code == 5);
  // The journal as a tactus before schema 2 left it: no state_journaled column, version 1.
  const std::string db = tac.dir() + "/.tactus/journal.db";
  // (Its configuration fingerprint of scheme 1, from before sandbox.limits.disk existed.)
  const std::string old_hash = tactus::test::scheme1_config_hash(tac.dir(), tac.path(), false);
  REQUIRE(
      sql(db,
          "UPDATE runs SET config_hash = '" + old_hash +
              "'; ALTER TABLE runs DROP COLUMN state_journaled; ALTER TABLE runs DROP COLUMN "
              "resume_seq; ALTER TABLE runs DROP COLUMN resume_deaths; ALTER TABLE runs DROP "
              "COLUMN sealed; ALTER TABLE runs DROP COLUMN config_scheme; ALTER TABLE runs DROP "
              "COLUMN repeated; ALTER TABLE runs DROP COLUMN config_text; PRAGMA user_version = "
              "1") == "");
  REQUIRE(run_tactus_in(tac.dir(), {"answer", "old1", "--value", "yes"}).exit_code == 0);
  const CliRun r = run_tactus_in(tac.dir(), {"resume", "old1", "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Json::parse(r.out)["result"] == Json{{"answer", true}, {"c", 5}, {"inside", 1}});
  for (const auto& e : project_journal_entries(tac.dir(), "old1")) CHECK(e.method != "state");
  CHECK(sql(db, "PRAGMA user_version") == "6");
  CHECK(sql(db, "SELECT config_scheme FROM runs") == "2");  // moved to scheme 2 by its resume
}
