// The keys a Python Tactus configuration has (docs/language.md, "Coming from Python Tactus"):
// agent defaults and named toolsets, read with their Python meaning; and the keys that only
// make sense to the Python runtime, accepted with one warning line each saying why they are
// ignored. Our own keys stay strict: this file widens nothing else.
#include <cctype>
#include <regex>

#include "sidecars/layer_reader.h"

namespace tactus::sidecars {
namespace {

// Keys Python Tactus reads that tactus has no use for, and why (said once per layer and key).
struct IgnoredKey {
  const char* key;
  const char* why;
};
constexpr IgnoredKey kIgnoredKeys[] = {
    {"aws",
     "AWS settings for Bedrock, which tactus does not serve; nothing reads them (secrets: and "
     "providers: hold what tactus uses)"},
};

// Keys that put a credential in configuration text: refused, not ignored. The file would hold
// a secret in clear where a procedure allowed file.read could read it; tactus reads secrets
// only from the environment or a file named under secrets:.
constexpr const char* kKeyInText[] = {"openai_api_key", "anthropic_api_key", "google_api_key"};
constexpr const char* kAwsCredentials[] = {"access_key_id", "secret_access_key", "session_token"};

// A toolset's or model's name: what an agent's toolsets list refers to.
bool plain_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
      return false;
  return true;
}

}  // namespace

bool LayerReader::is_dialect_key(const std::string& key) {
  for (const auto& k : kIgnoredKeys)
    if (key == k.key) return true;
  for (const char* k : kKeyInText)
    if (key == k) return true;
  return key == "default_model" || key == "default_provider" || key == "default_toolsets" ||
         key == "toolsets" || key == "tool_paths";
}

// at: where the ignored key stands (the line a reader looks for).
void LayerReader::ignore(const Origin& at, const std::string& key, const std::string& why) {
  cfg_.ignored_keys.push_back("warning: " + at.text() + ": " + key + ": ignored: " + why);
}

bool LayerReader::dialect_key(const std::string& key, const YAML::Node& n) {
  for (const char* k : kKeyInText)
    if (key == k)
      return fail(n, key,
                  "a key written in configuration text is refused: declare it under secrets: "
                  "(env: VARIABLE or file: PATH) and name it in providers.NAME.api_key");
  if (key == "aws") {
    // Settings only (region, profile): a mapping of plain values with no credential among them.
    if (!n.IsMap()) return fail(n, key, "expected a mapping of settings (default_region: ...)");
    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string k = "aws." + it->first.Scalar();
      for (const char* c : kAwsCredentials)
        if (it->first.Scalar() == c)
          return fail(it->first, k,
                      "credentials written in configuration text are refused (tactus does not "
                      "serve Bedrock; keep them in the environment)");
      if (!it->second.IsScalar()) return fail(it->second, k, "expected a plain value");
    }
  }
  for (const auto& k : kIgnoredKeys)
    if (key == k.key) return ignore(key_at_, key, k.why), true;
  if (key == "default_model" || key == "default_provider") {
    std::string v;
    if (!text(n, key, v)) return false;
    if (key == "default_provider" && !plain_name(v))
      return fail(n, key, "'" + v + "' is not a provider's name");
    (key == "default_model" ? cfg_.default_model : cfg_.default_provider) = {v, origin(n)};
    return true;
  }
  if (key == "default_toolsets") {
    std::vector<std::string> names;
    if (!n.IsNull() && !strings(n, key, names)) return false;
    for (const auto& name : names)
      if (!plain_name(name)) return fail(n, key, "'" + name + "' is not a toolset's name");
    cfg_.default_toolsets = {names, origin(n)};
    return true;
  }
  if (key == "tool_paths") {
    std::vector<std::string> paths;
    if (!n.IsNull() && !strings(n, key, paths)) return false;
    cfg_.tool_paths = {paths, origin(n)};
    if (!paths.empty())
      ignore(key_at_, key,
             "Python plugin tools are not run by tactus (no Python in the broker); the "
             "\"plugin\" toolset is empty. Write them as Lua Tool {...} or a tools.commands "
             "entry");
    return true;
  }
  return toolsets(n);
}

// toolsets.NAME: {type: mcp|filtered|combined|plugin, ...}. A later layer's entry replaces an
// earlier one of the same name, as for providers.
bool LayerReader::toolsets(const YAML::Node& n) {
  return each(n, "toolsets", {}, [&](const std::string& name, const YAML::Node& t) {
    const std::string key = "toolsets." + name;
    if (!plain_name(name)) return fail(t, key, "a toolset's name is letters, digits, _ - or .");
    if (name == "done") return fail(t, key, "'done' is the built-in toolset");
    ToolsetDecl d;
    d.origin = origin(t);
    const Origin name_at = key_at_;
    const bool ok = each(
        t, key, {"type", "server", "source", "pattern", "sources", "paths"},
        [&](const std::string& f, const YAML::Node& x) {
          const std::string fk = key + "." + f;
          if (f == "type") {
            Setting<std::string> w;
            if (!word(x, fk, {"mcp", "filtered", "combined", "plugin"}, w)) return false;
            d.type = w.value;
            return true;
          }
          if (f == "sources") return strings(x, fk, d.sources);
          if (f == "paths") return strings(x, fk, d.paths);
          std::string& out = f == "server" ? d.server : f == "source" ? d.source : d.pattern;
          if (!text(x, fk, out)) return false;
          if (f != "pattern") return true;
          try {
            // A leading (?i) is the VM engine's; std::regex checks the rest.
            std::regex re(out.rfind("(?i)", 0) == 0 ? out.substr(4) : out, std::regex::ECMAScript);
          } catch (const std::regex_error&) {
            return fail(x, fk, "'" + out + "' is not a valid regular expression");
          }
          // Matched in the VM by tactus's own engine (lua/tactus/testing/regex.lua):
          // no lookaround, no back-reference.
          for (const char* no : {"(?=", "(?!", "(?<", "\\1", "\\2", "\\3"})
            if (out.find(no) != std::string::npos)
              return fail(x, fk,
                          "'" + out +
                              "': lookarounds and back-references are not supported here "
                              "((?:...) and (?i) are)");
          return true;
        });
    if (!ok) return false;
    if (d.type.empty()) return fail(t, key, "needs a type: mcp, filtered, combined or plugin");
    const auto needs = [&](bool has, const char* what) {
      return has ? true : fail(t, key, std::string("a ") + d.type + " toolset needs " + what);
    };
    if (d.type == "mcp" && !needs(!d.server.empty(), "server: (an mcp_servers name)")) return false;
    if (d.type == "filtered" && !needs(!d.source.empty(), "source: (a toolset or MCP server)"))
      return false;
    if (d.type == "combined" && !needs(!d.sources.empty(), "sources: (a list of toolsets)"))
      return false;
    if (d.type == "plugin")
      ignore(name_at, key,
             "a plugin toolset loads Python files, which tactus does not run; it offers no "
             "tools. Write them as Lua Tool {...} or a tools.commands entry");
    cfg_.toolsets[name] = d;
    return true;
  });
}

}  // namespace tactus::sidecars
