#include "runtime/jail/child_setup.h"

#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/vm/vm_main.h"

namespace tactus::jail {
namespace {

struct Failure {
  const char* step = nullptr;
  int err = 0;
};

bool die_with_parent(pid_t broker) {
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return false;
  errno = ESRCH;
  return ::getppid() == broker;  // the broker may have died before PDEATHSIG was armed
}

bool new_session() {
  return ::setsid() >= 0;
}

bool keep_only_channel(int channel) {
  if (channel != kChannelFd && ::dup2(channel, kChannelFd) < 0) return false;
  if (::syscall(SYS_close_range, 0u, kChannelFd - 1u, 0u) != 0) return false;
  return ::syscall(SYS_close_range, kChannelFd + 1u, ~0u, 0u) == 0;
}

bool set_limit(int resource, rlim_t value) {
  const rlimit r{value, value};
  return ::setrlimit(resource, &r) == 0;
}

bool set_rlimits(const spawner::SpawnRequest& req) {
  if (!set_limit(RLIMIT_CORE, 0)) return false;
  if (!set_limit(RLIMIT_FSIZE, 0)) return false;
  // RLIMIT_CPU's soft limit sends SIGXCPU, which the broker reports as "cpu"; the hard limit
  // one second later is SIGKILL in case the signal is somehow survived.
  if (req.cpu_seconds == 0) return true;
  const rlimit cpu{req.cpu_seconds, req.cpu_seconds + 1};
  return ::setrlimit(RLIMIT_CPU, &cpu) == 0;
}

// The recipe, in order, one step per line. channel follows the channel fd as it moves, so a
// failure is reported where the channel really is (before close_fds, fd 3 may be another fd).
Failure contain(int& channel, const spawner::SpawnRequest& req, pid_t broker) {
  if (!die_with_parent(broker)) return {"pdeathsig", errno};
  if (!new_session()) return {"setsid", errno};
  if (!keep_only_channel(channel)) return {"close_fds", errno};
  channel = kChannelFd;
  if (!set_rlimits(req)) return {"rlimits", errno};
  return {};
}

}  // namespace

void run_child(int channel, const spawner::SpawnRequest& request, pid_t broker) {
  int channel_now = channel;
  const Failure f = contain(channel_now, request, broker);
  if (f.step) {
    vm::report_setup_failure(channel_now, f.step, f.err);  // best effort
    ::_exit(vm::kExitSetupFailed);
  }
  ::_exit(vm::vm_main(kChannelFd, request.message_limit));
}

}  // namespace tactus::jail
