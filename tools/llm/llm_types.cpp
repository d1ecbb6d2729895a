#include "tools/llm/llm_types.h"

#include "tools/tool_context.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>

namespace tactus::tools::llm {
namespace {

bool one_of(const std::string& s, std::initializer_list<const char*> words) {
  return std::any_of(words.begin(), words.end(), [&](const char* w) { return s == w; });
}

// Reads params[key] as a string when present. False with error if it is not one (or is empty
// and required).
bool string_field(const Json& obj, const char* key, const std::string& where, bool required,
                  std::string& out, std::string& error) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (!required) return true;
    error = where + key + " is required";
    return false;
  }
  if (!it->is_string() || (required && it->get_ref<const std::string&>().empty())) {
    error = where + key + " must be a" + (required ? " non-empty" : "") + " string";
    return false;
  }
  out = it->get<std::string>();
  return true;
}

bool only_keys(const Json& obj, std::initializer_list<const char*> keys, const std::string& where,
               std::string& error) {
  for (const auto& [k, v] : obj.items()) {
    if (!one_of(k, keys)) {
      error = where + "unknown parameter '" + k + "'";
      return false;
    }
  }
  return true;
}

bool parse_tool_call(const Json& j, const std::string& where, ToolCall& out, std::string& error) {
  if (!j.is_object()) {
    error = where + " must be an object {id, name, arguments}";
    return false;
  }
  if (!only_keys(j, {"id", "name", "arguments"}, where + ": ", error)) return false;
  if (!string_field(j, "id", where + ".", true, out.id, error)) return false;
  if (!string_field(j, "name", where + ".", true, out.name, error)) return false;
  const Json args = j.value("arguments", Json::object());
  if (!args.is_object()) {
    error = where + ".arguments must be an object";
    return false;
  }
  out.arguments = args;
  return true;
}

bool parse_message(const Json& j, const std::string& where, ChatMessage& out, std::string& error) {
  if (!j.is_object()) {
    error = where + " must be an object {role, content, ...}";
    return false;
  }
  if (!only_keys(j, {"role", "content", "tool_calls", "tool_call_id", "name"}, where + ": ", error))
    return false;
  if (!string_field(j, "role", where + ".", true, out.role, error)) return false;
  if (!one_of(out.role, {"system", "user", "assistant", "tool"})) {
    error = where + ".role must be one of system, user, assistant, tool (got '" + out.role + "')";
    return false;
  }
  if (const auto c = j.find("content"); c != j.end() && !c->is_null()) {
    if (!c->is_string()) {
      error = where + ".content must be a string or null";
      return false;
    }
    out.content = c->get<std::string>();
  }
  // An empty Lua table arrives as {}: no tool calls, like null.
  if (const auto calls = j.find("tool_calls");
      calls != j.end() && !calls->is_null() && !(calls->is_object() && calls->empty())) {
    if (out.role != "assistant") {
      error = where + ".tool_calls: only an assistant message has tool calls";
      return false;
    }
    if (!calls->is_array()) {
      error = where + ".tool_calls must be an array";
      return false;
    }
    for (std::size_t i = 0; i < calls->size(); ++i) {
      ToolCall call;
      if (!parse_tool_call((*calls)[i], where + ".tool_calls[" + std::to_string(i) + "]", call,
                           error))
        return false;
      out.tool_calls.push_back(std::move(call));
    }
  }
  if (out.role == "tool") {
    if (!string_field(j, "tool_call_id", where + ".", true, out.tool_call_id, error)) return false;
    if (!string_field(j, "name", where + ".", false, out.name, error)) return false;
  } else if (j.contains("tool_call_id") || j.contains("name")) {
    error = where + ": tool_call_id and name belong to tool messages";
    return false;
  }
  if (out.role != "assistant" && !out.content) {
    error = where + ".content must be a string";
    return false;
  }
  return true;
}

