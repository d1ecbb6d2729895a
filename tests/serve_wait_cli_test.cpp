// tactus serve: POST /v1/runs?wait=S, a run and its result in one request (docs/server.md).
// The real server process in a temporary project, over loopback HTTP.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/fixtures/fake_llm.h"
#include "tests/support/cli_runner.h"
#include "tests/support/serve_client.h"

using nlohmann::json;
using namespace tactus::test;

namespace {

const char* kHello = R"(print("Hello!")
return { greeting = "Hello, " .. ((input and input.name) or "world") .. "!" })";

const char* kApprove = R"(local ok = Human.approve({message = "Deploy?", default = false})
return { approved = ok })";

json body_of(const HttpReply& r) {
  return json::parse(r.body.empty() ? "null" : r.body, nullptr, false);
}

const std::string kKeyEnv = "TACTUS_TEST_LLM_KEY=sk-serve-wait-test-9c2e";

// slow.tac, whose one model call (a fake provider on loopback) takes a second.
struct SlowProject {
  SlowProject()
      : tac("a = Agent { model = \"fake/fake-model\" }\na(\"hi\")\nreturn { slow = true }\n",
            "slow.tac") {
    llm.respond_with([](const FakeRequest&) {
      FakeReply r = FakeReply::say("slowly");
      r.delay_seconds = 1;
      return r;
    });
    write_file(tac.dir() + "/slow.tac.yml",
               "providers:\n  fake: {base_url: \"" + llm.base_url() +
                   "\", api_key: K, api: openai}\nsecrets:\n  K: {env: TACTUS_TEST_LLM_KEY}\n");
  }
  FakeLlmServer llm;
  TempTac tac;
};

}  // namespace

TEST_CASE("serve: POST ?wait= answers 201 with the settled run, result included", "[serve][cli]") {
  TempTac tac(kHello, "hello.tac");
  write_file(tac.dir() + "/approve.tac", kApprove);
  ServeProcess serve(tac.dir());
  const int port = serve.port();
  const std::string hello = json{{"procedure", "hello.tac"}, {"input", {{"name", "Ada"}}}}.dump();

  // Completed: the view, as GET /v1/runs/ID shows it, with the Location of the run.
  HttpReply done = http_post(port, "/v1/runs?wait=20", hello);
  INFO(done.body);
  REQUIRE(done.status == 201);
  const json run = body_of(done);
  CHECK(run["status"] == "completed");
  CHECK(run["result"] == json{{"greeting", "Hello, Ada!"}});
  CHECK(run["usage"].is_object());
  const std::string id = run.value("run_id", "");
  CHECK(done.headers.at("location") == "/v1/runs/" + id);
  CHECK(body_of(http_request(port, "GET", "/v1/runs/" + id))["status"] == "completed");

  // Suspended settles too: the answer carries the request to answer.
  const HttpReply asked =
      http_post(port, "/v1/runs?wait=20", json{{"procedure", "approve.tac"}}.dump());
  REQUIRE(asked.status == 201);
  CHECK(body_of(asked)["status"] == "suspended");
  CHECK(body_of(asked)["pending"]["kind"] == "approve");

  // wait=0, or none: the short answer at once, as before.
  const HttpReply now = http_post(port, "/v1/runs?wait=0", hello);
  REQUIRE(now.status == 201);
  CHECK(body_of(now).size() == 2);  // run_id and status only
  CHECK(body_of(now).contains("status"));

  // The same bounds as GET's wait.
  for (const char* bad : {"-1", "301", "abc", "", "1e9", "nan"})
    CHECK(http_post(port, std::string("/v1/runs?wait=") + bad, hello).status == 400);

  // An Idempotency-Key retried with wait: the same run, its view, marked as a replay.
  const std::map<std::string, std::string> key{{"Idempotency-Key", "order-7"}};
  const HttpReply first = http_post(port, "/v1/runs?wait=20", hello, key);
  REQUIRE(first.status == 201);
  HttpReply again = http_post(port, "/v1/runs?wait=20", hello, key);
  REQUIRE(again.status == 200);
  CHECK(again.headers.at("idempotent-replayed") == "true");
  CHECK(body_of(again)["run_id"] == body_of(first)["run_id"]);
  CHECK(body_of(again)["result"] == json{{"greeting", "Hello, Ada!"}});

  CHECK(http_request(port, "GET", "/health").status == 200);
}

