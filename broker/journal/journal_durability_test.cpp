// Durability: append() commits before it returns. A child process appends and is killed with
// SIGKILL; the reopened journal must hold exactly what the child was told had been written.
#include "broker/journal/journal.h"

#include <catch2/catch.hpp>

#include <sstream>
#include <string>

#include "broker/journal/journal_test_support.h"

using tactus::broker::Journal;
using tactus::broker::JournalEntry;
using tactus::broker::RunRecord;
using tactus::journal_test::Child;
using tactus::journal_test::child_receive;
using tactus::journal_test::child_send;
using tactus::journal_test::RawDb;
using tactus::journal_test::TempDir;

namespace {

// The entry a child appends as seq: its content is checked after the kill.
JournalEntry nth_entry(std::int64_t seq) {
  JournalEntry e;
  e.seq = seq;
  e.method = seq % 3 == 0 ? "llm.chat" : "host.call";
  e.request_json =
      R"({"args":{"path":"notes/)" + std::to_string(seq) + R"(.md"},"name":"file.read"})";
  e.response_json = R"({"result":{"content":")" +
                    std::string(static_cast<std::size_t>(seq % 300), 'x') + R"("}})";
  e.at = static_cast<double>(seq);
  return e;
}

void create_run(const std::string& path) {
  std::string error;
  auto j = Journal::open(path, error);
  REQUIRE(j);
  RunRecord r;
  r.run_id = "r";
  r.procedure = "/p.tac";
  REQUIRE(j->create_run(r, error));
}  // closed again before any fork: connections must not cross one

// Child body: opens the journal, appends entries 1..n, writing "seq" to the parent after each
// append returned true. With wait_for_ack, it then waits for "go" before the next append, so
// the parent can kill it at an exact point; otherwise it runs on, and the kill lands anywhere.
int append_entries(const std::string& path, int n, bool wait_for_ack, int in, int out) {
  std::string error;
  auto j = Journal::open(path, error);
  if (!j) return 10;
  for (int seq = 1; seq <= n; ++seq) {
    if (!j->append("r", nth_entry(seq), error)) return 11;
    child_send(out, std::to_string(seq));
    if (wait_for_ack && child_receive(in) != "go") return 12;
  }
  child_receive(in);  // wait to be killed
  return 0;
}

// The journal after the kill: entries 1..count, each exactly as appended, and a sound file.
std::int64_t check_prefix(const std::string& path) {
  std::string error;
  auto j = Journal::open(path, error);
  INFO(error);
  REQUIRE(j);
  const auto es = j->entries("r", error);
  REQUIRE(error.empty());
  for (std::size_t i = 0; i < es.size(); ++i) {
    const auto want = nth_entry(static_cast<std::int64_t>(i) + 1);
    REQUIRE(es[i].seq == want.seq);
    REQUIRE(es[i].method == want.method);
    REQUIRE(es[i].request_json == want.request_json);
    REQUIRE(es[i].response_json == want.response_json);
  }
  j.reset();
  CHECK(RawDb(path).value("PRAGMA integrity_check") == "ok");
  return static_cast<std::int64_t>(es.size());
}

}  // namespace

TEST_CASE("journal durability: killed right after append N returned, N entries are there",
          "[journal]") {
  const int kill_after = GENERATE(1, 2, 17, 300, 1500);  // 1500: past an automatic checkpoint
  TempDir dir;
  const std::string path = dir / "journal.db";
  create_run(path);

  Child child([&](int in, int out) { return append_entries(path, 2000, true, in, out); });
  for (int seq = 1; seq < kill_after; ++seq) {
    REQUIRE(child.receive() == std::to_string(seq));
    child.send("go");
  }
  REQUIRE(child.receive() == std::to_string(kill_after));
  child.kill_now();  // blocked waiting for "go": append N has returned, N+1 has not begun
  REQUIRE(child.reap() == 128 + SIGKILL);

  INFO("killed after append " << kill_after);
  CHECK(check_prefix(path) == kill_after);
}

TEST_CASE("journal durability: killed in the middle of appending, no acknowledged entry is lost",
          "[journal]") {
  const int kill_at = GENERATE(1, 40, 700, 1900);
  TempDir dir;
  const std::string path = dir / "journal.db";
  create_run(path);

  Child child([&](int in, int out) { return append_entries(path, 2000, false, in, out); });
  for (int seq = 1; seq <= kill_at; ++seq) REQUIRE(child.receive() == std::to_string(seq));
  child.kill_now();  // while it appends on: it may be inside a commit
  REQUIRE(child.reap() == 128 + SIGKILL);

  // The last seq the child reported: every append that returned before the kill.
  // (Each report is one write() of a few bytes to a pipe, so no report is torn.)
  std::int64_t acknowledged = kill_at;
  std::istringstream more(child.rest());
  for (std::string line; std::getline(more, line);) acknowledged = std::stoll(line);
  const std::int64_t found = check_prefix(path);
  INFO("acknowledged " << acknowledged << ", found " << found);
  // Exactly those, plus at most the one whose commit landed before its report was written.
  CHECK(found >= acknowledged);
  CHECK(found <= acknowledged + 1);
}
