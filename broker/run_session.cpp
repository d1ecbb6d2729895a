#include "broker/run_session.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio/buffer.hpp>
#include <asio/post.hpp>
#include <cerrno>
#include <cstring>

#include "broker/run_session_state.h"
#include "sidecars/units.h"

namespace tactus::broker {

using protocol::Json;
using protocol::MessageKind;
namespace method = protocol::method;
using Message = Session::Message;
using Clock = Session::Clock;

namespace {

// The one place a run's output is masked: every printed line, Log line and Human.notify goes
// through it, so no secret value reaches the terminal, a pipe or a file by any of them.
class MaskingSink : public OutputSink {
 public:
  MaskingSink(OutputSink& inner, const Redactor* redactor) : inner_(inner), redactor_(redactor) {}
  void print(std::string_view line) override { inner_.print(masked(line)); }
  void log(std::string_view line) override { inner_.log(masked(line)); }
  std::string write_error() const override { return inner_.write_error(); }

 private:
  std::string masked(std::string_view line) const {
    return redactor_ && !redactor_->empty() ? redactor_->redact(line) : std::string(line);
  }
  OutputSink& inner_;
  const Redactor* redactor_;
};

}  // namespace

Session::Session(asio::io_context& io, UniqueFd channel, UniqueFd pidfd, const RunRequest& req,
                 const tools::ToolRegistry& tools, OutputSink& out)
    : req_(req),
      tools_(tools),
      out_(out),
      channel_(io, channel.release()),
      pidfd_(io, pidfd.release()),
      kill_on_interrupt_(pidfd_.native_handle()),
      timer_(io),
      decoder_(req.limits.message) {
  ::fcntl(channel_.native_handle(), F_SETFL,
          ::fcntl(channel_.native_handle(), F_GETFL) | O_NONBLOCK);
}

// kill_ is called under the lock: disarm waits for it, so once the session disarmed, nothing
// is posted to its loop any more (kill_ only posts, it never calls back in here).
void RunStop::stop() {
  const std::lock_guard<std::mutex> lock(m_);
  stopped_ = true;
  if (kill_) kill_();
}

bool RunStop::stopped() const {
  const std::lock_guard<std::mutex> lock(m_);
  return stopped_;
}

void RunStop::arm(std::function<void()> kill) {
  const std::lock_guard<std::mutex> lock(m_);
  kill_ = std::move(kill);
  if (stopped_) kill_();
}

void RunStop::disarm() {
  const std::lock_guard<std::mutex> lock(m_);
  kill_ = nullptr;
}

Session::~Session() {
  if (req_.stop) req_.stop->disarm();
}

void Session::start(const ReadyChild* ready) {
  started_ = Clock::now();
  // A stop from another thread is posted onto this session's loop: the session's state is
  // touched by its own thread only. Disarmed before the loop and the session go.
  if (req_.stop)
    req_.stop->arm([this, ex = timer_.get_executor()] {
      asio::post(ex, [this] {
        if (!exited_ || channel_open_) stop_with_error("run cancelled");
      });
    });
  timer_.expires_after(std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(req_.limits.timeout_seconds)));
  timer_.async_wait([this](const std::error_code& ec) {
    if (ec || exited_) return;
    o_.timed_out = true;
    kill_child();
  });
  if (ready) {  // a pool worker: its setup and ready were read when the pool filled
    setup_timed_ = true;
    setup_steps_ = ready->setup_steps_us;
    ready_at_ = started_;
    phase_ = Phase::running;
    send_run();
  }
  arm_read();
  pidfd_.async_wait(asio::posix::stream_descriptor::wait_read, [this](const std::error_code& ec) {
    if (!ec) on_exit();
  });
}

RunResult Session::finish(RunResult r) {
  r.timings.handoff_ms = handoff_ms_;
  r.timings.setup_steps_us = setup_steps_;
  if (ready_at_ != Clock::time_point{}) r.timings.ready_ms = ms_between(started_, ready_at_);
  if (done_at_ != Clock::time_point{}) r.timings.run_ms = ms_between(run_sent_at_, done_at_);
  o_.interrupted = tools::interrupted();
  const std::string explanation = o_.setup_failed && req_.explain_setup_failure
                                      ? req_.explain_setup_failure(o_.setup_step)
                                      : std::string();
  classify(std::move(o_), req_.run_id, req_.limits, req_.backend == spawner::Backend::jail,
           explanation, r);
  return r;
}

