#include "broker/policy.h"

#include <fnmatch.h>

namespace tactus::broker {

bool tool_allowed(const RunPolicy& policy, std::string_view name) {
  if (name == "host.ping") return true;
  const std::string n(name);
  for (const auto& pattern : policy.allowed_tools)
    if (::fnmatch(pattern.c_str(), n.c_str(), 0) == 0) return true;
  return false;
}

}  // namespace tactus::broker
