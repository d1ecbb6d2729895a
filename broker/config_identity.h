// A run's configuration identity: what a resume must find unchanged (docs/durability.md,
// "Resume"). It covers the settings a layer moved away from their built-in defaults, by value,
// not origin, and leaves out the bounds and place of the host's own records (journal.*,
// audit.max_line, audit.max_bytes): a tactus that adds a setting, or a layer that writes one at
// its default, does not strand a suspended run, and a different allowed tool, timeout or
// volume does refuse it.
#pragma once

#include <string>

#include "sidecars/config.h"

namespace tactus::tools {
class SecretMask;
}

namespace tactus::broker {

// The scheme runs are recorded with now (broker::RunRecord::config_scheme).
inline constexpr int kConfigScheme = 2;

struct ConfigIdentity {
  std::string hash;  // sha256 hex of the lines
  std::string text;  // "key: value" lines, masked (for the journal and refusals)
};

ConfigIdentity config_identity(const sidecars::Config& config, const tools::SecretMask* mask);

// Whether hash is this configuration's fingerprint under scheme 1 (every `config show` line but
// journal.max_bytes, as printed): a run begun before schema 4. Settings added since scheme 1
// are left out of the lines; those added while scheme 1 was in use (sandbox.limits.disk,
// sandbox.workspace) are tried with and, when at their defaults, without.
bool matches_scheme1(const sidecars::Config& config, const std::string& hash);

// What changed between two identities' texts: "tools.allow is now [...] (was [...]); ...", at
// most a few settings named.
std::string describe_config_change(const std::string& before, const std::string& now);

}  // namespace tactus::broker
