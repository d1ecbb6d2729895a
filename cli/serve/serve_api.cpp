// tactus serve's routes (docs/server.md): one table, each route its method, path pattern and
// whether it needs a token. Every body is JSON; every error is {"error": {"message"}} with the
// status that says what kind of error it is.
#include <arpa/inet.h>
#include <strings.h>
#include <algorithm>

#include <cstring>
#include <filesystem>
#include <string_view>

#include "broker/random_hex.h"
#include "broker/run_services.h"
#include "broker/sha256.h"
#include "cli/durable_commands.h"
#include "cli/serve/serve_state.h"

namespace tactus::cli::serve {

namespace fs = std::filesystem;

void fail(Responder& out, int status, const std::string& message,
          const std::map<std::string, std::string>& headers) {
  out.send(status, protocol::dump_json(Json{{"error", {{"message", message}}}}), "application/json",
           headers);
}

namespace {

// A run id a client may choose: what a file name and a URL path take as they are.
bool valid_run_id(const std::string& id) {
  if (id.empty() || id.size() > 64 || !std::isalnum(static_cast<unsigned char>(id[0])))
    return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

// The procedure a POST names: a .tac file beneath the project, relative, with no "..", not in
// a .tactus directory, and (links resolved) still beneath it. "" with why otherwise.
std::string procedure_beneath(const std::string& project, const Json& given, std::string& why) {
  if (!given.is_string()) return why = "procedure: expected a string (a .tac path)", "";
  const std::string& p = given.get_ref<const std::string&>();
  if (p.empty() || p.size() > 4096 || p.find('\0') != std::string::npos)
    return why = "procedure: expected a path of 1 to 4096 bytes", "";
  const fs::path path(p);
  if (path.is_absolute())
    return why = "procedure: must be relative to the project, not absolute", "";
  for (const auto& part : path) {
    if (part == "..") return why = "procedure: must not contain '..'", "";
    if (part == ".tactus") return why = "procedure: must not be in a .tactus directory", "";
  }
  if (path.extension() != ".tac") return why = "procedure: must name a .tac file", "";
  std::error_code ec;
  const fs::path real = fs::canonical(fs::path(project) / path, ec);
  if (ec) return why = "procedure: no file '" + p + "' in the project", "";
  const std::string root = project + "/";
  if (real.string().rfind(root, 0) != 0)
    return why = "procedure: '" + p + "' leads outside the project", "";
  // What a link leads to is checked as the name was: a .tac file, not in .tactus.
  const fs::path inside = real.lexically_relative(project);
  for (const auto& part : inside)
    if (part == ".tactus") return why = "procedure: '" + p + "' leads into a .tactus directory", "";
  if (inside.extension() != ".tac")
    return why = "procedure: '" + p + "' leads to a file that is not .tac", "";
  if (!fs::is_regular_file(real, ec)) return why = "procedure: '" + p + "' is not a file", "";
  return inside.string();
}

// A body is refused past this depth before it is parsed, since copying, printing and masking a
// document recurse (protocol::json_depth counts brackets outside strings).
constexpr int kMaxBodyDepth = 64;

// Without tokens the server is reached by whatever runs on this machine, browsers included:
// a request must name a loopback host, so that a page whose name was made to resolve to
// 127.0.0.1 (DNS rebinding) is refused.
bool loopback_host(const std::string& host) {
  std::string h = host;
  if (!h.empty() && h[0] == '[') {
    h = h.substr(1, h.find(']') - 1);
  } else if (const auto colon = h.rfind(':'); colon != std::string::npos) {
    h = h.substr(0, colon);
  }
  in_addr a{};
  // 127.0.0.0/8 as an address, not a name that begins "127." (127.evil.example).
  return h == "localhost" || h == "::1" ||
         (::inet_pton(AF_INET, h.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127);
}

// Both sides hashed first: the comparison takes the same time whatever the token's length or
// how much of it matches.
bool same_secret(const std::string& a, const std::string& b) {
  const std::string x = broker::sha256_hex(a), y = broker::sha256_hex(b);
  unsigned char diff = 0;
  for (std::size_t i = 0; i < x.size() && i < y.size(); ++i)
    diff |= static_cast<unsigned char>(x[i] ^ y[i]);
  return diff == 0 && x.size() == y.size();
}

struct Route {
  std::string_view method;
  std::string_view pattern;  // "{id}" matches one path segment
  bool needs_token;
};

// The routes, in docs/server.md's order.
constexpr Route kRoutes[] = {
    {"GET", "/health", false},
    {"GET", "/metrics", true},
    {"POST", "/v1/runs", true},
    {"GET", "/v1/runs", true},
    {"GET", "/v1/runs/{id}", true},
    {"GET", "/v1/runs/{id}/events", true},
    {"POST", "/v1/runs/{id}/answers", true},
    {"POST", "/v1/runs/{id}/cancel", true},
};

// Whether path fits pattern; id gets the {id} segment.
bool matches(std::string_view pattern, std::string_view path, std::string& id) {
  while (!pattern.empty() || !path.empty()) {
    if (pattern.empty() || path.empty() || pattern[0] != '/' || path[0] != '/') return false;
    pattern.remove_prefix(1);
    path.remove_prefix(1);
    const auto pe = pattern.find('/'), qe = path.find('/');
    const std::string_view ps = pattern.substr(0, pe), qs = path.substr(0, qe);
    if (ps == "{id}") {
      if (qs.empty()) return false;
      id = std::string(qs);
    } else if (ps != qs) {
      return false;
    }
    pattern = pe == std::string_view::npos ? std::string_view() : pattern.substr(pe);
    path = qe == std::string_view::npos ? std::string_view() : path.substr(qe);
  }
  return true;
}

}  // namespace

// The body of a POST: a JSON object no deeper than kMaxBodyDepth, sent as application/json
// (exactly: a page in a browser can send text/plain across sites without asking first, and
// this server may listen on loopback without a token). Null after answering the error.
Json json_body(const HttpRequest& req, Responder& out) {
  std::string type = req.header("content-type");
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  if (strcasecmp(type.c_str(), "application/json") != 0) {
    fail(out, 415, "the body must be JSON (Content-Type: application/json)");
    return Json();
  }
  if (protocol::json_depth(req.body, kMaxBodyDepth) < 0) {
    fail(out, 400, "the body nests deeper than " + std::to_string(kMaxBodyDepth) + " levels");
    return Json();
  }
  Json body = req.body.empty() ? Json::object() : Json::parse(req.body, nullptr, false);
  if (!body.is_object()) {
    fail(out, 400, "the body must be a JSON object");
    return Json();
  }
  return body;
}

void Server::handle(const HttpRequest& req, std::shared_ptr<Responder> out) {
  std::string id;
  const Route* route = nullptr;
  bool path_known = false;
  for (const Route& r : kRoutes) {
    std::string captured;
    if (!matches(r.pattern, req.path, captured)) continue;
    path_known = true;
    if (r.method == req.method) {
      route = &r;
      id = captured;
      break;
    }
  }
  if (!route)
    return fail(*out, path_known ? 405 : 404,
                path_known ? req.method + " is not served at " + req.path
                           : "no route " + req.path.substr(0, 200));
  if (o_.tokens.empty() && !loopback_host(req.header("host")))
    return fail(*out, 403,
                "without serve.tokens this server answers only requests to a loopback "
                "host (Host: 127.0.0.1 or localhost)");
  std::string token_name;
  if (route->needs_token && !authorized(req, *out, token_name)) return;
  if (!id.empty() && !valid_run_id(id)) return fail(*out, 404, "no run '" + id.substr(0, 64) + "'");
  const std::string_view p = route->pattern;
  if (p == "/health") return get_health(req, out);
  if (p == "/metrics") return get_metrics(req, out);
  if (p == "/v1/runs")
    return req.method == "POST" ? post_run(req, out, token_name) : list_runs(req, out);
  if (p == "/v1/runs/{id}") return get_run(req, out, id);
  if (p == "/v1/runs/{id}/events") return get_events(req, out, id);
  if (p == "/v1/runs/{id}/answers") return post_answer(req, out, id);
  return post_cancel(req, out, id);
}

bool Server::authorized(const HttpRequest& req, Responder& out, std::string& token_name) {
  if (o_.tokens.empty()) return true;
  const std::string h = req.header("authorization");
  if (h.size() < 7 || strncasecmp(h.c_str(), "bearer ", 7) != 0) {
    fail(out, 401, "this server needs Authorization: Bearer TOKEN",
         {{"WWW-Authenticate", "Bearer realm=\"tactus\""}});
    return false;
  }
  const std::string given = h.substr(7);
  bool ok = false;
  for (const auto& [name, value] : o_.tokens)  // every token compared: no early exit
    if (same_secret(given, value) && !ok) {
      ok = true;
      token_name = name;
    }
  if (!ok) fail(out, 403, "the bearer token is not one of serve.tokens");
  return ok;
}

void Server::get_health(const HttpRequest&, std::shared_ptr<Responder> out) {
  out->send(200, protocol::dump_json(
                     Json{{"status", draining_ ? "draining" : "ok"}, {"version", TACTUS_VERSION}}));
}

void Server::get_metrics(const HttpRequest&, std::shared_ptr<Responder> out) {
  out->send(200, metrics_.text(active_, queue_.size(), pool_ ? pool_->idle() : 0),
            "text/plain; version=0.0.4");
}

void Server::post_run(const HttpRequest& req, std::shared_ptr<Responder> out,
                      const std::string& token_name) {
  if (draining_) return fail(*out, 503, "the server is shutting down");
  // ?wait=S: the answer waits (as GET ?wait= does) and carries the run's view, result included,
  // so a client that wants the result makes one request, not two.
  double wait = 0;
  if (!wait_seconds(req, *out, wait)) return;
  const Json body = json_body(req, *out);
  if (body.is_null()) return;
  for (auto it = body.begin(); it != body.end(); ++it)
    if (it.key() != "procedure" && it.key() != "input" && it.key() != "run_id")
      return fail(
          *out, 400,
          "unknown field '" + it.key().substr(0, 100) + "' (known: procedure, input, run_id)");
  Admission a;
  std::string why;
  a.procedure = procedure_beneath(o_.project, body.value("procedure", Json()), why);
  if (a.procedure.empty()) return fail(*out, 400, why);
  a.input = body.value("input", Json::object());
  if (!a.input.is_object()) return fail(*out, 400, "input: expected a JSON object");
  if (body.contains("run_id")) {
    const Json& id = body["run_id"];
    if (!id.is_string() || !valid_run_id(id.get<std::string>()))
      return fail(*out, 400, "run_id: expected 1 to 64 letters, digits, '-', '_' or '.'");
    a.run_id = id.get<std::string>();
  }
  const std::string key = req.header("idempotency-key");
  if (!key.empty()) {
    if (key.size() > 255) return fail(*out, 400, "Idempotency-Key: at most 255 characters");
    if (!a.run_id.empty())
      return fail(*out, 400, "give run_id or an Idempotency-Key, not both (a run_id is one)");
    // The same key from the same client names the same run, in this server or the next.
    if (a.run_id.empty())
      a.run_id = "idem-" + broker::sha256_hex(token_name + "\n" + key).substr(0, 24);
    a.idempotent = true;
  }
  a.chosen = !a.run_id.empty();
  if (a.run_id.empty()) a.run_id = broker::random_hex(8);
  // Full when every runner is busy and the queue holds serve.queue runs.
  if (queue_.size() + admitting_ >=
      o_.queue + (o_.max_concurrent - std::min(active_, o_.max_concurrent)))
    return fail(*out, 429,
                "the queue is full (" + std::to_string(queue_.size() + admitting_) + " of " +
                    std::to_string(o_.queue) + " waiting; " + std::to_string(active_) + " of " +
                    std::to_string(o_.max_concurrent) + " running); retry later",
                {{"Retry-After", "1"}});
  ++admitting_;
  admission_->post([this, a, out, wait]() mutable {
    int status = 0;
    std::string error, existing;
    const bool ok = admit(a, status, error, existing);
    http_->post([this, a, out, wait, ok, status, error, existing] {
      --admitting_;
      stop_if_drained();
      if (!ok) return fail(*out, status, shown(error));
      // Draining, a run does not start here: a POST does not wait for it.
      const bool waits = wait > 0 && !draining_;
      if (a.replay) {
        LiveRun* run = find(a.run_id);
        if (run && waits)
          return answer_when_settled(*run, out, wait, 200, {{"Idempotent-Replayed", "true"}});
        // Not held here: it ended (unfinished runs are held from the start), and the journal
        // has its outcome.
        if (!run && waits)
          return answer_from_journal(a.run_id, out, {{"Idempotent-Replayed", "true"}}, true);
        return out->send(200,
                         protocol::dump_json(
                             Json{{"run_id", a.run_id}, {"status", run ? run->status : existing}}),
                         "application/json", {{"Idempotent-Replayed", "true"}});
      }
      auto run = std::make_unique<LiveRun>();
      run->run_id = a.run_id;
      run->procedure = a.procedure;
      run->accepted_at = broker::services::unix_now();
      LiveRun& ref = *run;
      runs_[a.run_id] = std::move(run);
      add_event(ref, "status", Json{{"status", "queued"}});
      enqueue(a.run_id);
      const std::map<std::string, std::string> location{{"Location", "/v1/runs/" + a.run_id}};
      if (waits) return answer_when_settled(ref, out, wait, 201, location);
      out->send(201, protocol::dump_json(Json{{"run_id", a.run_id}, {"status", ref.status}}),
                "application/json", location);
    });
  });
}

}  // namespace tactus::cli::serve
