// Messages on the host channel: one JSON object per frame, shaped like JSON-RPC 2.0.
//
//   request       {"id": N, "method": "...", "params": {...}}
//   response      {"id": N, "result": ...}  or  {"id": N, "error": {"code": "...", "message":
//   "..."}} notification  {"method": "...", "params": {...}}
//
// This header is included only by the few files that speak the protocol (it pulls in
// nlohmann/json); both the jailed side and the broker use it, so it lives in runtime/.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace tactus::protocol {

using Json = nlohmann::json;

// Nesting deeper than this is refused before parsing, so no peer can exhaust our stack.
inline constexpr int kMaxJsonDepth = 128;
inline constexpr std::size_t kMaxMethodLength = 128;

enum class MessageKind { request, response, notification };

struct RpcError {
  std::string code;  // denied | invalid_args | not_found | timeout | failed | ...
  std::string message;
};

struct Message {
  MessageKind kind = MessageKind::notification;
  std::int64_t id = 0;  // requests and responses
  std::string method;   // requests and notifications
  Json params;          // requests and notifications: an object
  Json result;          // successful responses
  std::optional<RpcError> error;
};

// Parses and validates one frame's payload. On failure returns nullopt and says why in reason.
std::optional<Message> parse_message(std::string_view payload, std::string& reason);

// Returns the deepest nesting of arrays/objects in text, or -1 if it exceeds limit (stops early).
int json_depth(std::string_view text, int limit = kMaxJsonDepth);

std::string make_request(std::int64_t id, std::string_view method, const Json& params);
std::string make_notification(std::string_view method, const Json& params);
std::string make_result(std::int64_t id, const Json& result);
std::string make_error(std::int64_t id, std::string_view code, std::string_view message);

// JSON text that never throws: invalid UTF-8 in strings is replaced rather than refused.
std::string dump_json(const Json& value, int indent = -1);

}  // namespace tactus::protocol