bool parse_tool(const Json& j, const std::string& where, ToolSpec& out, std::string& error) {
  if (!j.is_object()) {
    error = where + " must be an object {name, description, parameters}";
    return false;
  }
  if (!only_keys(j, {"name", "description", "parameters"}, where + ": ", error)) return false;
  if (!string_field(j, "name", where + ".", true, out.name, error)) return false;
  if (!string_field(j, "description", where + ".", false, out.description, error)) return false;
  out.parameters = j.value("parameters", Json());
  if (out.parameters.is_null())
    out.parameters = {{"type", "object"}, {"properties", Json::object()}};
  if (!out.parameters.is_object()) {
    error = where + ".parameters must be a JSON schema object";
    return false;
  }
  return true;
}

}  // namespace

bool parse_chat_request(const Json& p, ChatRequest& out, std::string& error) {
  const std::string where = "llm.chat: ";
  if (!p.is_object()) {
    error = where + "params must be an object";
    return false;
  }
  if (!only_keys(p,
                 {"agent", "provider", "model", "model_type", "messages", "tools", "tool_choice",
                  "temperature", "max_tokens"},
                 where, error))
    return false;
  if (!string_field(p, "agent", where, false, out.agent, error)) return false;
  if (!string_field(p, "provider", where, true, out.provider, error)) return false;
  if (!string_field(p, "model", where, true, out.model, error)) return false;
  if (!string_field(p, "model_type", where, false, out.model_type, error)) return false;
  if (!one_of(out.model_type, {"chat", "responses"})) {
    error = where + "model_type must be chat or responses (got '" + out.model_type + "')";
    return false;
  }
  const Json messages = p.value("messages", Json());
  if (!messages.is_array() || messages.empty()) {
    error = where + "messages must be a non-empty array";
    return false;
  }
  for (std::size_t i = 0; i < messages.size(); ++i) {
    ChatMessage m;
    if (!parse_message(messages[i], where + "messages[" + std::to_string(i) + "]", m, error))
      return false;
    out.messages.push_back(std::move(m));
  }
  if (const auto tools = p.find("tools"); tools != p.end() && !tools->is_null()) {
    // An empty Lua table arrives as {} or []: both mean no tools.
    if (!tools->is_array() && !(tools->is_object() && tools->empty())) {
      error = where + "tools must be an array";
      return false;
    }
    for (std::size_t i = 0; tools->is_array() && i < tools->size(); ++i) {
      ToolSpec t;
      if (!parse_tool((*tools)[i], where + "tools[" + std::to_string(i) + "]", t, error))
        return false;
      out.tools.push_back(std::move(t));
    }
  }
  if (!string_field(p, "tool_choice", where, false, out.tool_choice, error)) return false;
  if (!out.tool_choice.empty() && !one_of(out.tool_choice, {"auto", "required", "none"})) {
    error = where + "tool_choice must be auto, required or none (got '" + out.tool_choice + "')";
    return false;
  }
  if (const auto t = p.find("temperature"); t != p.end() && !t->is_null()) {
    if (!t->is_number() || !std::isfinite(t->get<double>()) || t->get<double>() < 0) {
      error = where + "temperature must be a number >= 0";
      return false;
    }
    out.temperature = t->get<double>();
  }
  if (const auto m = p.find("max_tokens"); m != p.end() && !m->is_null()) {
    const bool integral =
        m->is_number_integer() ||
        (m->is_number_float() && std::floor(m->get<double>()) == m->get<double>());
    if (!integral || m->get<double>() < 1 ||
        m->get<double>() > static_cast<double>(kMaxOutputTokens)) {
      error = where + "max_tokens must be a positive integer";
      return false;
    }
    out.max_tokens = static_cast<std::int64_t>(m->get<double>());
  }
  return true;
}

Json to_json(const ChatReply& r) {
  Json calls = Json::array();
  for (const auto& c : r.tool_calls)
    calls.push_back({{"id", c.id}, {"name", c.name}, {"arguments", c.arguments}});
  return {{"content", r.content ? Json(*r.content) : Json()},
          {"tool_calls", std::move(calls)},
          {"usage", usage_json(r.usage)},
          {"finish_reason", r.finish_reason},
          {"model", r.model}};
}

