#include "broker/worker_pool.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/protocol/frame.h"
#include "runtime/protocol/message.h"
#include "runtime/protocol/methods.h"

namespace tactus::broker {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kReadyTimeoutMs = 5000;

bool same_profile(const spawner::SpawnRequest& a, const spawner::SpawnRequest& b) {
  return a.backend == b.backend && a.cpu_seconds == b.cpu_seconds && a.memory == b.memory &&
         a.message_limit == b.message_limit && a.danger_allow_exec == b.danger_allow_exec;
}

// Reads the worker's setup times and its ready; anything else means the worker is unusable.
bool await_ready(int fd, std::size_t limit, ReadyChild& ready, std::string& error) {
  protocol::FrameDecoder decoder(limit);
  std::string payload;
  for (;;) {
    while (decoder.next(payload)) {
      auto msg = protocol::parse_message(payload, error);
      if (!msg || msg->kind != protocol::MessageKind::notification) {
        error = "pool worker: bad message before ready: " + error;
        return false;
      }
      if (msg->method == protocol::method::ready) {
        if (decoder.has_partial()) break;
        return true;
      }
      if (msg->method == protocol::method::setup &&
          msg->params.value("steps", protocol::Json()).is_array()) {
        for (const auto& s : msg->params["steps"])
          if (s.value("step", protocol::Json()).is_string() &&
              s.value("us", protocol::Json()).is_number_integer())
            ready.setup_steps_us.emplace_back(s["step"].get<std::string>(), s["us"].get<long>());
        continue;
      }
      if (msg->method == protocol::method::setup_failed) {
        error = "pool worker: sandbox setup failed at step '" +
                msg->params.value("step", std::string("?")) +
                "': " + std::strerror(msg->params.value("errno", 0));
        return false;
      }
      error = "pool worker: unexpected '" + msg->method + "' before ready";
      return false;
    }
    if (decoder.error() != protocol::FrameError::none) break;
    pollfd p{fd, POLLIN, 0};
    const int n = ::poll(&p, 1, kReadyTimeoutMs);
    if (n <= 0) {
      error = n == 0 ? "pool worker: no ready within 5 s" : "pool worker: poll failed";
      return false;
    }
    char buf[4096];
    const ssize_t got = ::read(fd, buf, sizeof buf);
    if (got <= 0) break;
    decoder.feed(buf, static_cast<std::size_t>(got));
  }
  error = "pool worker: exited or broke the protocol before ready";
  return false;
}

}  // namespace

WorkerPool::WorkerPool(spawner::SpawnerClient& spawner, const RunRequest& profile, std::size_t size,
                       std::chrono::milliseconds max_idle)
    : spawner_(spawner), profile_(make_spawn_request(profile)), size_(size), max_idle_(max_idle) {
  profile_.backend = spawner::Backend::jail;  // pool workers are always fully jailed
}

WorkerPool::~WorkerPool() {
  for (auto& w : idle_) retire(w);
}

std::size_t WorkerPool::idle() const {
  const std::lock_guard<std::mutex> lock(m_);
  return idle_.size();
}

std::size_t WorkerPool::retired_stale() const {
  const std::lock_guard<std::mutex> lock(m_);
  return retired_stale_;
}

bool WorkerPool::wait_for_room(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(m_);
  room_.wait_for(lock, timeout, [this] { return stopped_ || idle_.size() < size_; });
  return !stopped_;
}

void WorkerPool::stop() {
  {
    const std::lock_guard<std::mutex> lock(m_);
    stopped_ = true;
  }
  room_.notify_all();
}

void WorkerPool::retire(Worker& w) {
  if (!w.pidfd) return;
  ::syscall(SYS_pidfd_send_signal, w.pidfd.get(), SIGKILL, nullptr, 0);
  siginfo_t info{};
  while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(w.pidfd.get()), &info,
                  WEXITED) != 0 &&
         errno == EINTR) {
  }
  w.pidfd.reset();
  w.channel.reset();
}

bool WorkerPool::spawn_worker(std::string& error) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    error = std::string("socketpair: ") + std::strerror(errno);
    return false;
  }
  Worker w;
  w.channel = UniqueFd(sv[0]);
  spawner::SpawnedChild child = spawner_.spawn(UniqueFd(sv[1]), profile_);
  if (!child.error.empty()) {
    error = "pool worker: sandbox setup failed at step '" + child.step +
            "': " + std::strerror(child.error_errno);
    return false;
  }
  w.pidfd = std::move(child.pidfd);
  w.born = Clock::now();
  if (!await_ready(w.channel.get(), profile_.message_limit, w.ready, error)) {
    retire(w);
    return false;
  }
  const std::lock_guard<std::mutex> lock(m_);
  idle_.push_back(std::move(w));
  return true;
}

bool WorkerPool::fill(std::string& error) {
  for (;;) {
    {
      const std::lock_guard<std::mutex> lock(m_);
      if (idle_.size() >= size_ || stopped_) return true;
    }
    if (!spawn_worker(error)) return false;
  }
}

RunResult WorkerPool::run(const RunRequest& request, const tools::ToolRegistry& tools,
                          OutputSink& out) {
  const auto t0 = Clock::now();
  if (!same_profile(make_spawn_request(request), profile_))
    return run_procedure(spawner_, request, tools, out);
  Worker w;
  std::deque<Worker> stale;
  {
    const std::lock_guard<std::mutex> lock(m_);
    // Idle too long: replaced rather than trusted with a job (design: idle workers have a
    // maximum age). Retired outside the lock.
    while (!idle_.empty() && t0 - idle_.front().born > max_idle_) {
      stale.push_back(std::move(idle_.front()));
      idle_.pop_front();
      ++retired_stale_;
    }
    if (!idle_.empty()) {
      w = std::move(idle_.front());
      idle_.pop_front();
    }
  }
  room_.notify_all();
  for (auto& s : stale) retire(s);
  if (!w.pidfd) return run_procedure(spawner_, request, tools, out);
  const double take_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  RunResult r =
      serve_child(std::move(w.channel), std::move(w.pidfd), request, tools, out, &w.ready);
  if (r.timings.handoff_ms >= 0) r.timings.handoff_ms += take_ms;
  r.timings.spawn_ms = 0;
  r.timings.ready_ms = 0;
  return r;
}

}  // namespace tactus::broker
