#include "cli/run_command.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include "broker/command_launcher.h"
#include "broker/config_identity.h"
#include "broker/journal/exchange_journal.h"
#include "broker/journal/journal.h"
#include "broker/llm_providers.h"
#include "broker/random_hex.h"
#include "broker/run_session.h"
#include "broker/run_setup.h"
#include "broker/secrets.h"
#include "broker/sha256.h"
#include "broker/worker_pool.h"
#include "cli/durable_commands.h"
#include "cli/durable_run.h"
#include "cli/run_inputs.h"
#include "cli/token_printer.h"
#include "runtime/jail/kernel_probes.h"
#include "sidecars/config.h"
#include "sidecars/units.h"
#include "tools/human.h"
#include "tools/interrupt.h"
#include "tools/terminal_text.h"

namespace tactus::cli {

namespace {
bool g_closed_at_start[3] = {false, false, false};
}  // namespace

void guard_standard_fds() {
  for (int fd = 0; fd < 3; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    const int null_fd = ::open("/dev/null", O_RDWR);  // the lowest free: fd itself
    if (null_fd >= 0 && null_fd != fd) {
      ::dup2(null_fd, fd);
      ::close(null_fd);
    }
    g_closed_at_start[fd] = true;
  }
}

bool write_all(int fd, std::string_view s) {
  if (fd >= 0 && fd < 3 && g_closed_at_start[fd]) {
    errno = EBADF;
    return false;
  }
  while (!s.empty()) {
    const ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {  // an inherited non-blocking descriptor, full for now
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, -1) >= 0) continue;
    }
    if (n == 0) errno = EIO;
    if (n <= 0) return false;
    s.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

namespace {

using protocol::Json;

constexpr int kExitUsage = 2;

bool write_line(int fd, std::string_view line) {
  std::string s;
  s.reserve(line.size() + 1);
  s.append(line).push_back('\n');
  return write_all(fd, s);
}

std::string write_failure(int fd) {
  return std::string("writing to ") +
         (fd == 1   ? "stdout"
          : fd == 2 ? "stderr"
                    : "output") +
         " failed: " + std::strerror(errno);
}

// Lines to fd (printed) and stderr (logged); on a terminal made inert (tools/terminal_text.h).
class FdSink : public broker::OutputSink {
 public:
  FdSink(int fd, bool raw)
      : fd_(fd), inert_out_(tools::shows_inert(fd, raw)), inert_err_(tools::shows_inert(2, raw)) {}
  void print(std::string_view line) override {
    if (error_.empty() &&
        !write_line(fd_, inert_out_ ? tools::inert_text(line) : std::string(line)))
      error_ = write_failure(fd_);
  }
  void log(std::string_view line) override {
    if (error_.empty() && !write_line(2, inert_err_ ? tools::inert_text(line) : std::string(line)))
      error_ = write_failure(2);
  }
  std::string write_error() const override { return error_; }

