// llm.chat against the fake provider, API by API (OpenAI Chat Completions, OpenAI Responses,
// Anthropic Messages): the request as the server received it, and the reply assembled from the
// stream it sent back.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tests/fixtures/fake_llm.h"
#include "tests/support/llm_test_support.h"
#include "tools/llm/llm_client.h"
#include "tools/registry.h"

using namespace tactus;
using protocol::Json;
using test::FakeLlmServer;
using test::FakeReply;

namespace {

// One API as the tests drive it: the provider's api and the request's model_type.
struct Api {
  std::string api, model_type, path;
};

const Api kChat{"openai", "chat", "/v1/chat/completions"};
const Api kResponses{"openai", "responses", "/v1/responses"};
const Api kAnthropic{"anthropic", "chat", "/v1/messages"};

struct Streamed {
  tools::ToolOutcome out;
  std::vector<std::string> tokens;
  int ends = 0;
};

Streamed run(const FakeLlmServer& server, const Api& api, Json params) {
  tools::ToolContext ctx;
  ctx.llm = test::fake_llm_config(server, api.api);
  Streamed s;
  ctx.llm.on_token = [&](std::string_view t) { s.tokens.emplace_back(t); };
  ctx.llm.on_reply_end = [&] { ++s.ends; };
  if (api.model_type != "chat") params["model_type"] = api.model_type;
  s.out = tools::ToolRegistry(ctx).llm_chat(params);
  return s;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x;
  return s;
}

}  // namespace

TEST_CASE("llm: a text reply, streamed, for each API", "[llm]") {
  const Api api = GENERATE(kChat, kResponses, kAnthropic);
  INFO(api.path);
  FakeReply reply = FakeReply::say("Hello, Ada! How are you today?");
  reply.model = "fake-model-2024";
  reply.prompt_tokens = 21;
  reply.completion_tokens = 9;
  FakeLlmServer server({reply});
  const auto s = run(server, api, test::chat_params());
  INFO(s.out.message);
  REQUIRE(s.out.ok);
  CHECK(s.out.result["content"] == "Hello, Ada! How are you today?");
  CHECK(s.out.result["tool_calls"] == Json::array());
  CHECK(s.out.result["finish_reason"] == "stop");
  CHECK(s.out.result["model"] == "fake-model-2024");
  CHECK(s.out.result["usage"] == test::expected_usage(21, 9));
  // The text reached the token callback as it streamed, in pieces, then the end once.
  CHECK(s.tokens.size() > 5);
  CHECK(joined(s.tokens) == "Hello, Ada! How are you today?");
  CHECK(s.ends == 1);
  REQUIRE(server.request_count() == 1);
  CHECK(server.requests()[0].path == api.path);
  CHECK(server.requests()[0].method == "POST");
  CHECK(server.requests()[0].body["stream"] == true);
}

TEST_CASE("llm: two tool calls with arguments streamed in fragments, for each API", "[llm]") {
  const Api api = GENERATE(kChat, kResponses, kAnthropic);
  INFO(api.path);
  FakeReply reply = FakeReply::call({{"call_a", "lookup", R"({"q": "alpha", "limit": 3})"},
                                     {"call_b", "add", R"({"a": 1, "b": [2, 3.5]})"}},
                                    "Let me check.");
  reply.fragment = 2;
  FakeLlmServer server({reply});
  const auto s = run(server, api, test::chat_params());
  INFO(s.out.message);
  REQUIRE(s.out.ok);
  CHECK(s.out.result["content"] == "Let me check.");
  CHECK(s.out.result["finish_reason"] == "tool_calls");
  CHECK(s.out.result["tool_calls"] ==
        Json::parse(R"([{"id": "call_a", "name": "lookup", "arguments": {"q": "alpha", "limit": 3}},
                        {"id": "call_b", "name": "add", "arguments": {"a": 1, "b": [2, 3.5]}}])"));
  CHECK(joined(s.tokens) == "Let me check.");  // arguments are not text
  CHECK(s.out.result["usage"]["total_tokens"] == 18);
}

TEST_CASE("llm: a tool-call-only reply has null content", "[llm]") {
  const Api api = GENERATE(kChat, kResponses, kAnthropic);
  INFO(api.path);
  FakeLlmServer server({FakeReply::call({{"call_1", "done", "{}"}})});
  const auto s = run(server, api, test::chat_params());
  REQUIRE(s.out.ok);
  CHECK(s.out.result["content"].is_null());
  CHECK(s.out.result["tool_calls"] ==
        Json::parse(R"([{"id": "call_1", "name": "done", "arguments": {}}])"));
  CHECK(s.tokens.empty());
  CHECK(s.ends == 0);
}

