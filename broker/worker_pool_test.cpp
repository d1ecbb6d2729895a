// Backend pool: jailed one-shot workers forked ahead; each runs exactly one job.
#include <catch2/catch.hpp>

#include <thread>

#include "broker/worker_pool.h"

using namespace tactus;
using broker::RunStatus;

namespace {

struct LinesSink : broker::OutputSink {
  std::vector<std::string> lines;
  void print(std::string_view line) override { lines.emplace_back(line); }
};

spawner::SpawnerClient& pool_spawner() {
  static spawner::SpawnerClient s = spawner::SpawnerClient::fork_spawner();
  return s;
}

broker::RunRequest request(const std::string& source) {
  broker::RunRequest r;
  r.run_id = "pool";
  r.source = source;
  r.chunkname = "@pool.tac";
  return r;
}

}  // namespace

TEST_CASE("pool: workers are ready ahead, run one job each, and the pool refills", "[pool][jail]") {
  tools::ToolRegistry tools;
  const auto req = request("counter = (counter or 0) + 1 print('run', counter) return counter");
  broker::WorkerPool pool(pool_spawner(), req, 3, std::chrono::seconds(60));
  std::string error;
  REQUIRE(pool.fill(error));
  CHECK(pool.idle() == 3);
  for (int i = 0; i < 3; ++i) {
    LinesSink sink;
    const auto r = pool.run(req, tools, sink);
    INFO(r.message);
    CHECK(r.status == RunStatus::ok);
    CHECK(r.result == 1);  // a fresh VM every time: nothing carries over between jobs
    CHECK(sink.lines == std::vector<std::string>{"run\t1"});
    CHECK(r.timings.handoff_ms >= 0);
    CHECK_FALSE(r.timings.setup_steps_us.empty());  // the worker was jailed like any run
    CHECK(r.timings.setup_steps_us.back().first == "seccomp");
  }
  CHECK(pool.idle() == 0);
  REQUIRE(pool.fill(error));
  CHECK(pool.idle() == 3);
}

TEST_CASE("pool: with no idle worker, or other limits, a run gets a fresh jail", "[pool][jail]") {
  tools::ToolRegistry tools;
  LinesSink sink;
  auto req = request("return 7");
  broker::WorkerPool pool(pool_spawner(), req, 1, std::chrono::seconds(60));
  const auto fresh = pool.run(req, tools, sink);  // not filled yet
  CHECK(fresh.status == RunStatus::ok);
  CHECK(fresh.timings.handoff_ms < 0);
  std::string error;
  REQUIRE(pool.fill(error));
  auto other = req;
  other.limits.memory = 64 << 20;
  const auto r = pool.run(other, tools, sink);
  CHECK(r.status == RunStatus::ok);
  CHECK(r.timings.handoff_ms < 0);
  CHECK(pool.idle() == 1);  // the worker with the pool's limits is still there
}

TEST_CASE("pool: idle workers past their maximum age are replaced, not used", "[pool][jail]") {
  tools::ToolRegistry tools;
  LinesSink sink;
  const auto req = request("return 'fresh'");
  broker::WorkerPool pool(pool_spawner(), req, 2, std::chrono::milliseconds(50));
  std::string error;
  REQUIRE(pool.fill(error));
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  const auto r = pool.run(req, tools, sink);
  CHECK(r.status == RunStatus::ok);
  CHECK(r.result == "fresh");
  CHECK(pool.retired_stale() == 2);
  CHECK(r.timings.handoff_ms < 0);  // both were stale: this run had a fresh jail
}

TEST_CASE("pool: a pooled worker's limits and violations are typed as for any run",
          "[pool][jail]") {
  tools::ToolRegistry tools;
  LinesSink sink;
  auto req = request("while true do end");
  req.limits.instructions = 100000;
  broker::WorkerPool pool(pool_spawner(), req, 1, std::chrono::seconds(60));
  std::string error;
  REQUIRE(pool.fill(error));
  const auto r = pool.run(req, tools, sink);
  CHECK(r.status == RunStatus::cpu);
  CHECK(r.timings.handoff_ms >= 0);
}
