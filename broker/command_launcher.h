// Command tools' and MCP servers' jails, asked of the spawner (the broker never forks).
#pragma once

#include "runtime/spawner/spawner.h"
#include "tools/tool_context.h"

namespace tactus::broker {

class SpawnerCommandLauncher final : public tools::CommandLauncher {
 public:
  explicit SpawnerCommandLauncher(spawner::SpawnerClient& spawner) : spawner_(spawner) {}
  tools::LaunchedCommand launch(const tools::CommandJail& jail, UniqueFd channel, UniqueFd in,
                                UniqueFd out, UniqueFd err) override;

 private:
  spawner::SpawnerClient& spawner_;
};

}  // namespace tactus::broker
