#include <yaml-cpp/yaml.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "sidecars/config.h"
#include "sidecars/layer_reader.h"
#include "sidecars/run_limits.h"
#include "sidecars/units.h"

namespace tactus::sidecars {

namespace fs = std::filesystem;

namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

std::string suggestion(const std::string& key, const std::vector<std::string>& known) {
  std::string best;
  std::size_t best_d = std::string::npos;
  for (const auto& k : known) {
    const std::size_t d = edit_distance(key, k);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  if (best.empty() || best_d > std::max<std::size_t>(2, key.size() / 3)) return "";
  return " (did you mean '" + best + "'?)";
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

bool LayerReader::volumes(const YAML::Node& n, const std::string& key) {
  if (!n.IsSequence()) return fail(n, key, "expected a list of \"host:/virtual[:ro|:rw]\"");
  std::vector<Volume> out;
  for (const auto& item : n) {
    std::string spec;
    if (!text(item, key, spec)) return false;
    std::vector<std::string> parts;
    std::stringstream ss(spec);
    for (std::string p; std::getline(ss, p, ':');) parts.push_back(p);
    Volume v;
    v.origin = origin(item);
    if (parts.size() == 3 && (parts[2] == "ro" || parts[2] == "rw"))
      v.read_only = parts[2] == "ro";
    else if (parts.size() != 2)
      return fail(item, key, "'" + spec + "' is not \"host:/virtual[:ro|:rw]\"");
    v.host = resolve_path(parts[0]);
    v.virtual_path = parts[1];
    if (parts[0].empty()) return fail(item, key, "'" + spec + "': the host path is empty");
    if (v.virtual_path.size() < 2 || v.virtual_path[0] != '/' || v.virtual_path.back() == '/' ||
        v.virtual_path.find("/..") != std::string::npos ||
        v.virtual_path.find("/./") != std::string::npos)
      return fail(item, key,
                  "'" + spec +
                      "': the virtual path must be absolute, like /data, without a "
                      "trailing slash, . or ..");
    if (v.virtual_path == "/workspace")
      return fail(item, key, "'" + spec + "': /workspace is the procedure's directory");
    for (const auto& other : out)
      if (other.virtual_path == v.virtual_path)
        return fail(item, key, "'" + v.virtual_path + "' is mounted twice");
    out.push_back(v);
  }
  cfg_.volumes = {out, origin(n)};
  return true;
}

bool LayerReader::sandbox(const YAML::Node& n) {
  return each(
      n, "sandbox",
      {"enabled", "backend", "timeout", "jit", "limits", "mount_current_dir", "workspace",
       "volumes", "network", "network_filter"},
      [&](const std::string& k, const YAML::Node& v) {
        const std::string key = "sandbox." + k;
        if (k == "enabled") return boolean(v, key, cfg_.enabled);
        if (k == "backend") return word(v, key, {"jail", "pool", "none"}, cfg_.backend);
        if (k == "timeout") return duration(v, key, 0.001, cfg_.timeout);
        if (k == "jit") return boolean(v, key, cfg_.jit);
        if (k == "mount_current_dir") return boolean(v, key, cfg_.mount_current_dir);
        if (k == "workspace") return word(v, key, {"ro", "rw", "off"}, cfg_.workspace);
        if (k == "volumes") return volumes(v, key);
        if (k == "network") return word(v, key, {"none", "filtered", "host"}, cfg_.network);
        if (k == "network_filter")
          return each(v, key, {"allow", "deny"}, [&](const std::string& f, const YAML::Node& r) {
            return regexes(r, key + "." + f, f == "allow" ? cfg_.network_allow : cfg_.network_deny);
          });
        return limits(v);
      });
}

bool LayerReader::limits(const YAML::Node& n) {
  return each(n, "sandbox.limits", {"memory", "cpu", "output", "instructions", "message", "disk"},
              [&](const std::string& k, const YAML::Node& v) {
                const std::string key = "sandbox.limits." + k;
                if (k == "memory") return size(v, key, kMinMemory, 1ull << 40, cfg_.memory);
                if (k == "output") return size(v, key, 1, 1ull << 40, cfg_.output);
                if (k == "message") return size(v, key, kMinMessage, 1ull << 30, cfg_.message);
                if (k == "disk") return size(v, key, 0, 1ull << 50, cfg_.disk);
                if (k == "instructions") return count(v, key, 1ull << 50, cfg_.instructions);
                Setting<double> cpu;
                if (!duration(v, key, 1, cpu)) return false;
                cfg_.cpu = {static_cast<std::uint64_t>(cpu.value + 0.999), cpu.origin};
                return true;
              });
}

bool LayerReader::tools(const YAML::Node& n) {
  return each(
      n, "tools", {"allow", "commands", "http"}, [&](const std::string& k, const YAML::Node& v) {
        if (k == "allow") {
          if (!strings(v, "tools.allow", cfg_.tools_allow.value)) return false;
          cfg_.tools_allow.origin = origin(v);
          return true;
        }
        if (k == "http")
          return each(v, "tools.http", {"idempotency_key"},
                      [&](const std::string&, const YAML::Node& x) {
                        return boolean(x, "tools.http.idempotency_key", cfg_.http_idempotency_key);
                      });
        return each(v, "tools.commands", {}, [&](const std::string& name, const YAML::Node& c) {
          const std::string key = "tools.commands." + name;
          CommandTool tool;
          tool.origin = origin(c);
          bool has_command = false;
          const bool ok = each(c, key, {"command", "timeout", "network", "secrets"},
                               [&](const std::string& f, const YAML::Node& x) {
                                 const std::string fk = key + "." + f;
                                 if (f == "command") {
                                   has_command = true;
                                   if (!strings(x, fk, tool.command)) return false;
                                   if (tool.command.empty() || tool.command[0][0] != '/')
                                     return fail(x, fk, "the first word must be an absolute path");
                                   return true;
                                 }
                                 if (f == "timeout") {
                                   Setting<double> t;
                                   if (!duration(x, fk, 0.001, t)) return false;
                                   tool.timeout = t.value;
                                   return true;
                                 }
                                 if (f == "network") {
                                   Setting<std::string> w;
                                   // A command's sockets are its own: hosts cannot be
                                   // filtered without a proxy, so there is no "filtered".
                                   if (!word(x, fk, {"none", "host"}, w)) return false;
                                   tool.network = w.value;
                                   return true;
                                 }
                                 return strings(x, fk, tool.secrets);
                               });
          if (!ok) return false;
          if (!has_command) return fail(c, key, "needs a command");
          cfg_.commands[name] = tool;
          return true;
        });
      });
}

bool LayerReader::secrets(const YAML::Node& n) {
  return each(n, "secrets", {}, [&](const std::string& name, const YAML::Node& s) {
    const std::string key = "secrets." + name;
    if (!s.IsMap() || s.size() != 1)
      return fail(s, key, "expected exactly one of {env: VARIABLE} or {file: PATH}");
    SecretDecl d;
    d.origin = origin(s);
    const bool ok =
        each(s, key, {"env", "file"}, [&](const std::string& kind, const YAML::Node& r) {
          d.kind = kind;
          if (!text(r, key + "." + kind, d.ref)) return false;
          if (kind == "file") d.ref = resolve_path(d.ref);
          return true;
        });
    if (!ok) return false;
    cfg_.secrets[name] = d;
    return true;
  });
}

// mcp_servers.NAME: {command, env, secrets, cwd, network, workspace, timeout,
// startup_timeout, memory, media}. The name becomes part of tool names (mcp.NAME.TOOL), so
// it is a plain word; the command must name an installed program, never npx.
bool LayerReader::mcp_servers(const YAML::Node& n) {
  return each(n, "mcp_servers", {}, [&](const std::string& name, const YAML::Node& m) {
    const std::string key = "mcp_servers." + name;
    if (name.empty() || name.size() > 32 ||
        name.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
            std::string::npos)
      return fail(m, key, "a server's name is 1 to 32 letters, digits, '_' or '-'");
    McpServer server;
    server.origin = origin(m);
    bool has_command = false;
    const bool ok =
        each(m, key,
             {"command", "env", "secrets", "cwd", "network", "workspace", "timeout",
              "startup_timeout", "memory", "media"},
             [&](const std::string& f, const YAML::Node& x) {
               const std::string fk = key + "." + f;
               if (f == "command") return mcp_command(x, fk, server, has_command);
               if (f == "secrets") return strings(x, fk, server.secrets);
               if (f == "cwd") {
                 if (!text(x, fk, server.cwd)) return false;
                 server.cwd = resolve_path(server.cwd);
                 return true;
               }
               Setting<bool> b;
               Setting<double> d;
               Setting<std::string> w;
               Setting<std::uint64_t> z;
               if (f == "network") return boolean(x, fk, b) && (server.network = b.value, true);
               if (f == "media") return boolean(x, fk, b) && (server.media = b.value, true);
               if (f == "workspace")
                 return word(x, fk, {"ro", "rw", "off"}, w) && (server.workspace = w.value, true);
               if (f == "timeout")
                 return duration(x, fk, 0.001, d) && (server.timeout = d.value, true);
               if (f == "startup_timeout")
                 return duration(x, fk, 0.001, d) && (server.startup_timeout = d.value, true);
               if (f == "memory")
                 return size(x, fk, 64ull << 20, 64ull << 30, z) && (server.memory = z.value, true);
               return each(x, fk, {}, [&](const std::string& var, const YAML::Node& val) {
                 if (var.empty() || var.find_first_of("=") != std::string::npos)
                   return fail(val, fk + "." + var, "not a variable name");
                 if (!scalar(val, fk + "." + var, "a string")) return false;
                 server.env[var] = val.Scalar();
                 return true;
               });
             });
    if (!ok) return false;
    if (!has_command) return fail(m, key, "needs a command");
    cfg_.mcp_servers[name] = server;
    return true;
  });
}

bool LayerReader::mcp_command(const YAML::Node& x, const std::string& key, McpServer& server,
                              bool& has) {
  has = true;
  if (!strings(x, key, server.command)) return false;
  if (server.command.empty()) return fail(x, key, "must not be empty");
  const std::string first = fs::path(server.command[0]).filename().string();
  if (first == "npx" || first == "npm" || first == "pnpm" || first == "yarn" || first == "bunx")
    return fail(x, key,
                "'" + first +
                    "' would download and run packages at run time; install the server "
                    "with npm and name its entry file: [\"node\", \"./node_modules/PACKAGE/dist/"
                    "index.js\"] (docs/configuration.md)");
  for (auto& word : server.command)
    if (word.rfind("./", 0) == 0 || word.rfind("../", 0) == 0) word = resolve_path(word);
  if (server.command[0].find('/') != std::string::npos && server.command[0][0] != '/')
    return fail(x, key, "the first word is a program's name (node) or a path: absolute, ./ or ../");
  return true;
}

// journal: {path, enabled, max_bytes}. enabled: false runs without a journal (nothing is
// resumable); max_bytes bounds what one run journals.
bool LayerReader::journal(const YAML::Node& n) {
  return each(n, "journal", {"path", "enabled", "max_bytes"},
              [&](const std::string& k, const YAML::Node& v) {
                if (k == "enabled") return boolean(v, "journal.enabled", cfg_.journal_enabled);
                if (k == "max_bytes")
                  return size(v, "journal.max_bytes", 1ull << 20, 1ull << 40,
                              cfg_.journal_max_bytes);
                std::string path;
                if (!text(v, "journal.path", path)) return false;
                cfg_.journal_path = {resolve_path(path), origin(v)};
                return true;
              });
}

// audit: {path, max_line, max_bytes}: where every Host.call is logged, how long one line
// may be and how large the file grows before it is rotated (broker/audit_log.h).
bool LayerReader::audit(const YAML::Node& n) {
  return each(n, "audit", {"path", "max_line", "max_bytes"},
              [&](const std::string& k, const YAML::Node& v) {
                if (k == "max_line")
                  return size(v, "audit.max_line", 1ull << 10, 16ull << 20, cfg_.audit_max_line);
                if (k == "max_bytes")
                  return size(v, "audit.max_bytes", 16ull << 10, 1ull << 40, cfg_.audit_max_bytes);
                std::string path;
                if (!text(v, "audit.path", path)) return false;
                cfg_.audit_path = {resolve_path(path), origin(v)};
                return true;
              });
}

namespace {

bool read_file(const std::string& path, std::string& text, std::string& error) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    error = path + ": cannot read: " + std::strerror(errno);
    return false;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  text = ss.str();
  return true;
}

bool apply_layer_in(const std::string& text, const std::string& file, const std::string& base,
                    Config& config, std::string& error) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    error = Origin{file, e.mark.line + 1, e.mark.column + 1}.text() + ": not valid YAML: " + e.msg;
    return false;
  }
  return LayerReader(file, base, config, error).read(root);
}

}  // namespace

