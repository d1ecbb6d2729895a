// One MCP server of one run, spoken to over its stdio (MCP revision 2025-11-25: one JSON-RPC
// message per line). The broker starts it in a jail of its own (tools/tool_context.h,
// CommandJail), initializes it declaring no client capabilities (no roots, sampling or
// elicitation), lists its tools (paged, cached until it says notifications/tools/list_changed)
// and calls them, each with a progress token and a timeout that progress resets, never past
// the run's deadline. A call that times out is cancelled (notifications/cancelled) and its late
// messages dropped; the server lives on. Notifications and the server's own requests (ping)
// interleave with answers. A line longer than the cap ends the server. Its stderr is logged,
// masked, never parsed. stop() closes its stdin, then SIGTERM, then SIGKILL: its pid
// namespace dies with it, so nothing it started is left.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runtime/protocol/message.h"
#include "runtime/unique_fd.h"
#include "tools/interrupt.h"
#include "tools/jail_channel.h"
#include "tools/registry.h"
#include "tools/tool_context.h"

namespace tactus::tools {

// The revision we ask for, and the ones we accept in a server's answer.
inline constexpr const char* kMcpRevision = "2025-11-25";
inline constexpr const char* kMcpAcceptedRevisions[] = {"2025-11-25", "2025-06-18", "2025-03-26",
                                                        "2024-11-05"};

class McpClient {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::size_t kStderrTail = 2048;  // bytes of stderr an error message shows

  McpClient(const McpServerSpec& spec, CommandLauncher& launcher, const SecretMask* mask,
            std::size_t max_line);
  ~McpClient();
  McpClient(const McpClient&) = delete;
  McpClient& operator=(const McpClient&) = delete;

  // Launches the jail and initializes, by the startup timeout and the run's deadline.
  ToolOutcome start(Clock::time_point run_deadline);
  // result: the tools (an array of {name, description, inputSchema, ...}).
  ToolOutcome list_tools(Clock::time_point run_deadline);
  // result: the tools/call result as the server sent it (content, structuredContent, isError).
  ToolOutcome call_tool(const std::string& tool, const protocol::Json& args,
                        Clock::time_point run_deadline);
  // What shielded the workspace's trusted files when it started (tools/mcp/workspace_shield.h).
  const std::vector<JailBind>& shield_binds() const { return shield_; }
  // Is the server still there to be asked?
  bool running() const { return pidfd_ && !exited_ && failure_.empty(); }
  void stop();

 private:
  enum class Got { answer, timeout, gone, interrupted };
  struct Wait {
    std::int64_t id;
    Clock::time_point idle_deadline;  // reset by progress when idle_seconds > 0
    Clock::time_point hard_deadline;
    double idle_seconds = 0;
    std::string progress_token;  // empty: none
  };

  ToolOutcome request(const std::string& method, protocol::Json params, Wait wait,
                      protocol::Json& result, const std::string& label);
  std::int64_t send_request(const std::string& method, protocol::Json params);
  void send(const protocol::Json& message);
  Got await(Wait& wait, protocol::Json& answer);
  void pump(int timeout_ms);
  void read_stdout();
  void read_stderr();
  ToolOutcome list_pages(Clock::time_point run_deadline);
  void on_line(std::string_view line);
  void on_message(protocol::Json& message);
  void log_stderr_line();
  void kill_for(const std::string& why);
  void note_exit(bool wait);
  std::string gone_reason() const;
  ToolOutcome fail(ToolError code, const std::string& what) const;

  McpServerSpec spec_;
  CommandLauncher& launcher_;
  const SecretMask* mask_;
  std::size_t max_line_;

  UniqueFd pidfd_, channel_, in_, out_, err_;
  std::optional<KillOnInterrupt> kill_on_interrupt_;
  std::optional<ChannelState> jail_;
  bool exited_ = false;
  int exit_code_ = 0;  // si_code / si_status of its end
  int exit_status_ = 0;
  std::string failure_;  // a fatal protocol fault (a line too long): the server was killed

  std::string outbuf_, inbuf_, errline_, errtail_;
  bool errtail_cut_ = false;
  bool errline_skip_ = false;  // the rest of a long stderr line is not logged
  std::size_t logged_ = 0;     // stderr bytes logged
  std::int64_t next_id_ = 1;
  std::int64_t awaited_id_ = 0;
  std::optional<protocol::Json> answer_;  // the awaited id's answer, once it came
  std::set<std::int64_t> cancelled_;      // ids whose late answers are dropped
  std::string progress_token_;
  bool progressed_ = false;
  std::optional<protocol::Json> tools_;  // the cached listing
  bool tools_stale_ = true;
  std::string revision_;  // what it answered
  std::vector<JailBind> shield_;
};

}  // namespace tactus::tools
