#include "runtime/jail/child_setup.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <time.h>

#include <cerrno>

#include "runtime/jail/namespaces.h"
#include "runtime/jail/signals.h"
#include "runtime/protocol/exit_codes.h"
#include "runtime/protocol/message.h"
#include "runtime/vm/host_channel.h"
#include "runtime/vm/vm_main.h"

namespace tactus::jail {
namespace {

struct Failure {
  const char* step = nullptr;
  int err = 0;
};

// Room for the C library, LuaJIT and the mapped binary above the VM heap cap.
constexpr std::uint64_t kAddressSpaceHeadroom = 512ull << 20;

bool die_with_parent(int channel) {
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return false;
  // getppid() is 0 across a pid namespace, so the check is the broker's end of the channel:
  // if the broker died before PDEATHSIG was armed, that end is closed.
  pollfd p{channel, POLLRDHUP, 0};
  errno = ESRCH;
  return ::poll(&p, 1, 0) == 0;
}

bool new_session() {
  return ::setsid() >= 0;
}

bool keep_only_channel(int channel) {
  if (channel != kChannelFd && ::dup2(channel, kChannelFd) < 0) return false;
  if (::syscall(SYS_close_range, 0u, kChannelFd - 1u, 0u) != 0) return false;
  return ::syscall(SYS_close_range, kChannelFd + 1u, ~0u, 0u) == 0;
}

// Command jobs: the broker's pipes become 0, 1 and 2, the channel 3; nothing else stays.
// Everything is first copied above the targets, so no dup2 overwrites a source still needed.
bool keep_stdio_and_channel(const int stdio[3], int channel) {
  const int sources[4] = {stdio[0], stdio[1], stdio[2], channel};
  int high[4];
  for (int i = 0; i < 4; ++i)
    if ((high[i] = ::fcntl(sources[i], F_DUPFD_CLOEXEC, 16)) < 0) return false;
  for (int i = 0; i < 4; ++i)
    if (::dup2(high[i], i) < 0) return false;
  return ::syscall(SYS_close_range, kChannelFd + 1u, ~0u, 0u) == 0;
}

bool set_limit(int resource, rlim_t soft, rlim_t hard) {
  const rlimit r{soft, hard};
  return ::setrlimit(resource, &r) == 0;
}

bool set_rlimits(const SpawnRequest& req, bool jailed) {
  if (!set_limit(RLIMIT_CORE, 0, 0)) return false;
  if (!set_limit(RLIMIT_FSIZE, 0, 0)) return false;
  // SIGXCPU at the soft limit (reported as "cpu"); SIGKILL at the hard limit a second later.
  if (req.cpu_seconds && !set_limit(RLIMIT_CPU, req.cpu_seconds, req.cpu_seconds + 1)) return false;
  if (!jailed) return true;
  if (!set_limit(RLIMIT_NOFILE, kChannelFd + 1, kChannelFd + 1)) return false;
  if (!set_limit(RLIMIT_NPROC, 1, 1)) return false;
#ifndef TACTUS_SANITIZE  // ASan's shadow memory needs terabytes of address space
  if (req.memory) {
    const rlim_t as = req.memory + kAddressSpaceHeadroom;
    if (!set_limit(RLIMIT_AS, as, as)) return false;
  }
#endif
  return true;
}

// A command tool may fork (a shell script) and write scratch files to its /tmp.
constexpr rlim_t kCommandMaxFiles = 256;
constexpr rlim_t kCommandMaxProcesses = 64;
constexpr rlim_t kCommandMaxFileSize = 16ull << 20;  // the scratch tmpfs is 16 MiB

// An MCP server: node starts a dozen threads, and writes files as large as the workspace's.
constexpr rlim_t kServerMaxFileSize = 256ull << 20;

bool set_server_rlimits() {
  if (!set_limit(RLIMIT_CORE, 0, 0)) return false;
  if (!set_limit(RLIMIT_FSIZE, kServerMaxFileSize, kServerMaxFileSize)) return false;
  if (!set_limit(RLIMIT_NOFILE, kCommandMaxFiles, kCommandMaxFiles)) return false;
  // Its memory (RLIMIT_DATA) is set by command_child_main right before the exec: this
  // process (a sanitizer build's shadow memory, say) is not what it measures.
  return set_limit(RLIMIT_NPROC, kCommandMaxProcesses, kCommandMaxProcesses);
}

bool set_command_rlimits(const SpawnRequest& req) {
  if (req.job == Job::mcp_server) return set_server_rlimits();
  if (!set_limit(RLIMIT_CORE, 0, 0)) return false;
  if (!set_limit(RLIMIT_FSIZE, kCommandMaxFileSize, kCommandMaxFileSize)) return false;
  if (req.cpu_seconds && !set_limit(RLIMIT_CPU, req.cpu_seconds, req.cpu_seconds)) return false;
  if (!set_limit(RLIMIT_NOFILE, kCommandMaxFiles, kCommandMaxFiles)) return false;
  if (!set_limit(RLIMIT_NPROC, kCommandMaxProcesses, kCommandMaxProcesses)) return false;
#ifndef TACTUS_SANITIZE
  if (req.memory && !set_limit(RLIMIT_AS, req.memory, req.memory)) return false;
#endif
  return true;
}

bool drop_capabilities() {
  for (int cap = 0; cap <= 63; ++cap)
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return false;
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) return false;
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  return ::syscall(SYS_capset, &header, data) == 0;
}

bool set_no_new_privs() {
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0;
}

bool unblock_reporting_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGSYS);
  sigaddset(&set, SIGXCPU);
  return ::sigprocmask(SIG_UNBLOCK, &set, nullptr) == 0;
}

