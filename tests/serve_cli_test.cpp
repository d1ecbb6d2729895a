// tactus serve end to end: the real server process in a temporary project, spoken to over
// loopback HTTP (docs/server.md). Timing figures live in bench/serve; the one bound here (a
// hello finishes within 0.5 s of its POST beside a 3 s model call) is the acceptance line's.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/fixtures/fake_llm.h"
#include "tests/support/cli_runner.h"
#include "tests/support/serve_client.h"

using nlohmann::json;
using namespace tactus::test;
namespace fs = std::filesystem;

namespace {

const std::string kToken = "serve-test-token-6f1d2c9a8b7e";
const std::string kTokenEnv = "TACTUS_TEST_SERVE_TOKEN=" + kToken;
const std::string kKey = "sk-serve-test-key-3a9f0c1d";
const std::string kKeyEnv = "TACTUS_TEST_LLM_KEY=" + kKey;

const char* kHello = R"(local name = (input and input.name) or "world"
print("Hello, " .. name .. "!")
return { greeting = "Hello, " .. name .. "!" })";

const char* kApprove = R"(print("asking")
local ok = Human.approve({message = "Deploy?", default = false})
print("answered")
return { approved = ok })";

const char* kSlow = R"(a = Agent { model = "fake/fake-model" }
a("hi")
return { slow = true })";

// A project: .tactus/config.yml with config_yml, and the procedures given.
struct Project {
  explicit Project(const std::string& config_yml,
                   const std::map<std::string, std::string>& files = {{"hello.tac", kHello}})
      : tac("-- marker\n", "marker.tac") {
    write_file(dir() + "/.tactus/config.yml", config_yml);
    for (const auto& [name, text] : files) write_file(dir() + "/" + name, text);
  }
  const std::string& dir() const { return tac.dir(); }
  TempTac tac;
};

std::string slow_sidecar(const FakeLlmServer& server) {
  return "providers:\n  fake: {base_url: \"" + server.base_url() +
         "\", api_key: K, api: openai}\nsecrets:\n  K: {env: TACTUS_TEST_LLM_KEY}\n";
}

std::map<std::string, std::string> auth(const std::string& token = kToken) {
  return {{"Authorization", "Bearer " + token}};
}

json body_of(const HttpReply& r) {
  return json::parse(r.body.empty() ? "null" : r.body, nullptr, false);
}

// POSTs procedure (with input) and returns the run id, or "" (the test then fails).
std::string post_run(int port, const std::string& procedure, const json& input = json::object(),
                     std::map<std::string, std::string> headers = {}) {
  const HttpReply r =
      http_post(port, "/v1/runs", json{{"procedure", procedure}, {"input", input}}.dump(), headers);
  INFO(r.status << " " << r.body);
  REQUIRE(r.status == 201);
  return body_of(r).value("run_id", "");
}

