#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "sidecars/config.h"

using namespace tactus::sidecars;
namespace fs = std::filesystem;

namespace {

std::string apply(const std::string& yaml, Config& c) {
  std::string error;
  if (!apply_layer(yaml, "/p/proc.tac.yml", c, error)) return error;
  if (!check_config(c, error)) return error;
  return "";
}

std::string error_of(const std::string& yaml) {
  Config c;
  return apply(yaml, c);
}

struct TempTree {
  fs::path root;
  TempTree() {
    std::string t = (fs::temp_directory_path() / "tactus-config-XXXXXX").string();
    root = ::mkdtemp(t.data());
  }
  ~TempTree() { fs::remove_all(root); }
  void write(const std::string& rel, const std::string& text) const {
    fs::create_directories((root / rel).parent_path());
    std::ofstream(root / rel) << text;
  }
};

}  // namespace

TEST_CASE("config: every key of the spec is accepted, with its origin", "[config]") {
  Config c;
  const std::string yaml = R"(sandbox:
  enabled: true
  backend: pool
  timeout: 5m
  jit: false
  limits:
    memory: 512m
    cpu: 90
    output: 1m
    instructions: 1000000
    message: 64k
  mount_current_dir: false
  volumes:
    - "/srv/data:/data:ro"
    - "rel/out:/out"
  network: filtered
  network_filter:
    allow: ["^api\\.example\\.com$"]
    deny: ["^169\\.254\\."]
tools:
  allow: ["file.read", "mcp.fs.*", "lint"]
  commands:
    lint:
      command: ["/usr/bin/jq", "."]
      timeout: 10
      network: none
      secrets: [GITHUB_TOKEN]
secrets:
  OPENAI_API_KEY: {env: OPENAI_API_KEY}
  GITHUB_TOKEN: {file: tokens/github}
providers:
  openai: {api_key: OPENAI_API_KEY}
  local: {base_url: "http://127.0.0.1:11434/v1", api: openai}
  defaults: {timeout: 120, retries: 3}
mcp_servers:
  fs:
    command: ["node", "./node_modules/@modelcontextprotocol/server-filesystem/dist/index.js", "/workspace"]
    env: {}
    secrets: []
    workspace: rw
    timeout: 20s
    memory: 256m
audit:
  path: audit.jsonl
journal:
  path: .tactus/journal.db
  max_bytes: 64m
)";
  REQUIRE(apply(yaml, c) == "");
  CHECK(c.backend.value == "pool");
  CHECK(c.backend.origin.text() == "/p/proc.tac.yml:3:12");
  CHECK(c.timeout.value == 300);
  CHECK(c.memory.value == 512ull << 20);
  CHECK(c.cpu.value == 90);
  CHECK(c.output.value == 1ull << 20);
  CHECK(c.instructions.value == 1000000);
  CHECK(c.message.value == 64ull << 10);
  CHECK(c.journal_max_bytes.value == 64ull << 20);
  CHECK_FALSE(c.mount_current_dir.value);
  REQUIRE(c.volumes.value.size() == 2);
  CHECK(c.volumes.value[0].host == "/srv/data");
  CHECK(c.volumes.value[0].virtual_path == "/data");
  CHECK(c.volumes.value[0].read_only);
  CHECK(c.volumes.value[1].host == "/p/rel/out");  // relative to the sidecar's directory
  CHECK_FALSE(c.volumes.value[1].read_only);
  CHECK(c.network.value == "filtered");
  CHECK(c.network_deny.value == std::vector<std::string>{"^169\\.254\\."});
  CHECK(c.tools_allow.value.size() == 3);
  CHECK(c.commands.at("lint").command == std::vector<std::string>{"/usr/bin/jq", "."});
  CHECK(c.commands.at("lint").timeout == 10);
  CHECK(c.secrets.at("OPENAI_API_KEY").kind == "env");
  CHECK(c.secrets.at("GITHUB_TOKEN").ref == "/p/tokens/github");
  CHECK(c.providers.at("openai").api_key == "OPENAI_API_KEY");
  CHECK(c.providers.at("local").base_url == "http://127.0.0.1:11434/v1");
  CHECK(c.provider_retries.value == 3);
  CHECK(c.mcp_servers.at("fs").command.size() == 3);
  CHECK(c.mcp_servers.at("fs").command[1].find("/./") == std::string::npos);
  CHECK(c.mcp_servers.at("fs").command[1].rfind('/', 0) == 0);  // resolved against the layer
  CHECK(c.mcp_servers.at("fs").workspace == "rw");
  CHECK(c.mcp_servers.at("fs").timeout == 20);
  CHECK(c.mcp_servers.at("fs").memory == (256ull << 20));
  CHECK(c.mcp_servers.at("fs").startup_timeout == 10);
  CHECK_FALSE(c.mcp_servers.at("fs").network);
  CHECK(c.audit_path.value == "/p/audit.jsonl");
}

