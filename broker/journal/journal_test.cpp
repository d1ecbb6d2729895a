// The journal store: opening (creation, WAL, schema version, refusals), runs, entries, and the
// clear errors for damaged and locked files. Durability under SIGKILL and the leases have
// their own files (journal_durability_test.cpp, journal_lease_test.cpp).
#include "broker/journal/journal.h"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "broker/journal/journal_schema.h"
#include "broker/journal/journal_test_support.h"

using tactus::broker::Journal;
using tactus::broker::JournalEntry;
using tactus::broker::RunRecord;
using tactus::journal_test::open_ok;
using tactus::journal_test::RawDb;
using tactus::journal_test::read_bytes;
using tactus::journal_test::TempDir;
using tactus::journal_test::write_bytes;

namespace {

RunRecord run_named(const std::string& id, double started_at = 0) {
  RunRecord r;
  r.run_id = id;
  r.procedure = "/home/ada/proc.tac";
  r.source_hash = std::string(64, 'a');
  r.config_hash = std::string(64, 'b');
  r.input_json = R"({"name":"Ada"})";
  r.started_at = started_at;
  return r;
}

JournalEntry entry(std::int64_t seq, const std::string& response = R"({"result":{"ok":true}})") {
  JournalEntry e;
  e.seq = seq;
  e.method = "host.call";
  e.request_json = R"({"args":{"n":)" + std::to_string(seq) + R"(},"name":"host.ping"})";
  e.response_json = response;
  e.at = 1000 + static_cast<double>(seq);
  return e;
}

}  // namespace

TEST_CASE("journal: open creates the file and its directories, in WAL mode, at the current version",
          "[journal]") {
  TempDir dir;
  const std::string path = dir / "a/b/journal.db";
  { auto j = open_ok(path); }
  REQUIRE(std::filesystem::exists(path));
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);  // inputs and model replies are in it
  RawDb raw(path);
  CHECK(raw.value("PRAGMA journal_mode") == "wal");
  CHECK(raw.value("PRAGMA user_version") == std::to_string(tactus::broker::kJournalSchemaVersion));
  CHECK(raw.value("SELECT count(*) FROM sqlite_master WHERE name IN ('runs','entries','leases')") ==
        "3");
}

TEST_CASE("journal: a reopened journal keeps its runs and entries", "[journal]") {
  TempDir dir;
  const std::string path = dir / "journal.db";
  std::string error;
  {
    auto j = open_ok(path);
    REQUIRE(j->create_run(run_named("r1"), error));
    REQUIRE(j->append("r1", entry(1), error));
    REQUIRE(j->append("r1", entry(2), error));
  }
  auto j = open_ok(path);
  const auto run = j->find_run("r1", error);
  REQUIRE(run);
  CHECK(run->input_json == R"({"name":"Ada"})");
  const auto es = j->entries("r1", error);
  REQUIRE(es.size() == 2);
  CHECK(es[1].request_json == entry(2).request_json);
  RawDb raw(path);
  CHECK(raw.value("PRAGMA user_version") ==
        std::to_string(tactus::broker::kJournalSchemaVersion));  // reopening does not migrate again
}

TEST_CASE("journal: a journal from a newer tactus is refused and left alone", "[journal]") {
  TempDir dir;
  const std::string path = dir / "journal.db";
  { auto j = open_ok(path); }
  { RawDb(path).exec("PRAGMA user_version = 99"); }
  const std::string before = read_bytes(path);
  std::string error;
  CHECK(Journal::open(path, error) == nullptr);
  CHECK(error == "journal '" + path +
                     "': written by a newer tactus (schema version 99, this tactus knows up to "
                     "6); upgrade tactus to use it");
  CHECK(read_bytes(path) == before);
}

TEST_CASE("journal: an uncreatable directory is a one-line error naming the path", "[journal]") {
  TempDir dir;
  write_bytes(dir / "file", "not a directory");
  const std::string path = dir / "file/sub/journal.db";
  std::string error;
  CHECK(Journal::open(path, error) == nullptr);
  CHECK(error.rfind("journal '" + path + "': cannot create its directory: ", 0) == 0);
  CHECK(error.find('\n') == std::string::npos);
}

