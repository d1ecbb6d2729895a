// Journal::Batch (several calls, one transaction), the Journal shared by threads, and the WAL's
// checkpoint size (set_checkpoint_pages).
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "broker/journal/journal.h"
#include "broker/journal/journal_test_support.h"

using tactus::broker::Journal;
using tactus::broker::JournalEntry;
using tactus::broker::RunRecord;
using tactus::journal_test::open_ok;
using tactus::journal_test::RawDb;
using tactus::journal_test::TempDir;

namespace {

RunRecord run_named(const std::string& id) {
  RunRecord r;
  r.run_id = id;
  r.procedure = "/home/ada/proc.tac";
  r.source_hash = std::string(64, 'a');
  r.config_hash = std::string(64, 'b');
  r.input_json = "{}";
  r.status = "queued";
  return r;
}

JournalEntry entry(std::int64_t seq) {
  JournalEntry e;
  e.seq = seq;
  e.method = "host.call";
  e.request_json = R"({"name":"host.ping"})";
  e.response_json = R"({"result":{"ok":true}})";
  return e;
}

std::string status_on_disk(const std::string& path, const std::string& id) {
  return RawDb(path).value("SELECT status FROM runs WHERE run_id = '" + id + "'");
}

}  // namespace

TEST_CASE("journal batch: its calls commit together, and other connections see none before",
          "[journal]") {
  TempDir dir;
  const std::string path = dir / "journal.db";
  auto j = open_ok(path);
  std::string error;
  REQUIRE(j->create_run(run_named("r1"), error));
  {
    Journal::Batch batch(*j, error);
    REQUIRE(batch.open());
    REQUIRE(j->claim("r1", error));
    REQUIRE(j->set_status("r1", "running", error));
    // Another connection (another process's view) still sees the run as it was.
    CHECK(status_on_disk(path, "r1") == "queued");
    REQUIRE(batch.commit(error));
    CHECK_FALSE(batch.open());
  }
  CHECK(status_on_disk(path, "r1") == "running");
  // The claim committed with it: a second Journal (another holder) is refused.
  auto other = open_ok(path);
  CHECK_FALSE(other->claim("r1", error));
  CHECK(error.find("is being run by process") != std::string::npos);
}

TEST_CASE("journal batch: a second batch inside one is refused and the first goes on",
          "[journal]") {
  TempDir dir;
  auto j = open_ok(dir / "journal.db");
  std::string error;
  REQUIRE(j->create_run(run_named("r1"), error));
  Journal::Batch outer(*j, error);
  REQUIRE(outer.open());
  REQUIRE(j->set_status("r1", "running", error));
  {
    Journal::Batch inner(*j, error);
    CHECK_FALSE(inner.open());
    CHECK(error.find("within a transaction") != std::string::npos);
  }
  // Still the outer batch's: a call's own transaction is a savepoint in it, and all commit.
  CHECK(j->append_batch("r1", {entry(1), entry(2)}, error));
  REQUIRE(outer.commit(error));
  CHECK(j->entries("r1", error).size() == 2);
  CHECK(j->find_run("r1", error)->status == "running");
}

TEST_CASE("journal batch: dropped uncommitted, every call in it is undone, the claim too",
          "[journal]") {
  TempDir dir;
  const std::string path = dir / "journal.db";
  auto j = open_ok(path);
  std::string error;
  REQUIRE(j->create_run(run_named("r1"), error));
  {
    Journal::Batch batch(*j, error);
    REQUIRE(batch.open());
    REQUIRE(j->claim("r1", error));
    REQUIRE(j->set_status("r1", "running", error));
    REQUIRE(j->append("r1", entry(1), error));
  }  // a refusal returns here without commit
  CHECK(status_on_disk(path, "r1") == "queued");
  CHECK(j->entries("r1", error).empty());
  auto other = open_ok(path);
  INFO(error);
  CHECK(other->claim("r1", error));
}

