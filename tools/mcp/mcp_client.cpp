#include "tools/mcp/mcp_client.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "runtime/protocol/frame.h"
#include "runtime/protocol/methods.h"
#include "tools/secret_mask.h"

namespace tactus::tools {
namespace {

using protocol::Json;
using Clock = McpClient::Clock;

constexpr std::size_t kMaxCancelled = 1024;  // ids remembered to drop their late answers
constexpr int kMaxListPages = 32;            // each a line of at most sandbox.limits.message
constexpr std::size_t kMaxTools = 10000;     // tools one listing may hold
constexpr auto kStdinGrace = std::chrono::milliseconds(500);  // after EOF on stdin, then SIGTERM
constexpr auto kTermGrace = std::chrono::milliseconds(500);   // after SIGTERM, then SIGKILL

Clock::time_point after(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(std::min(seconds, 1e7)));
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

void signal_pidfd(int pidfd, int sig) {
  ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0);
}

}  // namespace

McpClient::McpClient(const McpServerSpec& spec, CommandLauncher& launcher, const SecretMask* mask,
                     std::size_t max_line)
    : spec_(spec), launcher_(launcher), mask_(mask), max_line_(max_line) {}

McpClient::~McpClient() {
  stop();
}

ToolOutcome McpClient::fail(ToolError code, const std::string& what) const {
  return tool_failure(code, "mcp server '" + spec_.name + "' " + what);
}

