// Brokered host tools: named operations the broker runs on the VM's behalf, after the policy
// check. [skeleton] has host.ping; file, http, command and MCP tools come in [config].
#pragma once

#include <string>
#include <string_view>

#include "runtime/protocol/message.h"

namespace tactus::tools {

struct ToolOutcome {
  bool ok = false;
  protocol::Json result;
  std::string code;  // invalid_args | not_found | timeout | failed
  std::string message;
};

class ToolRegistry {
 public:
  // Runs the named tool. The caller has already checked the name against the run's allowlist.
  ToolOutcome call(std::string_view name, const protocol::Json& args) const;
  bool has(std::string_view name) const;
};

}  // namespace tactus::tools