TEST_CASE("config: errors name file:line:column and the key", "[config]") {
  struct Case {
    std::string yaml, error;
  };
  const Case cases[] = {
      {"sandbox:\n  timout: 5\n",
       "/p/proc.tac.yml:2:3: sandbox.timout: unknown key (did you mean 'timeout'?); known here: "
       "enabled, backend, timeout, jit, limits, mount_current_dir, workspace, volumes, network, "
       "network_filter"},
      {"sandbx: {}\n",
       "/p/proc.tac.yml:1:1: sandbx: unknown key (did you mean 'sandbox'?); known here: sandbox, "
       "tools, secrets, providers, mcp_servers, audit, journal, budget, telemetry, serve, "
       "default_model, "
       "default_provider, default_toolsets, toolsets"},
      {"mcp_servers:\n  fs: {command: [npx, -y, \"@modelcontextprotocol/server-filesystem\"]}\n",
       "/p/proc.tac.yml:2:17: mcp_servers.fs.command: 'npx' would download and run packages at "
       "run time; install the server with npm and name its entry file: [\"node\", "
       "\"./node_modules/PACKAGE/dist/index.js\"] (docs/configuration.md)"},
      {"mcp_servers:\n  fs: {command: [node], workspace: yes}\n",
       "/p/proc.tac.yml:2:36: mcp_servers.fs.workspace: 'yes' is not one of: ro, rw, off"},
      {"mcp_servers:\n  f.s: {command: [node]}\n",
       "/p/proc.tac.yml:2:8: mcp_servers.f.s: a server's name is 1 to 32 letters, digits, '_' or "
       "'-'"},
      {"mcp_servers:\n  fs: {command: [node], timeot: 5}\n",
       "/p/proc.tac.yml:2:25: mcp_servers.fs.timeot: unknown key (did you mean 'timeout'?); known "
       "here: command, env, secrets, cwd, network, workspace, timeout, startup_timeout, memory, "
       "media"},
      {"mcp_servers:\n  fs: {command: [node], secrets: [NOPE]}\n",
       "/p/proc.tac.yml:2:7: mcp_servers.fs.secrets: 'NOPE' is not a declared secret (secrets:)"},
      {"sandbox:\n  enabled: yes\n",
       "/p/proc.tac.yml:2:12: sandbox.enabled: expected true or false, got 'yes'"},
      {"sandbox:\n  enabled: [1]\n",
       "/p/proc.tac.yml:2:12: sandbox.enabled: expected true or false"},
      {"sandbox:\n  backend: docker\n",
       "/p/proc.tac.yml:2:12: sandbox.backend: 'docker' is not one of: jail, pool, none"},
      {"sandbox:\n  timeout: soon\n",
       "/p/proc.tac.yml:2:12: sandbox.timeout: 'soon' is not a duration (e.g. 30, 30s, 5m, 1h)"},
      {"sandbox:\n  limits:\n    memory: 100k\n",
       "/p/proc.tac.yml:3:13: sandbox.limits.memory: must be between 1 MiB and 1024 GiB"},
      {"sandbox:\n  limits:\n    memory: lots\n",
       "/p/proc.tac.yml:3:13: sandbox.limits.memory: 'lots' is not a size (e.g. 512k, 128m, 2g)"},
      {"sandbox:\n  limits:\n    message: 2g\n",
       "/p/proc.tac.yml:3:14: sandbox.limits.message: must be between 64 KiB and 1 GiB"},
      {"journal:\n  max_bytes: 10k\n",
       "/p/proc.tac.yml:2:14: journal.max_bytes: must be between 1 MiB and 1024 GiB"},
      {"journal:\n  max_byte: 10m\n",
       "/p/proc.tac.yml:2:3: journal.max_byte: unknown key (did you mean 'max_bytes'?); known "
       "here: path, enabled, max_bytes"},
      {"sandbox:\n  limits:\n    instructions: -5\n",
       "/p/proc.tac.yml:3:19: sandbox.limits.instructions: '-5' is not a whole number"},
      {"sandbox:\n  limits:\n    cpu: 0\n",
       "/p/proc.tac.yml:3:10: sandbox.limits.cpu: must be at least 1 s"},
      {"sandbox:\n  network: wifi\n",
       "/p/proc.tac.yml:2:12: sandbox.network: 'wifi' is not one of: none, filtered, host"},
      {"sandbox:\n  network: filtered\n",
       "/p/proc.tac.yml:2:12: sandbox.network: 'filtered' needs sandbox.network_filter.allow or "
       ".deny"},
      {"sandbox:\n  network_filter:\n    allow: [\"(\"]\n",
       "/p/proc.tac.yml:3:13: sandbox.network_filter.allow: '(' is not a valid regular expression"},
      {"sandbox:\n  volumes: [\"/a:data\"]\n",
       "/p/proc.tac.yml:2:13: sandbox.volumes: '/a:data': the virtual path must be absolute, like "
       "/data, without a trailing slash, . or .."},
      {"sandbox:\n  volumes: [\"/a:/data:rx\"]\n",
       "/p/proc.tac.yml:2:13: sandbox.volumes: '/a:/data:rx' is not \"host:/virtual[:ro|:rw]\""},
      {"sandbox:\n  volumes: [\"/a:/workspace\"]\n",
       "/p/proc.tac.yml:2:13: sandbox.volumes: '/a:/workspace': /workspace is the procedure's "
       "directory"},
      {"sandbox:\n  volumes: [\"/a:/d\", \"/b:/d\"]\n",
       "/p/proc.tac.yml:2:22: sandbox.volumes: '/d' is mounted twice"},
      {"tools:\n  allow: file.read\n",
       "/p/proc.tac.yml:2:10: tools.allow: expected a list of strings"},
      {"tools:\n  commands:\n    lint: {command: [jq]}\n",
       "/p/proc.tac.yml:3:21: tools.commands.lint.command: the first word must be an absolute "
       "path"},
      {"tools:\n  commands:\n    lint: {timeout: 5}\n",
       "/p/proc.tac.yml:3:11: tools.commands.lint: needs a command"},
      {"secrets:\n  K: {env: A, file: b}\n",
       "/p/proc.tac.yml:2:6: secrets.K: expected exactly one of {env: VARIABLE} or {file: PATH}"},
      {"secrets:\n  K: {vault: x}\n",
       "/p/proc.tac.yml:2:7: secrets.K.vault: unknown key; known here: env, file"},
      {"providers:\n  openai: {api_key: NOPE}\n",
       "/p/proc.tac.yml:2:11: providers.openai.api_key: 'NOPE' is not a declared secret "
       "(secrets:)"},
      {"providers:\n  local: {base_url: \"ftp://x\"}\n",
       "/p/proc.tac.yml:2:21: providers.local.base_url: must start with http:// or https://"},
      {"tools:\n  commands:\n    lint: {command: [/bin/true], secrets: [X]}\n",
       "/p/proc.tac.yml:3:11: tools.commands.lint.secrets: 'X' is not a declared secret "
       "(secrets:)"},
      {"audit: {path: \"\"}\n", "/p/proc.tac.yml:1:15: audit.path: must not be empty"},
      {"audit: {max_line: 10}\n",
       "/p/proc.tac.yml:1:19: audit.max_line: must be between 1 KiB and 16 MiB"},
      {"audit: {max_bytes: 1k}\n",
       "/p/proc.tac.yml:1:20: audit.max_bytes: must be between 16 KiB and 1024 GiB"},
      {"tools:\n  http: {idempotency: true}\n",
       "/p/proc.tac.yml:2:10: tools.http.idempotency: unknown key; known here: "
       "idempotency_key"},
      {"tools:\n  http: {idempotency_key: 1}\n",
       "/p/proc.tac.yml:2:27: tools.http.idempotency_key: expected true or false, "
       "got '1'"},
      {"sandbox: [1, 2]\n", "/p/proc.tac.yml:1:10: sandbox: expected a mapping (key: value pairs)"},
      {"- a\n- b\n", "/p/proc.tac.yml:1:1: the top level must be a mapping of keys"},
      {"sandbox:\n  timeout: 1\n  timeout: 2\n",
       "/p/proc.tac.yml:3:3: sandbox.timeout: duplicate key"},
      {"sandbox: {timeout: [}\n", "/p/proc.tac.yml:1:21: not valid YAML: illegal flow end"},
  };
  for (const auto& c : cases) {
    INFO(c.yaml);
    CHECK(error_of(c.yaml) == c.error);
  }
  CHECK(error_of("") == "");
  CHECK(error_of("# only a comment\n") == "");
}

