// A served run's life: admitted (recorded in the journal as queued before the client hears
// 201), queued, run on a runner thread as the resume of its record (run_durable: the same code
// as tactus run and resume), its events streamed, its end settled; answered, cancelled, and
// recovered when the server starts again (docs/server.md, "Durability").
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "broker/random_hex.h"
#include "broker/run_services.h"
#include "broker/run_usage.h"
#include "broker/sha256.h"
#include "cli/durable_commands.h"
#include "cli/durable_run.h"
#include "cli/run_command.h"
#include "cli/serve/serve_state.h"

namespace tactus::cli::serve {

namespace fs = std::filesystem;

namespace {

// What a run's stream keeps in memory; past it the oldest events go (a reconnect then starts
// at the oldest kept, with a "cut" status event first).
constexpr std::size_t kMaxEventBytes = 4u << 20;
// What all runs' events may hold together.
constexpr std::size_t kMaxAllEventBytes = 256u << 20;
// An event's cost beside its data (its id, type and the deque's share), for the budgets.
constexpr std::size_t kEventOverhead = 96;
// Finished runs remembered in memory (older ones are read from the journal).
constexpr std::size_t kMaxRemembered = 10000;

// The API's status of a run's result.
std::string api_status(const broker::RunResult& r, bool cancelled) {
  switch (r.status) {
    case broker::RunStatus::ok:
      return "completed";
    case broker::RunStatus::suspended:
      return "suspended";
    case broker::RunStatus::interrupted:
      return "interrupted";
    case broker::RunStatus::budget:
      return "budget";
    default:
      return cancelled ? "cancelled" : "failed";
  }
}

// Printed lines and Log lines, as events of the run's stream (already masked by the session).
class EventSink : public broker::OutputSink {
 public:
  explicit EventSink(std::function<void(std::string, Json)> add) : add_(std::move(add)) {}
  void print(std::string_view line) override {
    add_("log", Json{{"stream", "print"}, {"text", std::string(line)}});
  }
  void log(std::string_view line) override {
    add_("log", Json{{"stream", "log"}, {"text", std::string(line)}});
  }