// async_read_some reads speculatively before waiting, and waits without re-registering the
// descriptor: one syscall fewer per message than async_wait + read (the Host.call hot path).
// One read per completion also keeps a flooding child from starving the timer.
void Session::arm_read() {
  channel_.async_read_some(asio::buffer(read_buf_),
                           [this](const std::error_code& ec, std::size_t n) {
                             if (ec == asio::error::operation_aborted || !channel_open_) return;
                             if (ec || n == 0) return on_eof();
                             on_data(n);
                           });
}

void Session::on_data(std::size_t n) {
  decoder_.feed(read_buf_.data(), n);
  std::string payload;
  while (channel_open_ && decoder_.next(payload)) handle_frame(payload);
  if (!channel_open_) return;
  if (decoder_.error() != protocol::FrameError::none) {
    return violate(std::string("protocol: ") + protocol::to_string(decoder_.error()) + " (" +
                   std::to_string(decoder_.declared_length()) + " bytes declared, limit " +
                   sidecars::format_size(req_.limits.message) + ")");
  }
  arm_read();
}

void Session::on_eof() {
  if (decoder_.has_partial() && !o_.violated && !o_.timed_out && phase_ != Phase::finished)
    o_.truncated = true;
  close_channel();
  maybe_stop();
}

namespace {

// The dispatch: which handler answers each method the VM sends (runtime/protocol/methods.h).
using Handler = void (Session::*)(const Message&);
struct Route {
  std::string_view method;
  Handler handle;
};

// Before "ready": the child's setup.
constexpr Route kStartRoutes[] = {
    {method::ready, &Session::on_ready},
    {method::setup, &Session::on_setup_times},
    {method::setup_failed, &Session::on_setup_failed},
};

// While the procedure runs. The hot path first.
constexpr Route kRunRoutes[] = {
    {method::host_call, &Session::on_host_call},
    {method::llm_chat, &Session::on_llm_chat},
    {method::print, &Session::on_print},
    {method::log, &Session::on_log},
    {method::state, &Session::on_state},
    {method::trace, &Session::on_trace},
    {method::time_now, &Session::on_time_now},
    {method::time_clock, &Session::on_time_clock},
    {method::random_seed, &Session::on_random_seed},
    {method::module_load, &Session::on_module_load},
    {method::checkpoint, &Session::on_checkpoint},
    {method::checkpoint_result, &Session::on_checkpoint_result},
    {method::human_approve, &Session::on_human_request},
    {method::human_input, &Session::on_human_request},
    {method::human_review, &Session::on_human_request},
    {method::human_select, &Session::on_human_request},
    {method::human_notify, &Session::on_human_request},
    {method::human_escalate, &Session::on_human_request},
    {method::done, &Session::on_done},
};

// The position of name's route, or -1 (an index: see protocol::method_index).
template <std::size_t N>
constexpr int route_index(const Route (&routes)[N], std::string_view name) {
  for (std::size_t i = 0; i < N; ++i)
    if (routes[i].method == name) return static_cast<int>(i);
  return -1;
}

template <std::size_t N>
const Route* find_route(const Route (&routes)[N], std::string_view name) {
  const int i = route_index(routes, name);
  return i < 0 ? nullptr : &routes[i];
}

// Every method the VM sends has exactly one route ("violation" is taken in any phase), and
// every route a method the VM sends: a method added to the list cannot go unanswered.
constexpr bool routes_cover_the_protocol() {
  for (const protocol::MethodSpec& m : protocol::kMethods) {
    const bool vm = m.from == protocol::Sender::vm && m.name != method::violation;
    const int routes = (route_index(kStartRoutes, m.name) >= 0 ? 1 : 0) +
                       (route_index(kRunRoutes, m.name) >= 0 ? 1 : 0);
    if (routes != (vm ? 1 : 0)) return false;
  }
  for (const Route& r : kRunRoutes)
    if (protocol::method_index(r.method) < 0) return false;
  for (const Route& r : kStartRoutes)
    if (protocol::method_index(r.method) < 0) return false;
  return true;
}
static_assert(routes_cover_the_protocol(),
              "each method the VM sends (runtime/protocol/methods.h) needs exactly one route");

// The method m names, when it is one the VM sends, sent as its kind (a request, or not).
const protocol::MethodSpec* vm_method(const Message& m) {
  const protocol::MethodSpec* spec = protocol::find_method(m.method);
  if (!spec || spec->from != protocol::Sender::vm) return nullptr;
  const bool request = spec->kind == protocol::MethodKind::request;
  return (request ? m.kind == MessageKind::request : m.kind == MessageKind::notification) ? spec
                                                                                          : nullptr;
}

}  // namespace

