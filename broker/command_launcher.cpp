#include "broker/command_launcher.h"

#include <cstring>

namespace tactus::broker {
namespace {

// The binds as SpawnRequest::binds records ("<mode><host>\0<target>\0"). false: they do not fit.
bool pack_binds(const std::vector<tools::JailBind>& binds, char (&out)[jail::kJailBindsBytes]) {
  std::size_t at = 0;
  for (const auto& b : binds) {
    // A NUL would end a path early and start a record of its own.
    if (b.host.find('\0') != std::string::npos || b.target.find('\0') != std::string::npos)
      return false;
    const std::size_t need = 1 + b.host.size() + 1 + b.target.size() + 1;
    if (at + need + 1 > sizeof out) return false;
    out[at++] = static_cast<char>(b.kind);
    std::memcpy(out + at, b.host.c_str(), b.host.size() + 1);
    at += b.host.size() + 1;
    std::memcpy(out + at, b.target.c_str(), b.target.size() + 1);
    at += b.target.size() + 1;
  }
  out[at] = 0;
  return true;
}

}  // namespace

tools::LaunchedCommand SpawnerCommandLauncher::launch(const tools::CommandJail& jail,
                                                      UniqueFd channel, UniqueFd in, UniqueFd out,
                                                      UniqueFd err) {
  tools::LaunchedCommand launched;
  spawner::SpawnRequest req;
  req.backend = spawner::Backend::jail;  // a command always runs jailed, even with --no-sandbox
  req.job = jail.server ? spawner::Job::mcp_server : spawner::Job::command;
  req.danger_host_network = jail.danger_host_network ? 1 : 0;
  if (jail.server)
    req.data_limit = jail.memory;
  else
    req.memory = jail.memory;
  req.cpu_seconds = jail.cpu_seconds;
  req.message_limit = jail.message_limit;
  if (!pack_binds(jail.binds, req.binds)) {
    launched.error = "its mounts (" + std::to_string(jail.binds.size()) +
                     ": its install dir, the workspace, a shield over each trusted file in it) "
                     "do not fit in " +
                     std::to_string(sizeof req.binds) + " bytes, or a path holds a NUL";
    return launched;
  }
  auto child = spawner_.spawn_command(std::move(channel), std::move(in), std::move(out),
                                      std::move(err), req);
  launched.pid = child.pid;
  launched.pidfd = std::move(child.pidfd);
  launched.error = child.error;
  if (child.step == "netns_host")
    launched.error =
        "network: host needs tactus to run as root: an unprivileged spawner has "
        "left the host's network namespace for good";
  return launched;
}

}  // namespace tactus::broker
