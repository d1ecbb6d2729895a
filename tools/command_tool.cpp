#include "tools/command_tool.h"

#include "tools/secret_mask.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>

#include "runtime/protocol/frame.h"
#include "runtime/protocol/methods.h"
#include "tools/interrupt.h"
#include "tools/jail_channel.h"

namespace tactus::tools {
namespace {

using protocol::Json;
using Clock = std::chrono::steady_clock;

ToolOutcome fail(const CommandSpec& spec, ToolError code, const std::string& what) {
  return tool_failure(code, "command tool '" + spec.name + "' " + what);
}

std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

// The end of stderr, trimmed, for a message: ": <text>" or "".
// The end of the command's stderr for a message: masked whole, then cut (tools/secret_mask.h).
// cut: the buffer lost its start (it keeps the last bytes only).
std::string stderr_suffix(const std::string& err, bool cut, const SecretMask* mask) {
  // Masked before anything is taken off: a secret may end in a space or a newline.
  std::string t = excerpt_tail(err, kCommandStderrTail, mask, cut);
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  if (t.empty()) return "";
  return ": " + t;
}

// Reads what is there; false at EOF or on an error.
// over: more than cap came; keep_tail keeps the last cap bytes and reads on, otherwise it stops.
bool drain(int fd, std::string& into, std::size_t cap, bool& over, bool keep_tail) {
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      into.append(buf, static_cast<std::size_t>(n));
      if (into.size() > cap) {
        over = true;
        if (!keep_tail) return false;
        into.erase(0, into.size() - cap);
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
}

Json environment(const CommandSpec& spec) {
  Json env = Json::array(
      {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "TMPDIR=/tmp", "LANG=C.UTF-8"});
  for (const auto& [name, value] : spec.secrets) env.push_back(name + "=" + value);
  return env;
}

}  // namespace

ToolOutcome run_command_tool(const CommandSpec& spec, CommandLauncher& launcher, const Json& args) {
  const auto started = Clock::now();
  const auto deadline = started + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(spec.timeout_seconds));
  CommandJail jail;
  jail.danger_host_network = spec.danger_host_network;
  jail.memory = spec.memory;
  // The broker's kill at the timeout is the authority; RLIMIT_CPU backs it up.
  jail.cpu_seconds = static_cast<std::uint64_t>(std::ceil(spec.timeout_seconds)) + 1;
  jail.message_limit = spec.message_limit;
  CommandEnds ends;
  LaunchedCommand child = launch_command_jail(launcher, jail, ends);
  if (!child.error.empty()) return fail(spec, ToolError::failed, child.error);
  UniqueFd &channel = ends.channel, &in_w = ends.in, &out_r = ends.out, &err_r = ends.err;
  KillOnInterrupt kill_on_interrupt(child.pidfd.get());  // released before the pidfd closes

  // The exec message waits in the socket until the jail is contained and reads it.
  std::string frame;
  protocol::append_frame(
      frame, protocol::make_notification(protocol::method::exec,
                                         Json{{"argv", spec.command}, {"env", environment(spec)}}));
  const std::string input = args.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  std::size_t frame_sent = 0, input_sent = 0;
  if (!nonblocking(channel.get()) || !nonblocking(in_w.get()) || !nonblocking(out_r.get()) ||
      !nonblocking(err_r.get())) {
    ::syscall(SYS_pidfd_send_signal, child.pidfd.get(), SIGKILL, nullptr, 0);
  }

