// Reads one layer of the configuration (a YAML file) into a Config: the readers of values
// (each key's type, range and origin) and, declared here, the readers of each section, defined
// in sidecars/config_loader.cpp (sandbox, tools, secrets, MCP servers, audit, journal) and
// sidecars/usage_keys.cpp (providers with their prices, budget, telemetry). Included by those
// two files only (it brings yaml-cpp).
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "sidecars/config.h"
#include "sidecars/units.h"

namespace tactus::sidecars {

std::string join(const std::vector<std::string>& v);

// Reads one layer into a Config. Every error is "file:line:column: key: what".
class LayerReader {
 public:
  LayerReader(std::string file, std::string base_dir, Config& config, std::string& error)
      : file_(std::move(file)), base_(std::move(base_dir)), cfg_(config), error_(error) {}

  bool read(const YAML::Node& root) {
    if (!root || root.IsNull()) return true;  // an empty file is an empty layer
    if (!root.IsMap()) return fail(root, "", "the top level must be a mapping of keys");
    return each(
        root, "",
        {"sandbox", "tools", "secrets", "providers", "mcp_servers", "audit", "journal", "budget",
         "telemetry", "serve", "default_model", "default_provider", "default_toolsets", "toolsets"},
        [&](const std::string& k, const YAML::Node& v) {
          if (is_dialect_key(k)) return dialect_key(k, v);
          if (k == "sandbox") return sandbox(v);
          if (k == "budget") return budget(v);
          if (k == "telemetry") return telemetry(v);
          if (k == "tools") return tools(v);
          if (k == "secrets") return secrets(v);
          if (k == "providers") return providers(v);
          if (k == "mcp_servers") return mcp_servers(v);
          if (k == "audit") return audit(v);
          if (k == "serve") return serve(v);
          return journal(v);
        },
        &LayerReader::is_dialect_key);
  }

 private:
  Origin origin(const YAML::Node& n) const {
    const auto m = n.Mark();
    return Origin{file_, m.line + 1, m.column + 1};
  }

  bool fail(const YAML::Node& n, const std::string& key, const std::string& what) {
    error_ = origin(n).text() + ": " + (key.empty() ? "" : key + ": ") + what;
    return false;
  }

  // Visits each key of a mapping; unknown keys and duplicates are errors. also: keys accepted
  // without being listed as known (Python Tactus's keys tactus ignores).
  template <class F>
  bool each(const YAML::Node& map, const std::string& prefix, std::vector<std::string> known,
            F&& visit, bool (*also)(const std::string&) = nullptr) {
    if (!map.IsMap()) return fail(map, prefix, "expected a mapping (key: value pairs)");
    std::set<std::string> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      const std::string k = it->first.Scalar();
      const std::string key = prefix.empty() ? k : prefix + "." + k;
      if (!known.empty() && std::find(known.begin(), known.end(), k) == known.end() &&
          !(also && also(k)))
        return fail(it->first, key,
                    "unknown key" + suggestion(k, known) + "; known here: " + join(known));
      if (!seen.insert(k).second) return fail(it->first, key, "duplicate key");
      key_at_ = origin(it->first);  // where a warning about this key points
      if (!visit(k, it->second)) return false;
    }
    return true;
  }

  bool scalar(const YAML::Node& n, const std::string& key, const char* what) {
    if (n.IsScalar()) return true;
    return fail(n, key, std::string("expected ") + what);
  }

  bool boolean(const YAML::Node& n, const std::string& key, Setting<bool>& out) {
    if (!scalar(n, key, "true or false")) return false;
    const std::string& s = n.Scalar();
    if (s != "true" && s != "false") return fail(n, key, "expected true or false, got '" + s + "'");
    out = {s == "true", origin(n)};
    return true;
  }

  bool word(const YAML::Node& n, const std::string& key, const std::vector<std::string>& allowed,
            Setting<std::string>& out) {
    if (!scalar(n, key, "a string")) return false;
    const std::string& s = n.Scalar();
    if (std::find(allowed.begin(), allowed.end(), s) == allowed.end())
      return fail(n, key, "'" + s + "' is not one of: " + join(allowed) + suggestion(s, allowed));
    out = {s, origin(n)};
    return true;
  }

  bool text(const YAML::Node& n, const std::string& key, std::string& out) {
    if (!scalar(n, key, "a string")) return false;
    out = n.Scalar();
    if (out.empty()) return fail(n, key, "must not be empty");
    return true;
  }

