// What happens in a freshly cloned child before the VM starts: the containment recipe.
// [skeleton] has the process-level steps; the namespaces and seccomp are added in [jail].
#pragma once

#include <sys/types.h>

#include "runtime/spawner/spawn_request.h"

namespace tactus::jail {

// The fd the VM talks to the broker on; every other fd is closed before the VM starts.
inline constexpr int kChannelFd = 3;

// Runs the recipe, then the VM on fd 3, then exits. A failed step is reported to the broker
// over the channel as {step, errno} when the channel is usable.
[[noreturn]] void run_child(int channel, const spawner::SpawnRequest& request, pid_t broker);

}  // namespace tactus::jail