 private:
  std::function<void(std::string, Json)> add_;
};

}  // namespace

bool terminal(const std::string& s) {
  return s == "completed" || s == "failed" || s == "cancelled";
}

bool settled(const std::string& s) {
  return terminal(s) || s == "suspended" || s == "budget" || s == "interrupted";
}

LiveRun* Server::find(const std::string& run_id) {
  const auto it = runs_.find(run_id);
  return it == runs_.end() ? nullptr : it->second.get();
}

// --- admission (the admission thread) -------------------------------------------------------

bool Server::admit(Admission& a, int& status, std::string& error, std::string& existing) {
  // A random id is new (create_run refuses one that is not); a chosen one is looked up.
  std::optional<broker::RunRecord> found;
  if (a.chosen) found = journal_->find_run(a.run_id, error);
  if (!error.empty()) return status = 503, false;
  if (found) {
    // The same Idempotency-Key again: the run it made, if it is the same procedure.
    if (a.idempotent &&
        found->procedure == (fs::path(o_.project) / a.procedure).lexically_normal().string()) {
      a.replay = true;
      existing = found->status;
      return true;
    }
    error = a.idempotent ? "this Idempotency-Key was used for another procedure"
                         : "run '" + a.run_id + "' exists already";
    return status = 409, false;
  }
  CliOptions o;
  o.command = Command::run;
  o.file = a.procedure;
  PreparedRun p;
  p.req.run_id = a.run_id;
  if (!prepare_run(o, p, error)) return status = 400, false;
  if (!p.config.journal_enabled.value) {
    error = "journal.enabled is false (" + p.config.journal_enabled.origin.text() +
            "): tactus serve records every run it accepts";
    return status = 400, false;
  }
  if (broker::journal_path(p.config) != o_.journal_path) {
    error = "journal.path (" + p.config.journal_path.origin.text() +
            ") is not the project's journal: tactus serve keeps every run in " + o_.journal_path;
    return status = 400, false;
  }
  p.req.input = a.input;
  const std::uint64_t size = p.req.source.size() + protocol::dump_json(a.input).size();
  if (size > p.req.limits.message - p.req.limits.message / 8) {
    error = "the source and the input together (" + std::to_string(size) +
            " bytes) pass the run's message limit";
    return status = 400, false;
  }
  broker::RunRecord record = new_run_record(p, a.procedure, "queued");
  record.origin = "serve";
  if (!journal_->create_run(record, error)) return status = 503, false;
  return true;
}

// --- the queue (the loop) --------------------------------------------------------------------

void Server::enqueue(const std::string& run_id) {
  queue_.push_back(run_id);
  dispatch();
}

void Server::dispatch() {
  while (!draining_ && active_ < o_.max_concurrent && !queue_.empty()) {
    const std::string id = queue_.front();
    queue_.pop_front();
    LiveRun* run = find(id);
    if (!run || run->status != "queued") continue;  // cancelled while it waited
    ++active_;
    set_status(*run, "running");
    run->started_at = broker::services::unix_now();
    runners_->post([this, id, stop = run->stop] { execute(id, stop); });
  }
}

void Server::add_event(LiveRun& run, const std::string& type, Json data) {
  RunEvent e{run.next_seq++, type, protocol::dump_json(data)};
  const std::string text =
      "id: " + std::to_string(e.seq) + "\nevent: " + e.type + "\ndata: " + e.data + "\n\n";
  // A copy: a stream dropped while written to (a client that does not read) leaves the list.
  for (auto& s : std::vector<std::shared_ptr<Responder>>(run.streams))
    if (s->open()) s->event(text);
  const std::size_t bytes = e.data.size() + kEventOverhead;
  run.event_bytes += bytes;
  event_bytes_ += bytes;
  run.events.push_back(std::move(e));
  while (run.event_bytes > kMaxEventBytes && run.events.size() > 1) {
    run.event_bytes -= run.events.front().data.size() + kEventOverhead;
    event_bytes_ -= run.events.front().data.size() + kEventOverhead;
    run.events.pop_front();
    run.events_cut = true;
  }
  // All runs' events together: the finished runs' go first, oldest first, down to their last
  // event ("done").
  const auto trim = [this](LiveRun* old) {
    while (old && old->events.size() > 1) {
      const std::size_t b = old->events.front().data.size() + kEventOverhead;
      old->event_bytes -= b;
      event_bytes_ -= b;
      old->events.pop_front();
      old->events_cut = true;
    }
  };
  for (std::size_t i = 0; event_bytes_ > kMaxAllEventBytes && i < finished_order_.size(); ++i)
    trim(find(finished_order_[i]));
  // Then the runs that wait (suspended, interrupted, over budget): they may wait for long.
  for (auto it = runs_.begin(); event_bytes_ > kMaxAllEventBytes && it != runs_.end(); ++it)
    if (settled(it->second->status) && it->second.get() != &run) trim(it->second.get());
}

void Server::set_status(LiveRun& run, const std::string& status) {
  if (run.status == status) return;
  run.status = status;
  // A terminal status is said by the stream's last event, "done", with the result or error.
  if (terminal(status)) {
    add_event(run, "done",
              status == "completed" ? Json{{"status", status}, {"result", run.result}}
                                    : Json{{"status", status}, {"error", run.error}});
  } else {
    add_event(run, "status", Json{{"status", status}});
  }
  if (settled(status)) settle(run);
}

void Server::answer_waiters(LiveRun& run) {
  if (run.waiters.empty()) return;
  const std::string body = protocol::dump_json(view(run));
  const auto waiters = std::move(run.waiters);
  run.waiters.clear();
  for (auto& w : waiters) {
    if (w.timer) w.timer->cancel();
    if (w.out->open()) w.out->send(w.status, body, "application/json", w.headers);
  }
}

void Server::settle(LiveRun& run) {
  answer_waiters(run);
  if (!terminal(run.status)) return;
  const auto streams = std::move(run.streams);
  run.streams.clear();
  for (auto& s : streams) s->close();
  finished_order_.push_back(run.run_id);
  forget_old();
}

void Server::forget_old() {
  while (finished_order_.size() > kMaxRemembered) {
    const std::string id = finished_order_.front();
    finished_order_.pop_front();
    const LiveRun* run = find(id);
    if (run && terminal(run->status) && run->streams.empty()) {
      event_bytes_ -= run->event_bytes;
      runs_.erase(id);
    }
  }
}

// --- a run (a runner thread) -----------------------------------------------------------------

void Server::execute(const std::string& run_id, std::shared_ptr<broker::RunStop> stop) {
  // Everything the run reports reaches its record on the loop.
  const auto post_event = [this, run_id](std::string type, Json data) {
    http_->post([this, run_id, type = std::move(type), data = std::move(data)]() mutable {
      LiveRun* run = find(run_id);
      if (!run) return;
      if (type == "model_call") {
        metrics_.tool_call("llm.chat", data.value("outcome", std::string()));
        const Json usage = data.value("usage", Json());
        if (usage.is_object())
          for (const char* k : {"input_tokens", "output_tokens", "cached_input_tokens"})
            if (usage.value(k, Json()).is_number())
              metrics_.tokens(data.value("model", std::string()), k, usage[k].get<double>());
        data["tool"] = "llm.chat";
        type = "tool_call";
      } else if (type == "tool_call") {
        metrics_.tool_call(data.value("tool", std::string()), data.value("outcome", std::string()));
      }
      add_event(*run, type, std::move(data));
    });
  };
  EventSink sink(post_event);
  RunHooks hooks;
  hooks.pool = pool_.get();
  hooks.stop = stop;
  hooks.quiet = true;
  hooks.on_event = [post_event](const Json& e) {
    // A human request is told once the run has suspended, with the request id an answer names.
    if (e.value("type", std::string()) == "human_request") return;
    Json data = e;
    data.erase("type");
    post_event(e.value("type", std::string("event")), std::move(data));
  };
  // The server's one journal connection, shared by every thread (a Journal is thread-safe):
  // one page cache, and no thread waiting on another connection's lock.
  broker::Journal* journal = journal_.get();
  std::string ignored;
  hooks.journal = journal;
  CliOptions o;
  o.command = Command::resume;
  o.run_id = run_id;
  o.no_input = true;
  DurableRun d = run_durable(o, spawner_, sink, hooks);
  if (!d.usage_error.empty()) {
    // Refused before it ran (its procedure or configuration changed since it was accepted, its
    // file went): it fails, if no other process holds it.
    // A run cancelled meanwhile keeps its end ("run cancelled").
    if (journal && journal->claim(run_id, ignored)) {
      const auto now = journal->find_run(run_id, ignored);
      if (now && now->status != "completed" && now->status != "failed")
        journal->finish_run(run_id, "failed", "", d.usage_error, ignored);
      journal->release(run_id);
    }
  }
  // Cancelled: ended by its stop (an error that happened on its own stays that error).
  const bool cancelled = stop && stop->stopped() && d.result.status == broker::RunStatus::error &&
                         d.result.message == kCancelled;
  // A suspended run's request, as the journal holds it (its id is what an answer names), read
  // here: the run is suspended with it in one step on the loop.
  Json pending;
  if (d.result.status == broker::RunStatus::suspended && journal)
    pending = pending_request(journal->entries(run_id, ignored));
  http_->post([this, run_id, r = std::move(d.result), usage_error = d.usage_error, cancelled,
               pending = std::move(pending)] {
    --active_;
    // A run that ended meanwhile (cancelled while its resume was refused) keeps that end.
    if (LiveRun* run = find(run_id); run && !terminal(run->status)) {
      const std::string status = usage_error.empty() ? api_status(r, cancelled) : "failed";
      Json j = broker::to_json(r);
      run->usage = j.value("usage", Json());
      run->cost = j.value("cost", Json());
      run->timings = j.value("timings", Json());
      run->ended_at = broker::services::unix_now();
      if (status == "completed") {
        run->result = r.result;
      } else if (status == "suspended") {
        run->pending = pending.is_null() ? Json{{"method", r.pending}} : pending;
      } else {
        run->error = Json{{"kind", usage_error.empty() ? broker::to_string(r.status) : "usage"},
                          {"message", shown(usage_error.empty() ? r.message : usage_error)}};
        if (cancelled) run->error["kind"] = "cancelled";
      }
      if (usage_error.empty()) {
        metrics_.run_ended(status, r.timings.total_ms / 1000);
        metrics_.jail_started((r.timings.handoff_ms >= 0
                                   ? r.timings.handoff_ms
                                   : r.timings.spawn_ms + r.timings.ready_ms) /
                              1000);
      } else {
        metrics_.run_ended(status, -1);
      }
      if (status == "suspended") add_event(*run, "human_request", run->pending);
      set_status(*run, status);
    }
    dispatch();
    stop_if_drained();
  });
  if (d.trace) d.trace->finish(broker::to_string(d.result.status));
}

// --- recovery (at start, before listening) ---------------------------------------------------

void Server::recover() {
  std::string error;
  std::vector<broker::RunRecord> mine;
  for (const char* status : {"queued", "running", "interrupted", "suspended"}) {
    for (auto& r : journal_->list_runs(status, error))
      if (r.origin == "serve") mine.push_back(std::move(r));
  }
  // Oldest first: they were accepted in that order.
  std::sort(mine.begin(), mine.end(),
            [](const auto& a, const auto& b) { return a.started_at < b.started_at; });
  for (const auto& r : mine) {
    auto run = std::make_unique<LiveRun>();
    run->run_id = r.run_id;
    std::error_code ec;
    run->procedure = fs::path(r.procedure).lexically_relative(o_.project).string();
    run->accepted_at = r.started_at;
    // Event ids go on from past any the last server gave (they were per run from 1): a client
    // reconnecting with its Last-Event-ID gets this server's events.
    run->next_seq = static_cast<std::int64_t>(started_at_ * 1000) * 1000;
    run->status = r.status == "suspended" ? "suspended" : "queued";
    LiveRun& ref = *run;
    runs_[r.run_id] = std::move(run);
    if (ref.status == "suspended") {
      ref.pending = pending_request(journal_->entries(r.run_id, error));
      continue;
    }
    queue_.push_back(r.run_id);
  }
}

// --- a run the server does not hold (the admission thread) ----------------------------------

Json pending_request(const std::vector<broker::JournalEntry>& entries) {
  if (entries.empty() || !entries.back().response_json.empty() ||
      entries.back().method.rfind("human.", 0) != 0)
    return Json();
  const auto& e = entries.back();
  Json request = Json::parse(e.request_json, nullptr, false);
  if (request.is_discarded()) request = Json::object();
  return Json{{"request_id", e.seq},
              {"method", e.method},
              {"kind", e.method.substr(6)},
              {"request", request}};
}

std::string Server::shown(std::string text) const {
  const std::string root = o_.project + "/";
  for (auto at = text.find(root); at != std::string::npos; at = text.find(root, at))
    text.erase(at, root.size());
  return text;
}

std::optional<Json> Server::journal_view(const std::string& run_id, std::string& error) {
  auto r = journal_->find_run(run_id, error);
  // Only the runs a server accepted are the API's (a run of tactus run is its user's).
  if (!r || r->origin != "serve") return std::nullopt;
  Json v{{"run_id", r->run_id},
         {"procedure", fs::path(r->procedure).lexically_relative(o_.project).string()},
         {"status", r->status},
         {"accepted_at", r->started_at},
         {"updated_at", r->updated_at}};
  if (r->status == "completed") {
    v["result"] = Json::parse(r->result_json, nullptr, false);
    if (v["result"].is_discarded()) v["result"] = nullptr;
  }
  if (r->status == "failed" && r->error == kCancelled) {
    v["status"] = "cancelled";
    v["error"] = Json{{"kind", "cancelled"}, {"message", r->error}};
  } else if (r->status == "failed") {
    v["error"] = Json{{"kind", "failed"}, {"message", shown(r->error)}};
  }
  const auto entries = journal_->entries(run_id, error);
  broker::RunUsage used;
  used.add_entries(entries);
  v["usage"] = used.usage_json();
  v["cost"] = used.cost_json();
  if (r->status == "suspended")
    if (Json p = pending_request(entries); !p.is_null()) v["pending"] = std::move(p);
  return v;
}

}  // namespace tactus::cli::serve
