// McpClient's side of the pipes: one poll round at a time, what the server writes read in
// bounded amounts, its lines parsed (after a depth check) and dispatched, its stderr logged.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "tools/mcp/mcp_client.h"
#include "tools/secret_mask.h"

namespace tactus::tools {
namespace {

using protocol::Json;

constexpr std::size_t kLogLine = 2048;           // bytes of one stderr line logged
constexpr int kReadsPerPump = 4;                 // reads of one pipe in one round
constexpr std::size_t kLoggedBytes = 256 << 10;  // stderr logged per server and run

void signal_pidfd(int pidfd, int sig) {
  ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0);
}

}  // namespace

// One round: sends what is queued, reads what the server wrote, notes its end.
void McpClient::pump(int timeout_ms) {
  pollfd fds[5];
  int n = 0;
  const auto watch = [&](int fd, short events) {
    fds[n] = {fd, events, 0};
    return n++;
  };
  const int i_pid = pidfd_ && !exited_ ? watch(pidfd_.get(), POLLIN) : -1;
  const int i_out = out_ ? watch(out_.get(), POLLIN) : -1;
  const int i_err = err_ ? watch(err_.get(), POLLIN) : -1;
  const int i_ch = channel_ && jail_ && jail_->open ? watch(channel_.get(), POLLIN) : -1;
  const int i_in = in_ && !outbuf_.empty() ? watch(in_.get(), POLLOUT) : -1;
  if (n == 0) return;
  const int ready = ::poll(fds, static_cast<nfds_t>(n), timeout_ms);
  if (ready <= 0) return;  // EINTR: the caller looks at interrupted()
  if (i_in >= 0 && fds[i_in].revents) {
    const ssize_t w = ::send(in_.get(), outbuf_.data(), outbuf_.size(), MSG_NOSIGNAL);
    if (w > 0) outbuf_.erase(0, static_cast<std::size_t>(w));
    if (w < 0 && errno != EAGAIN && errno != EINTR) outbuf_.clear();  // it stopped reading
  }
  if (i_out >= 0 && fds[i_out].revents) read_stdout();
  if (i_err >= 0 && fds[i_err].revents) read_stderr();
  if (i_ch >= 0 && fds[i_ch].revents) read_channel(channel_.get(), *jail_);
  if (i_pid >= 0 && fds[i_pid].revents) {
    read_stdout();  // what it wrote before it ended still counts
    read_stderr();
    note_exit(false);
  }
}

// At most kReadsPerPump reads a round, so a server that writes without end cannot keep the
// broker from its deadlines.
void McpClient::read_stdout() {
  char buf[65536];
  for (int reads = 0; reads < kReadsPerPump && out_; ++reads) {
    const ssize_t n = ::read(out_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      out_.reset();
      return;
    }
    inbuf_.append(buf, static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (std::size_t nl; (nl = inbuf_.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (nl - start > max_line_) break;
      on_line(std::string_view(inbuf_).substr(start, nl - start));
      if (!failure_.empty()) return;
    }
    inbuf_.erase(0, start);
    if (inbuf_.find('\n') != std::string::npos || inbuf_.size() > max_line_)
      return kill_for("sent a line longer than " + std::to_string(max_line_) +
                      " bytes (sandbox.limits.message) and was stopped");
  }
}

void McpClient::kill_for(const std::string& why) {
  if (failure_.empty()) failure_ = why;
  if (pidfd_) signal_pidfd(pidfd_.get(), SIGKILL);
  inbuf_.clear();
  outbuf_.clear();
}

void McpClient::read_stderr() {
  char buf[8192];
  for (int reads = 0; reads < kReadsPerPump && err_; ++reads) {
    const ssize_t n = ::read(err_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      if (!errline_.empty()) log_stderr_line();
      err_.reset();
      return;
    }
    // The tail for error messages is the stream as it came (masked when shown, whole).
    errtail_.append(buf, static_cast<std::size_t>(n));
    const std::size_t keep = McpClient::kStderrTail + (mask_ ? mask_->margin() : 0);
    if (errtail_.size() > keep) {
      errtail_.erase(0, errtail_.size() - keep);
      errtail_cut_ = true;
    }
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] == '\n') {
        log_stderr_line();
      } else if (!errline_skip_) {
        errline_ += buf[i];
        // A longer line is logged cut (masked first), the rest of it not at all.
        if (errline_.size() > kLogLine + (mask_ ? mask_->margin() : 0)) {
          log_stderr_line();
          errline_skip_ = true;
        }
      }
    }
  }
}