void Session::handle_frame(const std::string& payload) {
  std::string reason;
  auto msg = protocol::parse_message(payload, reason);
  if (!msg) return violate("protocol: malformed message: " + reason);
  const protocol::MethodSpec* spec = vm_method(*msg);
  // Sent by the jail's SIGSYS handler, whatever the child was doing.
  if (spec && spec->name == method::violation) return on_seccomp_report(msg->params);
  switch (phase_) {
    case Phase::awaiting_ready:
      if (const Route* route = spec ? find_route(kStartRoutes, spec->name) : nullptr)
        return (this->*route->handle)(*msg);
      return violate("protocol: unexpected '" + msg->method + "' before ready");
    case Phase::running:
      return handle_running(*msg);
    case Phase::finished:
      return violate("protocol: message after the result");
  }
}

void Session::handle_running(const Message& m) {
  // After SIGINT or SIGTERM nothing more is done for the run (its jail is being killed).
  if (tools::interrupted()) return stop_interrupted();
  const protocol::MethodSpec* spec = vm_method(m);
  const Route* route = spec ? find_route(kRunRoutes, spec->name) : nullptr;
  if (!route)
    return violate("protocol: unexpected " +
                   std::string(m.kind == MessageKind::response ? "response" : "message") +
                   (m.method.empty() ? "" : " '" + m.method + "'"));
  if (m.kind == MessageKind::request && !admit(m, *spec)) return;
  (this->*route->handle)(m);
}

// Queues one message to the child; writes what the socket takes now, the rest when writable.
void Session::reply(const std::string& payload) {
  if (!channel_open_) return;
  protocol::append_frame(out_buf_, payload);
  // A child that sends requests without reading answers must not make us buffer forever.
  if (out_buf_.size() - out_pos_ > 2 * req_.limits.message + 2 * protocol::kFrameHeaderBytes)
    return violate("protocol: the child does not read its answers");
  flush();
}

void Session::flush() {
  while (out_pos_ < out_buf_.size()) {
    const ssize_t n = ::send(channel_.native_handle(), out_buf_.data() + out_pos_,
                             out_buf_.size() - out_pos_, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!write_armed_) {
        write_armed_ = true;
        channel_.async_wait(asio::posix::stream_descriptor::wait_write,
                            [this](const std::error_code& ec) {
                              write_armed_ = false;
                              if (!ec && channel_open_) flush();
                            });
      }
      return;
    }
    if (n < 0) {  // the child is gone; its exit tells the rest
      out_buf_.clear();
      out_pos_ = 0;
      return;
    }
    out_pos_ += static_cast<std::size_t>(n);
  }
  out_buf_.clear();
  out_pos_ = 0;
}

void Session::on_exit() {
  siginfo_t info{};
  rusage ru{};
  long r;
  do r = ::syscall(SYS_waitid, P_PIDFD, pidfd_.native_handle(), &info, WEXITED, &ru);
  while (r < 0 && errno == EINTR);
  exited_ = true;
  o_.exit_code = info.si_code == CLD_EXITED ? info.si_status : 0;
  o_.exit_signal = (info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED) ? info.si_status : 0;
  o_.peak_rss_kib = ru.ru_maxrss;
  maybe_stop();
}

// Ends the run with status error and message (a diverged resume, a journal failure).
void Session::stop_with_error(std::string message) {
  if (!o_.stopped) o_.stop_message = std::move(message);
  o_.stopped = true;
  close_channel();
  kill_child();
}

