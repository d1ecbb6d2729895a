#include "broker/run_session.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <asio/buffer.hpp>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include <linux/audit.h>
#include <seccomp.h>

#include "broker/sha256.h"
#include "runtime/protocol/exit_codes.h"
#include "runtime/protocol/frame.h"
#include "sidecars/units.h"
#include "tools/file_tools.h"
#include "tools/interrupt.h"

namespace tactus::broker {
namespace {

using protocol::Json;
using protocol::Message;
using protocol::MessageKind;
using Clock = std::chrono::steady_clock;

// Idempotency-Key for request n of run_id (tools.http.idempotency_key): the same on a resume,
// which numbers its requests the same way, and telling nothing of the run but its identity.
std::string idempotency_key(const std::string& run_id, std::int64_t n) {
  return "tactus-" +
         sha256_hex("tactus idempotency\n" + run_id + "\n" + std::to_string(n)).substr(0, 32);
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

class Session {
 public:
  Session(asio::io_context& io, UniqueFd channel, UniqueFd pidfd, const RunRequest& req,
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

  void start(const ReadyChild* ready) {
    started_ = Clock::now();
    timer_.expires_after(std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(req_.limits.timeout_seconds)));
    timer_.async_wait([this](const std::error_code& ec) {
      if (ec || exited_) return;
      timed_out_ = true;
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

  RunResult finish(RunResult r);

  Clock::time_point ready_at_{}, run_sent_at_{}, done_at_{};
  double handoff_ms_ = -1;

 private:
  enum class Phase { awaiting_ready, running, finished };

  // async_read_some reads speculatively before waiting, and waits without re-registering the
  // descriptor: one syscall fewer per message than async_wait + read (the Host.call hot path).
  // One read per completion also keeps a flooding child from starving the timer.
  void arm_read() {
    channel_.async_read_some(asio::buffer(read_buf_),
                             [this](const std::error_code& ec, std::size_t n) {
                               if (ec == asio::error::operation_aborted || !channel_open_) return;
                               if (ec || n == 0) return on_eof();
                               on_data(n);
                             });
  }

  void on_data(std::size_t n) {
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

  void on_eof() {
    if (decoder_.has_partial() && !violated_ && !timed_out_ && phase_ != Phase::finished)
      truncated_ = true;
    close_channel();
    maybe_stop();
  }

  void handle_frame(const std::string& payload) {
    std::string reason;
    auto msg = protocol::parse_message(payload, reason);
    if (!msg) return violate("protocol: malformed message: " + reason);
    // Sent by the jail's SIGSYS handler, whatever the child was doing.
    if (msg->kind == MessageKind::notification && msg->method == "violation")
      return on_seccomp_report(msg->params);
    switch (phase_) {
      case Phase::awaiting_ready:
        if (msg->kind == MessageKind::notification && msg->method == "ready") {
          ready_at_ = Clock::now();
          phase_ = Phase::running;
          return send_run();
        }
        if (msg->kind == MessageKind::notification && msg->method == "setup_failed")
          return on_setup_failed(msg->params);
        if (msg->kind == MessageKind::notification && msg->method == "setup" && !setup_timed_)
          return on_setup_times(msg->params);
        return violate("protocol: unexpected '" + msg->method + "' before ready");
      case Phase::running:
        return handle_running(*msg);
      case Phase::finished:
        return violate("protocol: message after the result");
    }
  }

  void handle_running(const Message& m) {
    // After SIGINT or SIGTERM nothing more is done for the run (its jail is being killed).
    if (tools::interrupted()) return stop_interrupted();
    if (m.kind == MessageKind::request && req_.exchanges) {
      auto next = req_.exchanges->next(m);
      using Step = ExchangeJournal::Step;
      if (next.step == Step::replayed) return reply(next.payload);
      if (next.step == Step::diverged) return stop_with_error(next.message);
      if (next.step == Step::pending) return on_human(m, true);
      // Nothing with an outside effect runs before every earlier answer is committed, and
      // before it is journaled as in flight (a human.* request journals itself, on_human).
      std::string error;
      if (!ExchangeJournal::deferrable(m) &&
          !(m.method.rfind("human.", 0) == 0 ? req_.exchanges->flush(error)
                                             : req_.exchanges->begin_effect(m, error)))
        return stop_with_error("journal: " + error);
    }
    if (m.kind == MessageKind::notification && m.method == "state") return on_state(m.params);
    if (m.kind == MessageKind::notification && m.method == "print") return on_print(m.params);
    if (m.kind == MessageKind::notification && m.method == "done") return on_done(m.params);
    if (m.kind == MessageKind::notification && m.method == "log") return on_log(m.params);
    if (m.kind == MessageKind::request && m.method == "host.call") return on_host_call(m);
    if (m.kind == MessageKind::request && m.method == "module.load") return on_module_load(m);
    if (m.kind == MessageKind::request && m.method == "llm.chat") return on_llm_chat(m);
    if (m.kind == MessageKind::request && m.method.rfind("human.", 0) == 0)
      return on_human(m, false);
    if (m.kind == MessageKind::request && m.method == "time.now") {
      const double now =
          std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
              .count();
      return respond(m, protocol::make_result(m.id, Json{{"unix", now}}));
    }
    if (m.kind == MessageKind::request && m.method == "time.clock")
      return respond(m, protocol::make_result(
                            m.id, Json{{"seconds", ms_between(started_, Clock::now()) / 1000}}));
    // Without a journal entry to replay, a checkpoint's function runs; its result is
    // acknowledged (and journaled, docs/durability.md).
    if (m.kind == MessageKind::request && m.method == "checkpoint")
      return respond(m, protocol::make_result(m.id, Json{{"replayed", false}}));
    if (m.kind == MessageKind::request && m.method == "checkpoint.result")
      return respond(m, protocol::make_result(m.id, Json::object()));
    if (m.kind == MessageKind::request && m.method == "random.seed") {
      std::uint32_t seed = 0;
      if (::getrandom(&seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed))
        seed = static_cast<std::uint32_t>(Clock::now().time_since_epoch().count());
      return respond(m, protocol::make_result(m.id, Json{{"seed", seed & 0x7fffffff}}));
    }
    violate("protocol: unexpected " +
            std::string(m.kind == MessageKind::response ? "response" : "message") +
            (m.method.empty() ? "" : " '" + m.method + "'"));
  }

  void send_run() {
    const Json limits = {{"memory", req_.limits.memory},
                         {"output", req_.limits.output},
                         {"instructions", req_.limits.instructions}};
    Json run = {{"source", req_.source},
                {"chunkname", req_.chunkname},
                {"input", req_.input},
                {"limits", limits},
                {"mode", req_.mode}};
    if (!req_.options.is_null()) run["options"] = req_.options;
    if (journals_state()) run["journal"] = true;  // the VM sends its state as it changes
    reply(protocol::make_notification("run", std::move(run)));
    run_sent_at_ = Clock::now();  // written (or queued) to the child: the hand-off is done
  }

  bool journals_state() const { return req_.exchanges && req_.exchanges->journals_state(); }

  // The procedure's state table, sent by the VM of a journaled run when it changed: journaled
  // as an entry of its own, or, on a resume, checked against the journal.
  void on_state(const Json& params) {
    if (!journals_state())
      return violate("protocol: unexpected 'state' (the run does not journal its state)");
    if (!params.is_object() || !params.contains("state"))
      return violate("protocol: state without a state");
    std::string error;
    auto next = req_.exchanges->state(params["state"], error);
    if (next.step == ExchangeJournal::Step::diverged) return stop_with_error(next.message);
    if (!error.empty()) return stop_with_error("journal: " + error);
  }

  // Log.debug/info/warn/error: "[info] message key=value ..." or one JSON object per event.
  void on_log(const Json& params) {
    if (!params.is_object() || !params.value("message", Json()).is_string() ||
        !params.value("level", Json()).is_string())
      return violate("protocol: log without level or message");
    const std::string level = params["level"].get<std::string>();
    if (level != "debug" && level != "info" && level != "warn" && level != "error")
      return violate("protocol: log level '" + level + "'");
    const Json fields = params.value("fields", Json::object());
    std::string line;
    if (req_.log_json) {
      const double now =
          std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
              .count();
      line = protocol::dump_json(Json{{"time", now},
                                      {"run_id", req_.run_id},
                                      {"level", level},
                                      {"message", params["message"]},
                                      {"fields", fields}});
    } else {
      line = "[" + level + "] " + params["message"].get<std::string>();
      if (fields.is_object())
        for (const auto& [k, v] : fields.items())
          line += " " + k + "=" + (v.is_string() ? v.get<std::string>() : protocol::dump_json(v));
    }
    if (!count_output(params["message"].get_ref<const std::string&>().size()) || !ready_to_write())
      return;
    out_.log(req_.redactor ? req_.redactor->redact(line) : line);
    check_output();
  }

  void check_output() {
    if (const std::string e = out_.write_error(); !e.empty())
      stop_with_error("output closed: " + e);
  }

  void on_print(const Json& params) {
    if (!params.contains("text") || !params["text"].is_string())
      return violate("protocol: print without text");
    const auto& text = params["text"].get_ref<const std::string&>();
    if (!count_output(text.size()) || !ready_to_write()) return;
    out_.print(text);
    check_output();
  }

  void on_host_call(const Message& m) {
    const auto t0 = Clock::now();
    const Json& p = m.params;
    const Json args = p.contains("args") ? p["args"] : Json();
    std::string name;
    tools::ToolOutcome r;
    if (!p.contains("name") || !p["name"].is_string() ||
        p["name"].get_ref<const std::string&>().empty()) {
      r.code = "invalid_args";
      r.message = "Host.call needs a tool name";
    } else if (name = p["name"].get<std::string>(); !tool_allowed(req_.policy, name)) {
      r.code = "denied";
      r.message = "host tool '" + name + "' is not allowed (the sidecar's tools.allow decides)";
    } else {
      r = tools_.call(name, args, call_context(name));
    }
    const std::string payload = answer(m.id, "'" + name + "'", r);
    audit(name, args, r, ms_between(t0, Clock::now()));
    respond(m, payload);
  }

  // The request's name across resumes: the same for the one a resume sends again. Made only
  // for a call that sends it (Host.call's hot path, host.ping, pays nothing).
  tools::CallContext call_context(const std::string& tool) {
    ++requests_;
    if (tool != "http.request" || !tools_.context().network.send_idempotency_key) return {};
    const std::int64_t n = req_.exchanges ? req_.exchanges->seq() : requests_;
    return {idempotency_key(req_.run_id, n)};
  }

  // llm.chat: a model request from the VM's agents (docs/protocol.md, "Model requests"). Not
  // gated by tools.allow: models are reached whatever the sandbox says, and the providers of
  // the trusted configuration decide which (an unknown one is denied). Blocks this thread like
  // a host tool, at most until the run's deadline (ToolRegistry::llm_chat).
  void on_llm_chat(const Message& m) {
    const auto t0 = Clock::now();
    tools::ToolOutcome r = tools_.llm_chat(m.params);
    const std::string payload = answer(m.id, "llm.chat", r);
    audit("llm.chat", llm_audit_args(m.params), r, ms_between(t0, Clock::now()),
          r.ok ? r.result.value("usage", Json()) : Json());
    respond(m, payload);
  }

  // The conversation can be large and is the procedure's own data: the audit line says who
  // asked which model with how much, not what was said.
  static Json llm_audit_args(const Json& p) {
    Json args = Json::object();
    for (const char* key : {"agent", "provider", "model", "model_type", "tool_choice"})
      if (p.contains(key) && p[key].is_string()) args[key] = p[key];
    if (p.contains("messages") && p["messages"].is_array()) args["messages"] = p["messages"].size();
    if (p.contains("tools") && p["tools"].is_array()) {
      Json names = Json::array();
      for (const auto& t : p["tools"])
        if (t.is_object() && t.contains("name") && t["name"].is_string())
          names.push_back(t["name"]);
      args["tools"] = std::move(names);
    }
    return args;
  }

  // The answer to request id, with every secret value masked (nothing a secret could hide in
  // goes back into the jail unmasked) and within the message limit; r becomes what was sent.
  std::string answer(std::int64_t id, const std::string& what, tools::ToolOutcome& r) {
    if (req_.redactor) {
      req_.redactor->redact_in_place(r.result);
      r.message = req_.redactor->redact(r.message);
    }
    std::string payload =
        r.ok ? protocol::make_result(id, r.result) : protocol::make_error(id, r.code, r.message);
    if (payload.size() > req_.limits.message) {
      r.ok = false;
      r.code = "failed";
      r.message = "the result of " + what + " (" + std::to_string(payload.size()) +
                  " bytes) exceeds the message limit of " +
                  sidecars::format_size(req_.limits.message);
      payload = protocol::make_error(id, r.code, r.message);
    }
    return payload;
  }

  // require("a.b") of a module beside the procedure: a/b.lua, else a/b.tac, read with the
  // file tools' resolution below the procedure's directory (no escape by .. or symlinks).
  void on_module_load(const Message& m) {
    const Json name = m.params.value("name", Json());
    if (!name.is_string() || name.get_ref<const std::string&>().empty() ||
        name.get_ref<const std::string&>().find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") !=
            std::string::npos)
      return respond(m,
                     protocol::make_error(m.id, "invalid_args", "module.load needs a module name"));
    std::string rel = name.get<std::string>();
    std::replace(rel.begin(), rel.end(), '.', '/');
    if (req_.procedure_dir.empty())
      return respond(m, protocol::make_error(m.id, "not_found", "no procedure directory"));
    const std::vector<tools::Mount> mounts = {{"/procedure", req_.procedure_dir, true}};
    tools::FileLimits limits;
    limits.max_read = req_.limits.message / 2;
    tools::ToolOutcome r;
    std::string path;
    for (const char* ext : {".lua", ".tac"}) {
      path = rel + ext;
      // Modules are the procedure's own code beside it: no .tactus name can be formed from a
      // dotted module name, and only .lua and .tac files are read.
      r = tools::file_read(mounts, limits, tools::TrustedFiles{},
                           Json{{"path", "/procedure/" + path}});
      if (r.ok || r.code != "not_found") break;
    }
    if (!r.ok && r.code == "not_found")
      return respond(
          m, protocol::make_error(m.id, "not_found",
                                  "module '" + name.get<std::string>() + "' not found: no " + rel +
                                      ".lua or " + rel + ".tac beside the procedure"));
    if (!r.ok) return respond(m, protocol::make_error(m.id, r.code, r.message));
    respond(m, protocol::make_result(m.id, Json{{"source", r.result["content"]}, {"path", path}}));
  }

  // usage: a model request's token counts, when it has them.
  void audit(const std::string& name, const Json& args, const tools::ToolOutcome& r, double ms,
             const Json& usage = Json()) {
    if (!req_.audit || !req_.audit->is_open()) return;
    Json line = {
        {"time", std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
                     .count()},
        {"run_id", req_.run_id},
        {"tool", name},
        {"args", args},
        {"outcome", r.ok ? "ok" : r.code},
        {"duration_ms", ms}};
    if (!r.ok) line["message"] = r.message;
    if (!usage.is_null()) line["usage"] = usage;
    if (req_.redactor) req_.redactor->redact_in_place(line);
    req_.audit->append(std::move(line), req_.redactor.get());
  }

  void on_done(const Json& p) {
    done_at_ = Clock::now();
    phase_ = Phase::finished;
    const std::string status = p.value("status", "");
    if (status == "ok" && p.contains("result")) {
      done_ = true;
      done_ok_ = true;
      done_result_ = p["result"];
      return;
    }
    const Json e = p.value("error", Json());
    if (status != "error" || !e.is_object() || !e.value("kind", Json()).is_string() ||
        !e.value("message", Json()).is_string())
      return violate("protocol: malformed result");
    done_ = true;
    done_kind_ = e["kind"].get<std::string>();
    done_message_ = e["message"].get<std::string>();
    if (e.contains("traceback") && e["traceback"].is_string())
      done_traceback_ = e["traceback"].get<std::string>();
  }

  void on_seccomp_report(const Json& p) {
    if (seccomp_reported_) return;
    seccomp_reported_ = true;
    if (p.value("nr", Json()).is_number_unsigned() &&
        p.value("arch", Json()).is_number_unsigned()) {
      seccomp_nr_ = p["nr"].get<long>();
      seccomp_arch_ = p["arch"].get<std::uint32_t>();
    }
    kill_child();  // it is dying by SIGSYS already; this is in case it is not
  }

  void on_setup_times(const Json& p) {
    setup_timed_ = true;
    const Json steps = p.value("steps", Json());
    if (!steps.is_array() || steps.size() > 32) return violate("protocol: malformed setup times");
    for (const auto& s : steps) {
      if (!s.is_object() || !s.value("step", Json()).is_string() ||
          !s.value("us", Json()).is_number_integer())
        return violate("protocol: malformed setup times");
      setup_steps_.emplace_back(s["step"].get<std::string>(), s["us"].get<long>());
    }
  }

  void on_setup_failed(const Json& p) {
    phase_ = Phase::finished;
    setup_failed_ = true;
    setup_step_ = p.value("step", Json("unknown")).is_string() ? p.value("step", "unknown") : "?";
    setup_errno_ = p.value("errno", Json(0)).is_number_integer() ? p.value("errno", 0) : 0;
  }

  // The answer to a request: journaled (committed) first when the run is durable, then sent.
  // A journal that cannot take it stops the run: an answer the journal lacks would be asked
  // again on resume, and a model or tool call repeated.
  void respond(const Message& m, const std::string& payload) {
    // An answer made after an interrupt (a command killed with the jail, a transfer aborted)
    // is not the request's answer: it is not journaled, and a resume sends the request again.
    if (tools::interrupted()) return stop_interrupted();
    std::string error;
    if (req_.exchanges && ExchangeJournal::deferrable(m)) {
      // Its entry is not committed before the answer goes anyway (it has no outside effect):
      // send first, and journal while the VM works on the answer.
      reply(payload);
      if (!req_.exchanges->record(m, payload, error)) stop_with_error("journal: " + error);
      return;
    }
    if (req_.exchanges && !req_.exchanges->record(m, payload, error))
      return stop_with_error("journal: " + error);
    reply(payload);
  }

  // A printed or logged line counts against the output limit, its newline included. The VM
  // stops itself at the same count; this is the authority if it does not.
  bool count_output(std::size_t bytes) {
    output_used_ += bytes + 1;
    if (req_.limits.output == 0 || output_used_ <= req_.limits.output) return true;
    output_exceeded_ = true;
    kill_child();
    return false;
  }

  // Whether a printed or logged line is written out now. Not while a resumed run replays: the
  // first run wrote it. Otherwise the deferred answers are committed first, since the line may
  // show one, so that what a person saw is what a resume replays.
  bool ready_to_write() {
    if (!req_.exchanges) return true;
    if (req_.exchanges->replaying()) return false;
    std::string error;
    if (req_.exchanges->flush_if_open(error)) return true;
    stop_with_error("journal: " + error);
    return false;
  }

  // Ends the run with status error and message (a diverged resume, a journal failure).
  void stop_with_error(std::string message) {
    if (!stopped_) stop_message_ = std::move(message);
    stopped_ = true;
    close_channel();
    kill_child();
  }

  // Human.*: asked at the terminal when someone is there; otherwise the request is journaled
  // unanswered and the run suspends (the jail ends; nothing is held). already_journaled: a
  // resumed run reached a request that is still unanswered.
  void on_human(const Message& m, bool already_journaled) {
    const std::string kind = m.method.substr(6);
    const Json& p = m.params;
    if (!p.is_object() || !p.value("message", Json()).is_string())
      return respond(
          m, protocol::make_error(m.id, "invalid_args", "Human." + kind + " needs a message"));
    const auto finish_with = [&](const Json& value) {
      const std::string payload = protocol::make_result(m.id, Json{{"value", value}});
      std::string error;
      const bool ok =
          !req_.exchanges || (already_journaled ? req_.exchanges->answer_pending(m, payload, error)
                                                : req_.exchanges->record(m, payload, error));
      if (!ok) return stop_with_error("journal: " + error);
      reply(payload);
    };
    if (kind == "notify") {
      // A notification is written out like a Log line, and counts against the output limit.
      if (!count_output(9 + p["message"].get_ref<const std::string&>().size())) return;
      if (!(req_.exchanges && req_.exchanges->replaying()))
        out_.log("[notify] " + (req_.redactor
                                    ? req_.redactor->redact(p["message"].get<std::string>())
                                    : p["message"].get<std::string>()));
      check_output();
      return finish_with(Json());
    }
    // A request whose timeout passed while the run was suspended takes its default.
    if (already_journaled && p.contains("default") && p.value("timeout", Json()).is_number()) {
      const double now =
          std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
              .count();
      if (now - req_.exchanges->pending_since() >= p["timeout"].get<double>())
        return finish_with(p["default"]);
    }
    if (req_.ask_human) {
      if (auto value = req_.ask_human(kind, p)) return finish_with(*value);
      if (tools::interrupted()) return stop_interrupted();  // the prompt's read was interrupted
    }
    if (!req_.exchanges)
      return respond(m,
                     protocol::make_error(
                         m.id, "failed",
                         "Human." + kind +
                             " needs a person at a terminal, or a journal to suspend the run in"));
    std::string error;
    if (!already_journaled && !req_.exchanges->record_pending(m, error))
      return stop_with_error("journal: " + error);
    suspended_ = true;
    pending_ = m.method;
    close_channel();
    kill_child();
  }

  // Queues one message to the child; writes what the socket takes now, the rest when writable.
  void reply(const std::string& payload) {
    if (!channel_open_) return;
    protocol::append_frame(out_buf_, payload);
    // A child that sends requests without reading answers must not make us buffer forever.
    if (out_buf_.size() - out_pos_ > 2 * req_.limits.message + 2 * protocol::kFrameHeaderBytes)
      return violate("protocol: the child does not read its answers");
    flush();
  }

  void flush() {
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

  // SIGINT or SIGTERM: the run ends as interrupted (finish), resumable when journaled.
  void stop_interrupted() {
    close_channel();
    kill_child();
  }

  void violate(std::string why) {
    if (!violated_) violation_ = std::move(why);
    violated_ = true;
    close_channel();
    kill_child();
  }

  void kill_child() {
    if (exited_ || killed_) return;
    killed_ = true;
    ::syscall(SYS_pidfd_send_signal, pidfd_.native_handle(), SIGKILL, nullptr, 0);
  }

  void close_channel() {
    if (!channel_open_) return;
    channel_open_ = false;
    std::error_code ignored;
    channel_.close(ignored);
  }

  void on_exit() {
    siginfo_t info{};
    rusage ru{};
    long r;
    do r = ::syscall(SYS_waitid, P_PIDFD, pidfd_.native_handle(), &info, WEXITED, &ru);
    while (r < 0 && errno == EINTR);
    exited_ = true;
    exit_code_ = info.si_code == CLD_EXITED ? info.si_status : 0;
    exit_signal_ = (info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED) ? info.si_status : 0;
    peak_rss_kib_ = ru.ru_maxrss;
    maybe_stop();
  }

  // Done when the child is reaped and its channel drained.
  void maybe_stop() {
    if (!exited_ || channel_open_) return;
    std::error_code ignored;
    timer_.cancel();
    kill_on_interrupt_.release();
    pidfd_.close(ignored);
  }

  const RunRequest& req_;
  const tools::ToolRegistry& tools_;
  OutputSink& out_;
  asio::posix::stream_descriptor channel_;
  asio::posix::stream_descriptor pidfd_;
  // Declared after pidfd_: released before it closes.
  tools::KillOnInterrupt kill_on_interrupt_;
  asio::steady_timer timer_;
  protocol::FrameDecoder decoder_;
  std::array<char, 64 * 1024> read_buf_;
  std::string out_buf_;
  std::size_t out_pos_ = 0;
  bool write_armed_ = false;

  Phase phase_ = Phase::awaiting_ready;
  Clock::time_point started_{};
  bool channel_open_ = true, exited_ = false, killed_ = false, timed_out_ = false;
  bool violated_ = false, truncated_ = false, output_exceeded_ = false, setup_failed_ = false;
  bool stopped_ = false, suspended_ = false;
  std::string stop_message_, pending_;
  std::string violation_;
  std::uint64_t output_used_ = 0;
  std::int64_t requests_ = 0;  // host.calls so far (names them when there is no journal)

  bool setup_timed_ = false;
  std::vector<std::pair<std::string, long>> setup_steps_;
  bool seccomp_reported_ = false;
  long seccomp_nr_ = -1;
  std::uint32_t seccomp_arch_ = 0;
  bool done_ = false, done_ok_ = false;
  Json done_result_;
  std::string done_kind_, done_message_, done_traceback_;
  std::string setup_step_;
  int setup_errno_ = 0;
  int exit_code_ = 0, exit_signal_ = 0;
  long peak_rss_kib_ = 0;
};

const char* arch_name(std::uint32_t arch) {
  switch (arch) {
    case AUDIT_ARCH_X86_64:
      return "x86_64";
    case AUDIT_ARCH_I386:
      return "x86";
    case AUDIT_ARCH_AARCH64:
      return "aarch64";
    case AUDIT_ARCH_ARM:
      return "arm";
    default:
      return "unknown";
  }
}

// The syscall's name for its architecture; x32 numbers come with the x86_64 token and bit 30.
std::string syscall_name(std::uint32_t arch, long nr, std::string& arch_text) {
  arch_text = arch_name(arch);
  constexpr long kX32Bit = 0x40000000;
  if (arch == AUDIT_ARCH_X86_64 && (nr & kX32Bit)) {
    arch = SCMP_ARCH_X32;
    arch_text = "x32";
  }
  char* name = seccomp_syscall_resolve_num_arch(arch, static_cast<int>(nr));
  std::string out = name ? name : "?";
  std::free(name);
  return out;
}

std::string describe_signal(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return std::to_string(sig) + (abbrev ? std::string(", SIG") + abbrev : std::string());
}

// Fail closed, and say how to opt out.
std::string setup_hint(spawner::Backend backend) {
  if (backend != spawner::Backend::jail) return "";
  return "; the jail cannot be built here (see 'tactus sandbox status'); --no-sandbox runs "
         "without it, with no isolation";
}

RunResult Session::finish(RunResult r) {
  r.peak_rss_kib = peak_rss_kib_;
  r.timings.handoff_ms = handoff_ms_;
  r.timings.setup_steps_us = setup_steps_;
  if (ready_at_ != Clock::time_point{}) r.timings.ready_ms = ms_between(started_, ready_at_);
  if (done_at_ != Clock::time_point{}) r.timings.run_ms = ms_between(run_sent_at_, done_at_);
  const auto& L = req_.limits;
  // Interrupted, unless something else had ended the run first (a limit, a violation, a
  // journal failure, a result or a suspension): those keep their own status.
  if (tools::interrupted() && !done_ && !suspended_ && !stopped_ && !violated_ &&
      !seccomp_reported_ && !timed_out_ && !output_exceeded_) {
    mark_interrupted(r, tools::interrupted());
    return r;
  }
  if (suspended_) {
    r.status = RunStatus::suspended;
    r.pending = pending_;
    r.message = "run " + req_.run_id + " is waiting for an answer to " + pending_ +
                ": answer it with 'tactus answer " + req_.run_id +
                " --value VALUE', then 'tactus resume " + req_.run_id + "'";
    return r;
  }
  if (stopped_) {
    r.status = RunStatus::error;
    r.message = stop_message_;
    return r;
  }
  if (seccomp_reported_ || exit_signal_ == SIGSYS) {
    r.status = RunStatus::violation;
    r.violation = "seccomp";
    if (seccomp_nr_ >= 0) {
      r.syscall = syscall_name(seccomp_arch_, seccomp_nr_, r.arch);
      r.syscall_nr = seccomp_nr_;
      r.message = "sandbox violation: syscall " + r.syscall + " (" + std::to_string(seccomp_nr_) +
                  ", " + r.arch + ")";
    } else {
      r.message = "sandbox violation: a syscall outside the allowlist (killed by SIGSYS)";
    }
  } else if (violated_) {
    r.status = RunStatus::violation;
    r.violation = violation_;
    r.message = "sandbox violation: " + violation_;
  } else if (timed_out_) {
    r.status = RunStatus::timeout;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", L.timeout_seconds);
    r.message = std::string("wall-clock timeout of ") + buf + " s exceeded; the run was killed";
  } else if (output_exceeded_) {
    r.status = RunStatus::output;
    r.message = "output limit exceeded (" + sidecars::format_size(L.output) + ")";
  } else if (done_ && done_ok_) {
    r.status = RunStatus::ok;
    r.result = std::move(done_result_);
  } else if (done_) {
    r.status = done_kind_ == "memory"         ? RunStatus::memory
               : done_kind_ == "instructions" ? RunStatus::cpu
               : done_kind_ == "output"       ? RunStatus::output
                                              : RunStatus::error;
    r.message = done_message_;
    if (r.status == RunStatus::memory)
      r.message =
          "memory limit of " + sidecars::format_size(L.memory) + " exceeded: " + done_message_;
    r.traceback = done_traceback_;
  } else if (setup_failed_) {
    r.status = RunStatus::setup;
    r.setup_step = setup_step_;
    r.setup_errno = setup_errno_;
    r.message = "sandbox setup failed at step '" + setup_step_ +
                "': " + std::strerror(setup_errno_) + setup_hint(req_.backend);
  } else if (exit_signal_ == SIGXCPU || exit_code_ == protocol::kExitCpuLimit) {
    r.status = RunStatus::cpu;
    r.message = "CPU time limit of " + std::to_string(L.cpu_seconds) + " s exceeded";
  } else if (exit_signal_ != 0) {
    r.status = RunStatus::crashed;
    r.signal = exit_signal_;
    r.message = "the procedure's process was killed by signal " + describe_signal(exit_signal_);
  } else {
    r.status = RunStatus::crashed;
    r.exit_code = exit_code_;
    r.message = std::string("the procedure's process exited (code ") + std::to_string(exit_code_) +
                ") without a result" + (truncated_ ? " in the middle of a message" : "");
  }
  return r;
}

}  // namespace

spawner::SpawnRequest make_spawn_request(const RunRequest& request) {
  spawner::SpawnRequest sreq;
  sreq.backend = request.backend;
  sreq.cpu_seconds = request.limits.cpu_seconds;
  sreq.memory = request.limits.memory;
  sreq.message_limit = request.limits.message;
  sreq.allow_exec = request.allow_exec ? 1 : 0;
  return sreq;
}

RunResult serve_child(UniqueFd channel, UniqueFd pidfd, const RunRequest& request,
                      const tools::ToolRegistry& tools, OutputSink& out, const ReadyChild* ready) {
  const auto t0 = Clock::now();
  asio::io_context io(1);
  Session session(io, std::move(channel), std::move(pidfd), request, tools, out);
  session.start(ready);
  if (ready) session.handoff_ms_ = ms_between(t0, session.run_sent_at_);
  io.run();
  RunResult r;
  r.run_id = request.run_id;
  r = session.finish(std::move(r));
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
                "': " + std::strerror(child.error_errno) + setup_hint(request.backend);
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
