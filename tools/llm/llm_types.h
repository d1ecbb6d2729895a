// llm.chat as the providers' code sees it: the request the VM sent, validated, and the reply
// assembled from a provider's answer (docs/protocol.md, "Model requests").
//
// Included only by tools/llm/ (it pulls in nlohmann/json).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/protocol/message.h"
#include "tools/secret_mask.h"

namespace tactus::tools::llm {

using protocol::Json;

struct ToolCall {
  std::string id;
  std::string name;
  Json arguments = Json::object();  // an object; {"_raw": text} when the model's was not JSON
};

struct ChatMessage {
  std::string role;                    // system | user | assistant | tool
  std::optional<std::string> content;  // null: none (an assistant turn of tool calls only)
  std::vector<ToolCall> tool_calls;    // assistant only
  std::string tool_call_id;            // tool only: the call this is the result of
  std::string name;                    // tool only, optional: the tool's name
};

struct ToolSpec {
  std::string name;
  std::string description;
  Json parameters;  // a JSON schema object
};

struct ChatRequest {
  std::string agent;  // for messages and the audit log
  std::string provider;
  std::string model;
  std::string model_type = "chat";  // chat | responses
  std::vector<ChatMessage> messages;
  std::vector<ToolSpec> tools;
  std::string tool_choice;  // "" (the provider's default), auto, required, none
  std::optional<double> temperature;
  std::optional<std::int64_t> max_tokens;
  // The body member max_tokens travels as in Chat Completions: "max_tokens" (what every
  // OpenAI-compatible server knows) or "max_completion_tokens" (OpenAI's own API, whose
  // reasoning models refuse the former). Set from the provider (LlmProvider::max_tokens_field).
  std::string max_tokens_field = "max_tokens";
};

// A reply's token counts as the provider reported them, the input split three ways so that
// nothing is counted twice and each part can be priced: input_tokens is what was neither read
// from nor written to the provider's prompt cache (OpenAI's prompt_tokens less its
// prompt_tokens_details.cached_tokens; Anthropic's input_tokens), cached_input_tokens what was
// read from it (cached_tokens; cache_read_input_tokens), cache_creation_input_tokens what was
// written to it (Anthropic's cache_creation_input_tokens). output_tokens includes the reasoning
// tokens, which are given apart where the provider reports them.
struct Usage {
  std::int64_t input_tokens = 0;
  std::int64_t cached_input_tokens = 0;
  std::int64_t cache_creation_input_tokens = 0;
  std::int64_t output_tokens = 0;
  std::optional<std::int64_t> reasoning_tokens;
  std::int64_t prompt_tokens() const {
    return input_tokens + cached_input_tokens + cache_creation_input_tokens;
  }
  std::int64_t total_tokens() const { return prompt_tokens() + output_tokens; }
};

struct ChatReply {
  std::optional<std::string> content;  // null when the model only called tools
  std::vector<ToolCall> tool_calls;
  // None: the provider reported no usage (a stream that ended without it), which is reported
  // as "unknown", never as 0.
  std::optional<Usage> usage;
  std::string finish_reason;  // stop | tool_calls | length | the provider's own word
  std::string model;          // the model that answered
};

// Validates llm.chat's params. False with error ("messages[2].role must be ...") if they are
// not as docs/protocol.md says; unknown parameters are refused, so a typo is not ignored.
bool parse_chat_request(const Json& params, ChatRequest& out, std::string& error);

// The result sent back to the VM.
Json to_json(const ChatReply& reply);
// A reply's usage as it travels (docs/protocol.md): {input_tokens, cached_input_tokens,
// cache_creation_input_tokens, output_tokens, reasoning_tokens?, total_tokens, and the
// Python dialect's prompt_tokens and completion_tokens}, or "unknown".
Json usage_json(const std::optional<Usage>& usage);

// A tool call's arguments as the model sent them (a JSON text): an object, {} for an empty
// text, or {"_raw": text} when the text is not a JSON object.
Json parse_arguments(std::string_view text);

// The JSON text to send back to a provider for a tool call's arguments: the model's own text
// again for {"_raw": text}, else the object serialised.
std::string arguments_text(const Json& arguments);

// Parses a provider's JSON text. False with error "malformed JSON in the response: <the
// start of text>" when it is not JSON (or is nested absurdly deep).
bool parse_json(std::string_view text, Json& out, std::string& error, const SecretMask* mask);

// The provider's own error message in a JSON error body ({"error": {"message"}}, {"error":
// "text"}, {"message"}), or "" when there is none.
std::string error_message_of(const Json& body);

// Tolerant readers of a provider's JSON: the member when it has the right type, else fallback.
std::string string_or(const Json& obj, const char* key, std::string fallback = "");
std::int64_t int_or(const Json& obj, const char* key, std::int64_t fallback = 0);
// Reads the token counts of a provider's usage. A member that is missing or null is fallback;
// one that is there but is not a non-negative whole number sets bad: such a usage is not
// believed (it is reported "unknown"), rather than counted as 0. Counts are capped at 2^40.
struct UsageReader {
  bool bad = false;
  std::int64_t operator()(const Json& obj, const char* key, std::int64_t fallback = 0);
};

// OpenAI's usage, whose two APIs name the same counts differently: the input (cached tokens
// included, in its details' cached_tokens) and the output (reasoning tokens included, in its
// details' reasoning_tokens). Sets out when u is a usage; to nothing when a count is not one.
struct OpenAiUsageNames {
  const char* input;
  const char* input_details;
  const char* output;
  const char* output_details;
};
void read_openai_usage(const Json& u, const OpenAiUsageNames& names, std::optional<Usage>& out);

// finish_reason when the provider gave none: tool_calls if the model called tools, else stop.
std::string default_finish_reason(const ChatReply& reply);

}  // namespace tactus::tools::llm
