// The providers a run gets from its configuration (broker::llm_config).
#include <catch2/catch.hpp>

#include <string>

#include "broker/llm_providers.h"

using namespace tactus;

namespace {

sidecars::Config config_from(const std::string& yaml) {
  sidecars::Config c;
  std::string error;
  REQUIRE(sidecars::apply_layer(yaml, "/p/proc.tac.yml", c, error));
  REQUIRE(sidecars::check_config(c, error));
  return c;
}

const char* no_env(const char*) {
  return nullptr;
}

}  // namespace

TEST_CASE("llm providers: the built-ins, keyed from the environment and masked", "[llm]") {
  broker::Redactor redactor;
  const auto env = [](const char* name) -> const char* {
    if (std::string(name) == "OPENAI_API_KEY") return "sk-openai-env-0001";
    if (std::string(name) == "ANTHROPIC_API_KEY") return "sk-ant-env-0002";
    return nullptr;
  };
  const auto llm = broker::llm_config(sidecars::Config{}, {}, redactor, env);
  REQUIRE(llm.providers.size() == 2);
  const auto& openai = llm.providers.at("openai");
  CHECK(openai.api == "openai");
  CHECK(openai.base_url == "https://api.openai.com/v1");
  CHECK(openai.api_key == "sk-openai-env-0001");
  const auto& anthropic = llm.providers.at("anthropic");
  CHECK(anthropic.api == "anthropic");
  CHECK(anthropic.base_url == "https://api.anthropic.com/v1");
  CHECK(anthropic.api_key == "sk-ant-env-0002");
  CHECK(redactor.redact("a sk-openai-env-0001 b sk-ant-env-0002") == "a *** b ***");
  CHECK(llm.timeout_seconds == 120);
  CHECK(llm.retries == 3);
}

TEST_CASE("llm providers: without the variables the built-ins have no key, and say how", "[llm]") {
  broker::Redactor redactor;
  const auto llm = broker::llm_config(sidecars::Config{}, {}, redactor, no_env);
  CHECK(llm.providers.at("openai").api_key.empty());
  CHECK(llm.providers.at("openai").key_hint ==
        "set OPENAI_API_KEY in tactus's environment, or declare providers.openai.api_key naming "
        "a secret");
  CHECK(redactor.empty());
}

TEST_CASE("llm providers: declared providers, their keys, base URLs and APIs", "[llm]") {
  const auto config = config_from(
      "secrets:\n  MY_KEY: {env: MY_KEY}\n  ANT: {env: ANT}\n"
      "providers:\n"
      "  openai: {api_key: MY_KEY}\n"
      "  anthropic: {api_key: ANT}\n"
      "  local: {base_url: \"http://127.0.0.1:11434/v1/\"}\n"
      "  claude_proxy: {base_url: \"https://proxy.example/v1\", api: anthropic}\n"
      "  defaults: {timeout: 30, retries: 5}\n");
  broker::Redactor redactor;
  const auto env = [](const char* name) -> const char* {
    return std::string(name) == "OPENAI_API_KEY" ? "sk-env-not-used-0003" : nullptr;
  };
  const auto llm = broker::llm_config(
      config, {{"MY_KEY", "sk-declared-0004"}, {"ANT", "sk-ant-declared-5"}}, redactor, env);
  CHECK(llm.providers.size() == 4);
  CHECK(llm.providers.at("openai").api_key == "sk-declared-0004");  // the config wins
  CHECK(llm.providers.at("openai").base_url == "https://api.openai.com/v1");
  CHECK(llm.providers.at("anthropic").api == "anthropic");
  CHECK(llm.providers.at("anthropic").api_key == "sk-ant-declared-5");
  CHECK(llm.providers.at("local").api == "openai");
  CHECK(llm.providers.at("local").base_url == "http://127.0.0.1:11434/v1");
  CHECK(llm.providers.at("local").api_key.empty());
  CHECK(llm.providers.at("local").key_hint ==
        "declare providers.local.api_key naming a secret (/p/proc.tac.yml:7:10)");
  CHECK(llm.providers.at("claude_proxy").api == "anthropic");
  CHECK(llm.timeout_seconds == 30);
  CHECK(llm.retries == 5);
  // The unused variable is still a credential: masked.
  CHECK(redactor.redact("sk-env-not-used-0003") == "***");
}

TEST_CASE("llm providers: OpenAI's own API gets max_completion_tokens, others max_tokens",
          "[llm][usage]") {
  broker::Redactor redactor;
  const auto llm = broker::llm_config(
      config_from("providers:\n"
                  "  local: {base_url: \"http://127.0.0.1:11434/v1\"}\n"
                  "  proxy: {base_url: \"https://api.openai.com.example.test/v1\"}\n"
                  "  forced: {base_url: \"http://127.0.0.1:8000/v1\", max_tokens_field: "
                  "max_completion_tokens}\n"
                  "  claude: {api: anthropic}\n"),
      {}, redactor, no_env);
  CHECK(llm.providers.at("openai").max_tokens_field == "max_completion_tokens");
  CHECK(llm.providers.at("local").max_tokens_field == "max_tokens");
  CHECK(llm.providers.at("proxy").max_tokens_field == "max_tokens");
  CHECK(llm.providers.at("forced").max_tokens_field == "max_completion_tokens");
  CHECK(llm.providers.at("claude").max_tokens_field == "max_tokens");  // Anthropic ignores it
}

TEST_CASE("llm providers: the built-in prices, and configured ones over them", "[llm][usage]") {
  broker::Redactor redactor;
  const auto llm = broker::llm_config(config_from("providers:\n"
                                                  "  openai:\n"
                                                  "    prices:\n"
                                                  "      gpt-4o: {input: 3, output: 12}\n"
                                                  "  local:\n"
                                                  "    base_url: \"http://127.0.0.1:11434/v1\"\n"
                                                  "    prices:\n"
                                                  "      llama3: {input: 0, output: 0}\n"),
                                      {}, redactor, no_env);
  const auto& openai = llm.providers.at("openai");
  CHECK(openai.prices.at("gpt-4o").input == 3);
  CHECK(openai.prices.at("gpt-4o").cached_input == 3);  // defaults to input
  CHECK(openai.prices.at("gpt-4o").output == 12);
  CHECK(openai.prices.at("gpt-4o-mini").input == 0.15);  // the built-in table, kept
  CHECK(llm.providers.at("anthropic").prices.at("claude-sonnet-4-5").cache_write == 3.75);
  const auto& local = llm.providers.at("local");
  CHECK(local.prices.size() == 1);  // no built-in prices for another provider
  CHECK(local.prices.at("llama3").cache_write == 0);
}
