// What happens in a freshly cloned child before the VM starts: the containment recipe.
#pragma once

#include <sys/types.h>

#include "runtime/jail/jail_spec.h"
#include "runtime/jail/seccomp_policy.h"

namespace tactus::jail {

// The fd the VM talks to the broker on; every other fd is closed before the VM starts.
inline constexpr int kChannelFd = 3;

// The code that runs once the child is contained: the VM in tactus, a probe in tests.
using ChildMain = int (*)(int channel_fd, const SpawnRequest& request);

struct ChildPlan {
  int channel = -1;  // the child's end of the run's socketpair
  int sync_fd = -1;  // jail: the spawner writes the uid/gid map outcome here (an int errno)
  const SeccompProgram* policy = nullptr;  // jail: built once in the spawner
  ChildMain main = nullptr;
  int stdio[3] = {-1, -1, -1};  // command jobs: the command's stdin, stdout and stderr
};

// Runs the recipe of request.backend, then plan.main on fd 3, then exits. A failed step is
// reported to the broker over the channel as {step, errno}.
[[noreturn]] void run_child(const ChildPlan& plan, const SpawnRequest& request);

}  // namespace tactus::jail
