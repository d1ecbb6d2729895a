// The trusted configuration of one run, merged from its layers (later wins):
//   built-in defaults < ~/.tactus/config.yml < .tactus/config.yml (nearest ancestor of the
//   procedure's directory) < PROCEDURE.tac.yml < command-line flags.
// Every value remembers where it came from, for `tactus config show` and for error messages.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sidecars/run_limits.h"

namespace tactus::sidecars {

struct Origin {
  std::string file;  // "default", a config file's path, or "--flag"
  int line = 0;      // 1-based; 0 when not from a file
  int column = 0;
  std::string text() const;  // "file:line:column", or file alone
};

template <class T>
struct Setting {
  T value{};
  Origin origin{"default"};
};

struct Volume {
  std::string host;          // absolute host directory
  std::string virtual_path;  // absolute, e.g. "/data"
  bool read_only = false;
  Origin origin;
};

struct CommandTool {
  std::vector<std::string> command;
  double timeout = 30;
  std::string network = "none";
  std::vector<std::string> secrets;
  Origin origin;
};

struct SecretDecl {
  std::string kind;  // "env" | "file"
  std::string ref;   // the variable's name, or the file's path
  Origin origin;
};

// USD per million tokens of one model (providers.NAME.prices.MODEL).
struct PriceDecl {
  double input = 0;
  double cached_input = 0;
  double output = 0;
  double cache_write = -1;  // < 0: not given (1.25 x input, Anthropic's five-minute cache write)
  Origin origin;
};

// serve: {pool, max_concurrent, queue, tokens, drain_timeout, max_body}.
struct ServeSettings {
  Setting<std::uint64_t> pool{4};            // warm jails kept ready
  Setting<std::uint64_t> max_concurrent{0};  // runs served at once; 0: twice the cores
  Setting<std::uint64_t> queue{256};         // accepted runs waiting; beyond it, 429
  // Bearer tokens by the names of declared secrets (secrets:); none: no token is asked for,
  // and the server binds loopback only.
  Setting<std::vector<std::string>> tokens;
  Setting<double> drain_timeout{30};            // SIGTERM: how long running runs may finish
  Setting<std::uint64_t> max_body{1ull << 20};  // the largest request body
};

struct Provider {
  std::string api_key;   // a secret's name
  std::string base_url;  // empty: the provider's own
  std::string api;       // "openai" | "anthropic" | "" (by name)
  // Chat Completions' output cap: "max_tokens" | "max_completion_tokens" | "" (by base URL:
  // max_completion_tokens for OpenAI's own API, max_tokens for a compatible server).
  std::string max_tokens_field;
  std::map<std::string, PriceDecl> prices;  // by model; over the built-in table
  Origin origin;
};

// An MCP server the broker starts, jails and speaks to (tools/mcp/; docs/configuration.md).
struct McpServer {
  std::vector<std::string> command;        // argv; "./" and "../" words resolved against the layer
  std::map<std::string, std::string> env;  // literals, after PATH, HOME and LANG
  std::vector<std::string> secrets;        // declared secrets put in its environment
  std::string cwd;                         // a host directory (resolved); empty: the default
  bool network = false;                    // the host's network instead of none (root only)
  std::string workspace = "ro";            // the procedure's directory at /workspace: ro|rw|off
  double timeout = 300;                    // one call without progress, seconds
  double startup_timeout = 10;             // start to initialize's answer, seconds
  std::uint64_t memory = 512ull << 20;     // its data segment (RLIMIT_DATA)
  bool media = false;                      // image/audio/blob data reach the procedure
  Origin origin;
};

// toolsets.NAME in a layer, as Python Tactus declares them (docs/language.md, "Coming from
// Python Tactus"): mcp {server}, filtered {source, pattern}, combined {sources}; plugin
// {paths} names Python files, which tactus does not run: such a toolset offers no tools.
struct ToolsetDecl {
  std::string type;                  // "mcp" | "filtered" | "combined" | "plugin"
  std::string server;                // mcp: an mcp_servers name
  std::string source;                // filtered: a toolset's or an MCP server's name
  std::string pattern;               // filtered: an ECMAScript regex over the tools' names
  std::vector<std::string> sources;  // combined
  std::vector<std::string> paths;    // plugin (kept only to be named in the warning)
  Origin origin;
};

struct Config {
  // sandbox
  Setting<bool> enabled{true};
  Setting<std::string> backend{"jail"};
  Setting<double> timeout{kDefaultTimeoutSeconds};
  Setting<bool> jit{false};
  Setting<std::uint64_t> memory{kDefaultMemory};
  Setting<std::uint64_t> cpu{kDefaultCpuSeconds};
  Setting<std::uint64_t> output{kDefaultOutput};
  Setting<std::uint64_t> instructions{kDefaultInstructions};
  Setting<std::uint64_t> message{kDefaultMessage};
  // What one run's file tools may write, appends included, counted across resumes.
  Setting<std::uint64_t> disk{256ull << 20};
  Setting<bool> mount_current_dir{true};
  // The procedure's directory at /workspace: read-only unless a trusted layer says rw (a
  // procedure that writes its own directory is the exception, and its sidecar says so).
  Setting<std::string> workspace{"ro"};
  Setting<std::vector<Volume>> volumes;
  Setting<std::string> network{"none"};
  Setting<std::vector<std::string>> network_allow;
  Setting<std::vector<std::string>> network_deny;
  // tools
  Setting<std::vector<std::string>> tools_allow;
  // http.request sends an Idempotency-Key naming the request across resumes (tools/http_tool.h).
  Setting<bool> http_idempotency_key{false};
  std::map<std::string, CommandTool> commands;
  // secrets, providers, MCP servers: merged by name, a later layer's entry replaces the earlier
  std::map<std::string, SecretDecl> secrets;
  std::map<std::string, Provider> providers;
  Setting<double> provider_timeout{120};
  Setting<std::uint64_t> provider_retries{3};
  std::map<std::string, McpServer> mcp_servers;
  // budget: what one run may spend, resumes included (broker/run_usage.h). Unset: no bound.
  Setting<std::optional<double>> budget_usd;
  Setting<std::optional<std::uint64_t>> budget_tokens;
  Setting<std::optional<std::uint64_t>> budget_model_calls;
  Setting<std::optional<std::uint64_t>> budget_tool_calls;
  // telemetry: OpenTelemetry spans over OTLP/HTTP JSON (broker/run_trace.h). Off when the
  // endpoint is empty.
  Setting<std::string> otlp_endpoint;
  Setting<bool> capture_content{false};
  Setting<double> telemetry_timeout{2};
  // The Python Tactus dialect's agent defaults (docs/language.md): the model and provider of an
  // agent that names none, the toolsets of one without a toolsets key, named toolsets.
  Setting<std::string> default_model;
  Setting<std::string> default_provider;
  Setting<std::optional<std::vector<std::string>>> default_toolsets;
  std::map<std::string, ToolsetDecl> toolsets;
  // tool_paths: Python plugin directories; non-empty makes the (empty) "plugin" toolset.
  Setting<std::vector<std::string>> tool_paths;
  // One "warning: ..." line per Python-only key a layer set (tool_paths, aws, ...): accepted,
  // ignored, said once (config_warnings).
  std::vector<std::string> ignored_keys;
  // audit, journal
  Setting<std::string> audit_path;
  // A line longer than max_line has its args cut (with a marker and their size); the file is
  // rotated past max_bytes, keeping kAuditKeep older files (broker/audit_log.h).
  Setting<std::uint64_t> audit_max_line{64ull << 10};
  Setting<std::uint64_t> audit_max_bytes{64ull << 20};
  Setting<std::string> journal_path{".tactus/journal.db"};
  Setting<bool> journal_enabled{true};
  // What one run may put in the journal (params, state and answers, summed): untrusted code
  // cannot fill the host's disk through it.
  Setting<std::uint64_t> journal_max_bytes{256ull << 20};
  // serve: tactus serve's own settings (docs/server.md), read from ~/.tactus/config.yml and the
  // project's .tactus/config.yml. Not part of a run's identity (config_identity): a server
  // retuned between a run and its resume does not change what the run is.
  ServeSettings serve;
};

// Where the layers are looked for. home empty: no user layer.
struct LayerPaths {
  std::string user;       // ~/.tactus/config.yml
  std::string project;    // nearest .tactus/config.yml
  std::string procedure;  // FILE.tac.yml
};

// The layer files that exist for procedure_path (home from $HOME).
LayerPaths find_layers(const std::string& procedure_path, const std::string& home);

// Reads, validates and merges the layers over the defaults. On failure returns false and error
// is one line: "FILE:LINE:COLUMN: KEY: what is wrong".
bool load_config(const LayerPaths& layers, Config& config, std::string& error);

// Reads one YAML text as a layer over config (for tests and for each file). file names it.
bool apply_layer(const std::string& yaml_text, const std::string& file, Config& config,
                 std::string& error);

// Cross-checks after all layers: providers name declared secrets, commands' secrets exist...
bool check_config(const Config& config, std::string& error);

// The command line's limit flags over config: the last layer, each setting it sets with the
// flag as its origin ("--timeout"), so config show says where a run's limit came from.
void apply_flags(const LimitFlags& flags, Config& config);
// The limits a run under config gets.
RunLimits run_limits(const Config& config);

// One setting as `config show` shows it (a list setting may have one entry per item).
struct ConfigEntry {
  std::string key;
  std::string value;  // as shown: secrets as <secret:NAME>
  Origin origin;
};

// Every setting, in `config show` order.
std::vector<ConfigEntry> config_entries(const Config& config);
// The entries whose value is not the built-in default's: what a layer changed. A setting a
// later tactus adds, or a layer writes at its default value, is not among them.
std::vector<ConfigEntry> non_default_entries(const Config& config);
// Entries as `config show` prints them: "key: value  # origin", one per line.
std::string show_entries(const std::vector<ConfigEntry>& entries);
// Every value, one per line, "key: value  # origin"; secrets as <secret:NAME>.
std::string show_config(const Config& config);

// " (did you mean 'KEY'?)" for the known word nearest to key, or "" when none is near (also the
// CLI's, for a typo'd command).
std::string suggestion(const std::string& key, const std::vector<std::string>& known);

// Lines of advice on what the configuration does not mean to say, each "warning: ...": a
// network pattern without ^ and $ (an allow pattern is matched against the whole host anyway,
// a deny pattern anywhere in it, which the pattern's author may not expect).
std::vector<std::string> config_warnings(const Config& config);

}  // namespace tactus::sidecars
