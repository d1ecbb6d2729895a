// run_durable with a Journal its caller keeps and shares between threads (tactus serve): a
// resume refused because the run is held leaves the holder's lease alone, and one that runs
// takes and drops only its own.
#include "cli/durable_run.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "broker/run_setup.h"
#include "tests/support/cli_runner.h"

namespace {

using tactus::broker::Journal;
namespace cli = tactus::cli;

// The journal is the current directory's project's (as for tactus run): the test works in its
// own, and goes back after.
class InDir {
 public:
  explicit InDir(const std::string& dir) : back_(std::filesystem::current_path()) {
    std::filesystem::current_path(dir);
  }
  ~InDir() { std::filesystem::current_path(back_); }

 private:
  std::filesystem::path back_;
};

class NullSink : public tactus::broker::OutputSink {
 public:
  void print(std::string_view) override {}
};

tactus::spawner::SpawnerClient& spawner() {
  static tactus::spawner::SpawnerClient s = tactus::spawner::SpawnerClient::fork_spawner();
  return s;
}

// A run of hello.tac recorded as tactus serve records one it accepts: queued, not yet claimed.
std::unique_ptr<Journal> journal_with_queued_run(const std::string& file, const std::string& id) {
  cli::CliOptions o;
  o.command = cli::Command::run;
  o.file = file;
  cli::PreparedRun p;
  p.req.run_id = id;
  std::string error;
  INFO(error);
  REQUIRE(cli::prepare_run(o, p, error));
  auto journal = Journal::open(tactus::broker::journal_path(p.config), error);
  REQUIRE(journal != nullptr);
  tactus::broker::RunRecord r = cli::new_run_record(p, file, "queued");
  r.origin = "serve";
  const bool created = journal->create_run(r, error);
  INFO(journal->path() << ": " << error);
  REQUIRE(created);
  return journal;
}

cli::DurableRun resume(const std::string& id, Journal& journal) {
  cli::CliOptions o;
  o.command = cli::Command::resume;
  o.run_id = id;
  o.no_input = true;
  cli::RunHooks hooks;
  hooks.journal = &journal;
  hooks.quiet = true;
  NullSink out;
  return cli::run_durable(o, spawner(), out, hooks);
}

}  // namespace

TEST_CASE("durable run: a resume refused because another thread holds the run keeps that lease",
          "[durable]") {
  tactus::test::TempTac tac("return { ok = true }\n", "hello.tac");
  std::filesystem::create_directories(tac.dir() + "/.tactus");
  InDir in_project(tac.dir());
  auto journal = journal_with_queued_run(tac.path(), "shared-1");
  std::string error;
  // Another thread of this process (say, a cancel) holds it, through the same Journal.
  REQUIRE(journal->claim("shared-1", error));
  const cli::DurableRun refused = resume("shared-1", *journal);
  CHECK(refused.usage_error.find("is being run by process") != std::string::npos);
  // The holder's lease is still there: another process is refused.
  CHECK(journal->path().rfind(tac.dir(), 0) == 0);
  auto other = Journal::open(journal->path(), error);
  REQUIRE(other != nullptr);
  CHECK_FALSE(other->claim("shared-1", error));
  CHECK(journal->find_run("shared-1", error)->status == "queued");

  // Released by its holder, the run is resumed, completed, and its lease dropped.
  journal->release("shared-1");
  const cli::DurableRun ran = resume("shared-1", *journal);
  INFO(ran.usage_error << " " << ran.result.message);
  CHECK(ran.usage_error.empty());
  CHECK(ran.result.status == tactus::broker::RunStatus::ok);
  const auto record = journal->find_run("shared-1", error);
  REQUIRE(record);
  CHECK(record->status == "completed");
  CHECK(record->result_json == R"({"ok":true})");
  // Its lease was dropped: another holder can take it (a claim checks leases only).
  INFO(error);
  CHECK(other->claim("shared-1", error));
}
