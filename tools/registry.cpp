#include "tools/registry.h"

#include "tools/file_tools.h"

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
  return name == "host.ping" || name == "file.read" || name == "file.write" ||
         name == "file.list" || name == "file.exists";
}

ToolOutcome ToolRegistry::call(std::string_view name, const protocol::Json& args) const {
  if (name == "host.ping") return host_ping(args);
  if (name == "file.read") return file_read(ctx_.mounts, ctx_.file_limits, args);
  if (name == "file.write") return file_write(ctx_.mounts, ctx_.file_limits, args);
  if (name == "file.list") return file_list(ctx_.mounts, ctx_.file_limits, args);
  if (name == "file.exists") return file_exists(ctx_.mounts, ctx_.file_limits, args);
  ToolOutcome out;
  out.code = "not_found";
  out.message = "no host tool named '" + std::string(name) + "'";
  return out;
}

}  // namespace tactus::tools