 private:
  int fd_;
  bool inert_out_, inert_err_;
  std::string error_;
};

int usage_failure(const CliOptions& o, const std::string& run_id, const std::string& message) {
  if (o.json) {
    Json doc = {{"run_id", run_id}, {"status", "usage"}, {"error", {{"message", message}}}};
    write_all(1, protocol::dump_json(doc) + "\n");
  } else {
    write_all(2, "tactus: " + message + "\n");
  }
  return kExitUsage;
}

std::string joined(const Json& names) {
  std::string out;
  if (!names.is_array()) return out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += n.is_string() ? n.get<std::string>() : protocol::dump_json(n);
  }
  return out;
}

// tactus validate: what was declared, one line.
void print_validation(const CliOptions& o, const broker::RunResult& r) {
  const Json& s = r.result;
  if (s.value("quick", false)) {
    write_all(1, o.file + ": valid: it compiles (--quick: no declaration was run)\n");
    return;
  }
  // Names and notes come from the procedure: inert on a terminal, like its printed lines.
  const auto shown = [&o](int fd, const std::string& text) {
    return tools::shows_inert(fd, o.raw_output) ? tools::inert_text(text) : text;
  };
  std::string line = o.file + ": valid: ";
  if (s.value("main", false)) {
    line += "Procedure (input: " + joined(s.value("input", Json::array())) +
            "; output: " + joined(s.value("output", Json::array())) + ")";
  } else {
    line += "script";
    if (s.value("script_stopped_at_host_call", false)) {
      const Json at = s.value("script_stopped_at", Json("Host.call"));
      line += " (its top level was checked up to its first " +
              (at.is_string() ? at.get<std::string>().substr(0, 80) : std::string("effect")) + ")";
    }
  }
  if (!s.value("procedures", Json::array()).empty())
    line += "; procedures: " + joined(s["procedures"]);
  if (!s.value("agents", Json::array()).empty()) line += "; agents: " + joined(s["agents"]);
  if (!s.value("tools", Json::array()).empty()) line += "; tools: " + joined(s["tools"]);
  const Json spec = s.value("specification", Json());
  if (spec.is_object() && spec.value("scenarios", Json()).is_array() && !spec["scenarios"].empty())
    line += "; scenarios: " + std::to_string(spec["scenarios"].size());
  if (spec.is_object() && spec.value("evaluations", Json()).is_object() &&
      spec["evaluations"].value("cases", Json()).is_array())
    line += "; evaluation cases: " + std::to_string(spec["evaluations"]["cases"].size());
  write_all(1, shown(1, line + "\n"));
  // What validate defaulted or could not honour (an agent with no model, Python plugin tools).
  const Json notes = s.value("notes", Json::array());
  if (notes.is_array())
    for (std::size_t i = 0; i < notes.size() && i < 64; ++i)
      if (notes[i].is_string())
        write_all(2,
                  shown(2, "tactus: note: " + notes[i].get<std::string>().substr(0, 500) + "\n"));
}

// -v/--verbose: which configuration layers the run read and where its time went, on stderr.
void print_verbose(const CliOptions& o, const broker::RunResult& r) {
  print_layers(o);
  char buf[160];
  std::snprintf(buf, sizeof buf, "spawn %.2f ms, ready %.2f ms, run %.2f ms, total %.2f ms",
                r.timings.spawn_ms, r.timings.ready_ms, r.timings.run_ms, r.timings.total_ms);
  std::string steps;
  for (const auto& [step, us] : r.timings.setup_steps_us)
    steps += (steps.empty() ? "" : ", ") + step + " " + std::to_string(us) + " us";
  write_all(2, "tactus: run " + r.run_id + " " + std::string(broker::to_string(r.status)) + ": " +
                   buf + (steps.empty() ? "" : "; jail setup: " + steps) + "\n");
}

// false: the result could not be written to stdout (said on stderr).
bool print_outcome(const CliOptions& o, const broker::RunResult& r) {
  if (o.command == Command::validate && !o.json && r.status == broker::RunStatus::ok) {
    print_validation(o, r);
    return true;
  }
  const auto out = [](const std::string& text) {
    if (write_all(1, text)) return true;
    write_all(2, "tactus: output closed: " + write_failure(1) + "\n");
    return false;
  };
  if (o.json) return out(protocol::dump_json(broker::to_json(r)) + "\n");
  if (r.status == broker::RunStatus::ok) {
    if (r.result.is_null()) return true;
    const std::string text = protocol::dump_json(r.result, ::isatty(1) ? 2 : -1) + "\n";
    return out(tools::shows_inert(1, o.raw_output) ? tools::inert_text(text) : text);
  }
  // The first line stands alone: a procedure error starts with its file:line already; any
  // other starts with "tactus: " (docs/cli.md).
  const bool positioned =
      r.status == broker::RunStatus::error && r.message.rfind(o.file + ":", 0) == 0;
  std::string text = positioned ? r.message : "tactus: " + r.message;
  text += "\n";
  if (!r.traceback.empty()) text += r.traceback + "\n";
  if (!r.setup_hint.empty()) text += "tactus: the kernel's facts: " + r.setup_hint + "\n";
  write_all(2, tools::shows_inert(2, o.raw_output) ? tools::inert_text(text) : text);
  return true;
}

}  // namespace

