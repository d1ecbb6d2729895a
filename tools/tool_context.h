// What the host tools of one run may reach, decided by the trusted configuration.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/unique_fd.h"
#include "tools/secret_mask.h"
#include "tools/trusted_files.h"

namespace tactus::tools {

// A host directory the file tools expose at a virtual path. The workspace (the procedure's
// directory, unless sandbox.mount_current_dir is false) is mounted at /workspace, and relative
// paths are relative to it; sandbox.volumes add "host:/virtual[:ro|:rw]".
struct Mount {
  std::string virtual_path;  // absolute, no trailing slash: "/workspace", "/data"
  std::string host_path;     // absolute host directory
  bool read_only = false;
};

struct FileLimits {
  std::uint64_t max_read = 16ull << 20;   // bytes file.read returns
  std::uint64_t max_write = 16ull << 20;  // bytes file.write accepts
  std::uint64_t max_entries = 10000;      // entries file.list returns
};

// What one run's file.write calls may write, appends and replacements alike, counted across
// resumes (sandbox.limits.disk). A file replaced many times counts each time: the quota bounds
// the writing, which is what fills a disk of snapshots, logs and temporary files.
struct DiskQuota {
  std::uint64_t limit = 256ull << 20;
  std::uint64_t used = 0;
};

// What http.request may reach (sandbox.network, sandbox.network_filter). mode "none" refuses
// every request, "host" allows any host, "filtered" allows a host that matches an allow regex
// whole (std::regex_match) and no deny regex anywhere (std::regex_search; deny wins). The host
// is normalised first (tools/http_tool.h); loopback in any spelling is also tried against the
// deny regexes as localhost, 127.0.0.1 and ::1; and the address each connection goes to is
// tried against the deny regexes again. The regexes are ECMAScript.
struct NetworkPolicy {
  std::string mode = "none";  // none | filtered | host
  std::vector<std::string> allow, deny;
  // "host:port:address" entries that replace name resolution (libcurl's CURLOPT_RESOLVE). No
  // configuration key sets them: the tests use them to stand in for a DNS answer.
  std::vector<std::string> pinned_addresses;
  const SecretMask* mask = nullptr;          // for excerpts of what a server sent; not owned
  std::uint64_t max_response = 10ull << 20;  // bytes of response body
  double timeout_seconds = 30;               // the whole request, redirects included
  int max_redirects = 5;
  // tools.http.idempotency_key: each request carries an Idempotency-Key header naming it
  // across resumes (idempotency_key below, per call), so a server that honours the header
  // sees a request a resume sent again (the one in flight at a crash) as one.
  bool send_idempotency_key = false;
  std::string idempotency_key;  // this call's; set by ToolRegistry::call from its CallContext
};

// A command tool (tools.commands; tools/command_tool.h runs it).
struct CommandSpec {
  std::string name;                  // the tool's name, for messages
  std::vector<std::string> command;  // argv; the first word an absolute path inside the jail
  double timeout_seconds = 30;
  bool danger_host_network = false;
  std::vector<std::pair<std::string, std::string>> secrets;  // NAME, value: put in the env
  std::uint64_t memory = 1ull << 30;                         // RLIMIT_AS
  std::uint64_t max_output = 4ull << 20;                     // bytes of stdout kept
  std::uint64_t message_limit = 4ull << 20;                  // frames on the channel
  const SecretMask* mask = nullptr;  // masks the stderr excerpt before it is cut; not owned
};

// What an MCP server's jail mounts at target: a host directory (its install dir, the
// workspace), or over a trusted file inside the workspace (tools/mcp/workspace_shield.h).
struct JailBind {
  enum class Kind : char {
    read_only = 'r',   // host bound read-only
    writable = 'w',    // host bound writable
    hidden = 'h',      // target (inside the jail): an empty read-only directory, or /dev/null
    protected_ = 'p',  // target (inside the jail): made read-only
    pinned = 'm',      // target (inside the jail): a mount point of itself, so not renamed
  };
  std::string host;
  std::string target;
  Kind kind = Kind::read_only;
};

// What a command's jail is made of: a command tool's (one call) or an MCP server's (the run).
struct CommandJail {
  bool server = false;  // an MCP server: its binds, a tmpfs HOME, RLIMIT_DATA for memory
  bool danger_host_network = false;
  std::uint64_t memory = 1ull << 30;  // RLIMIT_AS of a command, RLIMIT_DATA of a server
  std::uint64_t cpu_seconds = 0;      // RLIMIT_CPU; 0 = none
  std::uint64_t message_limit = 4ull << 20;
  std::vector<JailBind> binds;  // servers only
};

struct LaunchedCommand {
  pid_t pid = -1;
  UniqueFd pidfd;
  std::string error;  // empty on success: "step: strerror"
};

// Starts a command's jail. The broker's implementation asks the spawner; channel becomes the
// jail's fd 3, in/out/err its stdin, stdout and stderr.
class CommandLauncher {
 public:
  virtual ~CommandLauncher() = default;
  virtual LaunchedCommand launch(const CommandJail& jail, UniqueFd channel, UniqueFd in,
                                 UniqueFd out, UniqueFd err) = 0;
};

// An MCP server of the run (mcp_servers.NAME; tools/mcp/ starts it and speaks to it).
struct McpServerSpec {
  std::string name;
  std::vector<std::string> argv;  // argv[0] absolute (resolved on the host's PATH)
  std::vector<std::string> env;   // "K=V": PATH, HOME, LANG, the env literals, its secrets
  std::string cwd;                // inside its jail
  CommandJail jail;               // server = true: binds, memory, network
  double timeout_seconds = 300;   // a call without progress
  double startup_timeout_seconds = 10;
  bool media = false;  // image, audio and blob data reach the procedure (else only their size)
  std::string config_error;  // set: the server cannot be started, and this says why
  // The binds that shield the workspace's trusted files, computed when it starts (each start:
  // the procedure may have made more), and again after each call of a server with a writable
  // workspace, to catch the trusted files it made (tools/mcp/workspace_shield.h). Error: the
  // workspace could not be looked through, and nothing is started.
  std::function<std::vector<JailBind>(std::string& error)> shield;
  std::string workspace_host;  // the workspace's host path ("" when it has none)
  bool workspace_rw = false;
  std::function<TrustedFiles()> trusted;  // the run's trusted files, as they are now
};

// An output cap (llm.chat's max_tokens): the most a request may ask for, and what is asked when
// a request sets none but a cap must be sent (Anthropic's API requires one; a call under a run's
// tokens or usd budget needs one too: broker/run_requests.cpp).
inline constexpr std::int64_t kMaxOutputTokens = 1000000000;
inline constexpr std::int64_t kDefaultOutputTokens = 4096;

// What a model's tokens cost, in USD per million tokens (providers.NAME.prices.MODEL, or the
// built-in table of broker/llm_providers.cpp).
struct ModelPrice {
  double input = 0;         // input neither read from nor written to the prompt cache
  double cached_input = 0;  // input read from the cache
  double output = 0;        // output, reasoning included
  double cache_write = 0;   // input written to the cache (Anthropic)
};

// One model provider (providers.NAME, or a built-in), as tools/llm/ reaches it.
struct LlmProvider {
  std::string name;      // for messages: "openai", "local"
  std::string api;       // "openai" (Chat Completions / Responses) or "anthropic" (Messages)
  std::string base_url;  // without a trailing slash: "https://api.openai.com/v1"
  std::string api_key;   // the resolved secret; empty: none. Sent only in the auth header.
  std::string key_hint;  // how to configure a key, for the denied message when there is none
  // How Chat Completions names the output cap: "max_tokens" or "max_completion_tokens".
  std::string max_tokens_field = "max_tokens";
  // By model name. A model is priced by its own name, else as the model it is a snapshot of
  // (gpt-4o-2024-08-06 as gpt-4o; tools/llm/llm_client.h).
  std::map<std::string, ModelPrice> prices;
};

// What llm.chat may reach: the providers of the trusted configuration, and how hard to try.
struct LlmConfig {
  std::map<std::string, LlmProvider> providers;  // by name; a name not here is denied
  double timeout_seconds = 120;                  // the whole call, retries included
  int retries = 3;                               // after the first attempt
  // Backoff before retry n (0-based) is backoff_base_seconds * 2^n; a Retry-After the provider
  // sends replaces it, but is capped at max_retry_after_seconds. Tests make both tiny.
  double backoff_base_seconds = 0.5;
  double max_retry_after_seconds = 30;
  std::uint64_t max_response = 64ull << 20;  // bytes received per attempt (SSE is verbose)
  // Called with each text delta as it arrives (the CLI prints them live), then on_reply_end
  // once the reply is complete. Either may be empty. They see unredacted text: the caller masks.
  std::function<void(std::string_view)> on_token;
  std::function<void()> on_reply_end;
  const SecretMask* mask = nullptr;  // for excerpts of what a provider sent; not owned
};

struct ToolContext {
  // The run's secrets, to mask text before a tool cuts it (tools/secret_mask.h). Not owned:
  // the broker's Redactor outlives the run's tools. Whole answers are masked by the broker.
  const SecretMask* mask = nullptr;
  std::vector<Mount> mounts;
  FileLimits file_limits;
  // What no file tool writes (or, under .tactus, reads): collected by this on the first file
  // tool call of the run (before any tool could have changed a file), so a run that calls none
  // pays nothing at start. Empty: only the name rules of tools/trusted_files.h apply.
  std::function<TrustedFiles()> collect_trusted;
  // Shared by the copies of a context: one run, one count.
  std::shared_ptr<DiskQuota> disk = std::make_shared<DiskQuota>();
  NetworkPolicy network;
  std::map<std::string, CommandSpec> commands;  // by tool name
  CommandLauncher* launcher = nullptr;          // not owned; needed by commands and MCP servers
  std::map<std::string, McpServerSpec> mcp_servers;  // by server name
  // Which tool names the run's policy allows (tools.allow): an MCP server's listing shows
  // only those. Empty: all.
  std::function<bool(const std::string&)> tool_allowed;
  LlmConfig llm;  // llm.chat
  // The run's wall-clock end. A tool call runs on the broker's thread, so http, command tools
  // and llm.chat stop here at the latest, and the run's own timeout is not held up by one.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

}  // namespace tactus::tools
