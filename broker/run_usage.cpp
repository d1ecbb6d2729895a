#include "broker/run_usage.h"

#include <cmath>
#include <cstdio>

#include "broker/run_services.h"
#include "runtime/protocol/methods.h"
#include "tools/tool_context.h"

namespace tactus::broker {
namespace {

using protocol::Json;

constexpr std::int64_t kMaxCount = std::int64_t{1} << 40;

std::int64_t count_of(const Json& usage, const char* key) {
  const auto it = usage.find(key);
  if (it == usage.end()) return 0;
  if (it->is_number_unsigned())  // read as unsigned: 2^63 and more must not wrap negative
    return static_cast<std::int64_t>(std::min<std::uint64_t>(it->get<std::uint64_t>(), kMaxCount));
  if (!it->is_number_integer()) return 0;
  const auto v = it->get<std::int64_t>();
  return v < 0 ? 0 : std::min(v, kMaxCount);
}

// Saturating at 2^60: a hostile local server reporting 2^40 tokens a call, a million times,
// cannot overflow a sum (nor can a sum of four such).
std::int64_t plus(std::int64_t a, std::int64_t b) {
  constexpr std::int64_t kMax = std::int64_t{1} << 60;
  return a > kMax - b ? kMax : a + b;
}

void add(TokenCounts& to, const TokenCounts& from) {
  to.input = plus(to.input, from.input);
  to.cached_input = plus(to.cached_input, from.cached_input);
  to.cache_creation_input = plus(to.cache_creation_input, from.cache_creation_input);
  to.output = plus(to.output, from.output);
  to.reasoning = plus(to.reasoning, from.reasoning);
  to.reasoning_reported = to.reasoning_reported || from.reasoning_reported;
}

// The token members of a usage document; "unknown" (with how many calls) when some are.
void put_tokens(Json& doc, const TokenCounts& t, std::int64_t unknown_calls) {
  const auto put = [&](const char* key, std::int64_t v) {
    doc[key] = unknown_calls > 0 ? Json("unknown") : Json(v);
  };
  put("input_tokens", t.input);
  put("cached_input_tokens", t.cached_input);
  put("cache_creation_input_tokens", t.cache_creation_input);
  put("output_tokens", t.output);
  if (t.reasoning_reported) put("reasoning_tokens", t.reasoning);
  put("total_tokens", t.total());
  if (unknown_calls > 0) doc["unknown_calls"] = unknown_calls;
}

// USD to the nearest millionth of a cent: sums of doubles print with noise otherwise.
Json dollars(double usd) {
  return std::round(usd * 1e8) / 1e8;
}

std::string ordinal(std::uint64_t n) {
  const std::uint64_t tens = n % 100, ones = n % 10;
  const char* suffix = tens >= 11 && tens <= 13 ? "th"
                       : ones == 1              ? "st"
                       : ones == 2              ? "nd"
                       : ones == 3              ? "rd"
                                                : "th";
  return std::to_string(n) + suffix;
}

std::string money(double usd) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.6g", usd);
  return std::string("USD ") + buf;
}

}  // namespace

std::int64_t TokenCounts::total() const {
  return plus(plus(input, cached_input), plus(cache_creation_input, output));
}

void RunUsage::add_model_call(const std::string& model, const Json& usage, const Json& cost) {
  ModelUsage& m = by_model_[model];
  ++m.calls;
  if (usage.is_object() && !usage.contains("input_tokens") && usage.contains("prompt_tokens")) {
    // An answer journaled before the input was split: all of it as input.
    TokenCounts t;
    t.input = count_of(usage, "prompt_tokens");
    t.output = count_of(usage, "completion_tokens");
    add(m.tokens, t);
  } else if (usage.is_object()) {
    TokenCounts t;
    t.input = count_of(usage, "input_tokens");
    t.cached_input = count_of(usage, "cached_input_tokens");
    t.cache_creation_input = count_of(usage, "cache_creation_input_tokens");
    t.output = count_of(usage, "output_tokens");
    t.reasoning_reported = usage.contains("reasoning_tokens");
    t.reasoning = count_of(usage, "reasoning_tokens");
    add(m.tokens, t);
  } else {
    ++m.unknown_calls;
  }
  if (cost.is_number() && std::isfinite(cost.get<double>()) && cost.get<double>() >= 0)
    m.usd += cost.get<double>();
  else
    ++m.unpriced_calls;
}

