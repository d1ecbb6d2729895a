#include "broker/policy.h"

#include <fnmatch.h>

namespace tactus::broker {
namespace {

// "mcp.SERVER" (no second dot): the listing of an MCP server's tools.
bool is_mcp_listing(std::string_view name) {
  return name.size() > 4 && name.substr(0, 4) == "mcp." &&
         name.find('.', 4) == std::string_view::npos;
}

}  // namespace

bool tool_allowed(const RunPolicy& policy, std::string_view name) {
  if (name == "host.ping") return true;
  // fnmatch sees a C string: a NUL would cut the name it is shown. No tool's name has one.
  if (name.find('\0') != std::string_view::npos) return false;
  const bool mcp = name.size() > 4 && name.substr(0, 4) == "mcp.";
  const std::string n(name);
  // A listing is allowed where some tool of the server could be: a pattern that names one of
  // its tools ("mcp.fs.read_text_file") or matches them all ("mcp.fs.*", "mcp.*").
  const std::string tools_of = n + ".*";
  for (const auto& pattern : policy.allowed_tools) {
    // An MCP tool is allowed only by a pattern that says mcp.: "*" or "*.read", written for
    // the host tools, does not hand over every tool of every server.
    if (mcp && pattern.rfind("mcp.", 0) != 0) continue;
    if (::fnmatch(pattern.c_str(), n.c_str(), 0) == 0) return true;
    if (is_mcp_listing(name) && (pattern.rfind(tools_of.substr(0, tools_of.size() - 1), 0) == 0 ||
                                 ::fnmatch(pattern.c_str(), tools_of.c_str(), 0) == 0))
      return true;
  }
  return false;
}

}  // namespace tactus::broker
