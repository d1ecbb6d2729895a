#include "tools/llm/llm_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <thread>

#include "tools/interrupt.h"
#include "tools/llm/dialect.h"
#include "tools/llm/http_post.h"
#include "tools/llm/llm_types.h"
#include "tools/llm/sse_parser.h"

namespace tactus::tools::llm {
namespace {

using Clock = std::chrono::steady_clock;

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

// A local server (Ollama, llama.cpp) needs no key: http(s)://localhost, 127.0.0.0/8 or [::1].
bool loopback(const std::string& base_url) {
  const auto scheme = base_url.find("://");
  if (scheme == std::string::npos) return false;
  std::string host = base_url.substr(scheme + 3);
  host = host.substr(0, host.find_first_of("/?#"));
  if (const auto at = host.rfind('@'); at != std::string::npos) host.erase(0, at + 1);
  if (!host.empty() && host.front() == '[') {
    host = host.substr(1, host.find(']') - 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  std::transform(host.begin(), host.end(), host.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (host == "localhost") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return ::inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

// What one attempt came to.
struct Attempt {
  bool ok = false;
  ChatReply reply;
  ToolError code = ToolError::failed;  // when not ok
  std::string message;                 // when not ok, without the "llm: NAME: " prefix
  bool retryable = false;
  double retry_after = -1;  // seconds the provider asked us to wait, -1 if it did not
  bool delivered = false;   // text went to on_token: the attempt cannot be taken back
};

bool is_json(const std::string& content_type) {
  return content_type.find("json") != std::string::npos;
}

// The provider's words for a non-2xx answer: its JSON error message, else the start of the body.
std::string http_error_text(long status, const std::string& body, const SecretMask* mask) {
  std::string text;
  Json j;
  std::string ignored;
  if (parse_json(body, j, ignored, mask)) text = error_message_of(j);
  if (text.empty()) {
    text = excerpt_head(body, 200, mask);  // masked before it is cut
    for (char& c : text)
      if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    const auto end = text.find_last_not_of(' ');
    text.resize(end == std::string::npos ? 0 : end + 1);
  }
  return "HTTP " + std::to_string(status) + (text.empty() ? "" : ": " + text);
}

Attempt attempt_once(const LlmConfig& cfg, const Dialect& dialect, const std::string& url,
                     const std::vector<std::string>& headers, const std::string& body,
                     double timeout_s) {
  Attempt a;
  const auto assembler = dialect.assembler();
  assembler->set_mask(cfg.mask);
  SseParser sse;
  std::string whole;  // an error body, or a reply that was not streamed
  bool streaming = false, decided = false, done = false, stream_failed = false;
  const TextSink on_text = [&](std::string_view text) {
    if (!cfg.on_token) return;
    a.delivered = true;  // shown to someone: a retry would show it twice
    cfg.on_token(text);
  };
  const auto on_event = [&](const SseEvent& e) {
    if (done || stream_failed) return;
    switch (assembler->on_event(e, on_text)) {
      case StreamAssembler::Step::more:
        break;
      case StreamAssembler::Step::done:
        done = true;
        break;
      case StreamAssembler::Step::error:
        stream_failed = true;
        break;
    }
  };
  const BodySink sink = [&](long status, std::string_view type, std::string_view piece) {
    if (!decided) {
      decided = true;
      streaming = status >= 200 && status < 300 && !is_json(std::string(type));
    }
    if (!streaming) {
      whole.append(piece);
      return true;
    }
    try {
      sse.feed(piece, on_event);
    } catch (const Json::exception& e) {
      // An assembler met a shape it did not expect: an error, not a crash of the broker.
      stream_failed = true;
      a.message = std::string("unexpected response: ") + e.what();
    }
    return !stream_failed && !done;
  };

  const HttpOutcome h = http_post(url, headers, body, timeout_s, cfg.max_response, sink);
  using T = HttpOutcome::Transport;
  if (!decided) streaming = h.status >= 200 && h.status < 300 && !is_json(h.content_type);
  if (stream_failed) {
    if (a.message.empty()) a.message = assembler->error();
    return a;
  }
  if (done && (h.transport == T::ok || h.transport == T::aborted)) {
    a.ok = true;
    a.reply = std::move(assembler->reply());
    return a;
  }
  switch (h.transport) {
    case T::ok:
    case T::aborted:
      break;
    case T::timeout:
      a.code = tools::ToolError::timeout;
      a.message = "no complete reply within " + seconds_text(timeout_s) + " s";
      return a;
    case T::too_big:
      a.message = "the reply is larger than " + std::to_string(cfg.max_response) + " bytes";
      return a;
    case T::connect:
      a.message = "cannot reach the provider: " + h.error;
      a.retryable = true;
      return a;
    case T::broken:
      a.message = streaming ? "the stream ended before the reply was complete (" + h.error + ")"
                            : "the connection broke: " + h.error;
      a.retryable = !a.delivered;
      return a;
    case T::other:
      a.message = h.error;
      return a;
  }
  if (h.status < 200 || h.status >= 300) {
    a.message = http_error_text(h.status, whole, cfg.mask);
    a.retryable = h.status == 429 || h.status >= 500;
    a.retry_after = retry_after_seconds(h.retry_after, h.retry_after_ms);
    return a;
  }
  if (streaming) {
    a.message = "the stream ended before the reply was complete";
    return a;
  }
  Json j;
  if (!parse_json(whole, j, a.message, cfg.mask)) return a;
  if (!j.is_object()) {
    a.message = "malformed JSON in the response: not an object";
    return a;
  }
  if (j.contains("error") && !j["error"].is_null()) {
    a.message = "the provider reported an error: " + error_message_of(j);
    return a;
  }
  try {
    if (!dialect.parse_whole(j, a.reply, a.message)) return a;
  } catch (const Json::exception& e) {
    a.message = std::string("unexpected response: ") + e.what();
    return a;
  }
  a.ok = true;
  return a;
}

std::unique_ptr<Dialect> dialect_for(const LlmProvider& p, const ChatRequest& r,
                                     std::string& error) {
  if (p.api == "anthropic") {
    if (r.model_type == "responses") {
      error = "model_type responses is OpenAI's Responses API; this provider speaks anthropic";
      return nullptr;
    }
    return anthropic_dialect();
  }
  if (p.api == "openai" || p.api.empty())
    return r.model_type == "responses" ? openai_responses_dialect() : openai_chat_dialect();
  error = "unknown api '" + p.api + "'";
  return nullptr;
}

// Providers Python Tactus serves and tactus does not (yet): the route a user has, said in the
// refusal's one line.
struct VendorRoute {
  const char* provider;
  const char* route;
};
constexpr VendorRoute kVendorRoutes[] = {
    {"bedrock",
     "tactus does not serve AWS Bedrock; use provider anthropic with the model's Anthropic name, "
     "or declare a Bedrock OpenAI-compatible gateway under providers: with api: openai"},
    {"google-gla",
     "Gemini has an OpenAI-compatible API: providers: {google-gla: {api: openai, base_url: "
     "https://generativelanguage.googleapis.com/v1beta/openai/, api_key: GEMINI_KEY}} with "
     "secrets: {GEMINI_KEY: {env: GEMINI_API_KEY}}"},
    {"google-vertex",
     "tactus does not serve Vertex AI; Gemini's OpenAI-compatible API can be declared under "
     "providers: with api: openai"},
    {"gemini",
     "Gemini has an OpenAI-compatible API: declare it under providers: with api: openai and "
     "base_url: https://generativelanguage.googleapis.com/v1beta/openai/"},
    {"google",
     "Gemini has an OpenAI-compatible API: declare it under providers: with api: openai and "
     "base_url: https://generativelanguage.googleapis.com/v1beta/openai/"},
};

}  // namespace

ToolOutcome chat(const LlmConfig& cfg, const Json& params) {
  ChatRequest req;
  std::string error;
  if (!parse_chat_request(params, req, error)) return tool_failure(ToolError::invalid_args, error);
  const auto found = cfg.providers.find(req.provider);
  if (found == cfg.providers.end()) {
    std::string known;
    for (const auto& [name, p] : cfg.providers) known += (known.empty() ? "" : ", ") + name;
    std::string route;
    for (const auto& v : kVendorRoutes)
      if (req.provider == v.provider) route = std::string("; ") + v.route;
    return tool_failure(ToolError::denied,
                        "llm: unknown provider '" + req.provider +
                            "': declare it under providers: in the configuration (known: " +
                            (known.empty() ? "none" : known) + ")" + route);
  }
  const LlmProvider& provider = found->second;
  const std::string prefix = "llm: " + provider.name + ": ";
  const auto dialect = dialect_for(provider, req, error);
  if (!dialect) return tool_failure(ToolError::invalid_args, prefix + error);
  if (provider.api_key.empty() && !loopback(provider.base_url))
    return tool_failure(
        ToolError::denied,
        prefix + "no API key" + (provider.key_hint.empty() ? "" : ": " + provider.key_hint));

  if (!provider.max_tokens_field.empty()) req.max_tokens_field = provider.max_tokens_field;
  const std::string url = provider.base_url + dialect->path();
  const std::string body = protocol::dump_json(dialect->body(req));
  const std::vector<std::string> headers = dialect->headers(provider.api_key);
  const double budget = std::max(0.001, cfg.timeout_seconds);
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(budget));

  Attempt a;
  int attempts = 0;
  for (;;) {
    ++attempts;
    const double left = std::chrono::duration<double>(deadline - Clock::now()).count();
    if (left <= 0) {
      a = Attempt{};
      a.code = tools::ToolError::timeout;
      a.message = "no complete reply within " + seconds_text(budget) + " s";
      break;
    }
    a = attempt_once(cfg, *dialect, url, headers, body, left);
    if (a.code == tools::ToolError::timeout)
      a.message = "no complete reply within " + seconds_text(budget) + " s";
    if (a.ok || !a.retryable || a.delivered || attempts > cfg.retries) break;
    double delay = cfg.backoff_base_seconds * std::pow(2.0, attempts - 1);
    if (a.retry_after >= 0) delay = std::min(a.retry_after, cfg.max_retry_after_seconds);
    // Waiting past the deadline would only turn this error into a timeout.
    if (Clock::now() + std::chrono::duration<double>(delay) >= deadline) break;
    // In steps, so that SIGINT or SIGTERM ends the wait (tools/interrupt.h).
    const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(delay));
    while (!interrupted() && Clock::now() < until)
      std::this_thread::sleep_for(
          std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(50)));
    if (interrupted()) break;
  }
  if (a.delivered && cfg.on_reply_end) cfg.on_reply_end();
  if (!a.ok) {
    std::string message = prefix + a.message;
    if (attempts > 1) message += " (gave up after " + std::to_string(attempts) + " attempts)";
    return tool_failure(a.code, message);
  }
  ToolOutcome out;
  out.ok = true;
  out.result = to_json(a.reply);
  out.result["cost"] = call_cost(model_price(provider, req.model), out.result["usage"]);
  return out;
}

namespace {

// A snapshot's suffix: "-2024-08-06", "-20250929" or "-latest". Only these name the same
// model, priced as it unless the snapshot has an entry of its own (gpt-4o-2024-05-13 costs
// more than gpt-4o): "o1-pro" or "gpt-5-pro" extend a priced name and cost far more, so they
// are priced only by their own entry (a budget in USD then refuses them: fail closed).
bool snapshot_suffix(std::string_view s) {
  const auto digits = [&](std::size_t from, std::size_t n) {
    if (s.size() < from + n) return false;
    for (std::size_t i = from; i < from + n; ++i)
      if (s[i] < '0' || s[i] > '9') return false;
    return true;
  };
  if (s == "-latest") return true;
  if (s.size() == 9 && s[0] == '-') return digits(1, 8);  // -YYYYMMDD
  return s.size() == 11 && s[0] == '-' && digits(1, 4) && s[5] == '-' && digits(6, 2) &&
         s[8] == '-' && digits(9, 2);  // -YYYY-MM-DD
}

}  // namespace

const ModelPrice* model_price(const LlmProvider& p, const std::string& model) {
  if (const auto it = p.prices.find(model); it != p.prices.end()) return &it->second;
  for (const auto& [name, price] : p.prices)
    if (model.size() > name.size() && model.rfind(name, 0) == 0 &&
        snapshot_suffix(std::string_view(model).substr(name.size())))
      return &price;
  return nullptr;
}

Json call_cost(const ModelPrice* price, const Json& usage) {
  if (!price || !usage.is_object()) return "unknown";
  const auto n = [&](const char* key) {
    return static_cast<double>(usage.value(key, std::int64_t{0}));
  };
  return (n("input_tokens") * price->input + n("cached_input_tokens") * price->cached_input +
          n("cache_creation_input_tokens") * price->cache_write +
          n("output_tokens") * price->output) /
         1e6;
}

}  // namespace tactus::tools::llm
