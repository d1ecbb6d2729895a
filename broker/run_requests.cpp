// What the session does for each method the VM sends (the handlers of run_session.cpp's
// routes), and the journal's order around each answer (docs/durability.md).
#include "broker/run_session_state.h"

#include <algorithm>
#include <chrono>

#include "broker/run_services.h"
#include "broker/run_trace.h"
#include "sidecars/units.h"
#include "tools/human.h"
#include "tools/llm/llm_client.h"

namespace tactus::broker {

using protocol::Json;
namespace method = protocol::method;
using Message = Session::Message;

using Clock = Session::Clock;

void Session::on_ready(const Message&) {
  ready_at_ = Clock::now();
  phase_ = Phase::running;
  send_run();
}

void Session::on_setup_times(const Message& m) {
  if (setup_timed_) return violate("protocol: unexpected '" + m.method + "' before ready");
  setup_timed_ = true;
  const Json steps = m.params.is_object() ? m.params.value("steps", Json()) : Json();
  if (!steps.is_array() || steps.size() > 32) return violate("protocol: malformed setup times");
  for (const auto& s : steps) {
    if (!s.is_object() || !s.value("step", Json()).is_string() ||
        !s.value("us", Json()).is_number_integer())
      return violate("protocol: malformed setup times");
    setup_steps_.emplace_back(s["step"].get<std::string>(), s["us"].get<long>());
  }
}

void Session::on_setup_failed(const Message& m) {
  const Json& p = m.params;
  phase_ = Phase::finished;
  o_.setup_failed = true;
  o_.setup_step = p.value("step", Json("unknown")).is_string() ? p.value("step", "unknown") : "?";
  o_.setup_errno = p.value("errno", Json(0)).is_number_integer() ? p.value("errno", 0) : 0;
}

void Session::send_run() {
  const Json limits = {{"memory", req_.limits.memory},
                       {"output", req_.limits.output},
                       {"instructions", req_.limits.instructions}};
  Json run = {{"source", req_.source},
              {"chunkname", req_.chunkname},
              {"input", req_.input},
              {"limits", limits},
              {"mode", req_.mode}};
  if (!req_.options.is_null()) run["options"] = req_.options;
  if (!req_.dialect.is_null()) {
    if (!run.contains("options")) run["options"] = Json::object();
    run["options"]["dialect"] = req_.dialect;
  }
  if (journals_state()) run["journal"] = true;  // the VM sends its state as it changes
  if (req_.trace) run["trace"] = true;          // and its agent turns and Lua tool calls
  reply(protocol::make_notification(std::string(method::run), std::move(run)));
  run_sent_at_ = Clock::now();  // written (or queued) to the child: the hand-off is done
}

// Before a request is answered: a durable run's request is replayed from the journal, or
// journaled so that nothing with an outside effect runs before every earlier answer is
// committed and before it is itself journaled as in flight (a human.* request journals
// itself, on_human); a live request that would pass the budget is refused, before it is
// journaled. False when the request is dealt with (replayed, diverged, pending, over the
// budget, a journal failure).
bool Session::admit(const Message& m, const protocol::MethodSpec& spec) {
  if (req_.exchanges) {
    auto next = req_.exchanges->next(m);
    using Step = ExchangeJournal::Step;
    if (next.step == Step::replayed) return reply(next.payload), false;
    if (next.step == Step::diverged) return stop_with_error(next.message), false;
    if (next.step == Step::pending) return on_human(m, true), false;
  }
  if (!within_budget(m)) return false;
  if (!req_.exchanges || ExchangeJournal::deferrable(m)) return true;
  std::string error;
  const bool ok = spec.journal == protocol::Journaling::human
                      ? req_.exchanges->flush(error)
                      : req_.exchanges->begin_effect(m, error);
  if (!ok) stop_with_error("journal: " + error);
  return ok;
}

// tactus validate asks no model, host tool or person, and a mocked run (--mock) no model,
// whatever the VM asks: the language refuses these itself, and the broker holds the line for
// code that finds another way to ask (true: m was answered with the refusal).
bool Session::refused_by_mode(const Message& m) {
  const bool model = m.method == method::llm_chat;
  const char* why = nullptr;
  if (req_.mode == "validate")
    why = "validate: no model, host tool or person is asked during validation";
  else if (model && req_.options.is_object() && req_.options.value("mock", false) == true)
    why = "--mock: no model is asked in a mocked run (Mocks {...} and default replies answer)";
  if (!why) return false;
  respond(m, protocol::make_error(m.id, tools::to_string(tools::ToolError::denied), why));
  return true;
}

// Whether a model or host tool call may go ahead under the run's budget (false: the run is
// stopped). The hot path (no budget) pays one branch.
bool Session::within_budget(const Message& m) {
  output_cap_.reset();
  if (!req_.usage || !req_.budget.any()) return true;
  const tools::ModelPrice* price = nullptr;
  std::int64_t input = 0;
  if (m.method == method::llm_chat && m.params.is_object()) {
    const auto& providers = tools_.context().llm.providers;
    const Json provider = m.params.value("provider", Json()),
               model = m.params.value("model", Json());
    const auto p = providers.find(provider.is_string() ? provider.get<std::string>() : "");
    if (p != providers.end() && model.is_string())
      price = tools::llm::model_price(p->second, model.get<std::string>());
    if (req_.budget.tokens || req_.budget.usd) input = estimate_input_tokens(m.params);
  }
  BudgetCheck check = check_budget(req_.budget, *req_.usage, m.method, price, input);
  if (!check.refusal.empty()) {
    stop_over_budget(std::move(check.refusal));
    return false;
  }
  output_cap_ = check.max_output;
  return true;
}

// The procedure's state table, sent by the VM of a journaled run when it changed: journaled
// as an entry of its own, or, on a resume, checked against the journal.
void Session::on_state(const Message& m) {
  if (!journals_state())
    return violate("protocol: unexpected 'state' (the run does not journal its state)");
  if (!m.params.is_object() || !m.params.contains("state"))
    return violate("protocol: state without a state");
  std::string error;
  auto next = req_.exchanges->state(m.params["state"], error);
  if (next.step == ExchangeJournal::Step::diverged) return stop_with_error(next.message);
  if (!error.empty()) return stop_with_error("journal: " + error);
}

// An agent turn or a Lua tool call of a traced run (broker/run_trace.h). While a resumed run
// replays, its turns were traced by the session that ran them.
void Session::on_trace(const Message& m) {
  if (!req_.trace) return violate("protocol: unexpected 'trace' (the run is not traced)");
  std::string why;
  if (!RunTrace::valid_event(m.params, why)) return violate("protocol: " + why);
  if (req_.exchanges && req_.exchanges->replaying()) return;
  req_.trace->vm_event(m.params, why);
}

void Session::on_print(const Message& m) {
  if (!m.params.contains("text") || !m.params["text"].is_string())
    return violate("protocol: print without text");
  const auto& text = m.params["text"].get_ref<const std::string&>();
  if (!count_output(text.size()) || !ready_to_write()) return;
  out_.print(text);
  check_output();
}

void Session::on_log(const Message& m) {
  std::string error;
  const std::string line = services::log_line(m.params, req_.run_id, req_.log_json, error);
  if (!error.empty()) return violate("protocol: " + error);
  if (!count_output(m.params["message"].get_ref<const std::string&>().size()) || !ready_to_write())
    return;
  out_.log(line);
  check_output();
}

void Session::on_done(const Message& m) {
  const Json& p = m.params;
  done_at_ = Clock::now();
  phase_ = Phase::finished;
  const std::string status = p.value("status", "");
  if (status == "ok" && p.contains("result")) {
    o_.done = o_.done_ok = true;
    o_.done_result = p["result"];
    return;
  }
  const Json e = p.value("error", Json());
  if (status != "error" || !e.is_object() || !e.value("kind", Json()).is_string() ||
      !e.value("message", Json()).is_string())
    return violate("protocol: malformed result");
  o_.done = true;
  o_.done_kind = e["kind"].get<std::string>();
  o_.done_message = e["message"].get<std::string>();
  if (e.contains("traceback") && e["traceback"].is_string())
    o_.done_traceback = e["traceback"].get<std::string>();
}

void Session::on_host_call(const Message& m) {
  if (refused_by_mode(m)) return;
  const auto t0 = Clock::now();
  const Json& p = m.params;
  const Json args = p.contains("args") ? p["args"] : Json();
  std::string name;
  tools::ToolOutcome r;
  if (!p.contains("name") || !p["name"].is_string() ||
      p["name"].get_ref<const std::string&>().empty()) {
    r.code = tools::ToolError::invalid_args;
    r.message = "Host.call needs a tool name";
  } else if (name = p["name"].get<std::string>(); !tool_allowed(req_.policy, name)) {
    r.code = tools::ToolError::denied;
    // The line to add is named (deny by default is the rule; saying how to allow is the help).
    // A plain tool name gets the line to add; any other text chosen by the procedure ("*",
    // a pattern) is not turned into a suggestion.
    const bool plain =
        name.size() <= 200 && name.find_first_not_of(
                                  "abcdefghijklmnopqrstuvwxyz"
                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == std::string::npos;
    const std::string shown = name.size() > 200 ? name.substr(0, 200) + "..." : name;
    r.message =
        "host tool '" + shown + "' is not allowed (the sidecar's tools.allow decides" +
        (plain ? ": add tools: {allow: [\"" + name + "\"]} to the procedure's .tac.yml)" : ")");
  } else {
    r = tools_.call(name, args, call_context(name));
  }
  if (req_.usage && r.code != tools::ToolError::denied) req_.usage->add_tool_call();
  const std::string payload = answer(m.id, "'" + name + "'", r);
  const auto t1 = Clock::now();
  audit(name, args, r, ms_between(t0, t1));
  if (req_.trace) req_.trace->tool_call(name, args, r, t0, t1);
  if (req_.on_event)
    emit({{"type", "tool_call"},
          {"tool", name.size() > 200 ? name.substr(0, 200) + "..." : name},
          {"outcome", r.ok ? std::string("ok") : std::string(tools::to_string(r.code))},
          {"ms", ms_between(t0, t1)}});
  // A tool that crossed a wall (an MCP server that wrote trusted files) ends the run: what it
  // made was removed, but the procedure that asked for it does not go on.
  if (r.code == tools::ToolError::breach) return violate("mcp: " + r.message);
  respond(m, payload);
}

// The request's name across resumes: the same for the one a resume sends again. Made only
// for a call that sends it (Host.call's hot path, host.ping, pays nothing).
tools::CallContext Session::call_context(const std::string& tool) {
  ++requests_;
  if (tool != "http.request" || !tools_.context().network.send_idempotency_key) return {};
  const std::int64_t n = req_.exchanges ? req_.exchanges->seq() : requests_;
  return {services::idempotency_key(req_.run_id, n)};
}

// llm.chat: a model request from the VM's agents (docs/protocol.md, "Model requests"). Not
// gated by tools.allow: models are reached whatever the sandbox says, and the providers of
// the trusted configuration decide which (an unknown one is denied). Blocks this thread like
// a host tool, at most until the run's deadline (ToolRegistry::llm_chat).
void Session::on_llm_chat(const Message& m) {
  if (refused_by_mode(m)) return;
  const auto t0 = Clock::now();
  // Under a tokens or usd budget the request asks for no more output than remains of it, and
  // one that asked for no limit gets tools::kDefaultOutputTokens at most: a model's own maximum is
  // not known here, and a cap above it would be refused (the journal keeps the VM's params: a
  // resume asks the same, capped by what remains then).
  Json capped;
  if (output_cap_ && m.params.is_object()) {
    capped = m.params;
    const Json asked = capped.value("max_tokens", Json());
    const std::int64_t cap =
        asked.is_number() ? *output_cap_ : std::min(*output_cap_, tools::kDefaultOutputTokens);
    if (!asked.is_number() || asked.get<double>() > static_cast<double>(cap))
      capped["max_tokens"] = cap;
  }
  const Json& sent = capped.is_null() ? m.params : capped;
  tools::ToolOutcome r = tools_.llm_chat(sent);
  const std::string payload = answer(m.id, std::string(method::llm_chat), r);
  const auto t1 = Clock::now();
  // Counted as the answer the VM gets (and the journal keeps) says: a reply too large for the
  // message limit is a failed call here and on every resume.
  if (req_.usage && r.ok)
    req_.usage->add_model_call(services::model_name(m.params), r.result.value("usage", Json()),
                               r.result.value("cost", Json()));
  else if (req_.usage && r.code != tools::ToolError::invalid_args &&
           r.code != tools::ToolError::denied)
    req_.usage->add_failed_model_call(services::model_name(m.params),
                                      std::string(tools::to_string(r.code)), r.message);
  audit(std::string(method::llm_chat), services::llm_audit_args(m.params), r, ms_between(t0, t1),
        r.ok ? Json{{"usage", r.result.value("usage", Json())},
                    {"cost", r.result.value("cost", Json())}}
             : Json());
  if (req_.trace) req_.trace->model_call(sent, r, t0, t1);
  if (req_.on_event) {
    std::string model = services::model_name(m.params);
    if (model.size() > 200) model = model.substr(0, 200) + "...";
    emit({{"type", "model_call"},
          {"model", std::move(model)},
          {"outcome", r.ok ? std::string("ok") : std::string(tools::to_string(r.code))},
          {"usage", r.ok ? r.result.value("usage", Json()) : Json()},
          {"ms", ms_between(t0, t1)}});
  }
  respond(m, payload);
}

void Session::on_module_load(const Message& m) {
  // Read as the file tools read, with their trusted set: no trusted file (a secret file, a
  // sidecar, the journal), nor a link to one, is served as a module; and what is served is
  // masked like any answer.
  const tools::TrustedFiles& trusted = tools_.trusted();
  const bool sub = m.params.is_object() && m.params.contains("procedure");
  tools::ToolOutcome r =
      sub ? services::load_procedure({req_.procedure_dir, req_.project_dir, req_.invocation_dir},
                                     m.params, req_.limits.message / 2, trusted)
          : services::load_module(req_.procedure_dir, m.params, req_.limits.message / 2, trusted);
  respond(m, answer(m.id, "module.load", r));
}

void Session::on_time_now(const Message& m) {
  respond(m, protocol::make_result(m.id, services::time_now()));
}

void Session::on_time_clock(const Message& m) {
  respond(m, protocol::make_result(
                 m.id, services::time_clock(ms_between(started_, Clock::now()) / 1000)));
}

void Session::on_random_seed(const Message& m) {
  respond(m, protocol::make_result(m.id, services::random_seed()));
}

void Session::on_checkpoint(const Message& m) {
  respond(m, protocol::make_result(m.id, services::checkpoint_ack()));
}

void Session::on_checkpoint_result(const Message& m) {
  respond(m, protocol::make_result(m.id, services::checkpoint_result_ack()));
}

// The answer to request id, with every secret value masked (nothing a secret could hide in
// goes back into the jail unmasked) and within the message limit; r becomes what was sent.
std::string Session::answer(std::int64_t id, const std::string& what, tools::ToolOutcome& r) {
  if (req_.redactor) {
    req_.redactor->redact_in_place(r.result);
    r.message = req_.redactor->redact(r.message);
  }
  std::string payload = r.ok ? protocol::make_result(id, r.result)
                             : protocol::make_error(id, tools::to_string(r.code), r.message);
  if (payload.size() > req_.limits.message) {
    r.ok = false;
    r.code = tools::ToolError::failed;
    r.message = "the result of " + what + " (" + std::to_string(payload.size()) +
                " bytes) exceeds the message limit of " +
                sidecars::format_size(req_.limits.message);
    payload = protocol::make_error(id, tools::to_string(r.code), r.message);
  }
  return payload;
}

// spend: a model request's {usage, cost}, when it has them.
void Session::audit(const std::string& name, const Json& args, const tools::ToolOutcome& r,
                    double ms, const Json& spend) {
  if (!req_.audit || !req_.audit->is_open()) return;
  Json line = services::audit_line(req_.run_id, name, args, r, ms, spend);
  if (req_.redactor) req_.redactor->redact_in_place(line);
  req_.audit->append(std::move(line), req_.redactor.get());
}

// The answer to a request: journaled (committed) first when the run is durable, then sent.
// A journal that cannot take it stops the run: an answer the journal lacks would be asked
// again on resume, and a model or tool call repeated.
void Session::respond(const Message& m, const std::string& payload) {
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
bool Session::count_output(std::size_t bytes) {
  output_used_ += bytes + 1;
  if (req_.limits.output == 0 || output_used_ <= req_.limits.output) return true;
  o_.output_exceeded = true;
  kill_child();
  return false;
}

// Whether a printed or logged line is written out now. Not while a resumed run replays: the
// first run wrote it. Otherwise the deferred answers are committed first, since the line may
// show one, so that what a person saw is what a resume replays.
bool Session::ready_to_write() {
  if (!req_.exchanges) return true;
  if (req_.exchanges->replaying()) return false;
  std::string error;
  if (req_.exchanges->flush_if_open(error)) return true;
  stop_with_error("journal: " + error);
  return false;
}

void Session::check_output() {
  if (const std::string e = out_.write_error(); !e.empty()) stop_with_error("output closed: " + e);
}

// Human.*: asked at the terminal when someone is there; otherwise the request is journaled
// unanswered and the run suspends (the jail ends; nothing is held). already_journaled: a
// resumed run reached a request that is still unanswered.
void Session::on_human(const Message& m, bool already_journaled) {
  const std::string kind = m.method.substr(protocol::kHumanPrefix.size());
  const Json& p = m.params;
  if (const std::string e = tools::human_request_error(kind, p); !e.empty())
    return respond(m, protocol::make_error(m.id, "invalid_args", e));
  const auto finish_with = [&](const Json& value) {
    const std::string payload = protocol::make_result(m.id, Json{{"value", value}});
    std::string error;
    const bool ok =
        !req_.exchanges || (already_journaled ? req_.exchanges->answer_pending(m, payload, error)
                                              : req_.exchanges->record(m, payload, error));
    if (!ok) return stop_with_error("journal: " + error);
    reply(payload);
  };
  if (m.method == method::human_notify) {
    // A notification is written out like a Log line, and counts against the output limit.
    const std::string line = "[notify] " + p["message"].get<std::string>();
    if (!count_output(line.size())) return;
    if (!(req_.exchanges && req_.exchanges->replaying())) out_.log(line);
    check_output();
    return finish_with(Json());
  }
  // A request whose timeout passed while the run was suspended takes its default.
  if (already_journaled &&
      tools::human_timeout_passed(p, req_.exchanges->pending_since(), services::unix_now()))
    return finish_with(p["default"]);
  if (req_.ask_human) {
    // The question goes to the terminal: it is output too, and masked like the rest (an
    // option that is a secret cannot be chosen by its value; it shows masked).
    Json shown = p;
    if (req_.redactor) req_.redactor->redact_in_place(shown);
    if (auto value = req_.ask_human(kind, shown)) return finish_with(*value);
    if (tools::interrupted()) return stop_interrupted();  // the prompt's read was interrupted
  }
  if (!req_.exchanges)
    return respond(m, protocol::make_error(m.id, "failed",
                                           "Human." + kind +
                                               " needs a person at a terminal, or a journal to "
                                               "suspend the run in"));
  std::string error;
  if (!already_journaled && !req_.exchanges->record_pending(m, error))
    return stop_with_error("journal: " + error);
  if (req_.on_event) emit({{"type", "human_request"}, {"kind", kind}, {"request", p}});
  o_.suspended = true;
  o_.pending = m.method;
  close_channel();
  kill_child();
}

// Masked like every other output: nothing a secret could hide in reaches a watcher.
void Session::emit(Json event) {
  if (req_.redactor) req_.redactor->redact_in_place(event);
  req_.on_event(event);
}

void Session::on_seccomp_report(const Json& p) {
  if (o_.seccomp_reported) return;
  o_.seccomp_reported = true;
  if (p.value("nr", Json()).is_number_unsigned() && p.value("arch", Json()).is_number_unsigned()) {
    o_.seccomp_nr = p["nr"].get<long>();
    o_.seccomp_arch = p["arch"].get<std::uint32_t>();
  }
  kill_child();  // it is dying by SIGSYS already; this is in case it is not
}

}  // namespace tactus::broker
