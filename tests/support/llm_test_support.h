// Shared by the llm.chat tests: a provider configuration pointing at a FakeLlmServer, and a
// conversation that uses every kind of message.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/protocol/message.h"
#include "tests/fixtures/fake_llm.h"
#include "tools/tool_context.h"

namespace tactus::test {

inline constexpr const char* kFakeKey = "sk-test-fake-key-0123456789";

inline tools::LlmProvider llm_provider(std::string name, std::string api, std::string base_url,
                                       std::string key, std::string hint) {
  tools::LlmProvider p;
  p.name = std::move(name);
  p.api = std::move(api);
  p.base_url = std::move(base_url);
  p.api_key = std::move(key);
  p.key_hint = std::move(hint);
  return p;
}

// llm.chat's usage as it travels, for a reply with these counts (input: neither read from nor
// written to the cache).
inline protocol::Json expected_usage(std::int64_t input, std::int64_t output,
                                     std::int64_t cached = 0, std::int64_t creation = 0) {
  const std::int64_t prompt = input + cached + creation;
  return {{"input_tokens", input},
          {"cached_input_tokens", cached},
          {"cache_creation_input_tokens", creation},
          {"output_tokens", output},
          {"total_tokens", prompt + output},
          {"prompt_tokens", prompt},
          {"completion_tokens", output}};
}

// The provider "fake" at server, speaking api, with a fast retry schedule.
inline tools::LlmConfig fake_llm_config(const FakeLlmServer& server,
                                        const std::string& api = "openai",
                                        const std::string& key = kFakeKey) {
  tools::LlmConfig c;
  c.providers["fake"] =
      llm_provider("fake", api, server.base_url(), key, "declare providers.fake.api_key");
  c.timeout_seconds = 20;
  c.retries = 3;
  c.backoff_base_seconds = 0.002;
  c.max_retry_after_seconds = 0.05;
  return c;
}

// {provider: fake, model: fake-model, messages: [user "Hi"]} plus extra.
inline protocol::Json chat_params(protocol::Json extra = protocol::Json::object()) {
  protocol::Json p = {{"agent", "greeter"},
                      {"provider", "fake"},
                      {"model", "fake-model"},
                      {"messages", {{{"role", "user"}, {"content", "Hi"}}}}};
  for (auto& [k, v] : extra.items()) p[k] = v;
  return p;
}

// System prompt, user, an assistant turn of tool calls, its tool result, user again; a tool
// with a JSON schema; tool_choice, temperature, max_tokens.
inline protocol::Json full_conversation_params() {
  using protocol::Json;
  const Json schema = {
      {"type", "object"}, {"properties", {{"q", {{"type", "string"}}}}}, {"required", {"q"}}};
  return chat_params(
      {{"messages",
        {{{"role", "system"}, {"content", "You are terse."}},
         {{"role", "user"}, {"content", "Look up x"}},
         {{"role", "assistant"},
          {"content", nullptr},
          {"tool_calls", {{{"id", "call_1"}, {"name", "lookup"}, {"arguments", {{"q", "x"}}}}}}},
         {{"role", "tool"},
          {"tool_call_id", "call_1"},
          {"name", "lookup"},
          {"content", "{\"found\":true}"}},
         {{"role", "user"}, {"content", "Thanks"}}}},
       {"tools", {{{"name", "lookup"}, {"description", "Find a thing"}, {"parameters", schema}}}},
       {"tool_choice", "required"},
       {"temperature", 0.25},
       {"max_tokens", 100}});
}

}  // namespace tactus::test
