// What the host tools of one run may reach, decided by the trusted configuration.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/unique_fd.h"

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

// What http.request may reach (sandbox.network, sandbox.network_filter). mode "none" refuses
// every request, "host" allows any host, "filtered" allows a host (lowercased, without port)
// that matches an allow regex and no deny regex (deny wins). The regexes are ECMAScript,
// matched with std::regex_search.
struct NetworkPolicy {
  std::string mode = "none";  // none | filtered | host
  std::vector<std::string> allow, deny;
  std::uint64_t max_response = 10ull << 20;  // bytes of response body
  double timeout_seconds = 30;               // the whole request, redirects included
  int max_redirects = 5;
};

// A command tool (tools.commands; tools/command_tool.h runs it).
struct CommandSpec {
  std::string name;                  // the tool's name, for messages
  std::vector<std::string> command;  // argv; the first word an absolute path inside the jail
  double timeout_seconds = 30;
  bool network_host = false;
  std::vector<std::pair<std::string, std::string>> secrets;  // NAME, value: put in the env
  std::uint64_t memory = 1ull << 30;                         // RLIMIT_AS
  std::uint64_t max_output = 4ull << 20;                     // bytes of stdout kept
  std::uint64_t message_limit = 4ull << 20;                  // frames on the channel
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
  virtual LaunchedCommand launch(const CommandSpec& spec, UniqueFd channel, UniqueFd in,
                                 UniqueFd out, UniqueFd err) = 0;
};

// One model provider (providers.NAME, or a built-in), as tools/llm/ reaches it.
struct LlmProvider {
  std::string name;      // for messages: "openai", "local"
  std::string api;       // "openai" (Chat Completions / Responses) or "anthropic" (Messages)
  std::string base_url;  // without a trailing slash: "https://api.openai.com/v1"
  std::string api_key;   // the resolved secret; empty: none. Sent only in the auth header.
  std::string key_hint;  // how to configure a key, for the denied message when there is none
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
};

struct ToolContext {
  std::vector<Mount> mounts;
  FileLimits file_limits;
  NetworkPolicy network;
  std::map<std::string, CommandSpec> commands;  // by tool name
  CommandLauncher* launcher = nullptr;          // not owned; needed when commands is not empty
  LlmConfig llm;                                // llm.chat
  // The run's wall-clock end. A tool call runs on the broker's thread, so http, command tools
  // and llm.chat stop here at the latest, and the run's own timeout is not held up by one.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

}  // namespace tactus::tools