// Waits (at most 2 s) until a run has asked the fake provider: the run is in its model call.
void await_model_call(const FakeLlmServer& llm) {
  for (int i = 0; i < 100 && llm.request_count() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

// GET /v1/runs/ID?wait=S: the run once it settles (or after S seconds).
json wait_run(int port, const std::string& id, double seconds = 20,
              std::map<std::string, std::string> headers = {}) {
  const HttpReply r =
      http_request(port, "GET", "/v1/runs/" + id + "?wait=" + std::to_string(seconds), "", headers,
                   seconds + 10);
  INFO(r.status << " " << r.body);
  REQUIRE(r.status == 200);
  return body_of(r);
}

}  // namespace

TEST_CASE("serve: hello through the API returns its result, health, tokens, bad requests",
          "[serve][cli]") {
  Project p("secrets:\n  T: {env: TACTUS_TEST_SERVE_TOKEN}\nserve:\n  tokens: [T]\n");
  fs::create_directories(p.dir() + "/.tactus/inner");
  write_file(p.dir() + "/.tactus/inner/x.tac", kHello);
  fs::create_symlink("/etc", p.dir() + "/out");
  // Links that stay inside but lead where a name could not: into .tactus, to a file not .tac.
  write_file(p.dir() + "/creds.txt", "not a procedure\n");
  fs::create_symlink(p.dir() + "/.tactus/inner/x.tac", p.dir() + "/in.tac");
  fs::create_symlink(p.dir() + "/creds.txt", p.dir() + "/creds.tac");
  ServeProcess serve(p.dir(), {kTokenEnv});
  const int port = serve.port();

  const HttpReply health = http_request(port, "GET", "/health");
  CHECK(health.status == 200);
  CHECK(body_of(health)["status"] == "ok");
  CHECK(body_of(health)["version"].is_string());

  // No token: 401 with the scheme to use; a wrong one: 403. Metrics are behind the token too.
  const std::string hello = json{{"procedure", "hello.tac"}}.dump();
  HttpReply none = http_post(port, "/v1/runs", hello);
  CHECK(none.status == 401);
  CHECK(none.headers["www-authenticate"].find("Bearer") != std::string::npos);
  CHECK(http_post(port, "/v1/runs", hello, auth("serve-test-token-6f1d2c9a8b7X")).status == 403);
  CHECK(http_post(port, "/v1/runs", hello, auth(kToken + "x")).status == 403);
  CHECK(http_post(port, "/v1/runs", hello, {{"Authorization", "Basic " + kToken}}).status == 401);
  CHECK(http_request(port, "GET", "/metrics").status == 401);
  CHECK(http_request(port, "GET", "/v1/runs").status == 401);

  // A path outside the project, absolute, with .., in .tactus, through a link, or missing: 400.
  for (const std::string& bad :
       std::vector<std::string>{"../hello.tac", "/etc/passwd", "/tmp/x.tac", "a/../../hello.tac",
                                ".tactus/inner/x.tac", "out/passwd.tac", "missing.tac", "hello",
                                "in.tac", "creds.tac", std::string(5000, 'a') + ".tac"}) {
    const HttpReply r = http_post(port, "/v1/runs", json{{"procedure", bad}}.dump(), auth());
    INFO(bad.substr(0, 80) << ": " << r.body);
    CHECK(r.status == 400);
    CHECK(body_of(r)["error"]["message"].get<std::string>().rfind("procedure: ", 0) == 0);
  }
  CHECK(http_post(port, "/v1/runs", "{not json", auth()).status == 400);
  CHECK(http_post(port, "/v1/runs", R"J({"procedure": "hello.tac", "code": "os.exit()"})J", auth())
            .status == 400);
  CHECK(http_post(port, "/v1/runs", R"({"procedure": "hello.tac", "input": [1]})", auth()).status ==
        400);
  CHECK(http_post(port, "/v1/runs", R"({"procedure": "hello.tac", "run_id": "../x"})", auth())
            .status == 400);
  CHECK(http_request(port, "POST", "/v1/runs", hello,
                     {{"Authorization", "Bearer " + kToken}, {"Content-Type", "text/plain"}})
            .status == 415);
  // A type a browser sends across sites without asking first, dressed up: still not JSON.
  CHECK(http_request(port, "POST", "/v1/runs", hello,
                     {{"Authorization", "Bearer " + kToken},
                      {"Content-Type", "text/plain; charset=application/json"}})
            .status == 415);
  // 100,000 levels of nesting (it crashed the server when copied): refused, and it lives on.
  const std::string deep = R"({"procedure": "hello.tac", "input": {"a": )" +
                           std::string(100000, '[') + std::string(100000, ']') + "}}";
  CHECK(http_post(port, "/v1/runs", deep, auth()).status == 400);
  CHECK(http_post(port, "/v1/runs/x/answers",
                  R"({"value": true, "request_id": )" + std::string(100000, '[') +
                      std::string(100000, ']') + "}",
                  auth())
            .status == 400);
  CHECK(http_request(port, "GET", "/health").status == 200);
  // Pipelined requests are answered in order, one after the other; garbage is a 400.
  const std::string two =
      raw_exchange(port,
                   "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                   "GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  CHECK(two.find("HTTP/1.1 200 OK") < two.find("HTTP/1.1 404 Not Found"));
  CHECK(two.find("HTTP/1.1 404 Not Found") != std::string::npos);
  CHECK(raw_exchange(port, "NOT HTTP AT ALL\r\n\r\n").rfind("HTTP/1.1 400", 0) == 0);
  // A request line and headers past 16 KiB, or a 101st header: 431, and the server lives on.
  CHECK(raw_exchange(port, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " +
                               std::string(20000, 'a') + "\r\n\r\n")
            .rfind("HTTP/1.1 431", 0) == 0);
  std::string many = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (int i = 0; i < 101; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  CHECK(raw_exchange(port, many + "\r\n").rfind("HTTP/1.1 431", 0) == 0);
  CHECK(http_request(port, "GET", "/health").status == 200);
  CHECK(http_request(port, "GET", "/nowhere", "", auth()).status == 404);
  CHECK(http_request(port, "DELETE", "/v1/runs", "", auth()).status == 405);
  CHECK(http_request(port, "GET", "/v1/runs/nope", "", auth()).status == 404);
  // A body past serve.max_body (1m) is refused before it is read.
  CHECK(http_post(port, "/v1/runs", std::string(2 << 20, ' '), auth()).status == 413);

  const std::string id = post_run(port, "hello.tac", {{"name", "Ada"}}, auth());
  const json run = wait_run(port, id, 20, auth());
  CHECK(run["status"] == "completed");
  CHECK(run["result"] == json{{"greeting", "Hello, Ada!"}});
  CHECK(run["procedure"] == "hello.tac");

  // The same Idempotency-Key makes one run, however often the POST is retried.
  auto keyed = auth();
  keyed["Idempotency-Key"] = "order-17";
  HttpReply first = http_post(port, "/v1/runs", hello, keyed);
  HttpReply again = http_post(port, "/v1/runs", hello, keyed);
  CHECK(first.status == 201);
  CHECK(again.status == 200);
  CHECK(again.headers["idempotent-replayed"] == "true");
  CHECK(body_of(again)["run_id"] == body_of(first)["run_id"]);
  keyed["Content-Type"] = "application/json";
  CHECK(http_request(port, "POST", "/v1/runs",
                     json{{"procedure", "hello.tac"}, {"run_id", "both-1"}}.dump(), keyed)
            .status == 400);

  const HttpReply listed =
      http_request(port, "GET", "/v1/runs?status=completed&limit=10", "", auth());
  CHECK(listed.status == 200);
  CHECK(body_of(listed)["runs"].size() >= 1);
  CHECK(http_request(port, "GET", "/v1/runs?status=bogus", "", auth()).status == 400);

  const HttpReply metrics = http_request(port, "GET", "/metrics", "", auth());
  CHECK(metrics.status == 200);
  CHECK(metrics.body.find("tactus_runs_total{status=\"completed\"}") != std::string::npos);
  CHECK(metrics.body.find("tactus_tool_calls_total") != std::string::npos);
  CHECK(metrics.body.find("tactus_run_duration_seconds_bucket") != std::string::npos);
  // The token never reaches what the server writes.
  CHECK(serve.err().find(kToken) == std::string::npos);
}

TEST_CASE(
    "serve: a run's event stream carries its printed line and done, Last-Event-ID "
    "replays only what came after",
    "[serve][cli]") {
  Project p("");
  ServeProcess serve(p.dir());
  const int port = serve.port();
  const std::string id = post_run(port, "hello.tac", {{"name", "Grace"}});
  REQUIRE(wait_run(port, id)["status"] == "completed");

  const auto events = read_events(port, "/v1/runs/" + id + "/events");
  REQUIRE(events.size() >= 3);
  bool printed = false;
  long last_id = 0;
  for (const auto& e : events) {
    CHECK(std::stol(e.id) > last_id);  // monotonic
    last_id = std::stol(e.id);
    if (e.event == "log" && json::parse(e.data)["text"] == "Hello, Grace!") printed = true;
  }
  CHECK(printed);
  CHECK(events.back().event == "done");
  CHECK(json::parse(events.back().data)["status"] == "completed");

  // A reconnect after the third event gets exactly the rest.
  const auto rest =
      read_events(port, "/v1/runs/" + id + "/events", {{"Last-Event-ID", events[2].id}});
  REQUIRE(rest.size() == events.size() - 3);
  for (std::size_t i = 0; i < rest.size(); ++i) CHECK(rest[i].id == events[i + 3].id);
  CHECK(read_events(port, "/v1/runs/" + id + "/events", {{"Last-Event-ID", "x"}}).empty());

  // Without tokens only a loopback Host is served: a page whose name was made to resolve to
  // 127.0.0.1 (DNS rebinding) is refused.
  CHECK(http_request(port, "GET", "/v1/runs/" + id, "", {{"Host", "evil.example"}}).status == 403);
  CHECK(http_request(port, "GET", "/v1/runs/" + id, "", {{"Host", "127.evil.example:80"}}).status ==
        403);
  CHECK(http_request(port, "GET", "/v1/runs/" + id, "", {{"Host", "127.0.0.2:80"}}).status == 200);
  CHECK(http_request(port, "GET", "/v1/runs/" + id, "", {{"Host", "localhost:1234"}}).status ==
        200);
  // A second server on the same project is refused: both would take up its runs.
  const CliRun second = run_tactus_in(p.dir(), {"serve", "--listen", "127.0.0.1:0"});
  CHECK(second.exit_code == 2);
  CHECK(second.err.find("another tactus serve serves this project") != std::string::npos);
}

TEST_CASE("serve: a run's kept events are bounded, a reconnect is told what was dropped",
          "[serve][cli]") {
  // 5,000 printed lines of 1,000 bytes: past the 4 MiB of events a run keeps.
  Project p("sandbox:\n  limits:\n    output: 16m\n",
            {{"chatty.tac",
              "local line = string.rep('x', 1000)\n"
              "for i = 1, 5000 do print(line) end\nreturn { printed = 5000 }"}});
  ServeProcess serve(p.dir());
  const int port = serve.port();
  const std::string id = post_run(port, "chatty.tac");
  REQUIRE(wait_run(port, id)["status"] == "completed");
  const auto events = read_events(port, "/v1/runs/" + id + "/events", {{"Last-Event-ID", "0"}});
  REQUIRE(events.size() > 2);
  CHECK(events.front().event == "cut");
  const long first_kept = json::parse(events.front().data)["first_kept"].get<long>();
  CHECK(first_kept > 1);
  CHECK(events[1].id == std::to_string(first_kept));
  std::size_t bytes = 0;
  for (const auto& e : events) bytes += e.data.size();
  CHECK(bytes <= (4u << 20));
  CHECK(events.size() < 4500);
  CHECK(events.back().event == "done");
  // The run is whole all the same: its result is not an event.
  CHECK(wait_run(port, id)["result"]["printed"] == 5000);
}

TEST_CASE("serve: 50 concurrent POSTs of hello all succeed", "[serve][cli]") {
  Project p("");
  ServeProcess serve(p.dir());
  const int port = serve.port();
  std::vector<std::string> ids(50);
  std::vector<std::thread> clients;
  for (int i = 0; i < 50; ++i)
    clients.emplace_back([&, i] {
      const HttpReply r = http_post(
          port, "/v1/runs",
          json{{"procedure", "hello.tac"}, {"input", {{"name", "n" + std::to_string(i)}}}}.dump());
      if (r.status == 201) ids[i] = body_of(r)["run_id"];
    });
  for (auto& c : clients) c.join();
  for (int i = 0; i < 50; ++i) {
    INFO("client " << i);
    REQUIRE(!ids[i].empty());
    const json run = wait_run(port, ids[i]);
    CHECK(run["status"] == "completed");
    CHECK(run["result"]["greeting"] == "Hello, n" + std::to_string(i) + "!");
  }
}

TEST_CASE("serve: past max_concurrent and the queue a POST gets 429, and no accepted run is lost",
          "[serve][cli]") {
  // Each run takes a while (a model call of 0.3 s), so the queue fills.
  FakeLlmServer llm;
  llm.respond_with([](const FakeRequest&) {
    FakeReply r = FakeReply::say("ok");
    r.delay_seconds = 0.3;
    return r;
  });
  Project p("serve:\n  max_concurrent: 1\n  queue: 2\n  pool: 1\n", {{"slow.tac", kSlow}});
  write_file(p.dir() + "/slow.tac.yml", slow_sidecar(llm));
  ServeProcess serve(p.dir(), {kKeyEnv});
  const int port = serve.port();
  std::vector<HttpReply> replies(8);
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i)
    clients.emplace_back([&, i] {
      replies[i] = http_post(port, "/v1/runs", json{{"procedure", "slow.tac"}}.dump());
    });
  for (auto& c : clients) c.join();
  int accepted = 0, refused = 0;
  std::vector<std::string> ids;
  for (auto& r : replies) {
    INFO(r.status << " " << r.body);
    if (r.status == 201) {
      ++accepted;
      ids.push_back(body_of(r)["run_id"]);
    } else {
      REQUIRE(r.status == 429);
      ++refused;
      CHECK(r.headers["retry-after"] == "1");
      CHECK(body_of(r)["error"]["message"].get<std::string>().find("the queue is full") == 0);
    }
  }
  CHECK(accepted >= 2);
  CHECK(refused >= 1);
  CHECK(accepted + refused == 8);
  for (const auto& id : ids) CHECK(wait_run(port, id, 30)["status"] == "completed");
  CHECK(llm.request_count() == accepted);
}

TEST_CASE("serve: queue 0 still takes a run while a runner is free", "[serve][cli]") {
  Project p("serve:\n  max_concurrent: 1\n  queue: 0\n");
  ServeProcess serve(p.dir());
  for (int i = 0; i < 3; ++i) {
    const std::string id = post_run(serve.port(), "hello.tac");
    CHECK(wait_run(serve.port(), id)["status"] == "completed");
  }
}

TEST_CASE("serve: a 3 s model call in one run does not delay other runs", "[serve][cli]") {
  FakeLlmServer llm;
  llm.respond_with([](const FakeRequest&) {
    FakeReply r = FakeReply::say("slowly");
    r.delay_seconds = 3;
    return r;
  });
  Project p("serve:\n  max_concurrent: 8\n", {{"hello.tac", kHello}, {"slow.tac", kSlow}});
  write_file(p.dir() + "/slow.tac.yml", slow_sidecar(llm));
  ServeProcess serve(p.dir(), {kKeyEnv});
  const int port = serve.port();
  const std::string slow = post_run(port, "slow.tac");
  await_model_call(llm);
  REQUIRE(llm.request_count() == 1);  // the slow run is in its model call
  // 20 hellos at once, beside it: each timed from its POST to its completed result.
  std::vector<double> took(20, -1);
  std::vector<std::string> status(20);
  std::vector<std::thread> clients;
  for (int i = 0; i < 20; ++i)
    clients.emplace_back([&, i] {
      const auto t0 = std::chrono::steady_clock::now();
      const HttpReply created =
          http_post(port, "/v1/runs", json{{"procedure", "hello.tac"}}.dump());
      if (created.status != 201) return;
      const HttpReply done = http_request(
          port, "GET", "/v1/runs/" + body_of(created)["run_id"].get<std::string>() + "?wait=5");
      took[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      status[i] = body_of(done).value("status", "");
    });
  for (auto& c : clients) c.join();
  for (int i = 0; i < 20; ++i) {
    INFO("hello " << i << " took " << took[i] << " s");
    CHECK(status[i] == "completed");
    CHECK(took[i] >= 0);
    CHECK(took[i] < 0.5);
  }
  // The slow run was in its call all along, and ends well.
  CHECK(http_request(port, "GET", "/v1/runs/" + slow).body.find("\"running\"") !=
        std::string::npos);
  CHECK(wait_run(port, slow, 20)["status"] == "completed");
}

TEST_CASE("serve: Human.approve suspends a run, POST answers finishes it", "[serve][cli]") {
  Project p("", {{"approve.tac", kApprove}});
  ServeProcess serve(p.dir());
  const int port = serve.port();
  const std::string id = post_run(port, "approve.tac");
  const json suspended = wait_run(port, id);
  REQUIRE(suspended["status"] == "suspended");
  const json pending = suspended["pending"];
  CHECK(pending["kind"] == "approve");
  CHECK(pending["request"]["message"] == "Deploy?");
  REQUIRE(pending["request_id"].is_number_integer());
  const auto rid = pending["request_id"].get<long>();

  // Not the request waiting, or a value approve does not take: refused, and it stays suspended.
  CHECK(http_post(port, "/v1/runs/" + id + "/answers",
                  json{{"request_id", rid + 1}, {"value", true}}.dump())
            .status == 409);
  CHECK(http_post(port, "/v1/runs/" + id + "/answers",
                  json{{"request_id", rid}, {"value", "maybe"}}.dump())
            .status == 409);
  CHECK(http_post(port, "/v1/runs/" + id + "/answers", json{{"value", true}}.dump()).status == 400);
  CHECK(wait_run(port, id, 0)["status"] == "suspended");

  const HttpReply answered = http_post(port, "/v1/runs/" + id + "/answers",
                                       json{{"request_id", rid}, {"value", true}}.dump());
  INFO(answered.body);
  REQUIRE(answered.status == 200);
  const json done = wait_run(port, id);
  CHECK(done["status"] == "completed");
  CHECK(done["result"] == json{{"approved", true}});
  const auto events = read_events(port, "/v1/runs/" + id + "/events");
  bool asked = false;
  for (const auto& e : events) asked = asked || e.event == "human_request";
  CHECK(asked);

  // A run the command line started is its user's: the API neither shows, answers nor cancels it.
  const CliRun cli =
      run_tactus_in(p.dir(), {"run", "approve.tac", "--no-input", "--run-id", "cli-1"});
  REQUIRE(cli.exit_code == 5);
  CHECK(http_request(port, "GET", "/v1/runs/cli-1").status == 404);
  CHECK(http_post(port, "/v1/runs/cli-1/answers", json{{"request_id", 1}, {"value", true}}.dump())
            .status == 404);
  CHECK(http_post(port, "/v1/runs/cli-1/cancel", "{}").status == 404);
}

TEST_CASE("serve: cancel ends a queued, a suspended and a running run", "[serve][cli]") {
  FakeLlmServer llm;
  llm.respond_with([](const FakeRequest&) {
    FakeReply r = FakeReply::say("late");
    r.delay_seconds = 1;
    return r;
  });
  Project p("serve:\n  max_concurrent: 1\n", {{"approve.tac", kApprove}, {"slow.tac", kSlow}});
  write_file(p.dir() + "/slow.tac.yml", slow_sidecar(llm));
  ServeProcess serve(p.dir(), {kKeyEnv});
  const int port = serve.port();
  const std::string waiting = post_run(port, "approve.tac");
  REQUIRE(wait_run(port, waiting)["status"] == "suspended");
  const std::string running = post_run(port, "slow.tac");
  const std::string queued = post_run(port, "slow.tac");
  await_model_call(llm);
  REQUIRE(llm.request_count() == 1);  // the running one is in its model call
  for (const auto& id : {queued, waiting}) {
    const HttpReply r = http_post(port, "/v1/runs/" + id + "/cancel", "{}");
    INFO(r.body);
    CHECK(r.status == 200);
    CHECK(wait_run(port, id)["status"] == "cancelled");
  }
  CHECK(http_post(port, "/v1/runs/" + running + "/cancel", "{}").status == 202);
  const json ended = wait_run(port, running);
  CHECK(ended["status"] == "cancelled");
  CHECK(http_post(port, "/v1/runs/" + running + "/cancel", "{}").status == 409);
  CHECK(llm.request_count() == 1);  // the queued one never ran
}

TEST_CASE(
    "serve: after kill -9, queued runs run, the running one resumes, the suspended one "
    "still waits",
    "[serve][cli]") {
  FakeLlmServer llm;
  std::atomic<int> calls{0};
  llm.respond_with([&calls](const FakeRequest&) {
    FakeReply r = FakeReply::say("done");
    if (calls++ == 0) r.delay_seconds = 2;  // the first is in flight when the server dies
    return r;
  });
  Project p("serve:\n  max_concurrent: 1\n  pool: 1\n",
            {{"hello.tac", kHello}, {"approve.tac", kApprove}, {"slow.tac", kSlow}});
  write_file(p.dir() + "/slow.tac.yml", slow_sidecar(llm));
  std::string waiting, running, queued;
  {
    ServeProcess serve(p.dir(), {kKeyEnv});
    const int port = serve.port();
    waiting = post_run(port, "approve.tac");
    REQUIRE(wait_run(port, waiting)["status"] == "suspended");
    running = post_run(port, "slow.tac");
    queued = post_run(port, "hello.tac", {{"name", "later"}});
    await_model_call(llm);
    REQUIRE(llm.request_count() == 1);
    CHECK(wait_run(port, queued, 0)["status"] == "queued");
    serve.signal(SIGKILL);
    CHECK(serve.wait() == 128 + SIGKILL);
  }
  ServeProcess again(p.dir(), {kKeyEnv});
  const int port = again.port();
  const json q = wait_run(port, queued, 20);
  CHECK(q["status"] == "completed");
  CHECK(q["result"]["greeting"] == "Hello, later!");
  const json r = wait_run(port, running, 20);
  CHECK(r["status"] == "completed");
  CHECK(llm.request_count() == 2);  // the request in flight was sent again, once
  const json w = wait_run(port, waiting, 0);
  REQUIRE(w["status"] == "suspended");
  CHECK(http_post(port, "/v1/runs/" + waiting + "/answers",
                  json{{"request_id", w["pending"]["request_id"]}, {"value", false}}.dump())
            .status == 200);
  CHECK(wait_run(port, waiting)["result"] == json{{"approved", false}});
  CHECK(again.err().find("resuming 2 unfinished run(s)") != std::string::npos);
}

TEST_CASE(
    "serve: SIGTERM drains, a run past drain_timeout is interrupted and resumed by the "
    "next start",
    "[serve][cli]") {
  FakeLlmServer llm;
  std::atomic<int> calls{0};
  llm.respond_with([&calls](const FakeRequest&) {
    FakeReply r = FakeReply::say("done");
    if (calls++ == 0) r.delay_seconds = 3;
    return r;
  });
  Project p("serve:\n  drain_timeout: 0.3s\n", {{"slow.tac", kSlow}});
  write_file(p.dir() + "/slow.tac.yml", slow_sidecar(llm));
  std::string id;
  {
    ServeProcess serve(p.dir(), {kKeyEnv});
    id = post_run(serve.port(), "slow.tac");
    await_model_call(llm);
    REQUIRE(llm.request_count() == 1);
    const auto t0 = std::chrono::steady_clock::now();
    serve.signal(SIGTERM);
    CHECK(serve.wait() == 0);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
    INFO(serve.err());
    CHECK(serve.err().find("interrupting 1 run(s) (resumable)") != std::string::npos);
  }
  const CliRun listed = run_tactus_in(p.dir(), {"runs", "--json"});
  CHECK(listed.out.find("\"interrupted\"") != std::string::npos);
  ServeProcess again(p.dir(), {kKeyEnv});
  CHECK(wait_run(again.port(), id, 20)["status"] == "completed");
}

TEST_CASE("serve: configuration and listen errors exit 2 with the reason", "[serve][cli]") {
  Project p("serve:\n  tokens: [NOPE]\n");
  const CliRun undeclared = run_tactus_in(p.dir(), {"serve", "--listen", "127.0.0.1:0"});
  CHECK(undeclared.exit_code == 2);
  CHECK(undeclared.err.find("config.yml:2:") != std::string::npos);
  CHECK(undeclared.err.find("serve.tokens: 'NOPE' is not a declared secret") != std::string::npos);

  Project open("");
  const CliRun exposed = run_tactus_in(open.dir(), {"serve", "--listen", "0.0.0.0:0"});
  CHECK(exposed.exit_code == 2);
  CHECK(exposed.err.find("a non-loopback address needs serve.tokens") != std::string::npos);

  Project weak("secrets:\n  T: {env: TACTUS_TEST_SERVE_TOKEN}\nserve:\n  tokens: [T]\n");
  const CliRun short_token = run_tactus_in(weak.dir(), {"serve", "--listen", "127.0.0.1:0"},
                                           {"TACTUS_TEST_SERVE_TOKEN=short"});
  CHECK(short_token.exit_code == 2);
  CHECK(short_token.err.find("shorter than 16 bytes") != std::string::npos);
  CHECK(short_token.err.find("short\n") == std::string::npos);

  CHECK(run_tactus_in(open.dir(), {"serve", "--listen", "nowhere"}).exit_code == 2);
  Project bad("serve:\n  queue: lots\n");
  const CliRun b = run_tactus_in(bad.dir(), {"serve"});
  CHECK(b.exit_code == 2);
  CHECK(b.err.find("serve.queue: 'lots' is not a whole number") != std::string::npos);
}
