#include "broker/run_trace.h"

#include <utility>

#include "broker/random_hex.h"
#include "broker/secrets.h"
#include "broker/sha256.h"
#include "tools/http_client.h"

namespace tactus::broker {

using protocol::Json;

namespace {

// OTLP's SpanKind.
constexpr int kInternal = 1;
constexpr int kClient = 3;
// OTLP's Status.code.
constexpr int kStatusError = 2;

// One attribute as OTLP/JSON writes it: {key, value: {stringValue | intValue | ...}}. 64-bit
// integers travel as strings.
Json attribute(const std::string& key, const Json& v) {
  Json value;
  if (v.is_string()) {
    value = {{"stringValue", v}};
  } else if (v.is_boolean()) {
    value = {{"boolValue", v}};
  } else if (v.is_number_integer()) {
    value = {{"intValue", std::to_string(v.get<std::int64_t>())}};
  } else if (v.is_number()) {
    value = {{"doubleValue", v}};
  } else if (v.is_array()) {
    Json values = Json::array();
    for (const auto& item : v) values.push_back(attribute("", item)["value"]);
    value = {{"arrayValue", {{"values", std::move(values)}}}};
  } else {
    value = {{"stringValue", protocol::dump_json(v)}};
  }
  return {{"key", key}, {"value", std::move(value)}};
}

// The OTLP traces URL of an endpoint given as its base (as OTEL_EXPORTER_OTLP_ENDPOINT is).
std::string traces_url(std::string endpoint) {
  const std::string path = "/v1/traces";
  if (endpoint.size() >= path.size() &&
      endpoint.compare(endpoint.size() - path.size(), path.size(), path) == 0)
    return endpoint;
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  return endpoint + path;
}

std::string string_of(const Json& obj, const char* key) {
  const Json v = obj.is_object() ? obj.value(key, Json()) : Json();
  return v.is_string() ? v.get<std::string>() : std::string();
}

}  // namespace

struct RunTrace::Span {
  std::string name, id, parent;
  int kind = kInternal;
  std::uint64_t start_ns = 0, end_ns = 0;
  std::vector<std::pair<std::string, Json>> attributes;
  int status = 0;
  std::string status_message;
  std::string vm_op;  // a VM span: its op, for matching its end
  bool open = true;

