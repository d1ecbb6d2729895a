// Leases: one live process per run. A claim is refused while its holder runs (naming the
// holder's pid), taken over once the holder is dead, and of two racing claimers one wins.
#include "broker/journal/journal.h"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <string>
#include <thread>

#include "broker/journal/journal_test_support.h"

using tactus::broker::Journal;
using tactus::broker::RunRecord;
using tactus::journal_test::Child;
using tactus::journal_test::child_receive;
using tactus::journal_test::child_send;
using tactus::journal_test::RawDb;
using tactus::journal_test::TempDir;

namespace {

std::unique_ptr<Journal> open_with_runs(const std::string& path, int n_runs) {
  std::string error;
  auto j = Journal::open(path, error);
  INFO(error);
  REQUIRE(j);
  for (int i = 0; i < n_runs; ++i) {
    RunRecord r;
    r.run_id = "r" + std::to_string(i);
    r.procedure = "/p.tac";
    REQUIRE(j->create_run(r, error));
  }
  return j;
}

// Child body: on each "claim ID" line, claims ID and answers "won" or "lost: <error>"; exits
// on "quit" (or end of file), releasing nothing.
int claim_on_request(const std::string& path, int in, int out) {
  std::unique_ptr<Journal> j;
  for (std::string line; (line = child_receive(in)).rfind("claim ", 0) == 0;) {
    std::string error;
    if (!j && !(j = Journal::open(path, error))) {
      child_send(out, "open failed: " + error);
      continue;
    }
    child_send(out, j->claim(line.substr(6), error) ? "won" : "lost: " + error);
  }
  ::_exit(0);  // without ~Journal: leave the leases as a crash would, the test reaps us anyway
}

// Waits until pid is a zombie (dead, not yet reaped).
bool becomes_zombie(pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    const std::string stat =
        tactus::journal_test::read_bytes("/proc/" + std::to_string(pid) + "/stat");
    const auto close = stat.rfind(')');
    if (close != std::string::npos && stat.substr(close + 2, 1) == "Z") return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

}  // namespace

TEST_CASE("journal leases: a claimed run is refused to anyone else while its holder runs",
          "[journal]") {
  TempDir dir;
  const std::string path = dir / "journal.db";
  Child child([&](int in, int out) { return claim_on_request(path, in, out); });
  auto j = open_with_runs(path, 2);
  std::string error;
  REQUIRE(j->claim("r0", error));

  // Decided: a second claim by the holder itself is refused too (see Journal::claim).
  CHECK_FALSE(j->claim("r0", error));
  CHECK(error ==
        "run 'r0' is being run by process " + std::to_string(::getpid()) + " (this process)");
  {
    auto other = Journal::open(path, error);  // another session in the same process
    REQUIRE(other);
    CHECK_FALSE(other->claim("r0", error));
    CHECK(error.rfind("run 'r0' is being run by process " + std::to_string(::getpid()), 0) == 0);
  }

  child.send("claim r0");
  CHECK(child.receive() == "lost: run 'r0' is being run by process " + std::to_string(::getpid()));
  child.send("claim r1");  // another run is free
  CHECK(child.receive() == "won");
  child.send("claim nope");
  CHECK(child.receive() == "lost: run 'nope' not found");

  j->release("r0");
  child.send("claim r0");
  CHECK(child.receive() == "won");
  CHECK_FALSE(j->claim("r0", error));
  CHECK(error == "run 'r0' is being run by process " + std::to_string(child.pid()));
}

TEST_CASE("journal leases: the lease of a dead holder is taken over", "[journal]") {
  TempDir dir;
  const std::string path = dir / "journal.db";
  Child child([&](int in, int out) { return claim_on_request(path, in, out); });
  auto j = open_with_runs(path, 1);
  std::string error;
  child.send("claim r0");
  REQUIRE(child.receive() == "won");
  CHECK_FALSE(j->claim("r0", error));

  child.kill_now();
  SECTION("killed and reaped") {
    REQUIRE(child.reap() == 128 + SIGKILL);
    CHECK(j->claim("r0", error));
  }
  SECTION("killed, not yet reaped (a zombie)") {
    REQUIRE(becomes_zombie(child.pid()));
    CHECK(j->claim("r0", error));
  }
}

TEST_CASE("journal leases: a lease from another boot or a reused pid is stale", "[journal]") {
  TempDir dir;
  const std::string path = dir / "journal.db";
  auto j = open_with_runs(path, 1);
  std::string error;
  REQUIRE(j->claim("r0", error));
  j.reset();  // ~Journal releases
  CHECK(RawDb(path).value("SELECT count(*) FROM leases") == "0");

  // Hand-made leases naming this very (live) process, but not quite.
  const std::string me = std::to_string(::getpid());
  const std::string boot = tactus::journal_test::read_bytes("/proc/sys/kernel/random/boot_id");
  RawDb raw(path);
  SECTION("the right pid and start time, an earlier boot") {
    REQUIRE(raw.exec("INSERT INTO leases VALUES ('r0', " + me +
                     ", (SELECT 0), "
                     "'00000000-0000-0000-0000-000000000000', 'x', 0)") == SQLITE_OK);
  }
  SECTION("this boot and pid, another start time: the pid was reused") {
    REQUIRE(raw.exec("INSERT INTO leases VALUES ('r0', " + me + ", 1, '" +
                     boot.substr(0, boot.find('\n')) + "', 'x', 0)") == SQLITE_OK);
  }
  j = Journal::open(path, error);
  REQUIRE(j);
  CHECK(j->claim("r0", error));
  CHECK(raw.value("SELECT pid FROM leases WHERE run_id = 'r0'") == me);
  CHECK(raw.value("SELECT token FROM leases WHERE run_id = 'r0'") != "x");
}

TEST_CASE("journal leases: of two processes racing to claim, exactly one wins", "[journal]") {
  constexpr int kRounds = 50;
  TempDir dir;
  const std::string path = dir / "journal.db";
  Child a([&](int in, int out) { return claim_on_request(path, in, out); });
  Child b([&](int in, int out) { return claim_on_request(path, in, out); });
  { open_with_runs(path, kRounds); }

  for (int round = 0; round < kRounds; ++round) {
    const std::string run = "r" + std::to_string(round);
    // Both are told at once and claim concurrently; the loser must name the winner.
    a.send("claim " + run);
    b.send("claim " + run);
    const std::string ra = a.receive(), rb = b.receive();
    INFO("round " << round << ": " << ra << " / " << rb);
    REQUIRE(((ra == "won") != (rb == "won")));
    const pid_t winner = ra == "won" ? a.pid() : b.pid();
    const std::string& lost = ra == "won" ? rb : ra;
    CHECK(lost == "lost: run '" + run + "' is being run by process " + std::to_string(winner));
  }
}