TEST_CASE("llm: arguments that are not a JSON object are kept as _raw", "[llm]") {
  const Api api = GENERATE(kChat, kResponses, kAnthropic);
  INFO(api.path);
  FakeLlmServer server({FakeReply::call({{"c1", "lookup", "{\"q\": oops"}, {"c2", "n", "[1]"}})});
  const auto s = run(server, api, test::chat_params());
  REQUIRE(s.out.ok);
  CHECK(s.out.result["tool_calls"][0]["arguments"] == Json{{"_raw", "{\"q\": oops"}});
  CHECK(s.out.result["tool_calls"][1]["arguments"] == Json{{"_raw", "[1]"}});
}

TEST_CASE("llm: a reply cut at max_tokens says length, for each API", "[llm]") {
  const Api api = GENERATE(kChat, kResponses, kAnthropic);
  INFO(api.path);
  FakeReply reply = FakeReply::say("It was a dark and");
  reply.finish_reason = "length";
  FakeLlmServer server({reply});
  const auto s = run(server, api, test::chat_params());
  REQUIRE(s.out.ok);
  CHECK(s.out.result["content"] == "It was a dark and");
  CHECK(s.out.result["finish_reason"] == "length");
}

TEST_CASE("llm: a server that answers with one JSON body instead of a stream", "[llm]") {
  const Api api = GENERATE(kChat, kResponses, kAnthropic);
  INFO(api.path);
  FakeReply reply = FakeReply::call({{"call_1", "lookup", R"({"q": "x"})"}}, "Checking.");
  reply.whole = true;
  FakeLlmServer server({reply});
  const auto s = run(server, api, test::chat_params());
  INFO(s.out.message);
  REQUIRE(s.out.ok);
  CHECK(s.out.result["content"] == "Checking.");
  CHECK(s.out.result["tool_calls"] ==
        Json::parse(R"([{"id": "call_1", "name": "lookup", "arguments": {"q": "x"}}])"));
  CHECK(s.out.result["finish_reason"] == "tool_calls");
  CHECK(s.out.result["usage"] == test::expected_usage(11, 7));
  CHECK(s.out.result["model"] == "fake-model");
}

TEST_CASE("llm: responses: a completed event without its output is assembled from the deltas",
          "[llm]") {
  FakeReply reply = FakeReply::call(
      {{"call_1", "lookup", R"({"q": "x"})"}, {"call_2", "add", R"({"a": 1})"}}, "Two calls.");
  reply.bare_completed = true;
  FakeLlmServer server({reply});
  const auto s = run(server, kResponses, test::chat_params());
  REQUIRE(s.out.ok);
  CHECK(s.out.result["content"] == "Two calls.");
  CHECK(s.out.result["tool_calls"] ==
        Json::parse(R"([{"id": "call_1", "name": "lookup", "arguments": {"q": "x"}},
                        {"id": "call_2", "name": "add", "arguments": {"a": 1}}])"));
}

TEST_CASE("llm: chat: the request as OpenAI Chat Completions receives it", "[llm]") {
  FakeLlmServer server({FakeReply::say("ok")});
  REQUIRE(run(server, kChat, test::full_conversation_params()).out.ok);
  REQUIRE(server.request_count() == 1);
  auto req = server.requests()[0];
  CHECK(req.path == "/v1/chat/completions");
  CHECK(req.headers["authorization"] == std::string("Bearer ") + test::kFakeKey);
  CHECK(req.headers["content-type"] == "application/json");
  CHECK(req.body == Json::parse(R"({
    "model": "fake-model",
    "messages": [
      {"role": "system", "content": "You are terse."},
      {"role": "user", "content": "Look up x"},
      {"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "lookup", "arguments": "{\"q\":\"x\"}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "{\"found\":true}"},
      {"role": "user", "content": "Thanks"}],
    "tools": [{"type": "function", "function": {"name": "lookup", "description": "Find a thing",
      "parameters": {"type": "object", "properties": {"q": {"type": "string"}},
                     "required": ["q"]}}}],
    "tool_choice": "required", "temperature": 0.25, "max_tokens": 100,
    "stream": true, "stream_options": {"include_usage": true}})"));
}

TEST_CASE("llm: responses: the request as OpenAI Responses receives it", "[llm]") {
  FakeLlmServer server({FakeReply::say("ok")});
  REQUIRE(run(server, kResponses, test::full_conversation_params()).out.ok);
  REQUIRE(server.request_count() == 1);
  auto req = server.requests()[0];
  CHECK(req.path == "/v1/responses");
  CHECK(req.headers["authorization"] == std::string("Bearer ") + test::kFakeKey);
  CHECK(req.body == Json::parse(R"({
    "model": "fake-model",
    "input": [
      {"role": "system", "content": "You are terse."},
      {"role": "user", "content": "Look up x"},
      {"type": "function_call", "call_id": "call_1", "name": "lookup",
       "arguments": "{\"q\":\"x\"}"},
      {"type": "function_call_output", "call_id": "call_1", "output": "{\"found\":true}"},
      {"role": "user", "content": "Thanks"}],
    "tools": [{"type": "function", "name": "lookup", "description": "Find a thing",
      "parameters": {"type": "object", "properties": {"q": {"type": "string"}},
                     "required": ["q"]}}],
    "tool_choice": "required", "temperature": 0.25, "max_output_tokens": 100,
    "stream": true, "store": false})"));
}

TEST_CASE("llm: anthropic: the request as Anthropic Messages receives it", "[llm]") {
  FakeLlmServer server({FakeReply::say("ok")});
  REQUIRE(run(server, kAnthropic, test::full_conversation_params()).out.ok);
  REQUIRE(server.request_count() == 1);
  auto req = server.requests()[0];
  CHECK(req.path == "/v1/messages");
  CHECK(req.headers["x-api-key"] == test::kFakeKey);
  CHECK(req.headers["anthropic-version"] == "2023-06-01");
  CHECK(req.headers.count("authorization") == 0);
  // The system prompt is top-level; the tool result and the next user text share one message.
  CHECK(req.body == Json::parse(R"({
    "model": "fake-model", "max_tokens": 100, "system": "You are terse.",
    "messages": [
      {"role": "user", "content": [{"type": "text", "text": "Look up x"}]},
      {"role": "assistant", "content": [
        {"type": "tool_use", "id": "call_1", "name": "lookup", "input": {"q": "x"}}]},
      {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "{\"found\":true}"},
        {"type": "text", "text": "Thanks"}]}],
    "tools": [{"name": "lookup", "description": "Find a thing",
      "input_schema": {"type": "object", "properties": {"q": {"type": "string"}},
                       "required": ["q"]}}],
    "tool_choice": {"type": "any"}, "temperature": 0.25, "stream": true})"));
}