spawner::Backend requested_backend(const CliOptions& o) {
  return o.no_sandbox || o.backend == "none" ? spawner::Backend::danger_none
                                             : spawner::Backend::jail;
}

int config_show_command(const CliOptions& o) {
  sidecars::Config config;
  std::string error;
  if (!broker::load_procedure_config(o.file, config, error)) {
    write_all(2, "tactus: " + error + "\n");
    return kExitUsage;
  }
  sidecars::apply_flags(o.limits, config);
  write_all(1, sidecars::show_config(config));
  for (const auto& w : sidecars::config_warnings(config)) write_all(2, "tactus: " + w + "\n");
  return 0;
}

void print_layers(const CliOptions& o) {
  const char* home = std::getenv("HOME");
  const sidecars::LayerPaths l = sidecars::find_layers(o.file, home ? home : "");
  const auto shown = [](const std::string& path) { return path.empty() ? "(none)" : path; };
  write_all(2, "tactus: layers: user " + shown(l.user) + ", project " + shown(l.project) +
                   ", procedure " + shown(l.procedure) + "\n");
}

Json runner_options(const CliOptions& o, const PreparedRun& p, Json options) {
  if (o.mock) options["mock"] = true;
  if (o.mock && !p.mock_config.is_null()) options["mock_config"] = p.mock_config;
  return options;
}

bool prepare_run(const CliOptions& o, PreparedRun& p, std::string& error) {
  broker::RunFlags flags;
  flags.limits = o.limits;
  flags.backend = o.backend;
  flags.no_sandbox = o.no_sandbox;
  flags.log_json = o.log_json;
  if (!broker::compose_run(o.file, flags, p, error)) return false;
  // Python Tactus keys tactus ignores, one line each (the run goes on without them).
  for (const auto& w : p.config.ignored_keys) write_all(2, "tactus: " + w + "\n");
  broker::RunRequest& req = p.req;
  // A jail that fails closed is explained by the kernel's facts where they tell why.
  req.explain_setup_failure = [](const std::string& step) {
    return jail::setup_failure_hint(step, jail::user_namespaces(), jail::seccomp_support());
  };
  // The run message carries the source; keep room for the envelope and the input.
  const std::uint64_t max_source = req.limits.message - req.limits.message / 8;
  if (!read_source(o.file, max_source, req.source, error)) return false;
  if (!read_input(o, req.limits.message, req.input, error)) return false;
  if (!o.mock_config.empty() &&
      !read_json_file(o.mock_config, "--mock-config", req.limits.message / 2, p.mock_config, error))
    return false;
  // The run message carries all three: together they must fit it, with room for the envelope.
  const std::uint64_t together =
      req.source.size() + protocol::dump_json(req.input).size() +
      (p.mock_config.is_null() ? 0 : protocol::dump_json(p.mock_config).size());
  if (together > max_source) {
    error = "the source, the input and --mock-config together (" + sidecars::format_size(together) +
            ") pass the message limit of " + sidecars::format_size(req.limits.message) +
            " (--message-limit)";
    return false;
  }
  if (req.backend == spawner::Backend::danger_none)
    write_all(2, "tactus: warning: running without the sandbox (" + p.unsandboxed_because +
                     "): no namespaces and no seccomp; only the child process and the "
                     "restricted VM contain this procedure\n");
  return true;
}