// SIGINT or SIGTERM: the run ends as interrupted (finish), resumable when journaled.
void Session::stop_interrupted() {
  close_channel();
  kill_child();
}

// The request would have passed the run's budget: it is not run nor journaled, and the run
// ends (status budget), resumable under a raised budget.
void Session::stop_over_budget(std::string why) {
  if (!o_.over_budget) o_.budget_message = std::move(why);
  o_.over_budget = true;
  close_channel();
  kill_child();
}

void Session::violate(std::string why) {
  if (!o_.violated) o_.violation = std::move(why);
  o_.violated = true;
  close_channel();
  kill_child();
}

void Session::kill_child() {
  if (exited_ || killed_) return;
  killed_ = true;
  ::syscall(SYS_pidfd_send_signal, pidfd_.native_handle(), SIGKILL, nullptr, 0);
}

void Session::close_channel() {
  if (!channel_open_) return;
  channel_open_ = false;
  std::error_code ignored;
  channel_.close(ignored);
}

// Done when the child is reaped and its channel drained.
void Session::maybe_stop() {
  if (!exited_ || channel_open_) return;
  std::error_code ignored;
  if (req_.stop) req_.stop->disarm();
  timer_.cancel();
  kill_on_interrupt_.release();
  pidfd_.close(ignored);
}

spawner::SpawnRequest make_spawn_request(const RunRequest& request) {
  spawner::SpawnRequest sreq;
  sreq.backend = request.backend;
  sreq.cpu_seconds = request.limits.cpu_seconds;
  sreq.memory = request.limits.memory;
  sreq.message_limit = request.limits.message;
  sreq.danger_allow_exec = request.danger_allow_exec ? 1 : 0;
  return sreq;
}

RunResult serve_child(UniqueFd channel, UniqueFd pidfd, const RunRequest& request,
                      const tools::ToolRegistry& tools, OutputSink& out, const ReadyChild* ready) {
  const auto t0 = Clock::now();
  asio::io_context io(1);
  MaskingSink masked(out, request.redactor.get());
  Session session(io, std::move(channel), std::move(pidfd), request, tools, masked);
  session.start(ready);
  if (ready) session.handoff_ms_ = ms_between(t0, session.run_sent_at_);
  io.run();
  RunResult r;
  r.run_id = request.run_id;
  r = session.finish(std::move(r));
  if (request.redactor) {  // the result and the error are output too, every field the child
                           // could have put text in
    const Redactor& mask = *request.redactor;
    for (std::string* text : {&r.message, &r.traceback, &r.violation, &r.pending, &r.setup_step})
      *text = mask.redact(*text);
    mask.redact_in_place(r.result);
  }
  r.timings.total_ms = ms_between(t0, Clock::now());
  return r;
}

RunResult run_procedure(spawner::SpawnerClient& spawner, const RunRequest& request,
                        const tools::ToolRegistry& tools, OutputSink& out) {
  const auto t0 = Clock::now();
  RunResult r;
  r.run_id = request.run_id;
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    r.status = RunStatus::setup;
    r.setup_step = "socketpair";
    r.setup_errno = errno;
    r.message = std::string("sandbox setup failed at step 'socketpair': ") + std::strerror(errno);
    return r;
  }
  UniqueFd ours(sv[0]), theirs(sv[1]);
  spawner::SpawnedChild child = spawner.spawn(std::move(theirs), make_spawn_request(request));
  const double spawn_ms = ms_between(t0, Clock::now());
  if (!child.error.empty()) {
    r.status = RunStatus::setup;
    r.setup_step = child.step;
    r.setup_errno = child.error_errno;
    r.message = "sandbox setup failed at step '" + child.step +
                "': " + std::strerror(child.error_errno) +
                setup_hint(request.backend == spawner::Backend::jail);
    if (request.explain_setup_failure) r.setup_hint = request.explain_setup_failure(child.step);
    r.timings.spawn_ms = spawn_ms;
    r.timings.total_ms = ms_between(t0, Clock::now());
    return r;
  }
  r = serve_child(std::move(ours), std::move(child.pidfd), request, tools, out);
  r.timings.spawn_ms = spawn_ms;
  r.timings.total_ms = ms_between(t0, Clock::now());
  return r;
}

}  // namespace tactus::broker
