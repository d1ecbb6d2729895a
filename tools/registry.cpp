#include "tools/registry.h"

#include <algorithm>
#include <chrono>

#include "tools/command_tool.h"
#include "tools/file_tools.h"
#include "tools/http_tool.h"
#include "tools/llm/llm_client.h"
#include "tools/mcp/mcp_servers.h"

namespace tactus::tools {
namespace {

// host.ping: returns its args. The smallest round trip through the broker (and the benchmark).
ToolOutcome host_ping(const protocol::Json& args) {
  ToolOutcome out;
  out.ok = true;
  out.result = args;
  return out;
}

// Seconds left before the run's deadline (never below a millisecond).
double seconds_left(const ToolContext& ctx) {
  const auto now = std::chrono::steady_clock::now();
  if (ctx.deadline == std::chrono::steady_clock::time_point::max()) return 1e9;
  return std::max(0.001, std::chrono::duration<double>(ctx.deadline - now).count());
}

}  // namespace

ToolRegistry::ToolRegistry() = default;
ToolRegistry::ToolRegistry(ToolContext context) : ctx_(std::move(context)) {}
ToolRegistry::~ToolRegistry() = default;
ToolRegistry::ToolRegistry(ToolRegistry&&) noexcept = default;
ToolRegistry& ToolRegistry::operator=(ToolRegistry&&) noexcept = default;

const TrustedFiles& ToolRegistry::trusted() const {
  if (!trusted_) trusted_ = ctx_.collect_trusted ? ctx_.collect_trusted() : TrustedFiles{};
  return *trusted_;
}

bool ToolRegistry::has(std::string_view name) const {
  return name == "host.ping" || name == "file.read" || name == "file.write" ||
         name == "file.list" || name == "file.exists" || name == "http.request" ||
         ctx_.commands.count(std::string(name)) > 0 || is_mcp_tool(name);
}

ToolOutcome ToolRegistry::llm_chat(const protocol::Json& params) const {
  LlmConfig config = ctx_.llm;
  config.mask = ctx_.mask;
  config.timeout_seconds = std::min(config.timeout_seconds, seconds_left(ctx_));
  return llm::chat(config, params);
}

ToolOutcome ToolRegistry::call(std::string_view name, const protocol::Json& args,
                               const CallContext& call) const {
  if (name == "host.ping") return host_ping(args);
  if (name == "file.read") return file_read(ctx_.mounts, ctx_.file_limits, trusted(), args);
  if (name == "file.write")
    return file_write(ctx_.mounts, ctx_.file_limits, trusted(), *ctx_.disk, args);
  if (name == "file.list") return file_list(ctx_.mounts, ctx_.file_limits, trusted(), args);
  if (name == "file.exists") return file_exists(ctx_.mounts, ctx_.file_limits, trusted(), args);
  if (name == "http.request") {
    NetworkPolicy policy = ctx_.network;
    policy.mask = ctx_.mask;
    policy.timeout_seconds = std::min(policy.timeout_seconds, seconds_left(ctx_));
    if (policy.send_idempotency_key) policy.idempotency_key = call.idempotency_key;
    return http_request(policy, args);
  }
  if (const auto it = ctx_.commands.find(std::string(name)); it != ctx_.commands.end()) {
    CommandSpec spec = it->second;
    spec.mask = ctx_.mask;
    spec.timeout_seconds = std::min(spec.timeout_seconds, seconds_left(ctx_));
    if (ctx_.launcher) return run_command_tool(spec, *ctx_.launcher, args);
    ToolOutcome out;
    out.code = tools::ToolError::failed;
    out.message = "command tool '" + it->first + "': no launcher in this broker";
    return out;
  }
  if (is_mcp_tool(name)) {
    if (!mcp_) mcp_ = std::make_unique<McpServers>(ctx_);
    return mcp_->call(name, args, ctx_.deadline);
  }
  ToolOutcome out;
  out.code = tools::ToolError::not_found;
  out.message = "no host tool named '" + std::string(name) + "'";
  return out;
}

}  // namespace tactus::tools
