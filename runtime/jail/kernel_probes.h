// What this kernel allows a jail, read from /proc, /sys and /boot (and, for the 32-bit syscall
// ABIs, two probe children): typed facts that `tactus sandbox status` reports and that explain
// a jail that fails closed (setup_failure_hint). Nothing here builds a jail.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace tactus::jail {

struct UserNs {
  std::optional<long> max;           // user.max_user_namespaces
  std::optional<long> unprivileged;  // kernel.unprivileged_userns_clone (Debian, Ubuntu)
  std::optional<long> apparmor;      // kernel.apparmor_restrict_unprivileged_userns (Ubuntu)
  bool root = false;
  bool available() const {
    if (!max || *max == 0) return false;
    if (root) return true;
    return (!unprivileged || *unprivileged != 0) && (!apparmor || *apparmor == 0);
  }
};

struct Seccomp {
  int prctl_mode = -1;  // PR_GET_SECCOMP: 0 none, 2 filter; -1 with prctl_errno
  int prctl_errno = 0;
  std::optional<std::string> status_mode;           // "Seccomp:" in /proc/self/status
  std::optional<std::vector<std::string>> actions;  // kernel.seccomp.actions_avail
  bool trap = false, kill_process = false;
  bool supported() const { return prctl_mode >= 0 && status_mode && trap && kill_process; }
};

// A 32-bit syscall ABI: "yes", "no" or "unknown", and what says so.
struct Abi {
  std::string available = "unknown";
  std::vector<std::string> evidence;
};

struct Cgroups {
  std::string version;  // v2 | v1 | absent
  bool hybrid = false;  // v1 with a v2 hierarchy at /sys/fs/cgroup/unified
};

struct KernelSupport {
  std::string release, machine;  // uname
  unsigned uid = 0;              // the effective uid tactus runs as
  UserNs user_ns;
  Seccomp seccomp;
  std::optional<long> io_uring_disabled;  // kernel.io_uring_disabled
  Abi ia32, x32;                          // foreign syscall ABIs (x86_64 only)
  Cgroups cgroups;
};

UserNs user_namespaces();
Seccomp seccomp_support();
// Every fact, the ABI probes included (each forks a child).
KernelSupport probe_kernel();

// What the facts say about a jail that failed at setup step (its name, as a setup failure
// reports it: "userns", "uid_map", "clone3", "seccomp", ...), or "" when they say nothing.
std::string setup_failure_hint(const std::string& step, const UserNs& user_ns,
                               const Seccomp& seccomp);

}  // namespace tactus::jail
