// llm.chat when things go wrong: HTTP errors (retried or not), malformed and truncated replies,
// timeouts, unreachable servers, unknown providers, missing keys, bad params. Each is checked
// against what the fake provider saw, so a retry that should not happen (or should) shows.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "tests/fixtures/fake_llm.h"
#include "tests/support/llm_test_support.h"
#include "tools/llm/llm_client.h"
#include "tools/registry.h"

using namespace tactus;
using protocol::Json;
using test::FakeLlmServer;
using test::FakeReply;
using Kind = test::FakeReply::Kind;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// A port nothing listens on: bound, then closed.
}  // namespace

TEST_CASE("llm: HTTP 401 is not retried and carries the provider's message", "[llm][errors]") {
  const std::string api = GENERATE(as<std::string>{}, "openai", "anthropic");
  FakeLlmServer server({FakeReply::error(401, "Incorrect API key provided: sk-te***89.")});
  const auto out = tools::llm::chat(test::fake_llm_config(server, api), test::chat_params());
  CHECK_FALSE(out.ok);
  CHECK(out.code == "failed");
  CHECK(out.message == "llm: fake: HTTP 401: Incorrect API key provided: sk-te***89.");
  CHECK(server.request_count() == 1);
}

TEST_CASE("llm: other 4xx are not retried either", "[llm][errors]") {
  FakeLlmServer server({FakeReply::error(400, "Unsupported parameter: 'temperature'")});
  const auto out = tools::llm::chat(test::fake_llm_config(server), test::chat_params());
  CHECK(out.code == "failed");
  CHECK(out.message == "llm: fake: HTTP 400: Unsupported parameter: 'temperature'");
  CHECK(server.request_count() == 1);
}

TEST_CASE("llm: 429 then success is retried, Retry-After capped", "[llm][errors]") {
  FakeLlmServer server({FakeReply::error(429, "Rate limit reached", "30"), FakeReply::say("ok")});
  const auto t0 = Clock::now();
  const auto out = tools::llm::chat(test::fake_llm_config(server), test::chat_params());
  INFO(out.message);
  REQUIRE(out.ok);
  CHECK(out.result["content"] == "ok");
  CHECK(server.request_count() == 2);
  CHECK(seconds_since(t0) < 5);  // 30 s asked, max_retry_after_seconds (0.05) waited
}

TEST_CASE("llm: Retry-After is honoured below the cap", "[llm][errors]") {
  FakeLlmServer server({FakeReply::error(429, "slow down", "0.4"), FakeReply::say("ok")});
  tools::LlmConfig config = test::fake_llm_config(server);
  config.max_retry_after_seconds = 10;
  const auto t0 = Clock::now();
  const auto out = tools::llm::chat(config, test::chat_params());
  REQUIRE(out.ok);
  CHECK(seconds_since(t0) >= 0.4);  // not the 2 ms backoff
  CHECK(server.request_count() == 2);
}

TEST_CASE("llm: 500 and 503 are retried until the retries run out", "[llm][errors]") {
  FakeLlmServer server({FakeReply::error(500, "boom"), FakeReply::error(503, "overloaded"),
                        FakeReply::error(503, "overloaded"), FakeReply::error(503, "overloaded"),
                        FakeReply::say("never reached")});
  const auto out = tools::llm::chat(test::fake_llm_config(server), test::chat_params());
  CHECK(out.code == "failed");
  CHECK(out.message == "llm: fake: HTTP 503: overloaded (gave up after 4 attempts)");
  CHECK(server.request_count() == 4);  // the first attempt and 3 retries
}

TEST_CASE("llm: a 5xx then success is one retry, retries 0 means one attempt", "[llm][errors]") {
  FakeLlmServer server({FakeReply::error(502, "bad gateway"), FakeReply::say("ok"),
                        FakeReply::error(503, "overloaded")});
  REQUIRE(tools::llm::chat(test::fake_llm_config(server), test::chat_params()).ok);
  CHECK(server.request_count() == 2);
  tools::LlmConfig once = test::fake_llm_config(server);
  once.retries = 0;
  const auto out = tools::llm::chat(once, test::chat_params());
  CHECK(out.message == "llm: fake: HTTP 503: overloaded");
  CHECK(server.request_count() == 3);
}