broker::RunResult execute_run(PreparedRun& p, const CliOptions& o, spawner::SpawnerClient& spawner,
                              broker::OutputSink& out, bool show_tokens,
                              broker::WorkerPool* shared_pool) {
  const broker::RunRequest& req = p.req;
  broker::SpawnerCommandLauncher launcher(spawner);
  tools::ToolContext tool_ctx = broker::tool_context(p, launcher);
  tool_ctx.disk->used = p.disk_used;
  // A model's reply is shown as it streams when a person watches stderr, and never with --json
  // (stderr then carries the procedure's output) or --log-json (stderr is then JSON lines).
  // The printer masks whole lines, so it is not used when a secret spans lines
  // (cli/token_printer.h).
  if (show_tokens && !o.json && !o.log_json && ::isatty(2) && !cli::multiline_secret(p.secrets)) {
    auto printer = std::make_shared<cli::TokenPrinter>(2, p.redactor);
    tool_ctx.llm.on_token = [printer](std::string_view text) { printer->token(text); };
    tool_ctx.llm.on_reply_end = [printer] { printer->end(); };
  } else if (req.on_event && !cli::multiline_secret(p.secrets)) {
    // A watcher (tactus serve's event stream) gets the reply line by line, masked the same way.
    auto lines = std::make_shared<cli::TokenPrinter>(
        [hook = req.on_event](std::string text) {
          hook(Json{{"type", "agent_chunk"}, {"text", std::move(text)}});
        },
        p.redactor);
    tool_ctx.llm.on_token = [lines](std::string_view text) { lines->token(text); };
    tool_ctx.llm.on_reply_end = [lines] { lines->end(); };
  }
  tool_ctx.deadline = std::chrono::steady_clock::now() +
                      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                          std::chrono::duration<double>(req.limits.timeout_seconds));
  const tools::ToolRegistry tools(std::move(tool_ctx));
  p.trace = broker::make_trace(p);
  p.req.trace = p.trace.get();
  broker::RunResult r;
  if (shared_pool && p.backend != "none") {
    r = shared_pool->run(req, tools, out);  // a fresh jail when its profile differs
  } else if (p.backend == "pool") {
    broker::WorkerPool pool(spawner, req, 1, std::chrono::seconds(60));
    std::string pool_error;
    if (!pool.fill(pool_error)) {
      r.run_id = req.run_id;
      r.status = broker::RunStatus::setup;
      r.message = pool_error;
    } else {
      r = pool.run(req, tools, out);
    }
  } else {
    r = broker::run_procedure(spawner, req, tools, out);  // masks what it writes out
  }
  p.req.trace = nullptr;
  if (req.usage) {
    r.usage = req.usage->usage_json();
    r.cost = req.usage->cost_json();
  }
  return r;
}

int run_command(const CliOptions& o, spawner::SpawnerClient& spawner) {
  FdSink fd_sink(o.json ? 2 : 1, o.raw_output);
  DurableRun d = run_durable(o, spawner, fd_sink, RunHooks{});
  broker::RunResult& r = d.result;
  if (!d.usage_error.empty()) return usage_failure(o, r.run_id, d.usage_error);
  const bool durable = d.journaled;
  const std::string& run_id = r.run_id;
  if (r.status == broker::RunStatus::interrupted && durable)
    r.message += "; resume it with 'tactus resume " + run_id + "'";
  if (r.status == broker::RunStatus::budget && durable)
    r.message += "; raise the budget and resume it with 'tactus resume " + run_id + "'";
  const bool printed = print_outcome(o, r);
  if (o.verbose) print_verbose(o, r);
  // The trace is sent last, after the run's end is journaled and shown: a collector that is
  // slow holds nothing up but this process's exit, and one that fails is the operator's
  // concern, never the run's failure.
  if (d.trace)
    if (const std::string warning = d.trace->finish(broker::to_string(r.status)); !warning.empty())
      write_all(2, "tactus: warning: " + warning + "\n");
  if (!printed && r.status == broker::RunStatus::ok) return 1;
  if (r.status == broker::RunStatus::interrupted) return 128 + r.signal;
  return broker::exit_code(r.status);
}

}  // namespace tactus::cli
