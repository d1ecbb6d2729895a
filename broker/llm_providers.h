// The model providers a run may reach through llm.chat, from the trusted configuration.
#pragma once

#include <cstdlib>
#include <functional>
#include <map>
#include <string>

#include "broker/secrets.h"
#include "sidecars/config.h"
#include "tools/tool_context.h"

namespace tactus::broker {

inline const char* process_env(const char* name) {
  return std::getenv(name);
}

// providers.NAME with their api_key secrets resolved (secret_values, by secret name), their
// base_url (or the API's own) and api (openai unless said, or the name is anthropic); plus the
// built-in openai and anthropic when the configuration does not declare them, keyed from
// OPENAI_API_KEY / ANTHROPIC_API_KEY in tactus's own environment (read through getenv). Those
// two values are added to redactor whenever they are set, so they are masked everywhere like a
// declared secret. providers.defaults gives the timeout and the retries.
tools::LlmConfig llm_config(const sidecars::Config& config,
                            const std::map<std::string, std::string>& secret_values,
                            Redactor& redactor,
                            const std::function<const char*(const char*)>& getenv = process_env);

}  // namespace tactus::broker
