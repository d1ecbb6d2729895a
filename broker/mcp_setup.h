// mcp_servers.NAME of the trusted configuration as the broker starts it: its argv resolved,
// its environment built from nothing, its jail's binds, the shield over the workspace's
// trusted files (tools/tool_context.h, McpServerSpec; docs/security.md, "MCP servers").
#pragma once

#include <string>

#include "sidecars/config.h"
#include "tools/tool_context.h"

namespace tactus::broker {

struct RunSetup;

// The directory a server is installed in: the outermost node_modules above its entry file (the
// first absolute word of its command naming a file outside /usr), else that file's directory;
// "" when there is none.
std::string mcp_install_dir(const sidecars::McpServer& server);

// The spec of server name for setup's run. A spec that cannot be started (its program is not
// found, its install dir holds trusted files, its cwd is outside what its jail sees) carries
// config_error, which its first call reports.
tools::McpServerSpec mcp_spec(const std::string& name, const sidecars::McpServer& server,
                              const RunSetup& setup);

}  // namespace tactus::broker
