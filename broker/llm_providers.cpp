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

std::string default_base_url(const std::string& api) {
  return api == "anthropic" ? kBuiltIns[1].base_url : kBuiltIns[0].base_url;
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
  for (auto& [name, p] : llm.providers)
    while (!p.base_url.empty() && p.base_url.back() == '/') p.base_url.pop_back();
  return llm;
}

}  // namespace tactus::broker
