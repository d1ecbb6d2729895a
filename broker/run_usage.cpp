#include "broker/run_usage.h"

#include <cmath>
#include <cstdio>

#include "runtime/protocol/methods.h"

namespace tactus::broker {
namespace {

using protocol::Json;

std::int64_t count_of(const Json& usage, const char* key) {
  const auto it = usage.find(key);
  if (it == usage.end() || !it->is_number_integer()) return 0;
  const auto v = it->get<std::int64_t>();
  return v < 0 ? 0 : std::min<std::int64_t>(v, std::int64_t{1} << 40);
}

void add(TokenCounts& to, const TokenCounts& from) {
  to.input += from.input;
  to.cached_input += from.cached_input;
  to.cache_creation_input += from.cache_creation_input;
  to.output += from.output;
  to.reasoning += from.reasoning;
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

void RunUsage::add_model_call(const std::string& model, const Json& usage, const Json& cost) {
  ModelUsage& m = by_model_[model];
  ++m.calls;
  if (usage.is_object()) {
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
    const Json result = answer.value("result", Json());
    if (!result.is_object()) continue;  // a failed call: nothing used that the provider billed
    const Json request = Json::parse(e.request_json, nullptr, false);
    const std::string name =
        request.is_object() ? request.value("provider", "?") + "/" + request.value("model", "?")
                            : "?";
    add_model_call(name, result.value("usage", Json()), result.value("cost", Json()));
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
  for (const auto& [name, m] : by_model_) n += m.tokens.total();
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
    put_tokens(one, m.tokens, m.unknown_calls);
    by_model[name] = std::move(one);
  }
  Json doc = {{"model_calls", model_calls()}, {"tool_calls", tool_calls_}};
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

std::string budget_refusal(const Budget& b, const RunUsage& used, std::string_view method,
                           bool price_known) {
  const auto at = [](const std::string& where) { return where.empty() ? "" : ", " + where; };
  if (method == protocol::method::host_call) {
    if (b.tool_calls && static_cast<std::uint64_t>(used.tool_calls()) >= *b.tool_calls)
      return "budget: tool_calls: the run has made " + std::to_string(used.tool_calls()) +
             " of its " + std::to_string(*b.tool_calls) + " tool calls (budget.tool_calls" +
             at(b.tool_calls_at) + "); the next would be the " +
             ordinal(static_cast<std::uint64_t>(used.tool_calls()) + 1);
    return "";
  }
  if (method != protocol::method::llm_chat) return "";
  if (b.model_calls && static_cast<std::uint64_t>(used.model_calls()) >= *b.model_calls)
    return "budget: model_calls: the run has made " + std::to_string(used.model_calls()) +
           " of its " + std::to_string(*b.model_calls) + " model calls (budget.model_calls" +
           at(b.model_calls_at) + "); the next would be the " +
           ordinal(static_cast<std::uint64_t>(used.model_calls()) + 1);
  if (b.tokens && !used.tokens_known())
    return "budget: tokens: a model call of this run reported no usage, so its budget of " +
           std::to_string(*b.tokens) + " tokens (budget.tokens" + at(b.tokens_at) +
           ") cannot be kept";
  if (b.tokens && static_cast<std::uint64_t>(used.total_tokens()) >= *b.tokens)
    return "budget: tokens: the run has used " + std::to_string(used.total_tokens()) +
           " tokens of its " + std::to_string(*b.tokens) + " (budget.tokens" + at(b.tokens_at) +
           ")";
  if (b.usd && (!price_known || !used.cost_known()))
    return "budget: usd: " +
           std::string(!price_known ? "the model has no price"
                                    : "a model call of this run had no price") +
           ", so the budget of " + money(*b.usd) + " (budget.usd" + at(b.usd_at) +
           ") cannot be kept; give it one under providers.NAME.prices";
  if (b.usd && used.usd() >= *b.usd)
    return "budget: usd: the run has spent " + money(used.usd()) + " of its " + money(*b.usd) +
           " (budget.usd" + at(b.usd_at) + ")";
  return "";
}

}  // namespace tactus::broker
