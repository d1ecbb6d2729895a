// The run routes of tactus serve (docs/server.md): a run's view, the list, a run (and its long
// poll), its event stream, answers and cancels. The routing table and POST /v1/runs are in
// serve_api.cpp.
#include <algorithm>
#include <filesystem>

#include "broker/run_services.h"
#include "cli/durable_commands.h"
#include "cli/serve/serve_state.h"

namespace tactus::cli::serve {

namespace fs = std::filesystem;

namespace {

// A JSON answer value as tactus answer --value takes it.
bool answer_text(const Json& v, std::string& text) {
  if (v.is_boolean()) return text = v.get<bool>() ? "yes" : "no", true;
  if (v.is_string()) return text = v.get<std::string>(), true;
  if (v.is_number()) return text = protocol::dump_json(v), true;
  return false;
}

}  // namespace

Json Server::view(const LiveRun& run) const {
  Json v{{"run_id", run.run_id},
         {"procedure", run.procedure},
         {"status", run.status},
         {"accepted_at", run.accepted_at}};
  if (run.started_at > 0) v["started_at"] = run.started_at;
  if (run.ended_at > 0) v["ended_at"] = run.ended_at;
  if (run.status == "completed") v["result"] = run.result;
  if (!run.error.is_null() && run.status != "completed" && run.status != "queued" &&
      run.status != "running")
    v["error"] = run.error;
  if (run.status == "suspended") v["pending"] = run.pending;
  if (!run.usage.is_null()) v["usage"] = run.usage;
  if (!run.cost.is_null()) v["cost"] = run.cost;
  if (!run.timings.is_null()) v["timings"] = run.timings;
  return v;
}

void Server::list_runs(const HttpRequest& req, std::shared_ptr<Responder> out) {
  const auto s = req.query.find("status");
  const std::string status = s == req.query.end() ? "" : s->second;
  static const char* kStatuses[] = {"queued", "running",   "suspended", "interrupted",
                                    "budget", "completed", "failed"};
  if (!status.empty() &&
      std::find_if(std::begin(kStatuses), std::end(kStatuses),
                   [&](const char* k) { return status == k; }) == std::end(kStatuses))
    return fail(*out, 400,
                "status: '" + status.substr(0, 40) +
                    "' is not one of queued, running, suspended, interrupted, budget, "
                    "completed, failed");
  long limit = 50;
  if (const auto l = req.query.find("limit"); l != req.query.end()) {
    char* end = nullptr;
    limit = std::strtol(l->second.c_str(), &end, 10);
    if (l->second.empty() || *end || limit < 1 || limit > 1000)
      return fail(*out, 400, "limit: expected a whole number from 1 to 1000");
  }
  admission_->post([this, status, limit, out] {
    std::string error;
    auto records = journal_->list_runs(status, error);
    Json list = Json::array();
    for (const auto& r : records) {
      if (static_cast<long>(list.size()) >= limit) break;
      if (r.origin != "serve") continue;  // the command line's runs are its user's
      list.push_back(
          {{"run_id", r.run_id},
           {"procedure", fs::path(r.procedure).lexically_relative(o_.project).string()},
           {"status", r.status == "failed" && r.error == kCancelled ? "cancelled" : r.status},
           {"accepted_at", r.started_at},
           {"updated_at", r.updated_at}});
    }
    http_->post([out, list = std::move(list), error] {
      if (!error.empty()) return fail(*out, 503, error);
      out->send(200, protocol::dump_json(Json{{"runs", list}}));
    });
  });
}

bool wait_seconds(const HttpRequest& req, Responder& out, double& wait) {
  wait = 0;
  const auto w = req.query.find("wait");
  if (w == req.query.end()) return true;
  char* end = nullptr;
  wait = std::strtod(w->second.c_str(), &end);
  if (!w->second.empty() && !*end && wait >= 0 && wait <= 300) return true;
  fail(out, 400, "wait: expected seconds from 0 to 300");
  return false;
}

void Server::answer_when_settled(LiveRun& run, std::shared_ptr<Responder> out, double wait,
                                 int status, std::map<std::string, std::string> headers) {
  if (wait <= 0 || settled(run.status))
    return out->send(status, protocol::dump_json(view(run)), "application/json", headers);
  // Long poll: answered when the run settles (settle) or when the wait is over.
  const std::string id = run.run_id;
  auto timer = http_->after(wait, [this, id, out, status, headers] {
    LiveRun* r = find(id);
    if (!r) return;
    auto& ws = r->waiters;
    ws.erase(std::remove_if(ws.begin(), ws.end(), [&](auto& w) { return w.out == out; }), ws.end());
    if (out->open()) out->send(status, protocol::dump_json(view(*r)), "application/json", headers);
  });
  run.waiters.push_back({out, timer, status, std::move(headers)});
  // A client that goes stops waiting: its timer and its place go with it.
  Responder* raw = out.get();
  out->on_close([this, id, raw, timer] {
    timer->cancel();
    if (LiveRun* r = find(id))
      r->waiters.erase(std::remove_if(r->waiters.begin(), r->waiters.end(),
                                      [raw](const auto& w) { return w.out.get() == raw; }),
                       r->waiters.end());
  });
}

void Server::get_run(const HttpRequest& req, std::shared_ptr<Responder> out,
                     const std::string& id) {
  double wait = 0;
  if (!wait_seconds(req, *out, wait)) return;
  if (LiveRun* run = find(id)) return answer_when_settled(*run, out, wait);
  answer_from_journal(id, out);
}

void Server::answer_from_journal(const std::string& id, std::shared_ptr<Responder> out,
                                 std::map<std::string, std::string> headers, bool drain_waits) {
  if (drain_waits) ++admitting_;
  admission_->post([this, id, out, headers = std::move(headers), drain_waits] {
    std::string error;
    auto v = journal_view(id, error);
    http_->post([this, out, v, error, id, headers, drain_waits] {
      if (drain_waits) {
        --admitting_;
        stop_if_drained();
      }
      if (!error.empty()) return fail(*out, 503, error);
      if (!v) return fail(*out, 404, "no run '" + id + "'");
      out->send(200, protocol::dump_json(*v), "application/json", headers);
    });
  });
}

void Server::get_events(const HttpRequest& req, std::shared_ptr<Responder> out,
                        const std::string& id) {
  LiveRun* run = find(id);
  if (!run)
    return fail(*out, 404,
                "no events for run '" + id +
                    "': a run's events are kept by the server that ran it, while it remembers "
                    "the run (GET /v1/runs/" +
                    id + " has its outcome)");
  std::string last = req.header("last-event-id");
  if (last.empty())
    if (const auto q = req.query.find("last_event_id"); q != req.query.end()) last = q->second;
  long long after = 0;
  if (!last.empty()) {
    char* end = nullptr;
    after = std::strtoll(last.c_str(), &end, 10);
    if (*end || after < 0) return fail(*out, 400, "Last-Event-ID: expected an event id");
  }
  out->start_events();
  // Events the server dropped (its memory bounds) are said, not skipped silently.
  if (run->events_cut && !run->events.empty() && run->events.front().seq > after + 1)
    out->event("event: cut\ndata: " +
               protocol::dump_json(Json{{"first_kept", run->events.front().seq}}) + "\n\n");
  for (const auto& e : run->events)
    if (e.seq > after)
      out->event("id: " + std::to_string(e.seq) + "\nevent: " + e.type + "\ndata: " + e.data +
                 "\n\n");
  if (!out->open()) return;  // dropped while replaying (a client that does not read)
  if (terminal(run->status)) return out->close();
  run->streams.push_back(out);
  Responder* raw = out.get();
  out->on_close([this, id, raw] {
    if (LiveRun* r = find(id))
      r->streams.erase(std::remove_if(r->streams.begin(), r->streams.end(),
                                      [raw](const auto& s) { return s.get() == raw; }),
                       r->streams.end());
  });
}

void Server::post_answer(const HttpRequest& req, std::shared_ptr<Responder> out,
                         const std::string& id) {
  if (draining_) return fail(*out, 503, "the server is shutting down");
  const Json body = json_body(req, *out);
  if (body.is_null()) return;
  if (!body.contains("value"))
    return fail(*out, 400, "the body must be a JSON object with request_id and value");
  std::string text;
  if (!answer_text(body["value"], text))
    return fail(*out, 400, "value: expected true/false, a string or a number");
  std::int64_t seq = 0;
  const Json rid = body.value("request_id", Json());
  if (rid.is_number_integer()) {
    seq = rid.get<std::int64_t>();
  } else if (rid.is_string() && !rid.get<std::string>().empty() &&
             rid.get<std::string>().size() < 19 &&
             rid.get<std::string>().find_first_not_of("0123456789") == std::string::npos) {
    seq = std::stoll(rid.get<std::string>());
  } else {
    return fail(*out, 400, "request_id: expected the pending request's request_id");
  }
  if (seq <= 0) return fail(*out, 400, "request_id: expected the pending request's request_id");
  if (LiveRun* run = find(id); run && run->status != "suspended")
    return fail(*out, 409,
                "run " + id + " is not waiting for an answer (status " + run->status + ")");
  admission_->post([this, id, text, seq, out] {
    std::string error, method;
    auto record = journal_->find_run(id, error);
    if (record && record->origin != "serve") record.reset();  // not this API's run
    const bool ok = record && answer_pending(*journal_, *record, text, seq, error, &method);
    const int status = !record && error.empty() ? 404 : 409;
    if (!record && error.empty()) error = "no run '" + id + "'";
    http_->post([this, id, out, ok, status, error, record] {
      if (!ok) return fail(*out, status, error);
      LiveRun* run = find(id);
      if (!run) {  // a run this server did not hold (accepted by an earlier one, or the CLI)
        auto made = std::make_unique<LiveRun>();
        made->run_id = id;
        made->procedure = fs::path(record->procedure).lexically_relative(o_.project).string();
        made->accepted_at = record->started_at;
        made->status = "suspended";
        run = made.get();
        runs_[id] = std::move(made);
      }
      run->pending = Json();
      // A fresh stop: a cancel asked of an earlier part of the run does not end this one.
      run->stop = std::make_shared<broker::RunStop>();
      set_status(*run, "queued");
      enqueue(id);
      out->send(200, protocol::dump_json(Json{{"run_id", id}, {"status", run->status}}));
    });
  });
}

void Server::post_cancel(const HttpRequest& req, std::shared_ptr<Responder> out,
                         const std::string& id) {
  if (json_body(req, *out).is_null()) return;
  LiveRun* run = find(id);
  if (run && terminal(run->status))
    return fail(*out, 409, "run " + id + " has " + run->status + " already");
  if (run && run->status == "running") {
    run->stop->stop();  // the run ends as cancelled (execute)
    return out->send(202, protocol::dump_json(Json{
                              {"run_id", id}, {"status", "running"}, {"cancel", "requested"}}));
  }
  // Queued, suspended, interrupted, or only in the journal: failed there, as cancelled. A
  // queued run leaves the queue now, so that it does not start meanwhile.
  const bool was_queued = run && run->status == "queued";
  if (was_queued) queue_.erase(std::remove(queue_.begin(), queue_.end(), id), queue_.end());
  admission_->post([this, id, out, was_queued] {
    std::string error;
    auto record = journal_->find_run(id, error);
    if (record && record->origin != "serve") record.reset();  // not this API's run
    bool ok = record && record->status != "completed" && record->status != "failed" &&
              journal_->claim(id, error);
    if (ok) {
      ok = journal_->finish_run(id, "failed", "", kCancelled, error);
      journal_->release(id);
    }
    const int status = !record ? 404 : 409;
    if (!record && error.empty()) error = "no run '" + id + "'";
    if (record && error.empty() && !ok) error = "run " + id + " has " + record->status + " already";
    http_->post([this, id, out, ok, status, error, was_queued] {
      if (!ok && was_queued) {  // it was not cancelled: it runs after all
        queue_.push_front(id);
        dispatch();
      }
      if (!ok) return fail(*out, status, error);
      if (LiveRun* r = find(id)) {
        r->error = Json{{"kind", "cancelled"}, {"message", kCancelled}};
        r->ended_at = broker::services::unix_now();
        set_status(*r, "cancelled");
        metrics_.run_ended("cancelled", -1);
      }
      out->send(200, protocol::dump_json(Json{{"run_id", id}, {"status", "cancelled"}}));
    });
  });
}

}  // namespace tactus::cli::serve