Json usage_json(const std::optional<Usage>& usage) {
  if (!usage) return "unknown";
  const Usage& u = *usage;
  Json j = {{"input_tokens", u.input_tokens},
            {"cached_input_tokens", u.cached_input_tokens},
            {"cache_creation_input_tokens", u.cache_creation_input_tokens},
            {"output_tokens", u.output_tokens},
            {"total_tokens", u.total_tokens()},
            {"prompt_tokens", u.prompt_tokens()},
            {"completion_tokens", u.output_tokens}};
  if (u.reasoning_tokens) j["reasoning_tokens"] = *u.reasoning_tokens;
  return j;
}

Json parse_arguments(std::string_view text) {
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return Json::object();
  if (protocol::json_depth(text) >= 0) {
    Json j = Json::parse(text, nullptr, false);
    if (j.is_object()) return j;
  }
  return {{"_raw", std::string(text)}};
}

std::string arguments_text(const Json& arguments) {
  if (arguments.is_object() && arguments.size() == 1 && arguments.contains("_raw") &&
      arguments["_raw"].is_string())
    return arguments["_raw"].get<std::string>();
  return protocol::dump_json(arguments);
}

bool parse_json(std::string_view text, Json& out, std::string& error, const SecretMask* mask) {
  if (protocol::json_depth(text) >= 0) {
    out = Json::parse(text, nullptr, false);
    if (!out.is_discarded()) return true;
  }
  // The start of what came, so an HTML error page from a proxy is recognisable; masked before
  // it is cut (tools/secret_mask.h).
  std::string start = excerpt_head(text, 120, mask);
  for (char& c : start)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  error = "malformed JSON in the response: " + (start.empty() ? "(empty)" : start);
  return false;
}

std::string error_message_of(const Json& body) {
  if (!body.is_object()) return "";
  if (const auto e = body.find("error"); e != body.end()) {
    if (e->is_string()) return e->get<std::string>();
    if (e->is_object() && e->contains("message") && (*e)["message"].is_string())
      return (*e)["message"].get<std::string>();
  }
  if (const auto m = body.find("message"); m != body.end() && m->is_string())
    return m->get<std::string>();
  return "";
}

std::string string_or(const Json& obj, const char* key, std::string fallback) {
  if (!obj.is_object()) return fallback;
  const auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : fallback;
}

std::int64_t int_or(const Json& obj, const char* key, std::int64_t fallback) {
  if (!obj.is_object()) return fallback;
  const auto it = obj.find(key);
  return it != obj.end() && it->is_number_integer() ? it->get<std::int64_t>() : fallback;
}

std::int64_t UsageReader::operator()(const Json& obj, const char* key, std::int64_t fallback) {
  // Bounded, so that sums of what a hostile server sends cannot overflow.
  constexpr double kMaxCount = static_cast<double>(std::int64_t{1} << 40);
  if (!obj.is_object()) return fallback;
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  const double v = it->is_number() ? it->get<double>() : -1;
  if (!(v >= 0) || std::floor(v) != v) {
    bad = true;
    return fallback;
  }
  if (it->is_number_unsigned())  // as unsigned: 2^63 and more must not wrap negative
    return static_cast<std::int64_t>(
        std::min(it->get<std::uint64_t>(), static_cast<std::uint64_t>(kMaxCount)));
  if (it->is_number_integer())
    return std::min(it->get<std::int64_t>(), static_cast<std::int64_t>(kMaxCount));
  return static_cast<std::int64_t>(std::min(v, kMaxCount));
}

void read_openai_usage(const Json& u, const OpenAiUsageNames& names, std::optional<Usage>& out) {
  if (!u.is_object() || !u.contains(names.input)) return;
  Usage usage;
  UsageReader count;
  const std::int64_t input = count(u, names.input);
  const std::int64_t cached =
      std::min(input, count(u.value(names.input_details, Json()), "cached_tokens"));
  usage.input_tokens = input - cached;
  usage.cached_input_tokens = cached;
  usage.output_tokens = count(u, names.output);
  const Json details = u.value(names.output_details, Json());
  if (const auto r = count(details, "reasoning_tokens", -1); r >= 0) usage.reasoning_tokens = r;
  if (count.bad) return out.reset();
  out = usage;
}

std::string default_finish_reason(const ChatReply& reply) {
  return reply.tool_calls.empty() ? "stop" : "tool_calls";
}

}  // namespace tactus::tools::llm
