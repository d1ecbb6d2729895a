// The MCP servers of one run and the host tools over them. "mcp.SERVER.TOOL" calls a tool;
// "mcp.SERVER" lists the server's tools the run's policy allows (the agents' schemas come from
// it, through the journal like every answer, so a resume replays it without the server). One
// process per (run, server), started on the first call that needs it, stopped with the run.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "runtime/protocol/message.h"
#include "tools/registry.h"
#include "tools/tool_context.h"

namespace tactus::tools {

class McpClient;

// Is name one of the MCP forms ("mcp.SERVER" or "mcp.SERVER.TOOL")?
bool is_mcp_tool(std::string_view name);

// A tools/call result as the procedure sees it: {text = the text blocks joined by "\n",
// structured = structuredContent (absent when none), content = the blocks}; image, audio and
// blob data replaced by their size in bytes unless media.
protocol::Json mcp_result_for_procedure(const protocol::Json& result, bool media);

class McpServers {
 public:
  explicit McpServers(const ToolContext& ctx);
  ~McpServers();
  ToolOutcome call(std::string_view name, const protocol::Json& args,
                   std::chrono::steady_clock::time_point run_deadline);

 private:
  McpClient* client(const std::string& server, std::chrono::steady_clock::time_point deadline,
                    ToolOutcome& failure);
  ToolOutcome list(McpClient& c, const std::string& server,
                   std::chrono::steady_clock::time_point deadline);
  ToolOutcome call_checked(std::string_view name, const protocol::Json& args,
                           std::chrono::steady_clock::time_point deadline);
  std::optional<ToolOutcome> check_workspace(const std::string& server);

  // From the run's ToolContext, copied: a registry may be moved, its context with it.
  std::map<std::string, McpServerSpec> specs_;
  CommandLauncher* launcher_;
  const SecretMask* mask_;
  std::function<bool(const std::string&)> tool_allowed_;
  std::map<std::string, std::unique_ptr<McpClient>> clients_;
  std::map<std::string, int> starts_;  // how many times each was started in this run
  // Servers with a writable workspace: its trusted entries before the server started.
  std::map<std::string, std::set<std::string>> baseline_;
};

}  // namespace tactus::tools
