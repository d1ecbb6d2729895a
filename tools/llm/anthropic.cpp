// Anthropic Messages (POST {base}/messages, headers x-api-key and anthropic-version). System
// messages go in the top-level "system"; the rest alternate user / assistant with content
// blocks: the model's tool calls are tool_use blocks {id, name, input}, and their results are
// tool_result blocks {tool_use_id, content} in the next user message (consecutive messages of
// one role are merged into one, as the API wants). max_tokens is required: 4096 by default.
// Streamed as message_start, content_block_start / content_block_delta (text_delta,
// input_json_delta) / content_block_stop per block, message_delta (stop_reason, usage) and
// message_stop, which ends the stream.
#include <map>

#include "tools/llm/dialect.h"
#include "tools/tool_context.h"

namespace tactus::tools::llm {
namespace {

std::string finish_reason_of(const std::string& stop_reason) {
  if (stop_reason == "end_turn" || stop_reason == "stop_sequence") return "stop";
  if (stop_reason == "tool_use") return "tool_calls";
  if (stop_reason == "max_tokens") return "length";
  return stop_reason;
}

// message_start's usage {input_tokens, cache_creation_input_tokens, cache_read_input_tokens,
// output_tokens}, then message_delta's, whose counts are cumulative and replace those before.
// input_tokens excludes the cache's: the three are kept apart as the API gives them. A count
// that is not a count makes the reply's usage unknown for good (spoiled).
void read_usage(const Json& u, std::optional<Usage>& out, bool& spoiled) {
  if (!u.is_object() || spoiled) return;
  Usage usage = out.value_or(Usage{});
  if (!out && !u.contains("input_tokens") && !u.contains("output_tokens")) return;
  UsageReader count;
  usage.input_tokens = count(u, "input_tokens", usage.input_tokens);
  usage.cache_creation_input_tokens =
      count(u, "cache_creation_input_tokens", usage.cache_creation_input_tokens);
  usage.cached_input_tokens = count(u, "cache_read_input_tokens", usage.cached_input_tokens);
  usage.output_tokens = count(u, "output_tokens", usage.output_tokens);
  spoiled = count.bad;
  if (spoiled) return out.reset();
  out = usage;
}

struct Block {
  std::string type;  // text | tool_use | something we ignore (thinking...)
  std::string text, id, name, partial_json;
  Json input = Json::object();
};

Block block_from(const Json& j) {
  Block b;
  b.type = string_or(j, "type");
  b.text = string_or(j, "text");
  b.id = string_or(j, "id");
  b.name = string_or(j, "name");
  if (j.is_object() && j.contains("input") && j["input"].is_object()) b.input = j["input"];
  return b;
}

void assemble(const std::map<std::int64_t, Block>& blocks, const std::string& stop_reason,
              ChatReply& reply) {
  std::string text;
  bool has_text = false;
  for (const auto& [index, b] : blocks) {
    if (b.type == "text" && !b.text.empty()) {
      text += b.text;
      has_text = true;
    } else if (b.type == "tool_use") {
      reply.tool_calls.push_back(
          {b.id, b.name, b.partial_json.empty() ? b.input : parse_arguments(b.partial_json)});
    }
  }
  if (has_text) reply.content = text;
  reply.finish_reason =
      stop_reason.empty() ? default_finish_reason(reply) : finish_reason_of(stop_reason);
}

class AnthropicAssembler : public StreamAssembler {
 public:
  Step on_event(const SseEvent& e, const TextSink& on_text) override {
    Json ev;
    std::string why;
    if (!parse_json(e.data, ev, why, mask_)) return fail(why);
    if (!ev.is_object()) return fail("malformed JSON in the response: not an object");
    const std::string type = string_or(ev, "type", e.event);
    const std::int64_t index = int_or(ev, "index");
    if (type == "message_start") {
      const Json msg = ev.value("message", Json::object());
      reply_.model = string_or(msg, "model");
      if (msg.is_object()) read_usage(msg.value("usage", Json()), reply_.usage, spoiled_);
    } else if (type == "content_block_start") {
      blocks_[index] = block_from(ev.value("content_block", Json::object()));
    } else if (type == "content_block_delta") {
      const Json delta = ev.value("delta", Json::object());
      const std::string kind = string_or(delta, "type");
      Block& b = blocks_[index];
      if (kind == "text_delta") {
        const std::string text = string_or(delta, "text");
        if (b.type.empty()) b.type = "text";
        b.text += text;
        if (on_text && !text.empty()) on_text(text);
      } else if (kind == "input_json_delta") {
        b.partial_json += string_or(delta, "partial_json");
      }
    } else if (type == "message_delta") {
      stop_reason_ = string_or(ev.value("delta", Json()), "stop_reason", stop_reason_);
      read_usage(ev.value("usage", Json()), reply_.usage, spoiled_);
    } else if (type == "message_stop") {
      assemble(blocks_, stop_reason_, reply_);
      return Step::done;
    } else if (type == "error") {
      return fail("the stream reported an error: " + error_message_of(ev));
    }
    return Step::more;  // ping, content_block_stop, and what a newer API version adds
  }

