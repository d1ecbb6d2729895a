#include "broker/command_launcher.h"

#include <cmath>

namespace tactus::broker {

tools::LaunchedCommand SpawnerCommandLauncher::launch(const tools::CommandSpec& spec,
                                                      UniqueFd channel, UniqueFd in, UniqueFd out,
                                                      UniqueFd err) {
  spawner::SpawnRequest req;
  req.backend = spawner::Backend::jail;  // a command always runs jailed, even with --no-sandbox
  req.job = spawner::Job::command;
  req.danger_host_network = spec.danger_host_network ? 1 : 0;
  req.memory = spec.memory;
  // The broker's kill at the timeout is the authority; RLIMIT_CPU backs it up.
  req.cpu_seconds = static_cast<std::uint64_t>(std::ceil(spec.timeout_seconds)) + 1;
  req.message_limit = spec.message_limit;
  auto child = spawner_.spawn_command(std::move(channel), std::move(in), std::move(out),
                                      std::move(err), req);
  tools::LaunchedCommand launched;
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