std::string Origin::text() const {
  if (line == 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

LayerPaths find_layers(const std::string& procedure_path, const std::string& home) {
  LayerPaths l;
  std::error_code ec;
  if (!home.empty() && fs::is_regular_file(fs::path(home) / ".tactus/config.yml", ec))
    l.user = (fs::path(home) / ".tactus/config.yml").string();
  fs::path dir = fs::absolute(procedure_path, ec).parent_path();
  for (fs::path d = dir;; d = d.parent_path()) {
    const fs::path candidate = d / ".tactus/config.yml";
    // The user's own file is no project layer, however its path is spelled ($HOME a link,
    // /home a link, a "./" in it): the same file is the same device and inode.
    const bool is_user =
        !l.user.empty() && (candidate.string() == l.user || fs::equivalent(candidate, l.user, ec));
    if (!is_user && fs::is_regular_file(candidate, ec)) {
      l.project = candidate.string();
      break;
    }
    if (d == d.parent_path()) break;
  }
  if (fs::is_regular_file(procedure_path + ".yml", ec)) l.procedure = procedure_path + ".yml";
  return l;
}

bool apply_layer(const std::string& yaml_text, const std::string& file, Config& config,
                 std::string& error) {
  return apply_layer_in(yaml_text, file, fs::path(file).parent_path().string(), config, error);
}

bool load_config(const LayerPaths& layers, Config& config, std::string& error) {
  struct Layer {
    const std::string& path;
    std::string base;  // what relative paths in it are relative to
  };
  const Layer order[] = {
      {layers.user, fs::path(layers.user).parent_path().parent_path().string()},
      {layers.project, fs::path(layers.project).parent_path().parent_path().string()},
      {layers.procedure, fs::path(layers.procedure).parent_path().string()},
  };
  for (const auto& layer : order) {
    if (layer.path.empty()) continue;
    std::string text;
    if (!read_file(layer.path, text, error)) return false;
    if (!apply_layer_in(text, layer.path, layer.base, config, error)) return false;
  }
  return check_config(config, error);
}

bool check_config(const Config& c, std::string& error) {
  auto undeclared = [&](const std::string& name, const Origin& where, const std::string& key) {
    error = where.text() + ": " + key + ": '" + name + "' is not a declared secret (secrets:)";
    return false;
  };
  for (const auto& [name, p] : c.providers)
    if (!p.api_key.empty() && !c.secrets.count(p.api_key))
      return undeclared(p.api_key, p.origin, "providers." + name + ".api_key");
  for (const auto& [name, t] : c.commands)
    for (const auto& s : t.secrets)
      if (!c.secrets.count(s))
        return undeclared(s, t.origin, "tools.commands." + name + ".secrets");
  for (const auto& [name, m] : c.mcp_servers)
    for (const auto& s : m.secrets)
      if (!c.secrets.count(s)) return undeclared(s, m.origin, "mcp_servers." + name + ".secrets");
  for (const auto& s : c.serve.tokens.value)
    if (!c.secrets.count(s)) return undeclared(s, c.serve.tokens.origin, "serve.tokens");
  if (c.audit_max_line.value > c.audit_max_bytes.value) {
    error = c.audit_max_line.origin.text() +
            ": audit.max_line: " + format_size(c.audit_max_line.value) +
            " is more than audit.max_bytes (" + format_size(c.audit_max_bytes.value) + ", " +
            c.audit_max_bytes.origin.text() + "): every line would rotate the file";
    return false;
  }
  if (c.network.value == "filtered" && c.network_allow.value.empty() &&
      c.network_deny.value.empty()) {
    error = c.network.origin.text() +
            ": sandbox.network: 'filtered' needs sandbox.network_filter.allow or .deny";
    return false;
  }
  return true;
}

}  // namespace tactus::sidecars