TEST_CASE("config: layers merge, later wins, relative paths follow their layer", "[config]") {
  TempTree t;
  t.write("home/.tactus/config.yml",
          "sandbox: {timeout: 100, limits: {memory: 1g}}\nsecrets: {A: {env: A}}\n");
  t.write(
      "proj/.tactus/config.yml",
      "sandbox: {timeout: 200}\naudit: {path: logs/audit.jsonl}\ntools: {allow: [file.read]}\n");
  t.write("proj/sub/proc.tac", "return 1");
  t.write("proj/sub/proc.tac.yml",
          "sandbox: {limits: {output: 2k}}\ntools: {allow: [host.ping]}\n");
  const auto layers =
      find_layers((t.root / "proj/sub/proc.tac").string(), (t.root / "home").string());
  CHECK(layers.user == (t.root / "home/.tactus/config.yml").string());
  CHECK(layers.project == (t.root / "proj/.tactus/config.yml").string());
  CHECK(layers.procedure == (t.root / "proj/sub/proc.tac.yml").string());
  Config c;
  std::string error;
  REQUIRE(load_config(layers, c, error));
  CHECK(c.timeout.value == 200);
  CHECK(c.timeout.origin.file == layers.project);
  CHECK(c.memory.value == 1ull << 30);
  CHECK(c.memory.origin.file == layers.user);
  CHECK(c.output.value == 2048);
  CHECK(c.output.origin.file == layers.procedure);
  CHECK(c.tools_allow.value == std::vector<std::string>{"host.ping"});  // lists are replaced
  CHECK(c.secrets.count("A"));
  CHECK(c.audit_path.value == (t.root / "proj/logs/audit.jsonl").string());  // project root

  const std::string shown = show_config(c);
  CHECK_THAT(shown, Catch::Contains("secrets.A: <secret:A> from env A"));
  CHECK_THAT(shown, Catch::Contains("sandbox.timeout: 200"));
  CHECK_THAT(shown, Catch::Contains("# " + layers.project + ":1:20"));
  CHECK_THAT(shown, Catch::Contains("sandbox.jit: false"));
  CHECK_THAT(shown, Catch::Contains("# default"));
}

