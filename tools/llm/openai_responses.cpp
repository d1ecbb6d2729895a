// OpenAI Responses (POST {base}/responses, model_type "responses"). The conversation goes in
// "input" as items: messages {role, content}, the model's tool calls {type: function_call,
// call_id, name, arguments} and their results {type: function_call_output, call_id, output}.
// Streamed as typed events: response.output_item.added opens an output item (a message or a
// function_call), response.output_text.delta and response.function_call_arguments.delta fill
// it, and response.completed (or response.incomplete, response.failed) ends the stream with
// the whole response, usage included. There is no [DONE].
#include <algorithm>
#include <map>

#include "tools/llm/dialect.h"

namespace tactus::tools::llm {
namespace {

// One output item as it is assembled: a message's text, or a function call.
struct Item {
  std::string type;  // message | function_call | something we ignore (reasoning...)
  std::string call_id, name, arguments, text;
};

Item item_from(const Json& j) {
  Item it;
  it.type = string_or(j, "type");
  it.call_id = string_or(j, "call_id", string_or(j, "id"));
  it.name = string_or(j, "name");
  it.arguments = string_or(j, "arguments");
  const Json content = j.is_object() ? j.value("content", Json::array()) : Json::array();
  for (const auto& part : content.is_array() ? content : Json::array())
    if (string_or(part, "type") == "output_text") it.text += string_or(part, "text");
  return it;
}

// {input_tokens, input_tokens_details: {cached_tokens}, output_tokens,
// output_tokens_details: {reasoning_tokens}}.
void read_usage(const Json& u, std::optional<Usage>& out) {
  read_openai_usage(
      u, {"input_tokens", "input_tokens_details", "output_tokens", "output_tokens_details"}, out);
}

// The reply from the items, in output order, and the response object's own fields.
void assemble(const std::map<std::int64_t, Item>& items, const Json& response, ChatReply& reply) {
  std::string text;
  bool has_text = false;
  for (const auto& [index, it] : items) {
    if (it.type == "message" && !it.text.empty()) {
      text += it.text;
      has_text = true;
    } else if (it.type == "function_call") {
      reply.tool_calls.push_back({it.call_id, it.name, parse_arguments(it.arguments)});
    }
  }
  if (has_text) reply.content = text;
  if (const auto m = string_or(response, "model"); !m.empty()) reply.model = m;
  if (response.is_object()) read_usage(response.value("usage", Json()), reply.usage);
  reply.finish_reason = default_finish_reason(reply);
  if (string_or(response, "status") == "incomplete") {
    const Json details = response.value("incomplete_details", Json());
    const std::string why = string_or(details, "reason", "incomplete");
    reply.finish_reason = why == "max_output_tokens" ? "length" : why;
  }
}

std::map<std::int64_t, Item> items_of(const Json& output) {
  std::map<std::int64_t, Item> items;
  for (std::size_t i = 0; output.is_array() && i < output.size(); ++i)
    items[static_cast<std::int64_t>(i)] = item_from(output[i]);
  return items;
}

class ResponsesAssembler : public StreamAssembler {
 public:
  Step on_event(const SseEvent& e, const TextSink& on_text) override {
    Json ev;
    std::string why;
    if (!parse_json(e.data, ev, why, mask_)) return fail(why);
    if (!ev.is_object()) return fail("malformed JSON in the response: not an object");
    const std::string type = string_or(ev, "type", e.event);
    const std::int64_t index = int_or(ev, "output_index");
    if (type == "response.output_item.added" || type == "response.output_item.done") {
      Item it = item_from(ev.value("item", Json::object()));
      // "added" carries an empty item: keep what the deltas built unless "done" has more.
      Item& slot = items_[index];
      if (type == "response.output_item.added" || slot.type.empty()) {
        if (slot.text.empty()) slot.text = it.text;
        if (slot.arguments.empty()) slot.arguments = it.arguments;
        slot.type = it.type;
        slot.call_id = it.call_id;
        slot.name = it.name;
      } else {
        if (!it.text.empty()) slot.text = it.text;
        if (!it.arguments.empty()) slot.arguments = it.arguments;
      }
    } else if (type == "response.output_text.delta") {
      const std::string delta = string_or(ev, "delta");
      Item& slot = items_[index];
      if (slot.type.empty()) slot.type = "message";
      slot.text += delta;
      if (on_text && !delta.empty()) on_text(delta);
    } else if (type == "response.function_call_arguments.delta") {
      items_[index].arguments += string_or(ev, "delta");
    } else if (type == "response.function_call_arguments.done") {
      if (const auto args = string_or(ev, "arguments"); !args.empty())
        items_[index].arguments = args;
    } else if (type == "response.created" || type == "response.in_progress") {
      reply_.model = string_or(ev.value("response", Json()), "model", reply_.model);
    } else if (type == "response.completed" || type == "response.incomplete") {
      const Json response = ev.value("response", Json::object());
      const Json output = response.is_object() ? response.value("output", Json()) : Json();
      // The final response repeats every item whole: it wins over what the deltas built.
      assemble(output.is_array() && !output.empty() ? items_of(output) : items_, response, reply_);
      return Step::done;
    } else if (type == "response.failed") {
      const Json response = ev.value("response", Json::object());
      const std::string msg = error_message_of(response);
      return fail("the response failed" + (msg.empty() ? std::string() : ": " + msg));
    } else if (type == "error") {
      return fail("the stream reported an error: " + error_message_of(ev));
    }
    return Step::more;
  }

