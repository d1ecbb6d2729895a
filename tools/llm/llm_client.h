// llm.chat: one model request on the VM's behalf (docs/protocol.md, "Model requests").
//
// The provider is looked up in the run's LlmConfig (an unknown one is denied, as is one without
// an API key unless its base_url is a loopback address); the request is translated for its API
// (OpenAI Chat Completions, OpenAI Responses, Anthropic Messages: tools/llm/dialect.h), always
// streamed, and the reply assembled from the stream. HTTP 429 and 5xx and connection errors are
// retried with exponential backoff (or the provider's Retry-After, capped), up to
// LlmConfig::retries times, but never once text was handed to on_token; the whole call,
// retries included, has LlmConfig::timeout_seconds. The API key goes in the provider's auth
// header and nowhere else; every message names the provider, never the key.
#pragma once

#include "runtime/protocol/message.h"
#include "tools/registry.h"
#include "tools/tool_context.h"

namespace tactus::tools::llm {

// → {content, tool_calls, usage, cost, finish_reason, model}, or invalid_args (bad params),
// denied (unknown provider, no key), timeout, failed ("llm: NAME: HTTP 401: <the provider's
// message>"). usage is tools/llm/llm_types.h's usage_json; cost the USD the call cost at the
// provider's price for the model (model_price), or "unknown".
ToolOutcome chat(const LlmConfig& config, const protocol::Json& params);

// The price of model at provider p: its own entry, else that of the model it is a snapshot of
// (NAME-2024-08-06, NAME-20250929, NAME-latest); null when none is known.
const ModelPrice* model_price(const LlmProvider& p, const std::string& model);

// What a call with usage (usage_json's form) cost at price, in USD; "unknown" when either is
// unknown.
protocol::Json call_cost(const ModelPrice* price, const protocol::Json& usage);

}  // namespace tactus::tools::llm