bool unbilled_failure(const std::string& code, const std::string& message) {
  // "llm: NAME: HTTP 503: ..." or "llm: NAME: cannot reach the provider: ..."
  // (tools/llm/llm_client.cpp); a timeout may have come after the reply began.
  if (code != "failed" || message.rfind("llm: ", 0) != 0) return false;
  const auto name_end = message.find(": ", 5);
  if (name_end == std::string::npos) return false;
  const std::string_view rest = std::string_view(message).substr(name_end + 2);
  return rest.rfind("HTTP ", 0) == 0 || rest.rfind("cannot reach the provider: ", 0) == 0;
}

void RunUsage::add_failed_model_call(const std::string& model, const std::string& code,
                                     const std::string& message) {
  ModelUsage& m = by_model_[model];
  ++m.calls;
  ++m.failed_calls;
  if (unbilled_failure(code, message)) return;
  ++m.unknown_calls;
  ++m.unpriced_calls;
}

void RunUsage::add_entries(const std::vector<JournalEntry>& entries) {
  for (const auto& e : entries) {
    if (e.response_json.empty()) continue;  // in flight: a resume sends it again
    const bool model = e.method == protocol::method::llm_chat;
    if (!model && e.method != protocol::method::host_call) continue;
    const Json answer = Json::parse(e.response_json, nullptr, false);
    if (!answer.is_object()) continue;
    if (!model) {
      // A call the policy refused did not run (broker/run_requests.cpp counts the same way).
      const Json error = answer.value("error", Json());
      if (!(error.is_object() && error.value("code", "") == "denied")) ++tool_calls_;
      continue;
    }
    const std::string name = services::model_name(Json::parse(e.request_json, nullptr, false));
    const Json result = answer.value("result", Json());
    if (result.is_object()) {
      add_model_call(name, result.value("usage", Json()), result.value("cost", Json()));
      continue;
    }
    // Refused before it was sent (bad params, an unknown provider, no key): not a call.
    const Json error = answer.value("error", Json());
    const Json code = error.is_object() ? error.value("code", Json()) : Json();
    if (code != "invalid_args" && code != "denied")
      add_failed_model_call(name, code.is_string() ? code.get<std::string>() : "",
                            error.is_object() && error.value("message", Json()).is_string()
                                ? error["message"].get<std::string>()
                                : "");
  }
}

std::int64_t RunUsage::model_calls() const {
  std::int64_t n = 0;
  for (const auto& [name, m] : by_model_) n += m.calls;
  return n;
}

bool RunUsage::tokens_known() const {
  for (const auto& [name, m] : by_model_)
    if (m.unknown_calls > 0) return false;
  return true;
}

bool RunUsage::cost_known() const {
  for (const auto& [name, m] : by_model_)
    if (m.unpriced_calls > 0) return false;
  return true;
}

std::int64_t RunUsage::total_tokens() const {
  std::int64_t n = 0;
  for (const auto& [name, m] : by_model_) n = plus(n, m.tokens.total());
  return n;
}

double RunUsage::usd() const {
  double usd = 0;
  for (const auto& [name, m] : by_model_) usd += m.usd;
  return usd;
}

Json RunUsage::usage_json() const {
  TokenCounts all;
  std::int64_t unknown = 0;
  Json by_model = Json::object();
  for (const auto& [name, m] : by_model_) {
    add(all, m.tokens);
    unknown += m.unknown_calls;
    Json one = {{"model_calls", m.calls}};
    if (m.failed_calls) one["failed_calls"] = m.failed_calls;
    put_tokens(one, m.tokens, m.unknown_calls);
    by_model[name] = std::move(one);
  }
  Json doc = {{"model_calls", model_calls()}, {"tool_calls", tool_calls_}};
  std::int64_t failed = 0;
  for (const auto& [name, m] : by_model_) failed += m.failed_calls;
  if (failed) doc["failed_calls"] = failed;
  put_tokens(doc, all, unknown);
  doc["by_model"] = std::move(by_model);
  return doc;
}

Json RunUsage::cost_json() const {
  Json by_model = Json::object();
  for (const auto& [name, m] : by_model_)
    by_model[name] = m.unpriced_calls > 0 ? Json("unknown") : dollars(m.usd);
  return {{"usd", cost_known() ? dollars(usd()) : Json("unknown")},
          {"by_model", std::move(by_model)}};
}

