// What a run may reach: deny by default. [skeleton] knows only the tool allowlist; the sidecar
// layers of [config] fill it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tactus::broker {

struct RunPolicy {
  std::vector<std::string> allowed_tools;  // names and globs (fnmatch); host.ping always
};

bool tool_allowed(const RunPolicy& policy, std::string_view name);

}  // namespace tactus::broker
