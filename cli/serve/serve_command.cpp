// tactus serve's start and end: the options and configuration read (serve: in the project's
// layers), the journal opened, the warm pool filled, unfinished runs recovered, the socket
// bound; then, on SIGTERM, the drain: no new run, running runs given serve.drain_timeout, the
// rest interrupted (resumable by the next server), exit 0 with no process left.
#include "cli/serve/serve_command.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "broker/run_services.h"
#include "broker/run_setup.h"
#include "broker/secrets.h"
#include "cli/run_command.h"
#include "cli/serve/serve_state.h"
#include "runtime/unique_fd.h"
#include "sidecars/config.h"
#include "tools/interrupt.h"

namespace tactus::cli {

namespace serve {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMinTokenBytes = 16;

void say(const std::string& line) {
  write_all(2, "tactus serve: " + line + "\n");
}

// "127.0.0.1:8750", "[::1]:8750", "localhost:8750" (loopback), or ":8750" (loopback).
bool parse_listen(const std::string& s, std::string& host, int& port, std::string& error) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos) {
    error = "--listen: expected HOST:PORT, got '" + s + "'";
    return false;
  }
  host = s.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "localhost") host = "127.0.0.1";
  const std::string p = s.substr(colon + 1);
  char* end = nullptr;
  const long v = std::strtol(p.c_str(), &end, 10);
  if (p.empty() || *end || v < 0 || v > 65535) {
    error = "--listen: '" + p + "' is not a port (0 to 65535)";
    return false;
  }
  port = static_cast<int>(v);
  return true;
}

bool loopback(const std::string& host) {
  return host.rfind("127.", 0) == 0 || host == "::1";
}

// The project's configuration: its user and project layers (no procedure's).
bool project_config(const std::string& project, sidecars::Config& config, std::string& error) {
  const char* home = std::getenv("HOME");
  sidecars::LayerPaths layers =
      sidecars::find_layers((fs::path(project) / "none.tac").string(), home ? home : "");
  layers.procedure.clear();
  return sidecars::load_config(layers, config, error) && sidecars::check_config(config, error);
}

}  // namespace

Server::Server(ServeOptions options, spawner::SpawnerClient& spawner)
    : o_(std::move(options)), spawner_(spawner) {}

Server::~Server() {
  if (pool_) pool_->stop();
  if (refill_.joinable()) refill_.join();
  if (runners_) runners_->join();
  if (admission_) admission_->join();
  // The connections' close callbacks look runs up: the runs go first (the connections they
  // hold stay alive in the server until it closes them), then the server and its loop.
  runs_.clear();
  http_.reset();
}

// Each connection is a descriptor: the soft limit (often 1024) is raised to the hard one, so
// that the connection limit, not EMFILE, is what a crowd of clients meets first.
void raise_fd_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
}

int Server::run() {
  raise_fd_limit();
  started_at_ = broker::services::unix_now();
  std::string error;
  journal_ = broker::Journal::open(o_.journal_path, error);
  if (!journal_ || !journal_->set_checkpoint_pages(kServeCheckpointPages, error)) {
    say(error);
    return 2;
  }
  HttpLimits limits;
  limits.max_body = o_.max_body;
  http_ = std::make_unique<HttpServer>(
      [this](const HttpRequest& req, std::shared_ptr<Responder> out) { handle(req, out); }, limits);
  if (!http_->listen(o_.host, o_.port, error)) {
    say(error);
    return 2;
  }
  recover();
  admission_ = std::make_unique<WorkQueue>(1);
  runners_ = std::make_unique<WorkQueue>(o_.max_concurrent);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) http_->on_signal(sig, [this](int s) { drain(s); });
  say("listening on http://" +
      (o_.host.find(':') != std::string::npos ? "[" + o_.host + "]" : o_.host) + ":" +
      std::to_string(http_->port()) + " (project " + o_.project + ", pool " +
      std::to_string(o_.pool) + ", max_concurrent " + std::to_string(o_.max_concurrent) +
      ", queue " + std::to_string(o_.queue) + ", " +
      (o_.tokens.empty() ? "no token" : std::to_string(o_.tokens.size()) + " token(s)") + ")");
  if (!queue_.empty()) say("resuming " + std::to_string(queue_.size()) + " unfinished run(s)");
  http_->post([this] { dispatch(); });
  http_->run();
  say("stopped");
  return 0;
}

// Stops the loop once draining and nothing is left to answer: no run running, no admission
// on its way (its client gets its answer), and a moment for the last answers to be written.
void Server::stop_if_drained() {
  if (!draining_ || active_ != 0 || admitting_ != 0 || stopping_) return;
  stopping_ = true;
  // The long polls left are on runs that do not move in this server (queued, kept for the
  // next start): answered with the run as it is, so a POST ?wait= client learns its run's id.
  for (auto& [id, run] : runs_) answer_waiters(*run);
  http_->after(0.2, [this] { http_->stop(); });
}

