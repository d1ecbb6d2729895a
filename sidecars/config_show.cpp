#include <cstdio>
#include <set>

#include "sidecars/config.h"
#include "sidecars/units.h"

namespace tactus::sidecars {
namespace {

std::string quoted_list(const std::vector<std::string>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", \"" : "\"") + v[i] + "\"";
  return out + "]";
}

std::string seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

std::string number(double v) {
  return seconds(v);
}
std::string number(std::uint64_t v) {
  return std::to_string(v);
}

// One entry as `config show` prints it: "key: value", padded, then "# origin".
std::string show_line(const ConfigEntry& e) {
  std::string line = e.key + ": " + e.value;
  if (line.size() < 52)
    line.resize(52, ' ');
  else
    line += "  ";
  return line + "# " + e.origin.text() + "\n";
}

class Entries {
 public:
  void add(const std::string& key, const std::string& value, const Origin& origin) {
    out_.push_back({key, value, origin});
  }
  std::vector<ConfigEntry> take() { return std::move(out_); }

 private:
  std::vector<ConfigEntry> out_;
};

}  // namespace

std::vector<std::string> config_warnings(const Config& c) {
  std::vector<std::string> out = c.ignored_keys;
  const auto anchored = [](const std::string& p) {
    return !p.empty() && p.front() == '^' && p.back() == '$';
  };
  for (const auto& p : c.network_allow.value)
    if (!anchored(p))
      out.push_back("warning: sandbox.network_filter.allow '" + p + "' (" +
                    c.network_allow.origin.text() +
                    ") is matched against the whole host, as if it were '^" + p +
                    "$'; write the anchors to say so");
  for (const auto& p : c.network_deny.value)
    if (!anchored(p))
      out.push_back("warning: sandbox.network_filter.deny '" + p + "' (" +
                    c.network_deny.origin.text() +
                    ") denies every host it matches any part of; anchor it (^...$) if it "
                    "names one host");
  return out;
}