std::int64_t estimate_input_tokens(const Json& params) {
  if (!params.is_object()) return 0;
  std::size_t bytes = 0;
  for (const char* key : {"messages", "tools"})
    if (const auto it = params.find(key); it != params.end())
      bytes += protocol::dump_json(*it).size();
  return static_cast<std::int64_t>((bytes + 3) / 4);
}

BudgetCheck check_budget(const Budget& b, const RunUsage& used, std::string_view method,
                         const tools::ModelPrice* price, std::int64_t input) {
  BudgetCheck out;
  const auto at = [](const std::string& where) { return where.empty() ? "" : ", " + where; };
  const auto refuse = [&](std::string why) {
    out.refusal = std::move(why);
    return out;
  };
  if (method == protocol::method::host_call) {
    if (b.tool_calls && static_cast<std::uint64_t>(used.tool_calls()) >= *b.tool_calls)
      return refuse("budget: tool_calls: the run has made " + std::to_string(used.tool_calls()) +
                    " of its " + std::to_string(*b.tool_calls) + " tool calls (budget.tool_calls" +
                    at(b.tool_calls_at) + "); the next would be the " +
                    ordinal(static_cast<std::uint64_t>(used.tool_calls()) + 1));
    return out;
  }
  if (method != protocol::method::llm_chat) return out;
  if (b.model_calls && static_cast<std::uint64_t>(used.model_calls()) >= *b.model_calls)
    return refuse("budget: model_calls: the run has made " + std::to_string(used.model_calls()) +
                  " of its " + std::to_string(*b.model_calls) + " model calls (budget.model_calls" +
                  at(b.model_calls_at) + "); the next would be the " +
                  ordinal(static_cast<std::uint64_t>(used.model_calls()) + 1));
  if (b.tokens) {
    const std::string limit = " (budget.tokens" + at(b.tokens_at) + ")";
    if (!used.tokens_known())
      return refuse(
          "budget: tokens: a model call of this run reported no usage, so its budget of " +
          std::to_string(*b.tokens) + " tokens" + limit + " cannot be kept");
    const auto total = static_cast<std::uint64_t>(used.total_tokens());
    if (total >= *b.tokens)
      return refuse("budget: tokens: the run has used " + std::to_string(total) +
                    " tokens of its " + std::to_string(*b.tokens) + limit);
    const std::uint64_t left = *b.tokens - total;
    if (static_cast<std::uint64_t>(input) >= left)
      return refuse("budget: tokens: the run has used " + std::to_string(total) +
                    " tokens of its " + std::to_string(*b.tokens) + limit +
                    ", and this request's input is about " + std::to_string(input) + " more");
    out.max_output =
        static_cast<std::int64_t>(std::min<std::uint64_t>(left - input, tools::kMaxOutputTokens));
  }
  if (b.usd) {
    const std::string limit = " (budget.usd" + at(b.usd_at) + ")";
    if (!price || !used.cost_known())
      return refuse(
          "budget: usd: " +
          std::string(!price ? "the model has no price" : "a model call of this run had no price") +
          ", so the budget of " + money(*b.usd) + limit +
          " cannot be kept; give it one under providers.NAME.prices");
    if (used.usd() >= *b.usd)
      return refuse("budget: usd: the run has spent " + money(used.usd()) + " of its " +
                    money(*b.usd) + limit);
    // The input at the uncached price: what the request costs at most before its output.
    const double input_usd = static_cast<double>(input) * price->input / 1e6;
    const double left = *b.usd - used.usd() - input_usd;
    const double output = price->output > 0 ? left * 1e6 / price->output : 1e30;
    if (left <= 0 || output < 1)
      return refuse("budget: usd: the run has spent " + money(used.usd()) + " of its " +
                    money(*b.usd) + limit + ", and this request's input costs about " +
                    money(input_usd) + " more");
    if (price->output > 0) {
      const auto cap =
          static_cast<std::int64_t>(std::min(output, static_cast<double>(tools::kMaxOutputTokens)));
      out.max_output = out.max_output ? std::min(*out.max_output, cap) : cap;
    }
  }
  return out;
}

}  // namespace tactus::broker