TEST_CASE("journal batch: a call that fails inside it undoes only itself", "[journal]") {
  TempDir dir;
  const std::string path = dir / "journal.db";
  auto j = open_ok(path);
  std::string error;
  REQUIRE(j->create_run(run_named("r1"), error));
  REQUIRE(j->create_run(run_named("r2"), error));
  auto holder = open_ok(path);
  REQUIRE(holder->claim("r2", error));
  {
    Journal::Batch batch(*j, error);
    REQUIRE(batch.open());
    REQUIRE(j->claim("r1", error));
    REQUIRE(j->set_status("r1", "running", error));
    // A claim refused (its own savepoint, rolled back) leaves the batch going on.
    CHECK_FALSE(j->claim("r2", error));
    CHECK(error.find("is being run by process") != std::string::npos);
    const bool appended = j->append_batch("r1", {entry(1), entry(2)}, error);
    INFO(error);
    REQUIRE(appended);
    // Entry 3 then 9 (out of order): 3 is written, 9 refused, and the call's savepoint undoes
    // its own write (3) while the batch's earlier ones (1, 2) stay.
    CHECK_FALSE(j->append_batch("r1", {entry(3), entry(9)}, error));
    REQUIRE(batch.commit(error));
  }
  CHECK(j->entries("r1", error).size() == 2);
  CHECK(j->append("r1", entry(3), error));
  auto other = open_ok(path);
  CHECK_FALSE(other->claim("r1", error));
}

TEST_CASE("journal batch: another thread's calls wait for the batch rather than join it",
          "[journal]") {
  TempDir dir;
  auto j = open_ok(dir / "journal.db");
  std::string error;
  REQUIRE(j->create_run(run_named("r1"), error));
  std::atomic<bool> created{false};
  std::thread other;
  {
    Journal::Batch batch(*j, error);
    REQUIRE(batch.open());
    REQUIRE(j->set_status("r1", "running", error));
    other = std::thread([&] {
      std::string e;
      created = j->create_run(run_named("r2"), e);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK_FALSE(created.load());  // held off by the batch's lock
    // Dropped: rolled back. Had the other thread's write joined it, r2 would go too.
  }
  other.join();
  CHECK(created.load());
  CHECK(j->find_run("r2", error).has_value());
  CHECK(j->find_run("r1", error)->status == "queued");
}

TEST_CASE("journal: one Journal shared by threads keeps every run and entry", "[journal]") {
  TempDir dir;
  const std::string path = dir / "journal.db";
  auto j = open_ok(path);
  constexpr int kThreads = 4, kRuns = 40, kEntries = 5;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRuns; ++r) {
        const std::string id = "t" + std::to_string(t) + "-" + std::to_string(r);
        std::string e;
        bool ok = j->create_run(run_named(id), e);
        {
          Journal::Batch start(*j, e);
          ok = ok && start.open() && j->claim(id, e) && j->set_status(id, "running", e) &&
               start.commit(e);
        }
        for (int n = 1; ok && n <= kEntries; ++n) ok = j->append(id, entry(n), e);
        {
          Journal::Batch end(*j, e);
          ok = ok && j->finish_run(id, "completed", "{}", "", e);
          j->release(id);
          ok = ok && end.commit(e);
        }
        if (!ok) {
          UNSCOPED_INFO(id << ": " << e);
          ++failures;
        }
      }
    });
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  std::string error;
  CHECK(j->list_runs("completed", error).size() == kThreads * kRuns);
  CHECK(RawDb(path).value("SELECT count(*) FROM entries") ==
        std::to_string(kThreads * kRuns * kEntries));
  CHECK(RawDb(path).value("SELECT count(*) FROM leases") == "0");
}

TEST_CASE("journal: set_checkpoint_pages lets the WAL grow past the default before a checkpoint",
          "[journal]") {
  TempDir dir;
  const std::string path = dir / "journal.db";
  const auto wal_bytes = [&] {
    struct stat st {};
    return ::stat((path + "-wal").c_str(), &st) == 0 ? st.st_size : 0;
  };
  const auto fill = [](Journal& j, const std::string& prefix) {
    std::string error;
    for (int i = 0; i < 200; ++i) {
      RunRecord r = run_named(prefix + std::to_string(i));
      r.status = "running";
      const bool ok =
          j.create_run(r, error) && j.append(prefix + std::to_string(i), entry(1), error);
      INFO(error);
      REQUIRE(ok);
    }
  };
  std::string error;
  {
    auto j = open_ok(path);
    fill(*j, "a");
  }
  // The default, 32 pages (128 KiB of 4 KiB pages): checkpointed and reused as it passes them.
  CHECK(wal_bytes() < 200 * 1024);
  {
    auto j = open_ok(path);
    REQUIRE(j->set_checkpoint_pages(1000, error));
    fill(*j, "b");
    CHECK(wal_bytes() > 400 * 1024);
  }
  CHECK(open_ok(path)->list_runs("", error).size() == 400);
}
