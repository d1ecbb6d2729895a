#include "runtime/protocol/message.h"

namespace tactus::protocol {

int json_depth(std::string_view text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > limit) return -1;
      if (depth > deepest) deepest = depth;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

namespace {

bool valid_id(const Json& id) {
  // Unsigned or non-negative integer that survives a round trip through a double (Lua numbers).
  if (id.is_number_unsigned()) return id.get<std::uint64_t>() <= (1ull << 53);
  if (id.is_number_integer()) {
    const auto v = id.get<std::int64_t>();
    return v >= 0 && v <= (1ll << 53);
  }
  return false;
}

bool valid_method(const Json& m) {
  if (!m.is_string()) return false;
  const auto& s = m.get_ref<const std::string&>();
  return !s.empty() && s.size() <= kMaxMethodLength;
}

std::optional<Message> fail(std::string& reason, std::string why) {
  reason = std::move(why);
  return std::nullopt;
}

}  // namespace

std::optional<Message> parse_message(std::string_view payload, std::string& reason) {
  if (json_depth(payload) < 0)
    return fail(reason, "nesting deeper than " + std::to_string(kMaxJsonDepth));
  Json doc = Json::parse(payload.begin(), payload.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return fail(reason, "not valid JSON");
  if (!doc.is_object()) return fail(reason, "message is not a JSON object");

  for (const auto& item : doc.items()) {
    const auto& k = item.key();
    if (k != "id" && k != "method" && k != "params" && k != "result" && k != "error")
      return fail(reason, "unknown member \"" + k + "\"");
  }

  Message m;
  const bool has_id = doc.contains("id"), has_method = doc.contains("method");
  const bool has_result = doc.contains("result"), has_error = doc.contains("error");
  if (has_id && !valid_id(doc["id"])) return fail(reason, "\"id\" is not a non-negative integer");
  if (has_id) m.id = doc["id"].get<std::int64_t>();

  if (has_method) {
    if (has_result || has_error) return fail(reason, "a message with a method has no result/error");
    if (!valid_method(doc["method"])) return fail(reason, "\"method\" is not a short string");
    m.kind = has_id ? MessageKind::request : MessageKind::notification;
    m.method = doc["method"].get<std::string>();
    if (doc.contains("params")) {
      if (!doc["params"].is_object()) return fail(reason, "\"params\" is not an object");
      m.params = std::move(doc["params"]);
    } else {
      m.params = Json::object();
    }
    return m;
  }

  if (!has_id) return fail(reason, "message has neither \"method\" nor \"id\"");
  if (doc.contains("params")) return fail(reason, "a response has no \"params\"");
  if (has_result == has_error) return fail(reason, "a response has exactly one of result/error");
  m.kind = MessageKind::response;
  if (has_result) {
    m.result = std::move(doc["result"]);
    return m;
  }
  const Json& e = doc["error"];
  if (!e.is_object() || !e.contains("code") || !e["code"].is_string() || !e.contains("message") ||
      !e["message"].is_string() || e.size() != 2)
    return fail(reason, "\"error\" is not {code: string, message: string}");
  m.error = RpcError{e["code"].get<std::string>(), e["message"].get<std::string>()};
  return m;
}

std::string dump_json(const Json& value, int indent) {
  return value.dump(indent, ' ', false, Json::error_handler_t::replace);
}

// The envelopes are written by hand around the dumped payload, so the payload is not copied
// into a temporary document first (this is the Host.call hot path). Keys stay in the sorted
// order nlohmann would use.
std::string make_request(std::int64_t id, std::string_view method, const Json& params) {
  std::string out =
      "{\"id\":" + std::to_string(id) + ",\"method\":" + dump_json(Json(method)) + ",\"params\":";
  out += dump_json(params);
  out += '}';
  return out;
}

std::string make_notification(std::string_view method, const Json& params) {
  std::string out = "{\"method\":" + dump_json(Json(method)) + ",\"params\":";
  out += dump_json(params);
  out += '}';
  return out;
}

std::string make_result(std::int64_t id, const Json& result) {
  std::string out = "{\"id\":" + std::to_string(id) + ",\"result\":";
  out += dump_json(result);
  out += '}';
  return out;
}

std::string make_error(std::int64_t id, std::string_view code, std::string_view message) {
  return dump_json(Json{{"id", id}, {"error", {{"code", code}, {"message", message}}}});
}

}  // namespace tactus::protocol