 private:
  std::map<std::int64_t, Block> blocks_;
  std::string stop_reason_;
  bool spoiled_ = false;  // a usage count that was not one: the usage is unknown
};

class Anthropic : public Dialect {
 public:
  std::string path() const override { return "/messages"; }

  std::vector<std::string> headers(const std::string& api_key) const override {
    std::vector<std::string> h = {"anthropic-version: 2023-06-01"};
    if (!api_key.empty()) h.push_back("x-api-key: " + api_key);
    return h;
  }

  Json body(const ChatRequest& r) const override {
    std::string system;
    Json messages = Json::array();
    const auto add = [&](const std::string& role, Json block) {
      if (messages.empty() || messages.back()["role"] != role)
        messages.push_back({{"role", role}, {"content", Json::array()}});
      messages.back()["content"].push_back(std::move(block));
    };
    for (const auto& m : r.messages) {
      if (m.role == "system") {
        if (!m.content || m.content->empty()) continue;
        system += (system.empty() ? "" : "\n\n") + *m.content;
      } else if (m.role == "tool") {
        add("user", {{"type", "tool_result"},
                     {"tool_use_id", m.tool_call_id},
                     {"content", m.content.value_or("")}});
      } else {
        // The API refuses empty text blocks.
        if (m.content && !m.content->empty()) add(m.role, {{"type", "text"}, {"text", *m.content}});
        for (const auto& c : m.tool_calls)
          add(m.role,
              {{"type", "tool_use"}, {"id", c.id}, {"name", c.name}, {"input", c.arguments}});
      }
    }
    Json b = {{"model", r.model},
              {"max_tokens", r.max_tokens.value_or(kDefaultOutputTokens)},
              {"messages", std::move(messages)},
              {"stream", true}};
    if (!system.empty()) b["system"] = system;
    if (!r.tools.empty()) {
      Json tools = Json::array();
      for (const auto& t : r.tools) {
        Json tool = {{"name", t.name}, {"input_schema", t.parameters}};
        if (!t.description.empty()) tool["description"] = t.description;
        tools.push_back(std::move(tool));
      }
      b["tools"] = std::move(tools);
    }
    if (!r.tool_choice.empty())
      b["tool_choice"] = {{"type", r.tool_choice == "required" ? "any" : r.tool_choice}};
    if (r.temperature) b["temperature"] = *r.temperature;
    return b;
  }

  std::unique_ptr<StreamAssembler> assembler() const override {
    return std::make_unique<AnthropicAssembler>();
  }

  bool parse_whole(const Json& body, ChatReply& reply, std::string& error) const override {
    const Json content = body.value("content", Json());
    if (!content.is_array()) {
      error = "the response has no content";
      return false;
    }
    std::map<std::int64_t, Block> blocks;
    for (std::size_t i = 0; i < content.size(); ++i)
      blocks[static_cast<std::int64_t>(i)] = block_from(content[i]);
    assemble(blocks, string_or(body, "stop_reason"), reply);
    reply.model = string_or(body, "model");
    bool spoiled = false;
    read_usage(body.value("usage", Json()), reply.usage, spoiled);
    return true;
  }
};

}  // namespace

std::unique_ptr<Dialect> anthropic_dialect() {
  return std::make_unique<Anthropic>();
}

}  // namespace tactus::tools::llm