TEST_CASE("llm: the backoff doubles between attempts", "[llm][errors]") {
  FakeLlmServer server({FakeReply::error(500, "a"), FakeReply::error(500, "b"),
                        FakeReply::error(500, "c"), FakeReply::say("ok")});
  tools::LlmConfig config = test::fake_llm_config(server);
  config.backoff_base_seconds = 0.1;  // 0.1 + 0.2 + 0.4
  const auto t0 = Clock::now();
  REQUIRE(tools::llm::chat(config, test::chat_params()).ok);
  CHECK(seconds_since(t0) >= 0.7);
  CHECK(server.request_count() == 4);
}

TEST_CASE("llm: malformed JSON is failed, not retried", "[llm][errors]") {
  const std::string api = GENERATE(as<std::string>{}, "openai", "anthropic");
  const Kind kind = GENERATE(Kind::malformed_body, Kind::malformed_event);
  FakeLlmServer server({FakeReply::of(kind), FakeReply::say("never reached")});
  const auto out = tools::llm::chat(test::fake_llm_config(server, api), test::chat_params());
  INFO(out.message);
  CHECK(out.code == "failed");
  CHECK(out.message.rfind("llm: fake: malformed JSON in the response: {\"choices\": [", 0) == 0);
  CHECK(server.request_count() == 1);
}

TEST_CASE("llm: a stream that ends without its terminal event is truncated", "[llm][errors]") {
  const std::string api = GENERATE(as<std::string>{}, "openai", "anthropic");
  const std::string model_type = GENERATE(as<std::string>{}, "chat", "responses");
  if (api == "anthropic" && model_type == "responses") return;
  FakeLlmServer server({FakeReply::of(Kind::truncated), FakeReply::say("never reached")});
  tools::LlmConfig config = test::fake_llm_config(server, api);
  std::string streamed;
  int ends = 0;
  config.on_token = [&](std::string_view t) { streamed += t; };
  config.on_reply_end = [&] { ++ends; };
  const auto out = tools::llm::chat(config, test::chat_params({{"model_type", model_type}}));
  CHECK(out.code == "failed");
  CHECK(out.message == "llm: fake: the stream ended before the reply was complete");
  CHECK(server.request_count() == 1);
  CHECK_FALSE(streamed.empty());  // part of it was shown...
  CHECK(ends == 1);               // ...and the printer was told it is over
}

TEST_CASE("llm: a broken connection is retried only if nothing was streamed yet", "[llm][errors]") {
  SECTION("text already went to the token callback: not retried") {
    FakeLlmServer server({FakeReply::of(Kind::cut), FakeReply::say("never reached")});
    tools::LlmConfig config = test::fake_llm_config(server);
    std::string streamed;
    config.on_token = [&](std::string_view t) { streamed += t; };
    const auto out = tools::llm::chat(config, test::chat_params());
    CHECK(out.code == "failed");
    CHECK(contains(out.message, "llm: fake: the stream ended before the reply was complete ("));
    CHECK_FALSE(streamed.empty());
    CHECK(server.request_count() == 1);
  }
  SECTION("nothing streamed yet: retried") {
    FakeReply cut = FakeReply::call({{"call_1", "lookup", R"({"q": "a long query text"})"}});
    cut.kind = Kind::cut;
    FakeLlmServer server({cut, FakeReply::say("second try")});
    const auto out = tools::llm::chat(test::fake_llm_config(server), test::chat_params());
    INFO(out.message);
    REQUIRE(out.ok);
    CHECK(out.result["content"] == "second try");
    CHECK(server.request_count() == 2);
  }
}