TEST_CASE(
    "serve: POST ?wait= past its wait answers the run as it is, a client that goes leaves it "
    "running",
    "[serve][cli]") {
  SlowProject p;
  ServeProcess serve(p.tac.dir(), {kKeyEnv});
  const int port = serve.port();
  const std::string slow = json{{"procedure", "slow.tac"}}.dump();

  // The wait is over before the run: 201 with the run as it is then.
  const HttpReply early = http_post(port, "/v1/runs?wait=0.2", slow);
  REQUIRE(early.status == 201);
  CHECK(body_of(early)["status"] == "running");
  CHECK_FALSE(body_of(early).contains("result"));

  // A retry with the same Idempotency-Key while the first waits: both answered when the run
  // settles, the retry 200 and marked as a replay.
  const std::map<std::string, std::string> key{{"Idempotency-Key", "slow-1"}};
  HttpReply first, retry;
  std::thread a([&] { first = http_post(port, "/v1/runs?wait=20", slow, key, 30); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  retry = http_post(port, "/v1/runs?wait=20", slow, key, 30);
  a.join();
  REQUIRE(first.status == 201);
  REQUIRE(retry.status == 200);
  CHECK(retry.headers.at("idempotent-replayed") == "true");
  CHECK(body_of(retry)["run_id"] == body_of(first)["run_id"]);
  CHECK(body_of(first)["status"] == "completed");
  CHECK(body_of(retry)["status"] == "completed");

  // A client that goes while it waits: the run goes on and completes.
  const HttpReply gone =
      http_post(port, "/v1/runs?wait=20",
                json{{"procedure", "slow.tac"}, {"run_id", "gone-1"}}.dump(), {}, 0.2);
  CHECK(gone.status == 0);  // our side gave up and closed the connection
  const json later = body_of(http_request(port, "GET", "/v1/runs/gone-1?wait=10", "", {}, 20));
  CHECK(later["status"] == "completed");
  CHECK(body_of(http_request(port, "GET",
                             "/v1/runs/" + body_of(early)["run_id"].get<std::string>() + "?wait=10",
                             "", {}, 20))["status"] == "completed");
  CHECK(http_request(port, "GET", "/health").status == 200);
}

TEST_CASE("serve: a drain answers a POST ?wait= whose run stays queued, with the run's id",
          "[serve][cli]") {
  SlowProject p;
  write_file(p.tac.dir() + "/.tactus/config.yml", "serve:\n  max_concurrent: 1\n");
  ServeProcess serve(p.tac.dir(), {kKeyEnv});
  const int port = serve.port();
  // The one runner is busy with this run for a second.
  REQUIRE(http_post(port, "/v1/runs", json{{"procedure", "slow.tac"}}.dump()).status == 201);
  HttpReply queued;
  std::thread client([&] {
    queued = http_post(port, "/v1/runs?wait=60",
                       json{{"procedure", "slow.tac"}, {"run_id", "queued-1"}}.dump(), {}, 30);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  serve.signal(SIGTERM);
  client.join();
  INFO(queued.status << " " << queued.body);
  CHECK(queued.status == 201);
  CHECK(body_of(queued)["run_id"] == "queued-1");
  CHECK(body_of(queued)["status"] == "queued");  // kept for the next start
  CHECK(serve.wait() == 0);
}

TEST_CASE("serve: after a restart, an Idempotency-Key retry with ?wait= gets the ended run's view",
          "[serve][cli]") {
  TempTac tac(kHello, "hello.tac");
  const std::string hello = json{{"procedure", "hello.tac"}, {"input", {{"name", "Ada"}}}}.dump();
  const std::map<std::string, std::string> key{{"Idempotency-Key", "order-9"}};
  json first;
  {
    ServeProcess serve(tac.dir());
    const HttpReply r = http_post(serve.port(), "/v1/runs?wait=20", hello, key);
    REQUIRE(r.status == 201);
    first = body_of(r);
    REQUIRE(first["status"] == "completed");
    serve.signal(SIGTERM);
    REQUIRE(serve.wait() == 0);
  }
  // The next server holds no ended run in memory: the answer is the journal's.
  ServeProcess serve(tac.dir());
  HttpReply again = http_post(serve.port(), "/v1/runs?wait=20", hello, key);
  INFO(again.body);
  REQUIRE(again.status == 200);
  CHECK(again.headers.at("idempotent-replayed") == "true");
  CHECK(body_of(again)["run_id"] == first["run_id"]);
  CHECK(body_of(again)["status"] == "completed");
  CHECK(body_of(again)["result"] == json{{"greeting", "Hello, Ada!"}});
}
