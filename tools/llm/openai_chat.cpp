// OpenAI Chat Completions (POST {base}/chat/completions), also spoken by most OpenAI-compatible
// servers (Ollama, vLLM, llama.cpp, LM Studio...). Streamed as chat.completion.chunk events:
// choices[0].delta carries text in "content" and tool calls as fragments keyed by "index"
// (the id and name in the first, the arguments' JSON text in pieces); the usage comes in a last
// chunk with no choices (stream_options.include_usage); "data: [DONE]" ends the stream.
#include <algorithm>
#include <map>

#include "tools/llm/dialect.h"

namespace tactus::tools::llm {
namespace {

Json message_json(const ChatMessage& m) {
  Json j = {{"role", m.role}};
  if (m.role == "tool") {
    j["tool_call_id"] = m.tool_call_id;
    j["content"] = m.content.value_or("");
    return j;
  }
  j["content"] = m.content ? Json(*m.content) : Json();
  if (!m.tool_calls.empty()) {
    Json calls = Json::array();
    for (const auto& c : m.tool_calls)
      calls.push_back(
          {{"id", c.id},
           {"type", "function"},
           {"function", {{"name", c.name}, {"arguments", arguments_text(c.arguments)}}}});
    j["tool_calls"] = std::move(calls);
  }
  return j;
}

// {prompt_tokens, completion_tokens, prompt_tokens_details: {cached_tokens},
// completion_tokens_details: {reasoning_tokens}}. Servers that send "usage": null in every
// chunk report nothing there.
void read_usage(const Json& u, std::optional<Usage>& out) {
  read_openai_usage(
      u,
      {"prompt_tokens", "prompt_tokens_details", "completion_tokens", "completion_tokens_details"},
      out);
}

struct PartialCall {
  std::string id, name, arguments;
};

class ChatAssembler : public StreamAssembler {
 public:
  Step on_event(const SseEvent& e, const TextSink& on_text) override {
    if (e.data == "[DONE]") return finish();
    Json chunk;
    std::string why;
    if (!parse_json(e.data, chunk, why, mask_)) return fail(why);
    if (!chunk.is_object()) return fail("malformed JSON in the response: not an object");
    if (chunk.contains("error"))
      return fail("the stream reported an error: " + error_message_of(chunk));
    if (const auto m = string_or(chunk, "model"); !m.empty()) reply_.model = m;
    if (chunk.contains("usage")) read_usage(chunk["usage"], reply_.usage);
    const Json choices = chunk.value("choices", Json::array());
    if (!choices.is_array() || choices.empty() || !choices[0].is_object()) return Step::more;
    const Json& choice = choices[0];
    if (const auto r = string_or(choice, "finish_reason"); !r.empty()) reply_.finish_reason = r;
    const Json delta = choice.value("delta", Json::object());
    if (!delta.is_object()) return Step::more;
    if (const auto text = string_or(delta, "content"); !text.empty()) {
      text_.append(text);
      has_text_ = true;
      if (on_text) on_text(text);
    }
    const Json calls = delta.value("tool_calls", Json::array());
    for (std::size_t i = 0; calls.is_array() && i < calls.size(); ++i) {
      const Json& c = calls[i];
      if (!c.is_object()) continue;
      const auto index = int_or(c, "index", static_cast<std::int64_t>(i));
      PartialCall& p = calls_[index];
      if (const auto id = string_or(c, "id"); !id.empty()) p.id = id;
      const Json fn = c.value("function", Json::object());
      if (!fn.is_object()) continue;
      // Some servers repeat the whole name in every fragment, others could split it.
      if (const auto name = string_or(fn, "name"); !name.empty() && name != p.name) p.name += name;
      p.arguments += string_or(fn, "arguments");
    }
    return Step::more;
  }

 private:
  Step finish() {
    if (has_text_) reply_.content = text_;
    for (auto& [index, p] : calls_)
      reply_.tool_calls.push_back({p.id, p.name, parse_arguments(p.arguments)});
    if (reply_.finish_reason.empty()) reply_.finish_reason = default_finish_reason(reply_);
    return Step::done;
  }

  std::string text_;
  bool has_text_ = false;
  std::map<std::int64_t, PartialCall> calls_;
};

class OpenAiChat : public Dialect {
 public:
  std::string path() const override { return "/chat/completions"; }

  std::vector<std::string> headers(const std::string& api_key) const override {
    if (api_key.empty()) return {};
    return {"Authorization: Bearer " + api_key};
  }

  Json body(const ChatRequest& r) const override {
    Json messages = Json::array();
    for (const auto& m : r.messages) messages.push_back(message_json(m));
    Json b = {{"model", r.model},
              {"messages", std::move(messages)},
              {"stream", true},
              {"stream_options", {{"include_usage", true}}}};
    if (!r.tools.empty()) {
      Json tools = Json::array();
      for (const auto& t : r.tools) {
        Json fn = {{"name", t.name}, {"parameters", t.parameters}};
        if (!t.description.empty()) fn["description"] = t.description;
        tools.push_back({{"type", "function"}, {"function", std::move(fn)}});
      }
      b["tools"] = std::move(tools);
    }
    if (!r.tool_choice.empty()) b["tool_choice"] = r.tool_choice;
    if (r.temperature) b["temperature"] = *r.temperature;
    // max_tokens for compatible servers, max_completion_tokens for OpenAI's own API.
    if (r.max_tokens) b[r.max_tokens_field] = *r.max_tokens;
    return b;
  }

  std::unique_ptr<StreamAssembler> assembler() const override {
    return std::make_unique<ChatAssembler>();
  }

  bool parse_whole(const Json& body, ChatReply& reply, std::string& error) const override {
    const Json choices = body.value("choices", Json());
    if (!choices.is_array() || choices.empty() || !choices[0].is_object() ||
        !choices[0].value("message", Json()).is_object()) {
      error = "the response has no choices[0].message";
      return false;
    }
    const Json& msg = choices[0]["message"];
    if (msg.contains("content") && msg["content"].is_string())
      reply.content = msg["content"].get<std::string>();
    const Json calls = msg.value("tool_calls", Json::array());
    for (const auto& c : calls.is_array() ? calls : Json::array()) {
      if (!c.is_object()) continue;
      const Json fn = c.value("function", Json::object());
      if (!fn.is_object()) continue;
      reply.tool_calls.push_back(
          {string_or(c, "id"), string_or(fn, "name"), parse_arguments(string_or(fn, "arguments"))});
    }
    reply.finish_reason = string_or(choices[0], "finish_reason", default_finish_reason(reply));
    reply.model = string_or(body, "model");
    read_usage(body.value("usage", Json()), reply.usage);
    return true;
  }
};

}  // namespace

std::unique_ptr<Dialect> openai_chat_dialect() {
  return std::make_unique<OpenAiChat>();
}

}  // namespace tactus::tools::llm
