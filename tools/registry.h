// Brokered host tools: named operations the broker runs on the VM's behalf, after the policy
// check: host.ping; the file tools over the run's mounts (tools/file_tools.h); http.request
// (tools/http_tool.h); command tools (tools/command_tool.h); and model requests, llm.chat
// (tools/llm/); and the tools of the run's MCP servers, mcp.SERVER.TOOL (tools/mcp/).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/protocol/message.h"
#include "tools/tool_context.h"

namespace tactus::tools {

class McpServers;

// How a tool call failed. It travels as its name, the error code of the answer the VM raises
// as "name: message" (docs/protocol.md).
enum class ToolError : std::uint8_t {
  none,          // the call succeeded
  denied,        // the policy refused it
  invalid_args,  // its arguments are wrong
  not_found,     // what it names does not exist
  timeout,       // it ran out of time
  limit,         // a run limit it would cross (sandbox.limits.disk)
  mcp,           // an MCP server's error: a JSON-RPC error, or a result with isError
  breach,        // a wall was crossed (a server wrote trusted files): the run is ended
  failed,        // anything else
};

// "denied", "invalid_args", ... ("" for none).
constexpr std::string_view to_string(ToolError e) {
  switch (e) {
    case ToolError::none:
      return "";
    case ToolError::denied:
      return "denied";
    case ToolError::invalid_args:
      return "invalid_args";
    case ToolError::not_found:
      return "not_found";
    case ToolError::timeout:
      return "timeout";
    case ToolError::limit:
      return "limit";
    case ToolError::mcp:
      return "mcp";
    case ToolError::breach:
      return "breach";
    case ToolError::failed:
      return "failed";
  }
  return "failed";
}

// Compares with the name as it travels ("denied"), as the answer's readers do.
constexpr bool operator==(ToolError e, std::string_view name) {
  return to_string(e) == name;
}

struct ToolOutcome {
  bool ok = false;
  protocol::Json result;
  ToolError code = ToolError::none;  // when not ok
  std::string message;
};

// A failed outcome: the code, and the message the VM's error shows after it.
inline ToolOutcome tool_failure(ToolError code, std::string message) {
  ToolOutcome out;
  out.code = code;
  out.message = std::move(message);
  return out;
}

// What the broker knows of one call that its arguments do not say.
struct CallContext {
  // Names this request across resumes (the run and the request's number in its journal):
  // http.request sends it as Idempotency-Key where configured.
  std::string idempotency_key;
};

class ToolRegistry {
 public:
  ToolRegistry();
  explicit ToolRegistry(ToolContext context);
  ~ToolRegistry();  // stops the run's MCP servers
  ToolRegistry(ToolRegistry&&) noexcept;
  ToolRegistry& operator=(ToolRegistry&&) noexcept;

  // Runs the named tool. The caller has already checked the name against the run's allowlist.
  ToolOutcome call(std::string_view name, const protocol::Json& args,
                   const CallContext& call = {}) const;
  bool has(std::string_view name) const;

  // llm.chat: a model request (tools/llm/llm_client.h). Not a Host.call tool: the VM's agents
  // send it as its own method, and tools.allow does not gate it; the providers in the context
  // decide what it reaches.
  ToolOutcome llm_chat(const protocol::Json& params) const;

  const ToolContext& context() const { return ctx_; }

  // The trusted set, collected on first use (ToolContext::collect_trusted). One run's tools
  // are called on one thread, one call at a time. The broker's module.load reads with it too.
  const TrustedFiles& trusted() const;

 private:
  ToolContext ctx_;
  mutable std::optional<TrustedFiles> trusted_;
  mutable std::unique_ptr<McpServers> mcp_;  // started on the first mcp.* call
};

}  // namespace tactus::tools