 private:
  std::map<std::int64_t, Item> items_;
};

class OpenAiResponses : public Dialect {
 public:
  std::string path() const override { return "/responses"; }

  std::vector<std::string> headers(const std::string& api_key) const override {
    if (api_key.empty()) return {};
    return {"Authorization: Bearer " + api_key};
  }

  Json body(const ChatRequest& r) const override {
    Json input = Json::array();
    for (const auto& m : r.messages) {
      if (m.role == "tool") {
        input.push_back({{"type", "function_call_output"},
                         {"call_id", m.tool_call_id},
                         {"output", m.content.value_or("")}});
        continue;
      }
      if (m.content && (!m.content->empty() || m.role != "assistant"))
        input.push_back({{"role", m.role}, {"content", *m.content}});
      for (const auto& c : m.tool_calls)
        input.push_back({{"type", "function_call"},
                         {"call_id", c.id},
                         {"name", c.name},
                         {"arguments", arguments_text(c.arguments)}});
    }
    // store: false, as the whole conversation is sent every time; nothing is kept upstream.
    Json b = {{"model", r.model}, {"input", std::move(input)}, {"stream", true}, {"store", false}};
    if (!r.tools.empty()) {
      Json tools = Json::array();
      for (const auto& t : r.tools) {
        Json fn = {{"type", "function"}, {"name", t.name}, {"parameters", t.parameters}};
        if (!t.description.empty()) fn["description"] = t.description;
        tools.push_back(std::move(fn));
      }
      b["tools"] = std::move(tools);
    }
    if (!r.tool_choice.empty()) b["tool_choice"] = r.tool_choice;
    if (r.temperature) b["temperature"] = *r.temperature;
    if (r.max_tokens) b["max_output_tokens"] = *r.max_tokens;
    return b;
  }

  std::unique_ptr<StreamAssembler> assembler() const override {
    return std::make_unique<ResponsesAssembler>();
  }

  bool parse_whole(const Json& body, ChatReply& reply, std::string& error) const override {
    const Json output = body.value("output", Json());
    if (!output.is_array()) {
      error = "the response has no output";
      return false;
    }
    if (string_or(body, "status") == "failed") {
      const std::string msg = error_message_of(body);
      error = "the response failed" + (msg.empty() ? std::string() : ": " + msg);
      return false;
    }
    assemble(items_of(output), body, reply);
    return true;
  }
};

}  // namespace

std::unique_ptr<Dialect> openai_responses_dialect() {
  return std::make_unique<OpenAiResponses>();
}

}  // namespace tactus::tools::llm
