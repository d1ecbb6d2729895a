#include "tools/mcp/mcp_servers.h"

#include <unistd.h>

#include "tools/mcp/mcp_client.h"
#include "tools/mcp/workspace_shield.h"

namespace tactus::tools {
namespace {

using protocol::Json;

// A server that keeps dying is not started again and again in one run.
constexpr int kMaxStarts = 3;

// The size of base64 data, decoded.
std::size_t decoded_size(const std::string& b64) {
  std::size_t n = b64.size();
  while (n > 0 && (b64[n - 1] == '=' || b64[n - 1] == '\n')) --n;
  return n * 3 / 4;
}

// Data the procedure did not ask for becomes its size: {type, mimeType, bytes}.
void strip_data(Json& block, const char* field) {
  if (!block.contains(field) || !block[field].is_string()) return;
  block["bytes"] = decoded_size(block[field].get_ref<const std::string&>());
  block.erase(field);
}

// "mcp.SERVER.TOOL" -> SERVER and TOOL (tool empty for "mcp.SERVER"). Server names have no dot
// (sidecars/config_loader.cpp); a tool's name may.
void split(std::string_view name, std::string& server, std::string& tool) {
  name.remove_prefix(4);
  const auto dot = name.find('.');
  server = std::string(name.substr(0, dot));
  tool = dot == std::string_view::npos ? "" : std::string(name.substr(dot + 1));
}

// A schema as Lua can carry it back: an empty array becomes an empty table there, which goes
// out as {}. The keys holding one (required: [] and the like) say nothing, so they go.
Json lua_safe_schema(Json schema) {
  if (schema.is_object()) {
    for (auto it = schema.begin(); it != schema.end();) {
      if (it->is_array() && it->empty()) {
        it = schema.erase(it);
        continue;
      }
      *it = lua_safe_schema(std::move(*it));
      ++it;
    }
  } else if (schema.is_array()) {
    for (auto& item : schema) item = lua_safe_schema(std::move(item));
  }
  return schema;
}

}  // namespace

bool is_mcp_tool(std::string_view name) {
  return name.size() > 4 && name.substr(0, 4) == "mcp.";
}

Json mcp_result_for_procedure(const Json& result, bool media) {
  Json content = result.value("content", Json::array());
  if (!content.is_array()) content = Json::array();
  std::string text;
  bool first = true;
  for (auto& block : content) {
    if (!block.is_object()) continue;
    const Json kind = block.value("type", Json());
    const std::string type = kind.is_string() ? kind.get<std::string>() : "";
    if (type == "text" && block.value("text", Json()).is_string()) {
      if (!first) text += '\n';
      text += block["text"].get_ref<const std::string&>();
      first = false;
    }
    if (media) continue;
    if (type == "image" || type == "audio") strip_data(block, "data");
    if (type == "resource" && block.value("resource", Json()).is_object())
      strip_data(block["resource"], "blob");
  }
  Json out{{"text", text}, {"content", content}};
  if (result.contains("structuredContent") && !result["structuredContent"].is_null())
    out["structured"] = result["structuredContent"];
  return out;
}

McpServers::McpServers(const ToolContext& ctx)
    : specs_(ctx.mcp_servers),
      launcher_(ctx.launcher),
      mask_(ctx.mask),
      tool_allowed_(ctx.tool_allowed) {}

// Each client stops its server; a writable one is looked after once more, when it is gone
// (the run has ended, so a breach now is a warning and what it made is removed).
McpServers::~McpServers() {
  for (const auto& [server, spec] : specs_) {
    if (!spec.workspace_rw || !baseline_.count(server)) continue;
    clients_.erase(server);
    check_workspace(server);
  }
}

McpClient* McpServers::client(const std::string& server,
                              std::chrono::steady_clock::time_point deadline,
                              ToolOutcome& failure) {
  const auto spec = specs_.find(server);
  if (spec == specs_.end()) {
    failure = tool_failure(ToolError::not_found,
                           "no MCP server named '" + server + "' (mcp_servers in the sidecar)");
    return nullptr;
  }
  if (auto it = clients_.find(server); it != clients_.end() && it->second) {
    if (it->second->running()) return it->second.get();
    // It ended between calls: what it wrote before it did is looked for first.
    clients_.erase(it);
    if (auto breach = check_workspace(server)) {
      failure = *breach;
      return nullptr;
    }
  }
  auto& slot = clients_[server];
  if (starts_[server] >= kMaxStarts) {
    failure = tool_failure(ToolError::failed, "mcp server '" + server + "' was started " +
                                                  std::to_string(kMaxStarts) +
                                                  " times in this run, and ended or failed each "
                                                  "time: it is not started again");
    return nullptr;
  }
  if (!launcher_) {
    failure = tool_failure(ToolError::failed, "mcp server '" + server + "': no launcher here");
    return nullptr;
  }
  ++starts_[server];
  // What it is compared with after each of its calls: taken before its first start, kept
  // across restarts (a restart must not make what an earlier one wrote look old).
  if (spec->second.workspace_rw && !baseline_.count(server)) {
    std::string error;
    std::set<std::string> before;
    if (!trusted_entries(spec->second.workspace_host, before, error)) {
      failure = tool_failure(ToolError::failed, "mcp server '" + server +
                                                    "' cannot start: its writable workspace "
                                                    "cannot be looked through: " +
                                                    error);
      return nullptr;
    }
    baseline_[server] = std::move(before);
  }
  slot =
      std::make_unique<McpClient>(spec->second, *launcher_, mask_, spec->second.jail.message_limit);
  failure = slot->start(deadline);
  if (!failure.ok) {
    slot.reset();
    if (auto breach = check_workspace(server)) failure = *breach;
    return nullptr;
  }
  return slot.get();
}

ToolOutcome McpServers::list(McpClient& c, const std::string& server,
                             std::chrono::steady_clock::time_point deadline) {
  ToolOutcome r = c.list_tools(deadline);
  if (!r.ok) return r;
  Json tools = Json::array();
  for (const auto& t : r.result) {
    const std::string name = t["name"].get<std::string>();
    if (tool_allowed_ && !tool_allowed_("mcp." + server + "." + name)) continue;
    Json entry{{"name", name},
               {"description", t.value("description", Json(""))},
               {"inputSchema", lua_safe_schema(t["inputSchema"])}};
    if (t.contains("title")) entry["title"] = t["title"];
    tools.push_back(std::move(entry));
  }
  return {true, Json{{"server", server}, {"tools", tools}}, ToolError::none, ""};
}

// A server with a writable workspace may have made trusted files (a sidecar, code, a .tactus)
// the jail could not keep it from creating: looked for after each of its calls (and when it
// stops), against the look before it started. What it made is removed, once the server is
// stopped and reaped, and the call is a breach: the run ends.
std::optional<ToolOutcome> McpServers::check_workspace(const std::string& server) {
  const McpServerSpec& spec = specs_.at(server);
  const auto base = baseline_.find(server);
  if (!spec.workspace_rw || base == baseline_.end()) return std::nullopt;
  const auto made_now = [&](std::string& error) {
    std::set<std::string> now;
    const bool ok = trusted_entries(spec.workspace_host, now, error);
    std::vector<std::string> made;
    for (const auto& p : now)
      if (!base->second.count(p)) made.push_back(p);
    if (!ok && error.empty()) error = "the look failed";
    return made;
  };
  std::string error;
  std::vector<std::string> made = made_now(error);
  if (error.empty() && made.empty()) return std::nullopt;
  clients_.erase(server);  // stopped and reaped: nothing writes while we look again and remove
  error.clear();
  made = made_now(error);
  const auto left =
      remove_made(spec.workspace_host, made,
                  spec.trusted ? spec.trusted().hidden_paths : std::vector<std::string>{});
  std::string message = "mcp server '" + server + "' ";
  if (!made.empty()) {
    std::string names;
    for (std::size_t i = 0; i < made.size() && i < 10; ++i) names += (i ? ", " : "") + made[i];
    if (made.size() > 10) names += ", and " + std::to_string(made.size() - 10) + " more";
    message += "wrote trusted files (" + names + "): they were removed, and the run is ended";
  } else {
    message += "was stopped, and the run is ended";
  }
  if (!error.empty()) message += "; its workspace could not be looked through: " + error;
  if (!left.empty()) {
    message += "; NOT removed (remove them by hand before the next run):";
    for (const auto& l : left) message += " " + l;
  }
  const std::string line = "tactus: warning: " + message + "\n";
  [[maybe_unused]] const ssize_t w = ::write(2, line.data(), line.size());
  baseline_.erase(server);
  return tool_failure(ToolError::breach, message);
}

ToolOutcome McpServers::call(std::string_view name, const Json& args,
                             std::chrono::steady_clock::time_point deadline) {
  // What a server sends is untrusted: a shape we did not expect is an error, never a crash.
  try {
    return call_checked(name, args, deadline);
  } catch (const Json::exception& e) {
    return tool_failure(ToolError::failed, "mcp: " + std::string(name) +
                                               ": the server's answer has an unexpected shape (" +
                                               e.what() + ")");
  }
}

ToolOutcome McpServers::call_checked(std::string_view name, const Json& args,
                                     std::chrono::steady_clock::time_point deadline) {
  std::string server, tool;
  split(name, server, tool);
  if (!args.is_null() && !args.is_object())
    return tool_failure(ToolError::invalid_args,
                        "mcp." + server + (tool.empty() ? "" : "." + tool) +
                            ": the arguments must be a table of named fields");
  ToolOutcome failure;
  McpClient* c = client(server, deadline, failure);
  if (!c) return failure;
  if (tool.empty()) {
    ToolOutcome listed = list(*c, server, deadline);
    if (auto breach = check_workspace(server)) return *breach;
    return listed;
  }
  // A name the server does not list is refused here, with what it does offer.
  ToolOutcome listed = c->list_tools(deadline);
  if (!listed.ok) return listed;
  bool known = false;
  std::string names;
  for (const auto& t : listed.result) {
    const auto& n = t["name"].get_ref<const std::string&>();
    known = known || n == tool;
    const bool shown = !tool_allowed_ || tool_allowed_("mcp." + server + "." + n);
    if (shown && names.size() < 512) names += (names.empty() ? "" : ", ") + n;
  }
  if (!known)
    return tool_failure(ToolError::not_found, "mcp server '" + server + "' has no tool '" + tool +
                                                  "' (it has: " + names + ")");
  ToolOutcome r = c->call_tool(tool, args.is_null() ? Json::object() : args, deadline);
  // A writable server whose call timed out might still write: it is stopped first.
  if (!r.ok && r.code == ToolError::timeout && specs_.at(server).workspace_rw)
    clients_.erase(server);
  if (auto breach = check_workspace(server)) return *breach;
  if (!r.ok) return r;
  const bool media = specs_.at(server).media;
  if (const Json e = r.result.value("isError", Json()); e.is_boolean() && e.get<bool>()) {
    std::string text = mcp_result_for_procedure(r.result, false)["text"].get<std::string>();
    if (text.empty()) text = "(the server gave no text)";
    return tool_failure(ToolError::mcp, server + "." + tool + ": " + text);
  }
  r.result = mcp_result_for_procedure(r.result, media);
  return r;
}

}  // namespace tactus::tools