TEST_CASE("journal: runs are created, found, listed newest first and finished", "[journal]") {
  TempDir dir;
  auto j = open_ok(dir / "journal.db");
  std::string error;
  REQUIRE(j->create_run(run_named("old", 100), error));
  REQUIRE(j->create_run(run_named("new", 300), error));
  REQUIRE(j->create_run(run_named("mid", 200), error));

  SECTION("a duplicate run id is refused") {
    CHECK_FALSE(j->create_run(run_named("mid", 400), error));
    CHECK(error == "run 'mid' already exists");
    CHECK(j->find_run("mid", error)->started_at == 200);
  }
  SECTION("find") {
    const auto r = j->find_run("mid", error);
    REQUIRE(r);
    CHECK(r->status == "running");  // the default
    CHECK(r->procedure == "/home/ada/proc.tac");
    CHECK(r->source_hash == std::string(64, 'a'));
    CHECK(r->started_at == 200);
    CHECK(r->updated_at == 200);
    CHECK_FALSE(j->find_run("nope", error));
    CHECK(error.empty());
  }
  SECTION("list, all and by status, newest first") {
    auto ids = [&](const std::string& status) {
      std::vector<std::string> out;
      for (const auto& r : j->list_runs(status, error)) out.push_back(r.run_id);
      return out;
    };
    CHECK(ids("") == std::vector<std::string>{"new", "mid", "old"});
    REQUIRE(j->finish_run("mid", "completed", R"({"x":1})", "", error));
    REQUIRE(j->set_status("old", "suspended", error));
    CHECK(ids("running") == std::vector<std::string>{"new"});
    CHECK(ids("completed") == std::vector<std::string>{"mid"});
    CHECK(ids("suspended") == std::vector<std::string>{"old"});
    CHECK(ids("failed").empty());
    CHECK(ids("bogus").empty());
    CHECK(error ==
          "unknown run status 'bogus' (running, suspended, interrupted, completed or failed)");
  }
  SECTION("finish records the result or the error, once") {
    REQUIRE(j->finish_run("mid", "completed", R"({"x":1})", "", error));
    REQUIRE(j->finish_run("old", "failed", "", "proc.tac:3: boom", error));
    const auto mid = j->find_run("mid", error);
    CHECK(mid->status == "completed");
    CHECK(mid->result_json == R"({"x":1})");
    CHECK(mid->updated_at > 1e9);  // now, not the 200 it started at
    CHECK(j->find_run("old", error)->error == "proc.tac:3: boom");

    CHECK_FALSE(j->finish_run("mid", "failed", "", "again", error));
    CHECK(error == "run 'mid' is already completed");
    CHECK_FALSE(j->set_status("old", "running", error));
    CHECK(error == "run 'old' is already failed");
    CHECK_FALSE(j->finish_run("nope", "completed", "{}", "", error));
    CHECK(error == "run 'nope' not found");
    CHECK_FALSE(j->finish_run("new", "suspended", "", "", error));
    CHECK(error == "run 'new': finish_run takes completed or failed, not 'suspended'");
  }
}

TEST_CASE("journal: entries are appended in order, without gaps or repeats", "[journal]") {
  TempDir dir;
  auto j = open_ok(dir / "journal.db");
  std::string error;
  REQUIRE(j->create_run(run_named("r"), error));
  REQUIRE(j->create_run(run_named("other"), error));
  for (int seq = 1; seq <= 3; ++seq) REQUIRE(j->append("r", entry(seq), error));
  REQUIRE(j->append("other", entry(1), error));  // seq counts per run

  CHECK_FALSE(j->append("r", entry(5), error));
  CHECK(error == "run 'r': cannot append entry 5, the next one is 4");
  CHECK_FALSE(j->append("r", entry(3), error));
  CHECK(error == "run 'r': cannot append entry 3, the next one is 4");
  CHECK_FALSE(j->append("r", entry(0), error));
  CHECK(error == "run 'r': cannot append entry 0, the next one is 4");
  CHECK_FALSE(j->append("ghost", entry(1), error));
  CHECK(error == "run 'ghost' not found");

  const auto es = j->entries("r", error);
  REQUIRE(es.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(es[i].seq == i + 1);
    CHECK(es[i].method == "host.call");
    CHECK(es[i].request_json == entry(i + 1).request_json);
    CHECK(es[i].response_json == R"({"result":{"ok":true}})");
    CHECK(es[i].at == 1001 + i);
  }
  CHECK(j->entries("ghost", error).empty());
  CHECK(error.empty());

  SECTION("a finished run takes no more entries") {
    REQUIRE(j->finish_run("r", "completed", "{}", "", error));
    CHECK_FALSE(j->append("r", entry(4), error));
    CHECK(error == "run 'r' is completed: its journal takes no more entries");
  }
  SECTION("a suspended run does") {
    REQUIRE(j->set_status("r", "suspended", error));
    CHECK(j->append("r", entry(4), error));
  }
}

