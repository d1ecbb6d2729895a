// What a run may reach: deny by default. The trusted configuration (the sidecar layers,
// broker/run_setup.cpp) fills it; what is not allowed here is denied.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tactus::broker {

struct RunPolicy {
  // Names and globs (fnmatch); host.ping always. An MCP tool (mcp.SERVER.TOOL) only by a
  // pattern starting "mcp."; "mcp.SERVER", the listing of a server's tools, when some tool of
  // it is.
  std::vector<std::string> allowed_tools;
};

bool tool_allowed(const RunPolicy& policy, std::string_view name);

}  // namespace tactus::broker
