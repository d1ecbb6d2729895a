#include "broker/config_identity.h"

#include <map>
#include <vector>

#include "broker/sha256.h"
#include "tools/secret_mask.h"

namespace tactus::broker {
namespace {

// Where and how much the host keeps of its own records, what it spends and reports: nothing the
// procedure's course depends on. Raising journal.max_bytes, the audit bounds or the budget, or
// correcting a price, must not strand a run (a run stopped by its budget resumes under a raised
// one). (audit.path stays in: it decides which files the file tools hide.)
constexpr const char* kOutsideIdentity[] = {"journal.", "audit.max_line", "audit.max_bytes",
                                            "budget.", "telemetry."};

// Settings scheme 1 never had a line for: its hashes were made without them.
constexpr const char* kAfterScheme1[] = {"tools.http.idempotency_key",
                                         "audit.max_line",
                                         "audit.max_bytes",
                                         "budget.usd",
                                         "budget.tokens",
                                         "budget.model_calls",
                                         "budget.tool_calls",
                                         "telemetry.otlp_endpoint",
                                         "telemetry.capture_content",
                                         "telemetry.timeout",
                                         "default_model",
                                         "default_provider",
                                         "default_toolsets"};
// Settings added while scheme 1 was in use: a run may have been begun with or without them.
constexpr const char* kDuringScheme1[] = {"sandbox.limits.disk", "sandbox.workspace"};

bool outside_identity(const std::string& key) {
  for (const char* prefix : kOutsideIdentity)
    if (key.rfind(prefix, 0) == 0) return true;
  return key.rfind("providers.", 0) == 0 && key.find(".prices.") != std::string::npos;
}

template <std::size_t N>
bool listed(const std::string& key, const char* const (&keys)[N]) {
  for (const char* k : keys)
    if (key == k) return true;
  return false;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  for (std::size_t start = 0; start < text.size();) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Scheme 1 exactly: the shown text, each line cut at its first "  # " (padding before it kept,
// as it was), journal.max_bytes left out.
std::string scheme1_hash(const std::vector<sidecars::ConfigEntry>& entries) {
  broker::Sha256 h;
  for (std::string line : lines_of(sidecars::show_entries(entries))) {
    const auto cut = line.find("  # ");
    if (cut != std::string::npos) line.resize(cut);
    if (line.rfind("journal.max_bytes:", 0) == 0) continue;
    h.update(line);
    h.update("\n");
  }
  return h.hex_digest();
}

// A value in a refusal: config values can be long lists.
std::string brief(const std::string& v) {
  return v.size() <= 160 ? v : v.substr(0, 157) + "...";
}

// "key: value" lines as a map from key to its values (a list setting has one line per item).
std::map<std::string, std::string> by_key(const std::string& text) {
  std::map<std::string, std::string> out;
  for (const std::string& line : lines_of(text)) {
    const auto colon = line.find(": ");
    if (colon == std::string::npos) continue;
    std::string& v = out[line.substr(0, colon)];
    v += (v.empty() ? "" : ", ") + line.substr(colon + 2);
  }
  return out;
}

}  // namespace

ConfigIdentity config_identity(const sidecars::Config& config, const tools::SecretMask* mask) {
  std::string lines;
  for (const auto& e : sidecars::non_default_entries(config)) {
    if (outside_identity(e.key)) continue;
    lines += e.key + ": " + e.value + "\n";
  }
  ConfigIdentity id;
  id.hash = broker::sha256_hex("tactus configuration identity 2\n" + lines);
  id.text = mask ? mask->mask(lines) : lines;
  return id;
}

bool matches_scheme1(const sidecars::Config& config, const std::string& hash) {
  std::vector<sidecars::ConfigEntry> with, without;
  bool during_at_default = true;
  const auto defaults = sidecars::config_entries(sidecars::Config{});
  for (auto& e : sidecars::config_entries(config)) {
    if (listed(e.key, kAfterScheme1)) continue;
    with.push_back(e);
    if (listed(e.key, kDuringScheme1)) {
      for (const auto& d : defaults)
        if (d.key == e.key && d.value != e.value) during_at_default = false;
      continue;
    }
    without.push_back(std::move(e));
  }
  return scheme1_hash(with) == hash || (during_at_default && scheme1_hash(without) == hash);
}

std::string describe_config_change(const std::string& before, const std::string& now) {
  const auto was = by_key(before), is = by_key(now);
  std::vector<std::string> changes;
  for (const auto& [key, value] : is) {
    const auto it = was.find(key);
    if (it == was.end())
      changes.push_back(key + " is now " + brief(value) + " (was the default)");
    else if (it->second != value)
      changes.push_back(key + " is now " + brief(value) + " (was " + brief(it->second) + ")");
  }
  for (const auto& [key, value] : was)
    if (!is.count(key))
      changes.push_back(key + " is back at its default (was " + brief(value) + ")");
  std::string out;
  for (std::size_t i = 0; i < changes.size() && i < 3; ++i) out += (i ? "; " : "") + changes[i];
  if (changes.size() > 3) out += "; and " + std::to_string(changes.size() - 3) + " more";
  return out;
}

}  // namespace tactus::broker