// One line to the broker's stderr, masked whole then cut; never parsed. At most kLoggedBytes
// of a server's stderr is logged in a run.
void McpClient::log_stderr_line() {
  const bool cut = errline_.size() > kLogLine;
  if (!errline_skip_ && logged_ < kLoggedBytes) {
    std::string shown = excerpt_head(errline_, kLogLine, mask_);
    if (cut && shown.size() >= errline_.size())
      shown = excerpt_head(errline_, errline_.size() - 1, mask_);
    std::string out = "tactus: mcp " + spec_.name + ": " + shown + "\n";
    logged_ += out.size();
    if (logged_ >= kLoggedBytes)
      out += "tactus: mcp " + spec_.name + ": (its further stderr is not shown)\n";
    [[maybe_unused]] const ssize_t w = ::write(2, out.data(), out.size());
  }
  errline_.clear();
  if (!cut) errline_skip_ = false;
}

// One message (or, from a 2025-03-26 server, a batch of them).
void McpClient::on_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) return;
  if (protocol::json_depth(line) < 0) return;  // deeper than any message: not parsed at all
  Json m = Json::parse(line, nullptr, false);
  if (m.is_array()) {
    for (auto& item : m) on_message(item);
    return;
  }
  on_message(m);
}

void McpClient::on_message(Json& m) {
  if (!m.is_object()) return;  // not JSON-RPC: a stray print; the protocol has no room for it
  const Json method = m.value("method", Json());
  const Json id = m.value("id", Json());
  if (method.is_string()) {
    const auto& name = method.get_ref<const std::string&>();
    if (!id.is_null()) {  // the server's request: ping is answered, nothing else is offered
      if (!id.is_number_integer() &&
          !(id.is_string() && id.get_ref<const std::string&>().size() <= 128))
        return;
      Json reply{{"jsonrpc", "2.0"}, {"id", id}};
      if (name == "ping")
        reply["result"] = Json::object();
      else
        reply["error"] = {{"code", -32601}, {"message", "method not found"}};
      send(reply);
      return;
    }
    const Json params = m.value("params", Json());
    if (name == "notifications/progress" && params.is_object() && !progress_token_.empty() &&
        params.value("progressToken", Json()) == Json(progress_token_))
      progressed_ = true;
    else if (name == "notifications/tools/list_changed")
      tools_stale_ = true;
    return;  // logging and the rest: nothing we asked for
  }
  if (!id.is_number_integer()) return;
  const auto n = id.get<std::int64_t>();
  if (cancelled_.erase(n)) return;  // a late answer to a request we gave up
  // The first answer counts; a second one to the same id is dropped.
  if (n == awaited_id_ && !answer_ && (m.contains("result") || m.contains("error")))
    answer_ = std::move(m);
}

void McpClient::note_exit(bool wait) {
  if (exited_ || !pidfd_) return;
  siginfo_t info{};
  int rc;
  do
    rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info,
                  WEXITED | (wait ? 0 : WNOHANG));
  while (rc < 0 && errno == EINTR);
  if (rc != 0 || info.si_pid == 0) return;
  exited_ = true;
  exit_code_ = info.si_code;
  exit_status_ = info.si_status;
}

}  // namespace tactus::tools
