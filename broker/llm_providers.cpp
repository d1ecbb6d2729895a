#include "broker/llm_providers.h"

namespace tactus::broker {
namespace {

struct BuiltIn {
  const char* name;
  const char* api;
  const char* base_url;
  const char* env;
};

constexpr BuiltIn kBuiltIns[] = {
    {"openai", "openai", "https://api.openai.com/v1", "OPENAI_API_KEY"},
    {"anthropic", "anthropic", "https://api.anthropic.com/v1", "ANTHROPIC_API_KEY"},
};

// The vendors' list prices of their common models, in USD per million tokens (standard tier,
// as published in 2025): input, cached input (read from the prompt cache), output, cache write
// (Anthropic's five-minute cache; OpenAI writes its cache for free). They apply to the
// providers named openai and anthropic; providers.NAME.prices replaces a model's entry, and a
// price that changed since is corrected there (docs/configuration.md, "Prices").
struct BuiltInPrice {
  const char* provider;
  const char* model;
  tools::ModelPrice price;
};

constexpr BuiltInPrice kBuiltInPrices[] = {
    {"openai", "gpt-5", {1.25, 0.125, 10.00, 0}},
    {"openai", "gpt-5-mini", {0.25, 0.025, 2.00, 0}},
    {"openai", "gpt-5-nano", {0.05, 0.005, 0.40, 0}},
    {"openai", "gpt-4.1", {2.00, 0.50, 8.00, 0}},
    {"openai", "gpt-4.1-mini", {0.40, 0.10, 1.60, 0}},
    {"openai", "gpt-4.1-nano", {0.10, 0.025, 0.40, 0}},
    {"openai", "gpt-4o", {2.50, 1.25, 10.00, 0}},
    {"openai", "gpt-4o-2024-05-13", {5.00, 5.00, 15.00, 0}},  // a snapshot at its own price
    {"openai", "gpt-4o-mini", {0.15, 0.075, 0.60, 0}},
    {"openai", "o1", {15.00, 7.50, 60.00, 0}},
    {"openai", "o3", {2.00, 0.50, 8.00, 0}},
    {"openai", "o3-mini", {1.10, 0.55, 4.40, 0}},
    {"openai", "o4-mini", {1.10, 0.275, 4.40, 0}},
    {"anthropic", "claude-opus-4-5", {5.00, 0.50, 25.00, 6.25}},
    {"anthropic", "claude-opus-4-1", {15.00, 1.50, 75.00, 18.75}},
    {"anthropic", "claude-opus-4", {15.00, 1.50, 75.00, 18.75}},
    {"anthropic", "claude-sonnet-4-5", {3.00, 0.30, 15.00, 3.75}},
    {"anthropic", "claude-sonnet-4", {3.00, 0.30, 15.00, 3.75}},
    {"anthropic", "claude-3-7-sonnet", {3.00, 0.30, 15.00, 3.75}},
    {"anthropic", "claude-haiku-4-5", {1.00, 0.10, 5.00, 1.25}},
    {"anthropic", "claude-3-5-haiku", {0.80, 0.08, 4.00, 1.00}},
};

// OpenAI's own API wants max_completion_tokens (its reasoning models refuse max_tokens); a
// compatible server knows max_tokens.
constexpr const char* kOpenAiOwnUrl = "https://api.openai.com/";

std::string default_base_url(const std::string& api) {
  return api == "anthropic" ? kBuiltIns[1].base_url : kBuiltIns[0].base_url;
}

void add_prices(const sidecars::Provider* decl, tools::LlmProvider& p) {
  for (const auto& b : kBuiltInPrices)
    if (p.name == b.provider) p.prices[b.model] = b.price;
  if (!decl) return;
  for (const auto& [model, d] : decl->prices)
    p.prices[model] = {d.input, d.cached_input, d.output,
                       d.cache_write >= 0 ? d.cache_write : d.input * 1.25};
}

void set_max_tokens_field(const sidecars::Provider* decl, tools::LlmProvider& p) {
  if (decl && !decl->max_tokens_field.empty()) {
    p.max_tokens_field = decl->max_tokens_field;
    return;
  }
  p.max_tokens_field = p.api == "openai" && p.base_url.rfind(kOpenAiOwnUrl, 0) == 0
                           ? "max_completion_tokens"
                           : "max_tokens";
}

}  // namespace

tools::LlmConfig llm_config(const sidecars::Config& config,
                            const std::map<std::string, std::string>& secret_values,
                            Redactor& redactor,
                            const std::function<const char*(const char*)>& getenv) {
  tools::LlmConfig llm;
  llm.timeout_seconds = config.provider_timeout.value;
  llm.retries = static_cast<int>(config.provider_retries.value);
  for (const auto& [name, decl] : config.providers) {
    tools::LlmProvider p;
    p.name = name;
    p.api = !decl.api.empty() ? decl.api : name == "anthropic" ? "anthropic" : "openai";
    p.base_url = decl.base_url.empty() ? default_base_url(p.api) : decl.base_url;
    // check_config made sure api_key names a declared secret; resolve_secrets resolved it.
    if (const auto it = secret_values.find(decl.api_key);
        !decl.api_key.empty() && it != secret_values.end())
      p.api_key = it->second;
    p.key_hint =
        "declare providers." + name + ".api_key naming a secret (" + decl.origin.text() + ")";
    llm.providers.emplace(name, std::move(p));
  }
  for (const auto& b : kBuiltIns) {
    const char* value = getenv(b.env);
    const std::string key = value ? value : "";
    // Masked even when a declared provider replaces the built-in: it is a credential anyway.
    if (!key.empty()) redactor.add(key);
    if (llm.providers.count(b.name)) continue;
    tools::LlmProvider p;
    p.name = b.name;
    p.api = b.api;
    p.base_url = b.base_url;
    p.api_key = key;
    p.key_hint = std::string("set ") + b.env + " in tactus's environment, or declare providers." +
                 b.name + ".api_key naming a secret";
    llm.providers.emplace(b.name, std::move(p));
  }
  for (auto& [name, p] : llm.providers) {
    while (!p.base_url.empty() && p.base_url.back() == '/') p.base_url.pop_back();
    const auto decl = config.providers.find(name);
    const sidecars::Provider* declared = decl == config.providers.end() ? nullptr : &decl->second;
    add_prices(declared, p);
    set_max_tokens_field(declared, p);
  }
  return llm;
}

}  // namespace tactus::broker