std::vector<ConfigEntry> config_entries(const Config& c) {
  Entries l;
  l.add("sandbox.enabled", c.enabled.value ? "true" : "false", c.enabled.origin);
  l.add("sandbox.backend", c.backend.value, c.backend.origin);
  l.add("sandbox.timeout", seconds(c.timeout.value), c.timeout.origin);
  l.add("sandbox.jit", c.jit.value ? "true" : "false", c.jit.origin);
  l.add("sandbox.limits.memory", format_size(c.memory.value), c.memory.origin);
  l.add("sandbox.limits.cpu", std::to_string(c.cpu.value), c.cpu.origin);
  l.add("sandbox.limits.output", format_size(c.output.value), c.output.origin);
  l.add("sandbox.limits.instructions", std::to_string(c.instructions.value), c.instructions.origin);
  l.add("sandbox.limits.message", format_size(c.message.value), c.message.origin);
  l.add("sandbox.limits.disk", format_size(c.disk.value), c.disk.origin);
  l.add("sandbox.mount_current_dir", c.mount_current_dir.value ? "true" : "false",
        c.mount_current_dir.origin);
  l.add("sandbox.workspace", c.workspace.value, c.workspace.origin);
  if (c.volumes.value.empty()) l.add("sandbox.volumes", "[]", c.volumes.origin);
  for (const auto& v : c.volumes.value)
    l.add("sandbox.volumes",
          "\"" + v.host + ":" + v.virtual_path + (v.read_only ? ":ro" : ":rw") + "\"", v.origin);
  l.add("sandbox.network", c.network.value, c.network.origin);
  l.add("sandbox.network_filter.allow", quoted_list(c.network_allow.value), c.network_allow.origin);
  l.add("sandbox.network_filter.deny", quoted_list(c.network_deny.value), c.network_deny.origin);
  l.add("tools.allow", quoted_list(c.tools_allow.value), c.tools_allow.origin);
  l.add("tools.http.idempotency_key", c.http_idempotency_key.value ? "true" : "false",
        c.http_idempotency_key.origin);
  for (const auto& [name, t] : c.commands) {
    std::string v =
        quoted_list(t.command) + ", timeout " + seconds(t.timeout) + ", network " + t.network;
    if (!t.secrets.empty()) v += ", secrets " + quoted_list(t.secrets);
    l.add("tools.commands." + name, v, t.origin);
  }
  for (const auto& [name, s] : c.secrets)
    l.add("secrets." + name, "<secret:" + name + "> from " + s.kind + " " + s.ref, s.origin);
  for (const auto& [name, p] : c.providers) {
    std::string v;
    if (!p.api_key.empty()) v += "api_key <secret:" + p.api_key + ">";
    if (!p.base_url.empty()) v += std::string(v.empty() ? "" : ", ") + "base_url " + p.base_url;
    if (!p.api.empty()) v += std::string(v.empty() ? "" : ", ") + "api " + p.api;
    if (!p.max_tokens_field.empty())
      v += std::string(v.empty() ? "" : ", ") + "max_tokens_field " + p.max_tokens_field;
    l.add("providers." + name, v.empty() ? "{}" : v, p.origin);
    for (const auto& [model, price] : p.prices) {
      std::string pv = "input " + seconds(price.input) + ", cached_input " +
                       seconds(price.cached_input) + ", output " + seconds(price.output);
      if (price.cache_write >= 0) pv += ", cache_write " + seconds(price.cache_write);
      l.add("providers." + name + ".prices." + model, pv + " (USD per million tokens)",
            price.origin);
    }
  }
  l.add("providers.defaults.timeout", seconds(c.provider_timeout.value), c.provider_timeout.origin);
  l.add("providers.defaults.retries", std::to_string(c.provider_retries.value),
        c.provider_retries.origin);
  for (const auto& [name, m] : c.mcp_servers) {
    std::string v = quoted_list(m.command);
    if (!m.secrets.empty()) v += ", secrets " + quoted_list(m.secrets);
    for (const auto& [var, value] : m.env) v += ", env " + var + "=" + value;
    if (!m.cwd.empty()) v += ", cwd " + m.cwd;
    v += std::string(", network ") + (m.network ? "true" : "false");
    v += ", workspace " + m.workspace + ", timeout " + seconds(m.timeout) + ", startup_timeout " +
         seconds(m.startup_timeout) + ", memory " + format_size(m.memory);
    if (m.media) v += ", media true";
    l.add("mcp_servers." + name, v, m.origin);
  }
  l.add("default_model", c.default_model.value.empty() ? "(none)" : c.default_model.value,
        c.default_model.origin);
  l.add("default_provider", c.default_provider.value.empty() ? "(none)" : c.default_provider.value,
        c.default_provider.origin);
  l.add("default_toolsets",
        c.default_toolsets.value ? quoted_list(*c.default_toolsets.value) : "(none)",
        c.default_toolsets.origin);
  for (const auto& [name, t] : c.toolsets) {
    std::string v = t.type;
    if (!t.server.empty()) v += ", server " + t.server;
    if (!t.source.empty()) v += ", source " + t.source;
    if (!t.pattern.empty()) v += ", pattern \"" + t.pattern + "\"";
    if (!t.sources.empty()) v += ", sources " + quoted_list(t.sources);
    if (!t.paths.empty()) v += ", paths " + quoted_list(t.paths) + " (not run)";
    l.add("toolsets." + name, v, t.origin);
  }
  if (!c.tool_paths.value.empty())
    l.add("tool_paths", quoted_list(c.tool_paths.value) + " (not run)", c.tool_paths.origin);
  const auto optional = [](const auto& v) { return v ? number(*v) : std::string("(none)"); };
  l.add("budget.usd", optional(c.budget_usd.value), c.budget_usd.origin);
  l.add("budget.tokens", optional(c.budget_tokens.value), c.budget_tokens.origin);
  l.add("budget.model_calls", optional(c.budget_model_calls.value), c.budget_model_calls.origin);
  l.add("budget.tool_calls", optional(c.budget_tool_calls.value), c.budget_tool_calls.origin);
  l.add("telemetry.otlp_endpoint", c.otlp_endpoint.value.empty() ? "(none)" : c.otlp_endpoint.value,
        c.otlp_endpoint.origin);
  l.add("telemetry.capture_content", c.capture_content.value ? "true" : "false",
        c.capture_content.origin);
  l.add("telemetry.timeout", seconds(c.telemetry_timeout.value), c.telemetry_timeout.origin);
  l.add("audit.path", c.audit_path.value.empty() ? "(none)" : c.audit_path.value,
        c.audit_path.origin);
  l.add("audit.max_line", format_size(c.audit_max_line.value), c.audit_max_line.origin);
  l.add("audit.max_bytes", format_size(c.audit_max_bytes.value), c.audit_max_bytes.origin);
  l.add("journal.path", c.journal_path.value, c.journal_path.origin);
  l.add("journal.enabled", c.journal_enabled.value ? "true" : "false", c.journal_enabled.origin);
  l.add("journal.max_bytes", format_size(c.journal_max_bytes.value), c.journal_max_bytes.origin);
  return l.take();
}

std::string show_entries(const std::vector<ConfigEntry>& entries) {
  std::string out;
  for (const auto& e : entries) out += show_line(e);
  return out;
}

std::string show_config(const Config& c) {
  return show_entries(config_entries(c));
}

std::vector<ConfigEntry> non_default_entries(const Config& c) {
  // An entry is at its default when the built-in defaults have the same key with the same
  // value (a key listed more than once, like sandbox.volumes, is compared as a multiset).
  std::multiset<std::pair<std::string, std::string>> defaults;
  for (auto& e : config_entries(Config{})) defaults.emplace(e.key, e.value);
  std::vector<ConfigEntry> out;
  for (auto& e : config_entries(c)) {
    const auto it = defaults.find({e.key, e.value});
    if (it != defaults.end()) {
      defaults.erase(it);
      continue;
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace tactus::sidecars
