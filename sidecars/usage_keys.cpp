// The sections of a layer about what runs use and spend: providers (with their prices), the
// run's budget, and telemetry (docs/configuration.md).
#include <cmath>
#include <cstdlib>

#include "sidecars/layer_reader.h"

namespace tactus::sidecars {
namespace {

bool http_url(const std::string& url) {
  return url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
}

}  // namespace

// providers.NAME: {api_key, base_url, api, max_tokens_field, prices}; providers.defaults:
// {timeout, retries}.
bool LayerReader::providers(const YAML::Node& n) {
  return each(n, "providers", {}, [&](const std::string& name, const YAML::Node& p) {
    const std::string key = "providers." + name;
    if (name == "defaults")
      return each(p, key, {"timeout", "retries"}, [&](const std::string& f, const YAML::Node& x) {
        if (f == "timeout") return duration(x, key + ".timeout", 0.001, cfg_.provider_timeout);
        return count(x, key + ".retries", 20, cfg_.provider_retries);
      });
    Provider prov;
    prov.origin = origin(p);
    const bool ok = each(p, key, {"api_key", "base_url", "api", "max_tokens_field", "prices"},
                         [&](const std::string& f, const YAML::Node& x) {
                           const std::string fk = key + "." + f;
                           if (f == "api_key") return text(x, fk, prov.api_key);
                           if (f == "prices") return prices(x, fk, prov);
                           if (f == "base_url") {
                             if (!text(x, fk, prov.base_url)) return false;
                             if (!http_url(prov.base_url))
                               return fail(x, fk, "must start with http:// or https://");
                             return true;
                           }
                           Setting<std::string> w;
                           if (f == "max_tokens_field")
                             return word(x, fk, {"max_tokens", "max_completion_tokens"}, w) &&
                                    (prov.max_tokens_field = w.value, true);
                           if (!word(x, fk, {"openai", "anthropic"}, w)) return false;
                           prov.api = w.value;
                           return true;
                         });
    if (!ok) return false;
    cfg_.providers[name] = prov;
    return true;
  });
}

// A price or a budget in USD: a number, at least 0.
bool LayerReader::usd(const YAML::Node& n, const std::string& key, double& out) {
  if (!scalar(n, key, "a number of US dollars (e.g. 0.25)")) return false;
  const std::string& s = n.Scalar();
  char* end = nullptr;
  const double v = s.empty() ? NAN : std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v) || v < 0 || v > 1e9)
    return fail(n, key, "'" + s + "' is not a number of US dollars from 0 to 1e9 (e.g. 0.25)");
  out = v;
  return true;
}

// prices: {MODEL: {input, cached_input, output, cache_write}}: USD per million tokens; input
// and output are required, cached_input defaults to input.
bool LayerReader::prices(const YAML::Node& n, const std::string& key, Provider& prov) {
  return each(n, key, {}, [&](const std::string& model, const YAML::Node& m) {
    const std::string mk = key + "." + model;
    PriceDecl price;
    price.origin = origin(m);
    bool has_input = false, has_output = false, has_cached = false;
    const bool ok = each(m, mk, {"input", "cached_input", "output", "cache_write"},
                         [&](const std::string& f, const YAML::Node& x) {
                           const std::string fk = mk + "." + f;
                           if (f == "input") return has_input = true, usd(x, fk, price.input);
                           if (f == "output") return has_output = true, usd(x, fk, price.output);
                           if (f == "cached_input")
                             return has_cached = true, usd(x, fk, price.cached_input);
                           return usd(x, fk, price.cache_write);
                         });
    if (!ok) return false;
    if (!has_input || !has_output)
      return fail(m, mk, "needs input and output (USD per million tokens)");
    if (!has_cached) price.cached_input = price.input;
    prov.prices[model] = price;
    return true;
  });
}

// budget: {usd, tokens, model_calls, tool_calls}: what one run may spend, resumes included.
bool LayerReader::budget(const YAML::Node& n) {
  return each(n, "budget", {"usd", "tokens", "model_calls", "tool_calls"},
              [&](const std::string& k, const YAML::Node& v) {
                const std::string key = "budget." + k;
                if (k == "usd") {
                  double d = 0;
                  if (!usd(v, key, d)) return false;
                  cfg_.budget_usd = {d, origin(v)};
                  return true;
                }
                Setting<std::uint64_t> c;
                if (!count(v, key, std::uint64_t{1} << 50, c)) return false;
                auto& target = k == "tokens"        ? cfg_.budget_tokens
                               : k == "model_calls" ? cfg_.budget_model_calls
                                                    : cfg_.budget_tool_calls;
                target = {c.value, c.origin};
                return true;
              });
}

// telemetry: {otlp_endpoint, capture_content, timeout}.
bool LayerReader::telemetry(const YAML::Node& n) {
  return each(n, "telemetry", {"otlp_endpoint", "capture_content", "timeout"},
              [&](const std::string& k, const YAML::Node& v) {
                const std::string key = "telemetry." + k;
                if (k == "capture_content") return boolean(v, key, cfg_.capture_content);
                if (k == "timeout") {
                  if (!duration(v, key, 0.001, cfg_.telemetry_timeout)) return false;
                  if (cfg_.telemetry_timeout.value <= 60) return true;
                  return fail(v, key, "must be at most 60 s (the export holds up tactus's exit)");
                }
                std::string url;
                if (!text(v, key, url)) return false;
                if (!http_url(url))
                  return fail(v, key,
                              "must be an http:// or https:// URL (OTLP/HTTP, e.g. "
                              "http://127.0.0.1:4318)");
                cfg_.otlp_endpoint = {url, origin(v)};
                return true;
              });
}

}  // namespace tactus::sidecars