  void set(std::string key, Json value) {
    attributes.emplace_back(std::move(key), std::move(value));
  }
  void fail(const std::string& type, const std::string& message) {
    status = kStatusError;
    status_message = message;
    set("error.type", type);
  }
};

RunTrace::RunTrace(TraceConfig config, std::string run_id, std::string procedure,
                   std::shared_ptr<const Redactor> redactor)
    : config_(std::move(config)),
      run_id_(std::move(run_id)),
      procedure_(std::move(procedure)),
      redactor_(std::move(redactor)),
      started_(Clock::now()) {
  started_unix_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  trace_id_ = sha256_hex("tactus trace\n" + run_id_).substr(0, 32);
  Span* root = add("run " + procedure_, kInternal, "", started_);
  root_id_ = root->id;
  root->set("tactus.run_id", run_id_);
  root->set("tactus.procedure", procedure_);
}

RunTrace::~RunTrace() = default;

std::uint64_t RunTrace::unix_nanos(Clock::time_point t) const {
  return static_cast<std::uint64_t>(
      started_unix_ns_ +
      std::chrono::duration_cast<std::chrono::nanoseconds>(t - started_).count());
}

std::string RunTrace::text(const std::string& s, std::size_t max) {
  bytes_ += std::min(s.size(), max);
  return masked_prefix(s, max);
}

// s masked, cut at max: only what can reach the cut is masked (a secret that begins before the
// cut ends within the longest secret's length after it), so a 4 MiB name costs no more than
// a short one.
std::string RunTrace::masked_prefix(const std::string& s, std::size_t max) const {
  if (!redactor_ || redactor_->empty()) return s.substr(0, max);
  std::string out = redactor_->redact(std::string_view(s).substr(0, max + redactor_->margin() + 1));
  if (out.size() > max) out.resize(max);
  return out;
}

RunTrace::Span* RunTrace::add(std::string name, int kind, std::string parent,
                              Clock::time_point start) {
  if (spans_.size() >= kMaxSpans || bytes_ >= kMaxBytes) {
    ++dropped_;
    return nullptr;
  }
  Span s;
  s.name = text(name, kMaxName);
  s.id = random_hex(8);
  s.parent = std::move(parent);
  s.kind = kind;
  s.start_ns = unix_nanos(start);
  spans_.push_back(std::move(s));
  return &spans_.back();
}

std::string RunTrace::parent_id() const {
  return open_.empty() ? root_id_ : spans_[open_.back()].id;
}

void RunTrace::model_call(const Json& params, const tools::ToolOutcome& r, Clock::time_point t0,
                          Clock::time_point t1) {
  const std::string model = string_of(params, "model");
  Span* s = add("chat " + model, kClient, parent_id(), t0);
  if (!s) return;
  s->end_ns = unix_nanos(t1);
  s->open = false;
  s->set("gen_ai.operation.name", "chat");
  s->set("gen_ai.provider.name", text(string_of(params, "provider"), kMaxName));
  s->set("gen_ai.request.model", text(model, kMaxName));
  if (const std::string agent = string_of(params, "agent"); !agent.empty())
    s->set("gen_ai.agent.name", text(agent, kMaxName));
  if (params.is_object()) {
    if (const Json t = params.value("temperature", Json()); t.is_number())
      s->set("gen_ai.request.temperature", t);
    if (const Json m = params.value("max_tokens", Json()); m.is_number_integer())
      s->set("gen_ai.request.max_tokens", m);
  }
  if (config_.capture_content && params.is_object())
    s->set("gen_ai.input.messages", text(protocol::dump_json(params.value("messages", Json()))));
  if (!r.ok) {
    s->fail(std::string(tools::to_string(r.code)), text(r.message));
    return;
  }
  const Json& res = r.result;
  s->set("gen_ai.response.model", text(string_of(res, "model"), kMaxName));
  s->set("gen_ai.response.finish_reasons",
         Json::array({text(string_of(res, "finish_reason"), kMaxName)}));
  const Json usage = res.value("usage", Json());
  if (usage.is_object()) {
    s->set("gen_ai.usage.input_tokens", usage.value("prompt_tokens", std::int64_t{0}));
    s->set("gen_ai.usage.output_tokens", usage.value("output_tokens", std::int64_t{0}));
    s->set("tactus.usage.cached_input_tokens", usage.value("cached_input_tokens", std::int64_t{0}));
    s->set("tactus.usage.cache_creation_input_tokens",
           usage.value("cache_creation_input_tokens", std::int64_t{0}));
    if (usage.contains("reasoning_tokens"))
      s->set("tactus.usage.reasoning_tokens", usage.value("reasoning_tokens", std::int64_t{0}));
  } else {
    s->set("tactus.usage", "unknown");
  }
  if (const Json cost = res.value("cost", Json()); cost.is_number())
    s->set("tactus.cost.usd", cost);
  if (config_.capture_content) {
    const Json out = {{"content", res.value("content", Json())},
                      {"tool_calls", res.value("tool_calls", Json())}};
    s->set("gen_ai.output.messages", text(protocol::dump_json(out)));
  }
}

void RunTrace::tool_call(const std::string& name, const Json& args, const tools::ToolOutcome& r,
                         Clock::time_point t0, Clock::time_point t1) {
  Span* s = add("execute_tool " + name, kInternal, parent_id(), t0);
  if (!s) return;
  s->end_ns = unix_nanos(t1);
  s->open = false;
  s->set("gen_ai.operation.name", "execute_tool");
  s->set("gen_ai.tool.name", text(name, kMaxName));
  s->set("gen_ai.tool.type", "extension");  // run by the broker, outside the agent's process
  if (config_.capture_content) {
    s->set("gen_ai.tool.call.arguments", text(protocol::dump_json(args)));
    if (r.ok) s->set("gen_ai.tool.call.result", text(protocol::dump_json(r.result)));
  }
  if (!r.ok) s->fail(std::string(tools::to_string(r.code)), text(r.message));
}

bool RunTrace::valid_event(const Json& p, std::string& why) {
  const std::string event = string_of(p, "event"), op = string_of(p, "op");
  const Json name = p.is_object() ? p.value("name", Json()) : Json();
  if ((event == "begin" || event == "end") && (op == "invoke_agent" || op == "execute_tool") &&
      name.is_string())
    return true;
  why = "malformed trace event (want {event: begin|end, op: invoke_agent|execute_tool, name})";
  return false;
}

bool RunTrace::vm_event(const Json& p, std::string& why) {
  if (!valid_event(p, why)) return false;
  const std::string op = string_of(p, "op");
  const std::string& n = p["name"].get_ref<const std::string&>();
  if (string_of(p, "event") == "begin") {
    Span* s =
        open_.size() < kMaxOpen ? add(op + " " + n, kInternal, parent_id(), Clock::now()) : nullptr;
    if (!s) {
      if (open_.size() >= kMaxOpen) ++dropped_;
      ++dropped_open_;
      return true;
    }
    s->vm_op = op;
    s->set("gen_ai.operation.name", op);
    s->set(op == "invoke_agent" ? "gen_ai.agent.name" : "gen_ai.tool.name", text(n, kMaxName));
    if (op == "execute_tool") s->set("gen_ai.tool.type", "function");
    open_.push_back(spans_.size() - 1);
    return true;
  }
  // An end closes the innermost open span of its op and name (coroutines may end spans out of
  // order); one that matches none ends a dropped begin, or is ignored.
  const std::string name = masked_prefix(op + " " + n, kMaxName);
  for (auto it = open_.rbegin(); it != open_.rend(); ++it) {
    Span& s = spans_[*it];
    if (s.vm_op != op || s.name != name) continue;
    s.end_ns = unix_nanos(Clock::now());
    s.open = false;
    if (const std::string error = string_of(p, "error"); !error.empty() && bytes_ < kMaxBytes)
      s.fail("error", text(error, 4 * kMaxName));
    open_.erase(std::next(it).base());
    return true;
  }
  if (dropped_open_ > 0) --dropped_open_;
  return true;
}

Json RunTrace::otlp_document() const {
  Json spans = Json::array();
  for (const Span& s : spans_) {
    Json attrs = Json::array();
    for (const auto& [key, value] : s.attributes) attrs.push_back(attribute(key, value));
    Json span = {{"traceId", trace_id_},
                 {"spanId", s.id},
                 {"name", s.name},
                 {"kind", s.kind},
                 {"startTimeUnixNano", std::to_string(s.start_ns)},
                 {"endTimeUnixNano", std::to_string(s.end_ns ? s.end_ns : s.start_ns)},
                 {"attributes", std::move(attrs)}};
    if (!s.parent.empty()) span["parentSpanId"] = s.parent;
    if (s.status != 0) span["status"] = {{"code", s.status}, {"message", s.status_message}};
    spans.push_back(std::move(span));
  }
  const Json resource = {{"attributes", Json::array({attribute("service.name", "tactus")})}};
  return {{"resourceSpans",
           Json::array({{{"resource", resource},
                         {"scopeSpans", Json::array({{{"scope", {{"name", "tactus"}}},
                                                      {"spans", std::move(spans)}}})}}})}};
}

std::string RunTrace::finish(const std::string& status) {
  if (finished_) return "";
  finished_ = true;
  const auto now = Clock::now();
  for (Span& s : spans_)
    if (s.open) {
      s.end_ns = unix_nanos(now);
      s.open = false;
    }
  Span& root = spans_.front();
  root.set("tactus.status", status);
  if (dropped_) root.set("tactus.dropped_spans", static_cast<std::int64_t>(dropped_));
  const std::string body = protocol::dump_json(otlp_document());
  tools::HttpExchange x;
  x.url_text = traces_url(config_.endpoint);
  x.method = "POST";
  x.body = &body;
  x.header_lines = {"Content-Type: application/json"};
  x.timeout_ms = std::max(1L, static_cast<long>(config_.timeout_seconds * 1000));
  x.max_body = 64 << 10;
  x.user_agent = "tactus";
  const tools::HttpResponse r =
      tools::http_exchange(x, [](long, const auto&, std::string_view) { return true; });
  if (r.code != CURLE_OK)
    return "telemetry: the spans were not sent to " + x.url_text + ": " + r.error;
  if (r.status < 200 || r.status >= 300)
    return "telemetry: " + x.url_text + " answered HTTP " + std::to_string(r.status);
  return "";
}

}  // namespace tactus::broker