TEST_CASE("llm: anthropic: max_tokens defaults to 4096, auto and none tool choices", "[llm]") {
  FakeLlmServer server({FakeReply::say("a"), FakeReply::say("b")});
  REQUIRE(run(server, kAnthropic, test::chat_params({{"tool_choice", "auto"}})).out.ok);
  REQUIRE(run(server, kAnthropic, test::chat_params({{"tool_choice", "none"}})).out.ok);
  const auto reqs = server.requests();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[0].body["max_tokens"] == 4096);
  CHECK(reqs[0].body["tool_choice"] == Json{{"type", "auto"}});
  CHECK(reqs[1].body["tool_choice"] == Json{{"type", "none"}});
  CHECK_FALSE(reqs[0].body.contains("system"));
}

TEST_CASE("llm: _raw arguments go back to the provider as the model wrote them", "[llm]") {
  FakeLlmServer server({FakeReply::say("ok")});
  Json params = test::chat_params(
      {{"messages",
        {{{"role", "user"}, {"content", "go"}},
         {{"role", "assistant"},
          {"tool_calls",
           {{{"id", "c1"}, {"name", "lookup"}, {"arguments", {{"_raw", "{\"q\": oops"}}}}}}},
         {{"role", "tool"}, {"tool_call_id", "c1"}, {"content", "error: bad arguments"}}}}});
  REQUIRE(run(server, kChat, params).out.ok);
  CHECK(server.requests()[0].body["messages"][1]["tool_calls"][0]["function"]["arguments"] ==
        "{\"q\": oops");
}

TEST_CASE("llm: a local provider without a key sends no credentials", "[llm]") {
  FakeLlmServer server({FakeReply::say("ok")});
  tools::LlmConfig config = test::fake_llm_config(server, "openai", "");
  const auto out = tools::llm::chat(config, test::chat_params());
  INFO(out.message);
  REQUIRE(out.ok);
  const auto req = server.requests().at(0);
  CHECK(req.headers.count("authorization") == 0);
  CHECK(req.headers.count("x-api-key") == 0);
}

TEST_CASE("llm: empty Lua tables ({}) for tools and tool_calls mean none", "[llm]") {
  FakeLlmServer server({FakeReply::say("ok")});
  Json params = test::chat_params(
      {{"tools", Json::object()},
       {"messages",
        {{{"role", "user"}, {"content", "hi"}},
         {{"role", "assistant"}, {"content", "hello"}, {"tool_calls", Json::object()}},
         {{"role", "user"}, {"content", "again"}}}}});
  const auto s = run(server, kChat, params);
  INFO(s.out.message);
  REQUIRE(s.out.ok);
  const auto body = server.requests().at(0).body;
  CHECK_FALSE(body.contains("tools"));
  CHECK(body["messages"][1] == Json{{"role", "assistant"}, {"content", "hello"}});
}