ToolOutcome McpClient::start(Clock::time_point run_deadline) {
  if (!spec_.config_error.empty()) return fail(ToolError::failed, spec_.config_error);
  const auto deadline = std::min(after(spec_.startup_timeout_seconds), run_deadline);
  CommandJail jail = spec_.jail;
  if (spec_.shield) {
    std::string error;
    shield_ = spec_.shield(error);
    if (!error.empty()) return fail(ToolError::failed, "cannot start: " + error);
    jail.binds.insert(jail.binds.end(), shield_.begin(), shield_.end());
  }
  CommandEnds ends;
  LaunchedCommand child = launch_command_jail(launcher_, jail, ends);
  if (!child.error.empty()) return fail(ToolError::failed, child.error);
  channel_ = std::move(ends.channel);
  in_ = std::move(ends.in);
  out_ = std::move(ends.out);
  err_ = std::move(ends.err);
  pidfd_ = std::move(child.pidfd);
  kill_on_interrupt_.emplace(pidfd_.get());
  jail_.emplace(spec_.jail.message_limit);
  for (int fd : {channel_.get(), in_.get(), out_.get(), err_.get()})
    if (!nonblocking(fd)) return fail(ToolError::failed, "cannot start: O_NONBLOCK");

  // The exec message waits in the socket until the jail is contained and reads it.
  Json exec{{"argv", spec_.argv}, {"env", spec_.env}};
  if (!spec_.cwd.empty()) exec["cwd"] = spec_.cwd;
  std::string frame;
  protocol::append_frame(frame, protocol::make_notification(protocol::method::exec, exec));
  for (std::size_t sent = 0; sent < frame.size();) {
    pollfd p{channel_.get(), POLLOUT, 0};
    if (Clock::now() >= deadline || interrupted())
      return fail(ToolError::failed, "could not be started: its jail did not read its command");
    ::poll(&p, 1, 100);
    const ssize_t w =
        ::send(channel_.get(), frame.data() + sent, frame.size() - sent, MSG_NOSIGNAL);
    if (w > 0) sent += static_cast<std::size_t>(w);
    if (w < 0 && errno != EAGAIN && errno != EINTR) break;  // the jail ended: its reason follows
  }

  Json init = {{"protocolVersion", kMcpRevision},
               {"capabilities", Json::object()},
               {"clientInfo", {{"name", "tactus"}, {"version", "0.1"}}}};
  Json result;
  Wait wait{0, deadline, deadline, 0, ""};
  ToolOutcome r = request("initialize", std::move(init), wait, result, spec_.name + ": initialize");
  if (!r.ok) {
    if (r.code == ToolError::timeout) {
      stop();
      if (deadline == run_deadline)
        return fail(ToolError::timeout, "did not answer initialize before the run's deadline");
      return fail(ToolError::failed, "did not answer initialize within " +
                                         seconds_text(spec_.startup_timeout_seconds) +
                                         " s (mcp_servers." + spec_.name + ".startup_timeout)");
    }
    return r;
  }
  const Json version = result.is_object() ? result.value("protocolVersion", Json()) : Json();
  revision_ = version.is_string() ? version.get<std::string>().substr(0, 64) : "(none)";
  const bool accepted =
      std::any_of(std::begin(kMcpAcceptedRevisions), std::end(kMcpAcceptedRevisions),
                  [&](const char* v) { return revision_ == v; });
  if (!accepted) {
    stop();
    return fail(ToolError::failed, "speaks MCP revision '" + revision_ +
                                       "'; tactus speaks 2025-11-25, 2025-06-18, 2025-03-26 and "
                                       "2024-11-05");
  }
  send(Json{{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
  return {true, Json::object(), ToolError::none, ""};
}

ToolOutcome McpClient::list_tools(Clock::time_point run_deadline) {
  if (tools_ && !tools_stale_) return {true, *tools_, ToolError::none, ""};
  tools_stale_ = false;  // a list_changed during the listing makes the next one list again
  ToolOutcome r = list_pages(run_deadline);
  if (!r.ok) tools_stale_ = true;
  return r;
}

ToolOutcome McpClient::list_pages(Clock::time_point run_deadline) {
  Json all = Json::array();
  std::string cursor;
  for (int page = 0; page < kMaxListPages; ++page) {
    Json params = Json::object();
    if (!cursor.empty()) params["cursor"] = cursor;
    const auto deadline = std::min(after(spec_.timeout_seconds), run_deadline);
    Json result;
    ToolOutcome r = request("tools/list", std::move(params), Wait{0, deadline, deadline, 0, ""},
                            result, spec_.name + ": tools/list");
    if (!r.ok) return r;
    if (!result.is_object() || !result.value("tools", Json()).is_array())
      return fail(ToolError::failed, "answered tools/list without a tools array");
    for (auto& t : result["tools"]) {
      if (!t.is_object() || !t.value("name", Json()).is_string() ||
          t["name"].get_ref<const std::string&>().empty())
        continue;  // a nameless tool cannot be called
      if (!t.value("inputSchema", Json()).is_object()) t["inputSchema"] = Json{{"type", "object"}};
      if (all.size() >= kMaxTools)
        return fail(ToolError::failed, "listed more than " + std::to_string(kMaxTools) + " tools");
      all.push_back(std::move(t));
    }
    const Json next = result.value("nextCursor", Json());
    if (!next.is_string() || next.get_ref<const std::string&>().empty()) {
      tools_ = std::move(all);
      return {true, *tools_, ToolError::none, ""};
    }
    cursor = next.get<std::string>();
  }
  return fail(ToolError::failed,
              "listed more than " + std::to_string(kMaxListPages) + " pages of tools");
}

ToolOutcome McpClient::call_tool(const std::string& tool, const Json& args,
                                 Clock::time_point run_deadline) {
  const std::int64_t id = next_id_;  // the token names the request it belongs to
  const std::string token = "tactus-" + std::to_string(id);
  Json params{{"name", tool},
              {"arguments", args.is_object() ? args : Json::object()},
              {"_meta", {{"progressToken", token}}}};
  // Progress resets the idle timeout; nothing moves the hard one (ten timeouts, or the run's end).
  const auto hard = std::min(after(spec_.timeout_seconds * 10), run_deadline);
  Wait wait{0, std::min(after(spec_.timeout_seconds), hard), hard, spec_.timeout_seconds, token};
  Json result;
  ToolOutcome r = request("tools/call", std::move(params), wait, result, spec_.name + "." + tool);
  if (!r.ok) return r;
  if (!result.is_object()) return fail(ToolError::failed, "answered tools/call with a non-object");
  return {true, std::move(result), ToolError::none, ""};
}

// Sends method and waits for its answer. A JSON-RPC error is an mcp error; a timeout cancels.
// label names the request in an mcp error ("fs.read_text_file", "fs: tools/list").
ToolOutcome McpClient::request(const std::string& method, Json params, Wait wait, Json& result,
                               const std::string& label) {
  if (!running()) return fail(ToolError::failed, gone_reason());
  wait.id = send_request(method, std::move(params));
  progress_token_ = wait.progress_token;
  Json answer;
  const Got got = await(wait, answer);
  progress_token_.clear();
  awaited_id_ = 0;
  switch (got) {
    case Got::answer:
      break;
    case Got::interrupted:
      return fail(ToolError::failed, "was stopped: tactus was interrupted");
    case Got::gone:
      return fail(ToolError::failed, gone_reason());
    case Got::timeout: {
      // The request is dead to us: tell the server, and drop whatever it still sends for it.
      if (cancelled_.size() >= kMaxCancelled) cancelled_.erase(cancelled_.begin());
      cancelled_.insert(wait.id);
      if (method != "initialize") {  // initialize is never cancelled (the spec): we stop instead
        send(Json{{"jsonrpc", "2.0"},
                  {"method", "notifications/cancelled"},
                  {"params", {{"requestId", wait.id}, {"reason", "timed out"}}}});
        pump(0);
      }
      const bool hard = Clock::now() >= wait.hard_deadline;
      const double s = wait.idle_seconds > 0 && !hard ? wait.idle_seconds : 0;
      return tool_failure(
          ToolError::timeout,
          "mcp " + label + " timed out" +
              (s > 0 ? " after " + seconds_text(s) + " s without progress (mcp_servers." +
                           spec_.name + ".timeout)"
                     : std::string(" at its deadline (the run's, or ten timeouts)")));
    }
  }
  if (answer.contains("error")) {
    const Json& e = answer["error"];
    const Json text = e.is_object() ? e.value("message", Json()) : Json();
    std::string message = text.is_string() ? text.get<std::string>() : "(no message)";
    const Json code = e.is_object() ? e.value("code", Json()) : Json();
    if (code.is_number_integer())
      message += " (JSON-RPC error " + std::to_string(code.get<long long>()) + ")";
    return tool_failure(ToolError::mcp, label + ": " + excerpt_head(message, 4096, mask_));
  }
  result = answer.value("result", Json());
  return {true, Json(), ToolError::none, ""};
}

std::int64_t McpClient::send_request(const std::string& method, Json params) {
  const std::int64_t id = next_id_++;
  awaited_id_ = id;
  answer_.reset();
  Json m{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) m["params"] = std::move(params);
  send(m);
  return id;
}

void McpClient::send(const Json& message) {
  if (!failure_.empty()) return;
  outbuf_ += message.dump(-1, ' ', false, Json::error_handler_t::replace);
  outbuf_ += '\n';
  // A server that sends requests and reads none of our answers is not waited for.
  if (outbuf_.size() > 2 * max_line_) kill_for("stopped reading its stdin and was stopped");
}

McpClient::Got McpClient::await(Wait& wait, Json& answer) {
  for (;;) {
    if (answer_) {
      answer = std::move(*answer_);
      answer_.reset();
      return Got::answer;
    }
    if (!running()) return Got::gone;
    if (interrupted()) return Got::interrupted;
    const auto now = Clock::now();
    if (progressed_ && wait.idle_seconds > 0)
      wait.idle_deadline = std::min(after(wait.idle_seconds), wait.hard_deadline);
    progressed_ = false;
    const auto limit = std::min(wait.idle_deadline, wait.hard_deadline);
    if (now >= limit) return Got::timeout;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(limit - now).count();
    pump(static_cast<int>(std::clamp<long long>(ms + 1, 1, 1000)));
  }
}

std::string McpClient::gone_reason() const {
  if (!failure_.empty()) return failure_;
  if (jail_ && !jail_->setup_step.empty())
    return "could not be jailed: setup step '" + jail_->setup_step +
           "': " + std::strerror(jail_->setup_errno);
  if (jail_ && jail_->exec_errno)
    return "cannot execute '" + (spec_.argv.empty() ? std::string() : spec_.argv[0]) +
           "' in its jail (or enter its cwd '" + spec_.cwd +
           "'): " + std::strerror(jail_->exec_errno);
  std::string why = "is not running";
  if (exited_ && (exit_code_ == CLD_KILLED || exit_code_ == CLD_DUMPED))
    why = std::string("was killed by signal ") + ::sigabbrev_np(exit_status_);
  else if (exited_)
    why = "exited with status " + std::to_string(exit_status_);
  std::string tail = excerpt_tail(errtail_, McpClient::kStderrTail, mask_, errtail_cut_);
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.pop_back();
  return tail.empty() ? why : why + ": " + tail;
}

void McpClient::stop() {
  if (!pidfd_) return;
  const auto flush_until = Clock::now() + std::chrono::milliseconds(250);
  while (!exited_ && in_ && !outbuf_.empty() && Clock::now() < flush_until) pump(10);
  in_.reset();  // EOF on its stdin: a stdio server ends
  const auto wait_exit = [&](Clock::duration grace) {
    const auto until = Clock::now() + grace;
    while (!exited_ && Clock::now() < until && !interrupted()) pump(20);
  };
  wait_exit(kStdinGrace);
  if (!exited_) {
    // As its pid namespace's init it ignores SIGTERM unless it handles it: SIGKILL follows.
    signal_pidfd(pidfd_.get(), SIGTERM);
    wait_exit(kTermGrace);
  }
  if (!exited_) signal_pidfd(pidfd_.get(), SIGKILL);
  note_exit(true);
  if (kill_on_interrupt_) kill_on_interrupt_->release();
  kill_on_interrupt_.reset();
  if (out_) read_stdout();
  if (err_) read_stderr();
  pidfd_.reset();
  channel_.reset();
  out_.reset();
  err_.reset();
}

}  // namespace tactus::tools
