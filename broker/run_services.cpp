#include "broker/run_services.h"

#include <sys/random.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <vector>

#include "broker/sha256.h"
#include "tools/file_tools.h"

namespace tactus::broker::services {

using protocol::Json;

namespace {

// The Log levels the VM may send; anything else is a protocol violation.
constexpr const char* kLogLevels[] = {"debug", "info", "warn", "error"};

// The llm.chat fields an audit line keeps as they are.
constexpr const char* kLlmAuditFields[] = {"agent", "provider", "model", "model_type",
                                           "tool_choice"};

// The characters of a module name: a dotted Lua name, nothing a path could be made of.
constexpr const char* kModuleNameChars =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.";

}  // namespace

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Json time_now() {
  return Json{{"unix", unix_now()}};
}

Json time_clock(double seconds_elapsed) {
  return Json{{"seconds", seconds_elapsed}};
}

Json random_seed() {
  std::uint32_t seed = 0;
  if (::getrandom(&seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed))
    seed = static_cast<std::uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return Json{{"seed", seed & 0x7fffffff}};
}

Json checkpoint_ack() {
  return Json{{"replayed", false}};
}

Json checkpoint_result_ack() {
  return Json::object();
}

tools::ToolOutcome load_module(const std::string& procedure_dir, const Json& params,
                               std::size_t max_read, const tools::TrustedFiles& trusted) {
  const Json name = params.is_object() ? params.value("name", Json()) : Json();
  if (!name.is_string() || name.get_ref<const std::string&>().empty() ||
      name.get_ref<const std::string&>().find_first_not_of(kModuleNameChars) != std::string::npos)
    return tools::tool_failure(tools::ToolError::invalid_args, "module.load needs a module name");
  std::string rel = name.get<std::string>();
  std::replace(rel.begin(), rel.end(), '.', '/');
  if (procedure_dir.empty())
    return tools::tool_failure(tools::ToolError::not_found, "no procedure directory");
  const std::vector<tools::Mount> mounts = {{"/procedure", procedure_dir, true}};
  tools::FileLimits limits;
  limits.max_read = max_read;
  tools::ToolOutcome r;
  std::string path;
  for (const char* ext : {".lua", ".tac"}) {
    path = rel + ext;
    // Modules are the procedure's own code beside it: no .tactus name can be formed from a
    // dotted module name, and only .lua and .tac files are read.
    r = tools::file_read(mounts, limits, trusted, Json{{"path", "/procedure/" + path}});
    if (r.ok || r.code != tools::ToolError::not_found) break;
  }
  if (!r.ok && r.code == tools::ToolError::not_found)
    return tools::tool_failure(tools::ToolError::not_found,
                               "module '" + name.get<std::string>() + "' not found: no " + rel +
                                   ".lua or " + rel + ".tac beside the procedure");
  if (!r.ok) return r;
  r.result = Json{{"source", r.result["content"]}, {"path", path}};
  return r;
}

tools::ToolOutcome load_procedure(const ProcedureRoots& roots, const Json& params,
                                  std::size_t max_read, const tools::TrustedFiles& trusted) {
  namespace fs = std::filesystem;
  const Json given = params.is_object() ? params.value("procedure", Json()) : Json();
  const auto refuse = [](const std::string& why) {
    return tools::tool_failure(tools::ToolError::invalid_args, "Procedure.run: " + why);
  };
  if (!given.is_string()) return refuse("needs a procedure's name or a path to a .tac file");
  const std::string& path = given.get_ref<const std::string&>();
  const fs::path rel(path);
  if (path.empty() || path.size() > 1024 || path.find('\0') != std::string::npos ||
      rel.is_absolute() || rel.extension() != ".tac")
    return refuse("'" + path.substr(0, 200) + "' is not a relative path to a .tac file");
  for (const auto& part : rel)
    if (part == ".." || part.string().rfind(".tactus", 0) == 0)
      return refuse("'" + path + "': no .. or .tactus in a sub-procedure's path");
  if (roots.project_dir.empty()) return refuse("no project directory");
  const fs::path project = fs::path(roots.project_dir).lexically_normal();
  tools::FileLimits limits;
  limits.max_read = max_read;
  const std::vector<tools::Mount> mounts = {{"/project", project.string(), true}};
  for (const std::string& base : {roots.procedure_dir, roots.invocation_dir}) {
    if (base.empty()) continue;
    const fs::path full = (fs::path(base) / rel).lexically_normal();
    const fs::path inside = full.lexically_relative(project);
    if (inside.empty() || *inside.begin() == "..") continue;  // not beneath the project
    tools::ToolOutcome r =
        tools::file_read(mounts, limits, trusted, Json{{"path", "/project/" + inside.string()}});
    if (!r.ok && r.code == tools::ToolError::not_found) continue;
    if (!r.ok) return r;
    // The chunk is named by the path as given: the jail learns no host directory.
    r.result = Json{{"source", r.result["content"]}, {"path", path}};
    return r;
  }
  // The project's host path is not named: the answer goes into the jail.
  return tools::tool_failure(tools::ToolError::not_found,
                             "Procedure.run: no '" + path +
                                 "' beneath the project, beside the procedure or from where "
                                 "tactus was started");
}

std::string log_line(const Json& params, const std::string& run_id, bool as_json,
                     std::string& error) {
  if (!params.is_object() || !params.value("message", Json()).is_string() ||
      !params.value("level", Json()).is_string()) {
    error = "log without level or message";
    return "";
  }
  const std::string level = params["level"].get<std::string>();
  if (std::find(std::begin(kLogLevels), std::end(kLogLevels), level) == std::end(kLogLevels)) {
    error = "log level '" + level + "'";
    return "";
  }
  const Json fields = params.value("fields", Json::object());
  if (as_json)
    return protocol::dump_json(Json{{"time", unix_now()},
                                    {"run_id", run_id},
                                    {"level", level},
                                    {"message", params["message"]},
                                    {"fields", fields}});
  std::string line = "[" + level + "] " + params["message"].get<std::string>();
  if (fields.is_object())
    for (const auto& [k, v] : fields.items())
      line += " " + k + "=" + (v.is_string() ? v.get<std::string>() : protocol::dump_json(v));
  return line;
}

std::string idempotency_key(const std::string& run_id, std::int64_t n) {
  return "tactus-" +
         sha256_hex("tactus idempotency\n" + run_id + "\n" + std::to_string(n)).substr(0, 32);
}

Json llm_audit_args(const Json& p) {
  Json args = Json::object();
  if (!p.is_object()) return args;
  for (const char* key : kLlmAuditFields)
    if (p.contains(key) && p[key].is_string()) args[key] = p[key];
  if (p.contains("messages") && p["messages"].is_array()) args["messages"] = p["messages"].size();
  if (p.contains("tools") && p["tools"].is_array()) {
    Json names = Json::array();
    for (const auto& t : p["tools"])
      if (t.is_object() && t.contains("name") && t["name"].is_string()) names.push_back(t["name"]);
    args["tools"] = std::move(names);
  }
  return args;
}

Json audit_line(const std::string& run_id, const std::string& tool, const Json& args,
                const tools::ToolOutcome& r, double ms, const Json& spend) {
  Json line = {{"time", unix_now()},
               {"run_id", run_id},
               {"tool", tool},
               {"args", args},
               {"outcome", r.ok ? std::string("ok") : std::string(to_string(r.code))},
               {"duration_ms", ms}};
  if (!r.ok) line["message"] = r.message;
  if (spend.is_object())
    for (const auto& [key, value] : spend.items()) line[key] = value;
  return line;
}

std::string model_name(const Json& p) {
  const auto part = [&](const char* key) {
    const Json v = p.is_object() ? p.value(key, Json()) : Json();
    return v.is_string() ? v.get<std::string>().substr(0, 200) : std::string("?");
  };
  return part("provider") + "/" + part("model");
}

}  // namespace tactus::broker::services