TEST_CASE("config: an error in a layer file names that file", "[config]") {
  TempTree t;
  t.write("proc.tac", "return 1");
  t.write("proc.tac.yml", "sandbox:\n  limits:\n    memroy: 1g\n");
  Config c;
  std::string error;
  CHECK_FALSE(load_config(find_layers((t.root / "proc.tac").string(), ""), c, error));
  CHECK(error == (t.root / "proc.tac.yml").string() +
                     ":3:5: sandbox.limits.memroy: unknown key (did you mean 'memory'?); known "
                     "here: memory, cpu, output, instructions, message, disk");
}

TEST_CASE("config: prices, budget and telemetry, with their origins and their errors",
          "[config][usage]") {
  Config c;
  REQUIRE(apply("providers:\n"
                "  openai:\n"
                "    max_tokens_field: max_completion_tokens\n"
                "    prices:\n"
                "      gpt-4o: {input: 2.5, cached_input: 1.25, output: 10}\n"
                "budget:\n"
                "  usd: 0.25\n"
                "  tokens: 200000\n"
                "  model_calls: 20\n"
                "  tool_calls: 0\n"
                "telemetry:\n"
                "  otlp_endpoint: \"http://127.0.0.1:4318\"\n"
                "  capture_content: true\n"
                "  timeout: 5s\n",
                c) == "");
  CHECK(c.providers.at("openai").prices.at("gpt-4o").cached_input == 1.25);
  CHECK(c.providers.at("openai").prices.at("gpt-4o").cache_write < 0);  // not given
  CHECK(c.budget_usd.value == 0.25);
  CHECK(c.budget_tokens.value == 200000u);
  CHECK(c.budget_tool_calls.value == 0u);  // no host tool at all
  CHECK(c.budget_model_calls.origin.text() == "/p/proc.tac.yml:9:16");
  CHECK(c.otlp_endpoint.value == "http://127.0.0.1:4318");
  CHECK(c.telemetry_timeout.value == 5);
  const std::string shown = show_config(c);
  CHECK(shown.find("budget.usd: 0.25") != std::string::npos);
  CHECK(shown.find("providers.openai.prices.gpt-4o: input 2.5, cached_input 1.25, output 10 (USD "
                   "per million tokens)") != std::string::npos);
  CHECK(show_config(Config{}).find("budget.model_calls: (none)") != std::string::npos);

  const std::pair<std::string, std::string> errors[] = {
      {"budget:\n  usd: -1\n",
       "/p/proc.tac.yml:2:8: budget.usd: '-1' is not a number of US dollars from 0 to 1e9 (e.g. "
       "0.25)"},
      {"budget:\n  usd: nan\n",
       "/p/proc.tac.yml:2:8: budget.usd: 'nan' is not a number of US dollars from 0 to 1e9 (e.g. "
       "0.25)"},
      {"budget:\n  tokens: 1.5\n",
       "/p/proc.tac.yml:2:11: budget.tokens: '1.5' is not a whole number"},
      {"budget:\n  dollars: 1\n",
       "/p/proc.tac.yml:2:3: budget.dollars: unknown key; known here: usd, tokens, model_calls, "
       "tool_calls"},
      {"providers:\n  p:\n    prices:\n      m: {input: 1}\n",
       "/p/proc.tac.yml:4:10: providers.p.prices.m: needs input and output (USD per million "
       "tokens)"},
      {"providers:\n  p:\n    prices:\n      m: {input: 1, output: 2, cahced_input: 1}\n",
       "/p/proc.tac.yml:4:32: providers.p.prices.m.cahced_input: unknown key (did you mean "
       "'cached_input'?); known here: input, cached_input, output, cache_write"},
      {"telemetry:\n  otlp_endpoint: \"collector:4318\"\n",
       "/p/proc.tac.yml:2:18: telemetry.otlp_endpoint: must be an http:// or https:// URL "
       "(OTLP/HTTP, e.g. http://127.0.0.1:4318)"},
      {"telemetry:\n  timeout: 2m\n",
       "/p/proc.tac.yml:2:12: telemetry.timeout: must be at most 60 s (the export holds up "
       "tactus's exit)"},
  };
  for (const auto& [yaml, error] : errors) {
    INFO(yaml);
    CHECK(error_of(yaml) == error);
  }
}
