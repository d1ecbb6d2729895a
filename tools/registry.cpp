#include "tools/registry.h"

namespace tactus::tools {
namespace {

// host.ping: returns its args. The smallest round trip through the broker (and the benchmark).
ToolOutcome host_ping(const protocol::Json& args) {
  ToolOutcome out;
  out.ok = true;
  out.result = args;
  return out;
}

}  // namespace

bool ToolRegistry::has(std::string_view name) const {
  return name == "host.ping";
}

ToolOutcome ToolRegistry::call(std::string_view name, const protocol::Json& args) const {
  if (name == "host.ping") return host_ping(args);
  ToolOutcome out;
  out.code = "not_found";
  out.message = "no host tool named '" + std::string(name) + "'";
  return out;
}

}  // namespace tactus::tools