// Every wait a run makes ends on the interrupt; one that does not within 10 s is a bug, and the
// server still goes (its jails are dead already; the journal is consistent).
void Server::interrupt_runs(int signal) {
  say("interrupting " + std::to_string(active_) + " run(s) (resumable)");
  tools::interrupt_now(signal);
  http_->after(10, [this] {
    say("runs did not end 10 s after the interrupt: exiting");
    std::_Exit(1);
  });
}

void Server::drain(int signal) {
  if (draining_) {  // a second signal: the rest are interrupted now
    if (!interrupted_) interrupt_runs(signal);
    interrupted_ = true;
    return;
  }
  draining_ = true;
  say("draining: " + std::to_string(active_) + " run(s) running, " + std::to_string(queue_.size()) +
      " queued (kept for the next start)");
  http_->stop_accepting();
  stop_if_drained();
  http_->after(o_.drain_timeout, [this, signal] {
    if (interrupted_ || stopping_) return;
    interrupted_ = true;
    say("drain timeout");
    interrupt_runs(signal);
  });
}

void Server::start_pool(const sidecars::Config& config) {
  if (o_.pool == 0 || config.backend.value == "none") return;
  broker::RunRequest profile;
  profile.limits = sidecars::run_limits(config);
  profile.danger_allow_exec = config.jit.value;
  pool_ = std::make_unique<broker::WorkerPool>(spawner_, profile, o_.pool, std::chrono::minutes(5));
  std::string error;
  if (!pool_->fill(error)) say("warning: the warm pool could not be filled: " + error);
  refill_ = std::thread([this] {
    while (pool_->wait_for_room(std::chrono::seconds(1))) {
      std::string e;
      if (!pool_->fill(e)) std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  });
}

}  // namespace serve

int serve_command(const CliOptions& o, spawner::SpawnerClient& spawner) {
  namespace fs = std::filesystem;
  using serve::say;
  serve::ServeOptions so;
  std::string error;
  if (!serve::parse_listen(o.listen.empty() ? "127.0.0.1:8750" : o.listen, so.host, so.port,
                           error)) {
    say(error);
    return 2;
  }
  std::error_code ec;
  const fs::path project = fs::canonical(o.project.empty() ? "." : o.project, ec);
  if (ec || !fs::is_directory(project, ec)) {
    say("--project: '" + o.project + "' is not a directory");
    return 2;
  }
  // Everything a run resolves (its layers, the journal, relative paths) as tactus run would
  // from the project's root.
  if (::chdir(project.c_str()) != 0) {
    say("--project: cannot enter " + project.string());
    return 2;
  }
  so.project = project.string();
  sidecars::Config config;
  if (!serve::project_config(so.project, config, error)) {
    say(error);
    return 2;
  }
  const sidecars::ServeSettings& s = config.serve;
  so.pool = s.pool.value;
  so.max_concurrent = s.max_concurrent.value
                          ? s.max_concurrent.value
                          : std::max(1u, std::thread::hardware_concurrency()) * 2;
  so.queue = s.queue.value;
  so.drain_timeout = s.drain_timeout.value;
  so.max_body = s.max_body.value;
  for (const std::string& name : s.tokens.value) {
    const sidecars::SecretDecl& d = config.secrets.at(name);  // check_config: declared
    broker::SecretSource source{
        name, d.kind == "file" ? broker::SecretSource::Kind::file : broker::SecretSource::Kind::env,
        d.ref};
    std::string value;
    if (!broker::resolve_secret(source, value, error)) {
      say("serve.tokens: " + error);
      return 2;
    }
    if (value.size() < serve::kMinTokenBytes) {
      say("serve.tokens: secret '" + name + "' is shorter than " +
          std::to_string(serve::kMinTokenBytes) + " bytes; a bearer token must not be guessable");
      return 2;
    }
    so.tokens.emplace_back(name, value);
  }
  if (!serve::loopback(so.host) && so.tokens.empty()) {
    say("--listen " + o.listen +
        ": a non-loopback address needs serve.tokens (bearer tokens naming declared secrets) "
        "in .tactus/config.yml; without them only 127.0.0.1 or ::1 is served");
    return 2;
  }
  so.journal_path = broker::journal_path(config);
  // One server per project: two would both take up the journal's unfinished runs.
  const std::string lock_path = so.journal_path + ".serve.lock";
  fs::create_directories(fs::path(lock_path).parent_path(), ec);
  const UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!lock || ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    say(!lock ? "cannot open " + lock_path + ": " + std::strerror(errno)
              : "another tactus serve serves this project (" + lock_path + " is locked)");
    return 2;
  }
  serve::Server server(so, spawner);
  server.start_pool(config);
  return server.run();
}

}  // namespace tactus::cli