  ChannelState ch(spec.message_limit);
  std::string stdout_text, stderr_text;
  const std::size_t stderr_keep = kCommandStderrTail + (spec.mask ? spec.mask->margin() : 0);
  bool stderr_cut = false;
  bool out_open = true, err_open = true, exited = false, timed_out = false, too_big = false;
  while (out_open || err_open || !exited || ch.open) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0 && !timed_out) {
      timed_out = true;
      ::syscall(SYS_pidfd_send_signal, child.pidfd.get(), SIGKILL, nullptr, 0);
    }
    if (too_big) ::syscall(SYS_pidfd_send_signal, child.pidfd.get(), SIGKILL, nullptr, 0);
    pollfd fds[6];
    int n = 0;
    const auto watch = [&](int fd, short events) {
      fds[n] = {fd, events, 0};
      return n++;
    };
    const int i_pid = exited ? -1 : watch(child.pidfd.get(), POLLIN);
    const int i_out = out_open ? watch(out_r.get(), POLLIN) : -1;
    const int i_err = err_open ? watch(err_r.get(), POLLIN) : -1;
    const int i_ch =
        ch.open ? watch(channel.get(), POLLIN | (frame_sent < frame.size() ? POLLOUT : 0)) : -1;
    const int i_in = in_w && input_sent < input.size() ? watch(in_w.get(), POLLOUT) : -1;
    // After the kill, the pipes close when the pid namespace is gone; wait for that.
    const int wait_ms =
        timed_out || too_big ? 1000 : static_cast<int>(std::max<long>(left.count(), 1));
    const int ready = ::poll(fds, static_cast<nfds_t>(n), wait_ms);
    if (ready < 0 && errno != EINTR) break;
    if (ready == 0 && (timed_out || too_big)) break;  // killed, yet something holds a pipe
    if (i_pid >= 0 && fds[i_pid].revents) exited = true;
    if (i_out >= 0 && fds[i_out].revents)
      out_open = drain(out_r.get(), stdout_text, spec.max_output, too_big, false);
    if (i_err >= 0 && fds[i_err].revents)  // room for a secret's fragment before the tail
      err_open = drain(err_r.get(), stderr_text, stderr_keep, stderr_cut, true);
    if (i_ch >= 0 && (fds[i_ch].revents & (POLLIN | POLLHUP | POLLERR)))
      read_channel(channel.get(), ch);
    if (i_ch >= 0 && ch.open && (fds[i_ch].revents & POLLOUT) && frame_sent < frame.size()) {
      const ssize_t w =
          ::send(channel.get(), frame.data() + frame_sent, frame.size() - frame_sent, MSG_NOSIGNAL);
      if (w > 0) frame_sent += static_cast<std::size_t>(w);
    }
    if (i_in >= 0 && (fds[i_in].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t w =
          ::send(in_w.get(), input.data() + input_sent, input.size() - input_sent, MSG_NOSIGNAL);
      if (w > 0) input_sent += static_cast<std::size_t>(w);
      if (w < 0 && errno != EAGAIN && errno != EINTR)
        input_sent = input.size();                   // it stopped reading
      if (input_sent == input.size()) in_w.reset();  // EOF on the command's stdin
    }
  }
  ::syscall(SYS_pidfd_send_signal, child.pidfd.get(), SIGKILL, nullptr, 0);  // if still there
  siginfo_t info{};
  int rc;
  do
    rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(child.pidfd.get()), &info,
                  WEXITED);
  while (rc < 0 && errno == EINTR);

  if (!ch.setup_step.empty())
    return fail(spec, ToolError::failed,
                "could not be jailed: setup step '" + ch.setup_step +
                    "': " + std::strerror(ch.setup_errno));
  if (ch.exec_errno)
    return fail(spec, ToolError::failed,
                "cannot execute '" + spec.command[0] + "': " + std::strerror(ch.exec_errno) +
                    " (its jail shows the host's /usr only)");
  if (timed_out)
    return fail(spec, ToolError::timeout,
                "timed out after " + format_seconds(spec.timeout_seconds) + " s");
  if (too_big)
    return fail(spec, ToolError::failed,
                "wrote more than " + std::to_string(spec.max_output) + " bytes to stdout");
  if (info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED)
    return fail(spec, ToolError::failed,
                std::string("was killed by signal ") + ::sigabbrev_np(info.si_status) +
                    stderr_suffix(stderr_text, stderr_cut, spec.mask));
  if (info.si_status != 0)
    return fail(spec, ToolError::failed,
                "exited with status " + std::to_string(info.si_status) +
                    stderr_suffix(stderr_text, stderr_cut, spec.mask));
  ToolOutcome ok;
  try {
    ok.result = Json::parse(stdout_text);
  } catch (const Json::parse_error& e) {
    std::string what = e.what();
    if (const auto pos = what.find("parse error"); pos != std::string::npos)
      what = what.substr(pos);
    return fail(spec, ToolError::failed, "returned invalid JSON on stdout (" + what + ")");
  }
  ok.ok = true;
  return ok;
}

}  // namespace tactus::tools