TEST_CASE("llm: a slow provider is a timeout", "[llm][errors]") {
  FakeReply slow = FakeReply::say("late");
  slow.delay_seconds = 3;
  FakeLlmServer server({slow});
  tools::LlmConfig config = test::fake_llm_config(server);
  config.timeout_seconds = 0.3;
  const auto t0 = Clock::now();
  const auto out = tools::llm::chat(config, test::chat_params());
  CHECK(out.code == "timeout");
  CHECK(out.message == "llm: fake: no complete reply within 0.3 s");
  CHECK(seconds_since(t0) < 2);
  CHECK(server.request_count() == 1);
}

TEST_CASE("llm: the run's deadline caps the call", "[llm][errors]") {
  FakeReply slow = FakeReply::say("late");
  slow.delay_seconds = 3;
  FakeLlmServer server({slow});
  tools::ToolContext ctx;
  ctx.llm = test::fake_llm_config(server);  // 20 s of its own
  ctx.deadline = Clock::now() + std::chrono::milliseconds(300);
  const auto t0 = Clock::now();
  const auto out = tools::ToolRegistry(ctx).llm_chat(test::chat_params());
  CHECK(out.code == "timeout");
  CHECK(seconds_since(t0) < 2);
}

TEST_CASE("llm: retries stop at the timeout", "[llm][errors]") {
  FakeLlmServer server({FakeReply::error(503, "a", "5"), FakeReply::say("too late")});
  tools::LlmConfig config = test::fake_llm_config(server);
  config.timeout_seconds = 0.5;
  config.max_retry_after_seconds = 5;  // the wait would pass the deadline: give up now
  const auto t0 = Clock::now();
  const auto out = tools::llm::chat(config, test::chat_params());
  CHECK(out.code == "failed");
  CHECK(out.message == "llm: fake: HTTP 503: a");
  CHECK(seconds_since(t0) < 0.5);
  CHECK(server.request_count() == 1);
}

TEST_CASE("llm: connection refused is retried, then failed", "[llm][errors]") {
  tools::LlmConfig config;
  config.providers["fake"] = test::llm_provider(
      "fake", "openai",
      "http://127.0.0.1:" + std::to_string(test::LoopbackServer::closed_port()) + "/v1", "k", "");
  config.backoff_base_seconds = 0.001;
  config.retries = 2;
  const auto out = tools::llm::chat(config, test::chat_params());
  INFO(out.message);
  CHECK(out.code == "failed");
  CHECK(out.message.rfind("llm: fake: cannot reach the provider: ", 0) == 0);
  CHECK(contains(out.message, "(gave up after 3 attempts)"));
}

TEST_CASE("llm: an unknown provider is denied, nothing is sent", "[llm][errors]") {
  FakeLlmServer server({FakeReply::say("ok")});
  const auto out =
      tools::llm::chat(test::fake_llm_config(server), test::chat_params({{"provider", "nope"}}));
  CHECK(out.code == "denied");
  CHECK(out.message ==
        "llm: unknown provider 'nope': declare it under providers: in the configuration "
        "(known: fake)");
  CHECK(server.request_count() == 0);
}

TEST_CASE("llm: a provider without a key is denied with how to configure one", "[llm][errors]") {
  tools::LlmConfig config;
  config.providers["openai"] = test::llm_provider("openai", "openai", "https://api.openai.com/v1",
                                                  "", "set OPENAI_API_KEY in tactus's environment");
  const auto out = tools::llm::chat(config, test::chat_params({{"provider", "openai"}}));
  CHECK(out.code == "denied");
  CHECK(out.message == "llm: openai: no API key: set OPENAI_API_KEY in tactus's environment");
}

TEST_CASE("llm: a reply larger than max_response is failed", "[llm][errors]") {
  FakeLlmServer server({FakeReply::say(std::string(4000, 'x'))});
  tools::LlmConfig config = test::fake_llm_config(server);
  config.max_response = 2000;
  const auto out = tools::llm::chat(config, test::chat_params());
  CHECK(out.code == "failed");
  CHECK(out.message == "llm: fake: the reply is larger than 2000 bytes");
  CHECK(server.request_count() == 1);
}