bool load_seccomp(const SeccompProgram* policy) {
  const int err = policy ? load_seccomp_policy(*policy) : EINVAL;
  errno = err;
  return err == 0;
}

// Times each step of a recipe and remembers the first failure (Sandbox2's idea: setup steps
// are timed). The times go to the broker in a "setup" notification before the child's main.
class StepClock {
 public:
  StepClock() { clock_gettime(CLOCK_MONOTONIC, &start_); }
  // Records step as done (or as the failure, with errno) and returns success.
  bool ok(bool success, const char* step) {
    if (!success) {
      failure_ = {step, errno};
      return false;
    }
    if (count_ < kMaxSteps) {
      timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      steps_[count_++] = {
          step, (now.tv_sec - start_.tv_sec) * 1000000 + (now.tv_nsec - start_.tv_nsec) / 1000};
    }
    return true;
  }
  Failure failure() const { return failure_; }
  void report(int fd) const {
    protocol::Json steps = protocol::Json::array();
    for (int i = 0; i < count_; ++i)
      steps.push_back({{"step", steps_[i].name}, {"us", steps_[i].us}});
    vm::HostChannel channel(fd, protocol::kDefaultMessageLimit);
    std::string ignored;
    channel.send(protocol::make_notification("setup", protocol::Json{{"steps", steps}}), ignored);
  }

 private:
  static constexpr int kMaxSteps = 16;
  struct Step {
    const char* name;
    long us;
  };
  timespec start_{};
  Step steps_[kMaxSteps] = {};
  int count_ = 0;
  Failure failure_;
};

bool errno_ok(int err) {
  errno = err;
  return err == 0;
}

