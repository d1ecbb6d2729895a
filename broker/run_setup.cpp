#include "broker/run_setup.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "broker/llm_providers.h"
#include "broker/mcp_setup.h"
#include "broker/policy.h"
#include "tools/trusted_files.h"

namespace tactus::broker {
namespace {

namespace fs = std::filesystem;

fs::path project_root() {
  std::error_code ec;
  const fs::path cwd = fs::current_path(ec);
  for (fs::path dir = cwd; !dir.empty(); dir = dir.parent_path()) {
    if (fs::is_directory(dir / ".tactus", ec)) return dir;
    if (dir == dir.parent_path()) break;
  }
  return cwd;
}

// Secrets are resolved here, in the broker, after the spawner was forked: no jail is ever forked
// from a process that held them.
bool resolve_secrets(const sidecars::Config& config, Redactor& redactor,
                     std::map<std::string, std::string>& values, std::string& error) {
  for (const auto& [name, decl] : config.secrets) {
    SecretSource source;
    source.name = name;
    source.kind = decl.kind == "file" ? SecretSource::Kind::file : SecretSource::Kind::env;
    source.ref = decl.ref;
    std::string value;
    if (!resolve_secret(source, value, error)) {
      error = decl.origin.text() + ": secrets." + name + ": " + error;
      return false;
    }
    redactor.add(value);
    values[name] = std::move(value);
  }
  return true;
}

}  // namespace

TrustedPaths trusted_paths(const sidecars::Config& config, const std::string& file) {
  std::error_code ec;
  const char* home = std::getenv("HOME");
  const sidecars::LayerPaths layers = sidecars::find_layers(file, home ? home : "");
  const fs::path procedure = fs::absolute(file, ec).lexically_normal();
  std::vector<std::string> files = {layers.user, layers.project, layers.procedure,
                                    procedure.string(), procedure.string() + ".yml"};
  const std::string journal = journal_path(config);
  std::vector<std::string> hidden = {journal, journal + "-wal", journal + "-shm",
                                     journal + "-journal"};
  if (!config.audit_path.value.empty()) {
    const std::string audit = fs::absolute(config.audit_path.value, ec).lexically_normal().string();
    hidden.push_back(audit);
    for (int i = 1; i <= kAuditKeep; ++i) hidden.push_back(audit + "." + std::to_string(i));
  }
  // Secret files: a read would show the secret to the procedure (and its size, at least).
  for (const auto& [name, decl] : config.secrets) {
    if (decl.kind != "file") continue;
    std::string ref = decl.ref;
    if (ref.rfind("~/", 0) == 0 && home && *home) ref = std::string(home) + ref.substr(1);
    hidden.push_back(fs::absolute(ref, ec).lexically_normal().string());
  }
  std::vector<std::string> dirs;
  const auto ancestors = [&](fs::path d) {
    for (; !d.empty(); d = d.parent_path()) {
      const std::string tactus = (d / ".tactus").string();
      if (std::find(dirs.begin(), dirs.end(), tactus) == dirs.end() && fs::is_directory(tactus, ec))
        dirs.push_back(tactus);
      if (d == d.parent_path()) break;
    }
  };
  ancestors(procedure.parent_path());
  ancestors(fs::current_path(ec));
  if (home && *home) dirs.push_back((fs::path(home) / ".tactus").string());
  std::vector<std::string> code_dirs;
  for (const auto& [name, m] : config.mcp_servers)
    if (auto d = mcp_install_dir(m); !d.empty()) code_dirs.push_back(d);
  return {files, hidden, dirs, code_dirs};
}

tools::TrustedFiles trusted_files(const sidecars::Config& config, const std::string& file) {
  const TrustedPaths p = trusted_paths(config, file);
  return tools::collect_trusted_files(p.files, p.hidden, p.dirs, p.code_dirs);
}

bool load_procedure_config(const std::string& file, sidecars::Config& config, std::string& error) {
  const char* home = std::getenv("HOME");
  return sidecars::load_config(sidecars::find_layers(file, home ? home : ""), config, error);
}

std::string journal_path(const sidecars::Config& config) {
  const auto& s = config.journal_path;
  if (s.origin.file != "default" && fs::path(s.value).is_absolute()) return s.value;
  return (project_root() / s.value).lexically_normal().string();
}

Budget budget_of(const sidecars::Config& c) {
  Budget b;
  b.usd = c.budget_usd.value;
  b.tokens = c.budget_tokens.value;
  b.model_calls = c.budget_model_calls.value;
  b.tool_calls = c.budget_tool_calls.value;
  b.usd_at = c.budget_usd.origin.text();
  b.tokens_at = c.budget_tokens.origin.text();
  b.model_calls_at = c.budget_model_calls.origin.text();
  b.tool_calls_at = c.budget_tool_calls.origin.text();
  return b;
}

protocol::Json dialect_of(const sidecars::Config& c) {
  protocol::Json d = protocol::Json::object();
  if (!c.default_model.value.empty()) d["default_model"] = c.default_model.value;
  if (!c.default_provider.value.empty()) d["default_provider"] = c.default_provider.value;
  if (c.default_toolsets.value) d["default_toolsets"] = *c.default_toolsets.value;
  if (!c.tool_paths.value.empty()) d["plugin_toolset"] = true;
  for (const auto& [name, server] : c.mcp_servers) d["mcp_servers"].push_back(name);
  for (const auto& [name, t] : c.toolsets) {
    protocol::Json j = {{"type", t.type}};
    if (!t.server.empty()) j["server"] = t.server;
    if (!t.source.empty()) j["source"] = t.source;
    if (!t.pattern.empty()) j["pattern"] = t.pattern;
    if (!t.sources.empty()) j["sources"] = t.sources;
    d["toolsets"][name] = std::move(j);
  }
  if (d.empty()) return protocol::Json();
  return d;
}

bool compose_run(const std::string& procedure, const RunFlags& flags, RunSetup& s,
                 std::string& error) {
  s.procedure = procedure;
  if (!load_procedure_config(procedure, s.config, error)) return false;
  s.redactor = std::make_shared<Redactor>();
  if (!resolve_secrets(s.config, *s.redactor, s.secrets, error)) return false;
  for (const auto& [name, value] : s.secrets) s.seal.add(name, value);
  const sidecars::Config& config = s.config;

  RunRequest& req = s.req;
  req.redactor = s.redactor;
  // The run's limits: the limit flags over the files' layers, as the last layer. s.config
  // stays without them: a run's identity is its files' configuration, so a resume may be given
  // other limits, and the tools keep the files' caps (tool_context).
  sidecars::Config flagged = s.config;
  sidecars::apply_flags(flags.limits, flagged);
  req.limits = sidecars::run_limits(flagged);
  req.policy.allowed_tools = config.tools_allow.value;
  req.danger_allow_exec = config.jit.value;
  req.log_json = flags.log_json;
  req.chunkname = "@" + procedure;
  std::error_code ec;
  req.procedure_dir = fs::absolute(procedure, ec).parent_path().lexically_normal().string();
  // The user's own ~/.tactus/config.yml is a layer, not a project: $HOME is no project root.
  const char* home = std::getenv("HOME");
  const std::string project_layer = sidecars::find_layers(procedure, home ? home : "").project;
  req.project_dir = project_layer.empty()
                        ? req.procedure_dir
                        : fs::path(project_layer).parent_path().parent_path().string();
  req.invocation_dir = fs::current_path(ec).string();
  req.dialect = dialect_of(config);

  // The backend: --no-sandbox, else --backend, else sandbox.enabled: false, else
  // sandbox.backend.
  s.backend = flags.no_sandbox ? "none" : flags.backend;
  s.unsandboxed_because = "--no-sandbox";
  if (s.backend.empty() && !config.enabled.value) {
    s.backend = "none";
    s.unsandboxed_because = "sandbox.enabled: false at " + config.enabled.origin.text();
  }
  if (s.backend.empty()) {
    s.backend = config.backend.value;
    s.unsandboxed_because = "sandbox.backend: none at " + config.backend.origin.text();
  }
  if (s.backend != "none") s.unsandboxed_because.clear();
  req.backend = s.backend == "none" ? spawner::Backend::danger_none : spawner::Backend::jail;

  req.usage = s.usage.get();
  req.budget = budget_of(config);
  if (!config.otlp_endpoint.value.empty())
    s.trace_config = TraceConfig{config.otlp_endpoint.value, config.capture_content.value,
                                 config.telemetry_timeout.value};

  if (!config.audit_path.value.empty()) {
    s.audit = std::make_unique<AuditLog>();
    const AuditLimits limits{config.audit_max_line.value, config.audit_max_bytes.value};
    if (!s.audit->open(config.audit_path.value, limits, error)) return false;
    req.audit = s.audit.get();
  }
  return true;
}

std::unique_ptr<RunTrace> make_trace(const RunSetup& s) {
  if (!s.trace_config || s.req.mode != "run") return nullptr;  // validate and test send none
  return std::make_unique<RunTrace>(*s.trace_config, s.req.run_id,
                                    fs::path(s.procedure).filename().string(), s.redactor);
}

tools::ToolContext tool_context(const RunSetup& setup, tools::CommandLauncher& launcher) {
  // The files' configuration, without the limit flags: those are the VM's (--memory is its
  // heap, --message-limit its frames), not the command tools' or the file tools' caps.
  const sidecars::Config& config = setup.config;
  const std::string& file = setup.procedure;
  tools::ToolContext ctx;
  // A read must fit in one answer, with room for the envelope and JSON escaping.
  ctx.file_limits.max_read =
      std::min<std::uint64_t>(ctx.file_limits.max_read, config.message.value / 2);
  if (config.mount_current_dir.value && config.workspace.value != "off") {
    ctx.mounts.push_back({"/workspace", setup.req.procedure_dir, config.workspace.value != "rw"});
  }
  // setup outlives the run's tools.
  ctx.collect_trusted = [&config, file] { return trusted_files(config, file); };
  ctx.mask = setup.redactor.get();
  ctx.disk->limit = config.disk.value;
  for (const auto& v : config.volumes.value)
    ctx.mounts.push_back({v.virtual_path, v.host, v.read_only});
  ctx.network.mode = config.network.value;
  ctx.network.allow = config.network_allow.value;
  ctx.network.deny = config.network_deny.value;
  ctx.network.send_idempotency_key = config.http_idempotency_key.value;
  // A response must fit in one answer, with room for the envelope and JSON escaping.
  ctx.network.max_response =
      std::min<std::uint64_t>(ctx.network.max_response, config.message.value / 2);
  for (const auto& [name, c] : config.commands) {
    tools::CommandSpec spec;
    spec.name = name;
    spec.command = c.command;
    spec.timeout_seconds = c.timeout;
    spec.danger_host_network = c.network == "host";
    // Only the secrets named for this tool; check_config made sure they are declared.
    for (const auto& s : c.secrets) spec.secrets.emplace_back(s, setup.secrets.at(s));
    spec.memory = config.memory.value;
    spec.max_output = config.message.value / 2;  // the result must fit in one answer
    spec.message_limit = config.message.value;
    ctx.commands.emplace(name, std::move(spec));
  }
  ctx.launcher = &launcher;
  for (const auto& [name, m] : config.mcp_servers)
    ctx.mcp_servers.emplace(name, mcp_spec(name, m, setup));
  ctx.tool_allowed = [policy = setup.req.policy](const std::string& tool) {
    return tool_allowed(policy, tool);
  };
  ctx.llm = llm_config(config, setup.secrets, *setup.redactor);
  return ctx;
}

bool procedure_secrets(const std::string& procedure, SecretSeal& seal, Redactor& redactor,
                       std::string& error) {
  sidecars::Config config;
  std::map<std::string, std::string> values;
  if (!load_procedure_config(procedure, config, error)) return false;
  if (!resolve_secrets(config, redactor, values, error)) return false;
  for (const auto& [name, value] : values) seal.add(name, value);
  return true;
}

}  // namespace tactus::broker