TEST_CASE("llm: bad params are invalid_args, nothing is sent", "[llm][errors]") {
  FakeLlmServer server;
  const auto config = test::fake_llm_config(server);
  const auto check = [&](Json params, const std::string& message) {
    const auto out = tools::llm::chat(config, params);
    INFO(params.dump());
    CHECK(out.code == "invalid_args");
    CHECK(out.message == message);
  };
  Json p = test::chat_params();
  p.erase("model");
  check(p, "llm.chat: model is required");
  check(test::chat_params({{"messages", Json::array()}}),
        "llm.chat: messages must be a non-empty array");
  check(test::chat_params({{"messages", {{{"role", "robot"}, {"content", "x"}}}}}),
        "llm.chat: messages[0].role must be one of system, user, assistant, tool (got 'robot')");
  check(test::chat_params(
            {{"messages",
              {{{"role", "user"},
                {"content", "x"},
                {"tool_calls", {{{"id", "a"}, {"name", "b"}, {"arguments", Json::object()}}}}}}}}),
        "llm.chat: messages[0].tool_calls: only an assistant message has tool calls");
  check(test::chat_params({{"messages", {{{"role", "tool"}, {"content", "x"}}}}}),
        "llm.chat: messages[0].tool_call_id is required");
  check(test::chat_params(
            {{"messages",
              {{{"role", "assistant"},
                {"tool_calls", {{{"id", "a"}, {"name", "b"}, {"arguments", "{}"}}}}}}}}),
        "llm.chat: messages[0].tool_calls[0].arguments must be an object");
  check(test::chat_params({{"tool_choice", "always"}}),
        "llm.chat: tool_choice must be auto, required or none (got 'always')");
  check(test::chat_params({{"tools", {{{"description", "no name"}}}}}),
        "llm.chat: tools[0].name is required");
  check(test::chat_params({{"max_tokens", 0}}), "llm.chat: max_tokens must be a positive integer");
  check(test::chat_params({{"temperature", "hot"}}), "llm.chat: temperature must be a number >= 0");
  check(test::chat_params({{"model_type", "completion"}}),
        "llm.chat: model_type must be chat or responses (got 'completion')");
  check(test::chat_params({{"stream", false}}), "llm.chat: unknown parameter 'stream'");
  CHECK(server.request_count() == 0);
}

TEST_CASE("llm: the Responses API on an anthropic provider is invalid_args", "[llm][errors]") {
  FakeLlmServer server;
  const auto out = tools::llm::chat(test::fake_llm_config(server, "anthropic"),
                                    test::chat_params({{"model_type", "responses"}}));
  CHECK(out.code == "invalid_args");
  CHECK(out.message ==
        "llm: fake: model_type responses is OpenAI's Responses API; this provider speaks "
        "anthropic");
  CHECK(server.request_count() == 0);
}

TEST_CASE("llm: a provider without a key is allowed only on a loopback address", "[llm][errors]") {
  const auto try_url = [](const std::string& base_url) {
    tools::LlmConfig config;
    config.providers["fake"] = test::llm_provider("fake", "openai", base_url, "", "give it a key");
    config.retries = 0;
    config.timeout_seconds = 2;
    return tools::llm::chat(config, test::chat_params());
  };
  for (const char* remote : {"https://api.example.com/v1", "http://127.evil.example/v1",
                             "http://localhost.evil.example/v1", "http://[::2]/v1",
                             "http://127.0.0.1@evil.example/v1"}) {
    INFO(remote);
    const auto out = try_url(remote);
    CHECK(out.code == "denied");
    CHECK(out.message == "llm: fake: no API key: give it a key");
  }
  const std::string port = std::to_string(test::LoopbackServer::closed_port());
  for (const std::string& local :
       {"http://127.0.0.1:" + port + "/v1", "http://127.1.2.3:" + port,
        "http://LOCALHOST:" + port + "/v1", "http://[::1]:" + port + "/v1"}) {
    INFO(local);
    const auto out = try_url(local);
    CHECK(out.code == "failed");  // it was tried: nothing listens there
    CHECK(out.message.rfind("llm: fake: cannot reach the provider: ", 0) == 0);
  }
}