// The jail, in order, one step per line (docs/security.md). channel follows the channel fd as
// it moves, so a failure is reported where the channel really is.
bool contain_jail(StepClock& t, int& channel, const ChildPlan& plan, const SpawnRequest& req) {
  const char* mount_step = "mount";
  if (!t.ok(die_with_parent(channel), "pdeathsig")) return false;
  const char* map_step = "uid_map";
  const int map_err = user_ns_child_wait_maps(plan.sync_fd, &map_step);  // the parent half's
  if (!t.ok(errno_ok(map_err), map_step)) return false;
  if (!t.ok(new_session(), "setsid")) return false;
  const bool mounted = mount_ns_child_empty_root(&mount_step);  // names its failing sub-step
  if (!t.ok(mounted, mount_step)) return false;
  if (!t.ok(user_ns_child_become_nobody(), "setresuid")) return false;
  // The kernel clears PDEATHSIG when the effective uid changes (as root: 0 -> nobody), so arm it
  // again, and check the broker again in case it died in between.
  if (!t.ok(die_with_parent(channel), "pdeathsig_again")) return false;
  if (!t.ok(keep_only_channel(channel), "close_fds")) return false;
  channel = kChannelFd;
  if (!t.ok(set_rlimits(req, true), "rlimits")) return false;
  if (!t.ok(drop_capabilities(), "capabilities")) return false;
  if (!t.ok(set_no_new_privs(), "no_new_privs")) return false;
  if (!t.ok(install_jail_signal_handlers() && unblock_reporting_signals(), "signals")) return false;
  return t.ok(load_seccomp(plan.policy), "seccomp");
}

// A command tool's jail (and an MCP server's), in order: the same namespaces, identity and
// privileges as the VM's, but a root with /usr read-only (a server's: and its binds), stdio
// and fd 3, rlimits for a program that forks and writes scratch files, and the command
// denylist (it then execs, so no signal handlers).
bool contain_command_jail(StepClock& t, int& channel, const ChildPlan& plan,
                          const SpawnRequest& req) {
  const char* mount_step = "mount";
  if (!t.ok(die_with_parent(channel), "pdeathsig")) return false;
  const char* map_step = "uid_map";
  const int map_err = user_ns_child_wait_maps(plan.sync_fd, &map_step);
  if (!t.ok(errno_ok(map_err), map_step)) return false;
  if (!t.ok(new_session(), "setsid")) return false;
  const bool mounted = mount_ns_child_command_root(req, &mount_step);
  if (!t.ok(mounted, mount_step)) return false;
  if (!t.ok(user_ns_child_become_nobody(), "setresuid")) return false;
  if (!t.ok(die_with_parent(channel), "pdeathsig_again")) return false;
  if (!t.ok(keep_stdio_and_channel(plan.stdio, channel), "close_fds")) return false;
  channel = kChannelFd;
  if (!t.ok(set_command_rlimits(req), "rlimits")) return false;
  if (!t.ok(drop_capabilities(), "capabilities")) return false;
  if (!t.ok(set_no_new_privs(), "no_new_privs")) return false;
  return t.ok(load_seccomp(plan.policy), "seccomp");
}

// Danger (--no-sandbox): the child process and the restricted VM, nothing else.
bool contain_danger_none(StepClock& t, int& channel, const SpawnRequest& req) {
  if (!t.ok(die_with_parent(channel), "pdeathsig")) return false;
  if (!t.ok(new_session(), "setsid")) return false;
  if (!t.ok(keep_only_channel(channel), "close_fds")) return false;
  channel = kChannelFd;
  if (!t.ok(set_rlimits(req, false), "rlimits")) return false;
  return t.ok(install_jail_signal_handlers(), "signals");
}

}  // namespace

void run_child(const ChildPlan& plan, const SpawnRequest& request) {
  int channel = plan.channel;
  StepClock t;
  bool contained = false;
  if (request.job == Job::command || request.job == Job::mcp_server)  // always jailed
    contained = request.backend == Backend::jail ? contain_command_jail(t, channel, plan, request)
                                                 : t.ok(errno_ok(EINVAL), "backend");
  else if (request.backend == Backend::jail)
    contained = contain_jail(t, channel, plan, request);
  else
    contained = contain_danger_none(t, channel, request);
  if (!contained) {
    const Failure f = t.failure();
    vm::report_setup_failure(channel, f.step, f.err);  // best effort
    ::_exit(protocol::kExitSetupFailed);
  }
  t.report(kChannelFd);
  ::_exit(plan.main(kChannelFd, request));
}

}  // namespace tactus::jail