TEST_CASE("journal: answer fills in a pending entry, once", "[journal]") {
  TempDir dir;
  auto j = open_ok(dir / "journal.db");
  std::string error;
  REQUIRE(j->create_run(run_named("r"), error));
  REQUIRE(j->append("r", entry(1), error));
  JournalEntry ask = entry(2, "");
  ask.method = "human.approve";
  ask.request_json = R"({"message":"Ship it?"})";
  REQUIRE(j->append("r", ask, error));
  REQUIRE(j->set_status("r", "suspended", error));

  REQUIRE(j->entries("r", error)[1].response_json.empty());  // pending
  REQUIRE(j->answer("r", 2, R"({"result":true})", error));
  CHECK(j->entries("r", error)[1].response_json == R"({"result":true})");

  CHECK_FALSE(j->answer("r", 2, R"({"result":false})", error));
  CHECK(error == "run 'r': entry 2 is already answered");
  CHECK(j->entries("r", error)[1].response_json == R"({"result":true})");
  CHECK_FALSE(j->answer("r", 1, R"({"result":false})", error));
  CHECK(error == "run 'r': entry 1 is already answered");
  CHECK_FALSE(j->answer("r", 9, R"({"result":false})", error));
  CHECK(error == "run 'r': entry 9 does not exist");
  CHECK_FALSE(j->answer("r", 2, "", error));
  CHECK(error == "run 'r': entry 2: the answer is empty");
}

TEST_CASE("journal: a damaged file is refused as not a database and left as it was", "[journal]") {
  TempDir dir;
  const std::string path = dir / "journal.db";
  std::string damaged;
  SECTION("garbage") {
    for (int i = 0; i < 8192; ++i) damaged.push_back(static_cast<char>((i * 7919 + 13) % 251));
    write_bytes(path, damaged);
  }
  SECTION("a real journal, truncated") {
    std::string error;
    {
      auto j = open_ok(path);
      REQUIRE(j->create_run(run_named("r"), error));
      for (int seq = 1; seq <= 200; ++seq) REQUIRE(j->append("r", entry(seq), error));
      // Everything into the database file itself: the WAL is kept across closes (journal.cpp),
      // and this case damages the database, not a WAL that still holds the data.
      REQUIRE(j->checkpoint(error));
    }
    std::filesystem::remove(path + "-wal");
    std::filesystem::remove(path + "-shm");
    const std::string whole = read_bytes(path);
    REQUIRE(whole.size() > 3 * 4096);
    const std::size_t cut = GENERATE(50, 1000, 8192);
    damaged = whole.substr(0, cut);
    write_bytes(path, damaged);
  }
  std::string error;
  CHECK(Journal::open(path, error) == nullptr);
  CHECK(error == "journal '" + path +
                     "': file is not a database (corrupted?); move it aside to start a new "
                     "journal");
  CHECK(read_bytes(path) == damaged);
  CHECK_FALSE(std::filesystem::exists(path + "-wal"));
}

TEST_CASE("journal: a lock held past the busy timeout is a clear error", "[journal]") {
  TempDir dir;
  const std::string path = dir / "journal.db";
  const auto timeout = std::chrono::milliseconds(150);
  std::string error;
  { REQUIRE(open_ok(path)->create_run(run_named("r"), error)); }

  SECTION("opening while another connection holds it exclusively") {
    RawDb other(path);
    REQUIRE(other.exec("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; "
                       "UPDATE runs SET status = 'suspended'") == SQLITE_OK);
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(Journal::open(path, error, timeout) == nullptr);
    const auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(error ==
          "journal '" + path + "': locked by another process; try again when it has finished");
    CHECK(waited >= timeout);  // it did wait for the lock, as long as it was told
    CHECK(waited < std::chrono::seconds(2));
  }
  SECTION("appending while another connection holds the write lock") {
    auto j = Journal::open(path, error, timeout);
    REQUIRE(j);
    {
      RawDb other(path);
      REQUIRE(other.exec("BEGIN EXCLUSIVE; UPDATE runs SET input_json = '{}'") == SQLITE_OK);
      CHECK_FALSE(j->append("r", entry(1), error));
      CHECK(error ==
            "journal '" + path + "': locked by another process; try again when it has finished");
      // WAL: readers are not blocked by a writer, so `tactus runs` works during a run.
      REQUIRE(j->find_run("r", error));
      CHECK(j->find_run("r", error)->input_json == R"({"name":"Ada"})");
    }  // the other connection closes, its transaction rolled back
    CHECK(j->append("r", entry(1), error));
  }
}