  bool size(const YAML::Node& n, const std::string& key, std::uint64_t min, std::uint64_t max,
            Setting<std::uint64_t>& out) {
    if (!scalar(n, key, "a size (e.g. 512k, 128m, 2g)")) return false;
    const auto v = parse_size(n.Scalar());
    if (!v) return fail(n, key, "'" + n.Scalar() + "' is not a size (e.g. 512k, 128m, 2g)");
    if (*v < min || *v > max)
      return fail(n, key, "must be between " + format_size(min) + " and " + format_size(max));
    out = {*v, origin(n)};
    return true;
  }

  bool count(const YAML::Node& n, const std::string& key, std::uint64_t max,
             Setting<std::uint64_t>& out) {
    if (!scalar(n, key, "a whole number")) return false;
    const std::string& s = n.Scalar();
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 18)
      return fail(n, key, "'" + s + "' is not a whole number");
    const std::uint64_t v = std::stoull(s);
    if (v > max) return fail(n, key, "must be at most " + std::to_string(max));
    out = {v, origin(n)};
    return true;
  }

  bool duration(const YAML::Node& n, const std::string& key, double min, Setting<double>& out) {
    if (!scalar(n, key, "a duration (e.g. 30, 30s, 5m, 1h)")) return false;
    const auto v = parse_duration(n.Scalar());
    if (!v) return fail(n, key, "'" + n.Scalar() + "' is not a duration (e.g. 30, 30s, 5m, 1h)");
    if (*v < min)
      return fail(n, key,
                  min < 1 ? "must be more than 0 s"
                          : "must be at least " + std::to_string(static_cast<long>(min)) + " s");
    out = {*v, origin(n)};
    return true;
  }

  bool strings(const YAML::Node& n, const std::string& key, std::vector<std::string>& out) {
    if (!n.IsSequence()) return fail(n, key, "expected a list of strings");
    out.clear();
    for (const auto& item : n) {
      std::string s;
      if (!text(item, key, s)) return false;
      out.push_back(s);
    }
    return true;
  }

  bool regexes(const YAML::Node& n, const std::string& key,
               Setting<std::vector<std::string>>& out) {
    if (!strings(n, key, out.value)) return false;
    std::size_t i = 0;
    for (const auto& item : n) {
      try {
        std::regex re(out.value[i], std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        return fail(item, key, "'" + out.value[i] + "' is not a valid regular expression");
      }
      ++i;
    }
    out.origin = origin(n);
    return true;
  }

  std::string resolve_path(std::string p) const {
    if (p.rfind("~/", 0) == 0) {
      const char* home = std::getenv("HOME");
      if (home) p = std::string(home) + p.substr(1);
    }
    if (!p.empty() && p[0] != '/')
      p = (std::filesystem::path(base_) / p).lexically_normal().string();
    return p;
  }

  // The sections.
  bool volumes(const YAML::Node& n, const std::string& key);
  bool sandbox(const YAML::Node& n);
  bool limits(const YAML::Node& n);
  bool tools(const YAML::Node& n);
  bool secrets(const YAML::Node& n);
  bool mcp_servers(const YAML::Node& n);
  bool mcp_command(const YAML::Node& x, const std::string& key, McpServer& server, bool& has);
  bool journal(const YAML::Node& n);
  bool audit(const YAML::Node& n);
  // sidecars/serve_keys.cpp
  bool serve(const YAML::Node& n);
  // sidecars/usage_keys.cpp
  bool providers(const YAML::Node& n);
  bool prices(const YAML::Node& n, const std::string& key, Provider& provider);
  bool usd(const YAML::Node& n, const std::string& key, double& out);
  bool budget(const YAML::Node& n);
  bool telemetry(const YAML::Node& n);
  // sidecars/dialect_keys.cpp: the Python Tactus keys
  static bool is_dialect_key(const std::string& key);
  bool dialect_key(const std::string& key, const YAML::Node& n);
  bool toolsets(const YAML::Node& n);
  void ignore(const Origin& at, const std::string& key, const std::string& why);

  Origin key_at_;  // where the key each() is visiting stands
  std::string file_;
  std::string base_;
  Config& cfg_;
  std::string& error_;
};

}  // namespace tactus::sidecars
