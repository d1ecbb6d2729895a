// Each dialect against recorded exchanges (tests/fixtures/llm/, written from the providers'
// documented examples): the request it builds, and the reply and usage it reads from a stream
// or a whole body. Usage as the provider reported it: cached input kept apart from input,
// reasoning tokens where reported, and no usage reported as "unknown", never 0.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "tests/support/llm_test_support.h"
#include "tools/llm/dialect.h"
#include "tools/llm/llm_client.h"
#include "tools/llm/llm_types.h"

using namespace tactus;
using tools::llm::ChatReply;
using tools::llm::Json;

namespace {

std::string fixture(const std::string& name) {
  std::ifstream f(std::string(TACTUS_SOURCE_DIR) + "/tests/fixtures/llm/" + name);
  REQUIRE(f);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The stream fed to the dialect's assembler, as it arrives: cut every 7 bytes.
ChatReply assemble(const tools::llm::Dialect& dialect, const std::string& stream) {
  auto assembler = dialect.assembler();
  tools::llm::SseParser sse;
  bool done = false;
  std::string text;
  const tools::llm::TextSink on_text = [&](std::string_view t) { text += t; };
  for (std::size_t i = 0; i < stream.size(); i += 7)
    sse.feed(std::string_view(stream).substr(i, 7), [&](const tools::llm::SseEvent& e) {
      if (done) return;
      const auto step = assembler->on_event(e, on_text);
      REQUIRE(step != tools::llm::StreamAssembler::Step::error);
      done = step == tools::llm::StreamAssembler::Step::done;
    });
  REQUIRE(done);
  ChatReply reply = assembler->reply();
  CHECK(reply.content.value_or("") == text);
  return reply;
}

// What the procedure sends: a system prompt, a question, a tool, a cap on the output.
tools::llm::ChatRequest weather_request(const std::string& model) {
  tools::llm::ChatRequest r;
  r.model = model;
  r.messages = {{"system", "You are terse.", {}, "", ""},
                {"user", "What is the weather like in Boston today?", {}, "", ""}};
  r.tools = {{"get_current_weather", "Get the current weather in a given location",
              Json::parse(R"({"type": "object",
                "properties": {
                  "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                  "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                "required": ["location"]})")}};
  r.tool_choice = "auto";
  r.max_tokens = 1024;
  return r;
}

}  // namespace

TEST_CASE("llm fixtures: OpenAI Chat Completions, streamed: cached and reasoning tokens apart",
          "[llm][usage]") {
  const auto reply =
      assemble(*tools::llm::openai_chat_dialect(), fixture("openai_chat_stream.sse"));
  CHECK(reply.content == "Hello there!");
  CHECK(reply.finish_reason == "stop");
  CHECK(reply.model == "o4-mini-2025-04-16");
  REQUIRE(reply.usage);
  // prompt_tokens 2006 of which 1920 were read from the cache: 86 uncached.
  CHECK(reply.usage->input_tokens == 86);
  CHECK(reply.usage->cached_input_tokens == 1920);
  CHECK(reply.usage->cache_creation_input_tokens == 0);
  CHECK(reply.usage->output_tokens == 300);
  CHECK(reply.usage->reasoning_tokens == 256);
  const Json u = tools::llm::usage_json(reply.usage);
  CHECK(u["prompt_tokens"] == 2006);
  CHECK(u["completion_tokens"] == 300);
  CHECK(u["total_tokens"] == 2306);
  CHECK(u["reasoning_tokens"] == 256);
}

TEST_CASE("llm fixtures: OpenAI Chat Completions, one JSON body", "[llm][usage]") {
  ChatReply reply;
  std::string error;
  REQUIRE(tools::llm::openai_chat_dialect()->parse_whole(
      Json::parse(fixture("openai_chat_whole.json")), reply, error));
  CHECK(reply.content == "The image shows a wooden boardwalk path.");
  REQUIRE(reply.usage);
  CHECK(reply.usage->input_tokens == 93);
  CHECK(reply.usage->cached_input_tokens == 1024);
  CHECK(reply.usage->output_tokens == 46);
  CHECK(reply.usage->reasoning_tokens == 0);
  CHECK(reply.usage->total_tokens() == 1163);
}

TEST_CASE("llm fixtures: OpenAI Responses, streamed, with a reasoning item", "[llm][usage]") {
  const auto reply =
      assemble(*tools::llm::openai_responses_dialect(), fixture("openai_responses_stream.sse"));
  CHECK(reply.content == "Hi there!");
  CHECK(reply.finish_reason == "stop");
  REQUIRE(reply.usage);
  CHECK(reply.usage->input_tokens == 264);
  CHECK(reply.usage->cached_input_tokens == 1536);
  CHECK(reply.usage->output_tokens == 210);
  CHECK(reply.usage->reasoning_tokens == 192);
  CHECK(reply.usage->total_tokens() == 2010);
}

TEST_CASE("llm fixtures: Anthropic Messages, streamed: cache writes and reads kept apart",
          "[llm][usage]") {
  const auto dialect = tools::llm::anthropic_dialect();
  const auto written = assemble(*dialect, fixture("anthropic_stream.sse"));
  CHECK(written.content == "Hello!");
  CHECK(written.finish_reason == "stop");
  REQUIRE(written.usage);
  CHECK(written.usage->input_tokens == 21);
  CHECK(written.usage->cache_creation_input_tokens == 188086);
  CHECK(written.usage->cached_input_tokens == 0);
  CHECK(written.usage->output_tokens == 393);  // message_delta's count replaces message_start's
  CHECK_FALSE(written.usage->reasoning_tokens);
  CHECK_FALSE(tools::llm::usage_json(written.usage).contains("reasoning_tokens"));

  const auto read = assemble(*dialect, fixture("anthropic_cached_stream.sse"));
  CHECK(read.finish_reason == "tool_calls");
  REQUIRE(read.tool_calls.size() == 1);
  CHECK(read.tool_calls[0].arguments == Json{{"location", "San Francisco, CA"}});
  REQUIRE(read.usage);
  CHECK(read.usage->input_tokens == 21);
  CHECK(read.usage->cached_input_tokens == 188086);
  CHECK(read.usage->cache_creation_input_tokens == 0);
  CHECK(read.usage->output_tokens == 89);
}

TEST_CASE("llm fixtures: a stream without usage reports unknown, never 0", "[llm][usage]") {
  std::string stream = fixture("openai_chat_stream.sse");
  // The same stream from a server that ignores stream_options.include_usage.
  const auto usage_chunk = stream.find(
      "data: "
      "{\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,"
      "\"model\":\"o4-mini-2025-04-16\",\"system_fingerprint\":\"fp_44709d6fcb\",\"choices\":[],");
  REQUIRE(usage_chunk != std::string::npos);
  stream.erase(usage_chunk, stream.find("\n\n", usage_chunk) + 2 - usage_chunk);
  const auto reply = assemble(*tools::llm::openai_chat_dialect(), stream);
  CHECK(reply.content == "Hello there!");
  CHECK_FALSE(reply.usage);
  CHECK(tools::llm::usage_json(reply.usage) == "unknown");
  CHECK(tools::llm::to_json(reply)["usage"] == "unknown");
  CHECK(tools::llm::call_cost(nullptr, "unknown") == "unknown");
}

TEST_CASE("llm fixtures: each dialect's request, OpenAI's own API gets max_completion_tokens",
          "[llm][usage]") {
  auto chat = weather_request("o4-mini");
  chat.max_tokens_field = "max_completion_tokens";
  CHECK(tools::llm::openai_chat_dialect()->body(chat) ==
        Json::parse(fixture("openai_chat_request.json")));
  // A compatible server keeps max_tokens (every one of them knows it).
  chat.max_tokens_field = "max_tokens";
  const Json compatible = tools::llm::openai_chat_dialect()->body(chat);
  CHECK(compatible["max_tokens"] == 1024);
  CHECK_FALSE(compatible.contains("max_completion_tokens"));

  CHECK(tools::llm::openai_responses_dialect()->body(weather_request("o4-mini")) ==
        Json::parse(fixture("openai_responses_request.json")));
  // Anthropic's max_tokens is required, whatever the provider's field says.
  auto claude = weather_request("claude-sonnet-4-5");
  claude.max_tokens_field = "max_completion_tokens";
  CHECK(tools::llm::anthropic_dialect()->body(claude) ==
        Json::parse(fixture("anthropic_request.json")));
}

TEST_CASE("llm fixtures: a price per model, a dated snapshot priced as its model", "[llm][usage]") {
  tools::LlmProvider p;
  p.prices["gpt-4o"] = {2.50, 1.25, 10.00, 0};
  p.prices["gpt-4o-mini"] = {0.15, 0.075, 0.60, 0};
  CHECK(tools::llm::model_price(p, "gpt-4o") == &p.prices["gpt-4o"]);
  CHECK(tools::llm::model_price(p, "gpt-4o-2024-08-06") == &p.prices["gpt-4o"]);
  CHECK(tools::llm::model_price(p, "gpt-4o-mini-2024-07-18") == &p.prices["gpt-4o-mini"]);
  CHECK(tools::llm::model_price(p, "gpt-4o-latest") == &p.prices["gpt-4o"]);
  CHECK(tools::llm::model_price(p, "gpt-4o-20240806") == &p.prices["gpt-4o"]);
  CHECK(tools::llm::model_price(p, "gpt-4oo") == nullptr);
  CHECK(tools::llm::model_price(p, "gpt-4") == nullptr);
  // Another model that extends a priced name is not priced as it: it may cost ten times more.
  CHECK(tools::llm::model_price(p, "gpt-4o-audio-preview") == nullptr);
  CHECK(tools::llm::model_price(p, "gpt-4o-2024") == nullptr);
  CHECK(tools::llm::model_price(p, "gpt-4o-2024-08-0x") == nullptr);
  // 1,000,000 uncached input at 2.50, 2,000,000 cached at 1.25, 100,000 output at 10.
  const Json usage = test::expected_usage(1000000, 100000, 2000000);
  CHECK(tools::llm::call_cost(&p.prices["gpt-4o"], usage).get<double>() == Approx(6.0));
}

TEST_CASE("llm fixtures: usage counts that are not counts make the usage unknown, not 0",
          "[llm][usage]") {
  std::string stream = fixture("openai_chat_stream.sse");
  const std::string real = "\"prompt_tokens\":2006";
  SECTION("a count as text") {
    stream.replace(stream.find(real), real.size(), "\"prompt_tokens\":\"2006\"");
  }
  SECTION("a negative count") {
    stream.replace(stream.find(real), real.size(), "\"prompt_tokens\":-5");
  }
  SECTION("a fraction") {
    stream.replace(stream.find(real), real.size(), "\"prompt_tokens\":1.5");
  }
  SECTION("a cached count as an object") {
    const std::string cached = "\"cached_tokens\":1920";
    stream.replace(stream.find(cached), cached.size(), "\"cached_tokens\":{\"n\":1}");
  }
  const auto reply = assemble(*tools::llm::openai_chat_dialect(), stream);
  CHECK_FALSE(reply.usage);
  // A count past 2^63 is not wrapped negative: it is capped at 2^40.
  std::string huge = fixture("openai_chat_stream.sse");
  huge.replace(huge.find(real), real.size(), "\"prompt_tokens\":18446744073709551615");
  const auto capped = assemble(*tools::llm::openai_chat_dialect(), huge).usage;
  REQUIRE(capped);
  CHECK(capped->input_tokens == (std::int64_t{1} << 40) - 1920);
  // A whole number written as a double is a count.
  std::string doubled = fixture("openai_chat_stream.sse");
  doubled.replace(doubled.find(real), real.size(), "\"prompt_tokens\":2.006e3");
  CHECK(assemble(*tools::llm::openai_chat_dialect(), doubled).usage->input_tokens == 86);
  // Anthropic: a bad count in message_delta spoils what message_start said.
  std::string claude = fixture("anthropic_stream.sse");
  const std::string out = "\"output_tokens\": 393";
  claude.replace(claude.find(out), out.size(), "\"output_tokens\": \"lots\"");
  CHECK_FALSE(assemble(*tools::llm::anthropic_dialect(), claude).usage);
}
