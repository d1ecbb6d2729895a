#include "runtime/jail/kernel_probes.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace tactus::jail {
namespace {

// ---- reading the host's /proc, /sys and /boot ---------------------------------------------

// The whole file (up to max bytes), or nothing if it cannot be read.
std::optional<std::string> read_text(const std::string& path, std::size_t max = 1 << 16) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0 || text.size() >= max) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

// A sysctl holding one integer; nothing if absent or not a number.
std::optional<long> read_long(const std::string& path) {
  const auto text = read_text(path);
  if (!text) return std::nullopt;
  const std::string t = trim(*text);
  if (t.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(t.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return std::nullopt;
  return v;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::vector<std::string> words(std::string_view s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = s.find_first_not_of(" \t\r\n", i);
    if (b == std::string_view::npos) break;
    const auto e = s.find_first_of(" \t\r\n", b);
    out.emplace_back(s.substr(b, e == std::string_view::npos ? s.size() - b : e - b));
    i = e == std::string_view::npos ? s.size() : e;
  }
  return out;
}

// "y", "n" (from "# CONFIG_X is not set") or nothing, from /boot/config-$(uname -r).
std::optional<bool> kernel_config(const std::optional<std::string>& config, const char* option) {
  if (!config) return std::nullopt;
  const std::string set = std::string(option) + "=y";
  const std::string unset = std::string("# ") + option + " is not set";
  std::size_t pos = 0;
  while (pos < config->size()) {
    auto end = config->find('\n', pos);
    if (end == std::string::npos) end = config->size();
    const std::string_view line(config->data() + pos, end - pos);
    if (line == set) return true;
    if (line == unset) return false;
    pos = end + 1;
  }
  return std::nullopt;
}

std::string on_off(bool b) {
  return b ? "yes" : "no";
}

// ---- the facts ----------------------------------------------------------------------------

bool action_avail(unsigned action) {
  return ::syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
}

#if defined(__x86_64__)
// One getpid through a foreign ABI, in a child of its own (a kernel without the ABI answers
// int 0x80 with SIGSEGV, and a seccomp filter around tactus might kill). 0: the kernel answered
// with our pid; 1: it does not know the ABI; anything else: inconclusive.
long int80_getpid() {
  long ret = 20;  // getpid in the i386 table
  asm volatile("int $0x80" : "+a"(ret) : : "memory");
  return ret;
}

long x32_getpid() {
  return ::syscall(0x40000000L | SYS_getpid) < 0 ? -errno : ::getpid();
}

void exit_on_sigsegv(int) {
  ::_exit(1);
}

std::string probe_abi(long (*attempt)(), const char* how) {
  const pid_t pid = ::fork();
  if (pid < 0) return std::string(how) + ": cannot fork (" + std::strerror(errno) + ")";
  if (pid == 0) {
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);  // no core file, whatever the core pattern
    const rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    ::signal(SIGSEGV, exit_on_sigsegv);
    const long r = attempt();
    ::_exit(r == ::getpid() ? 0 : r == -ENOSYS ? 1 : 2);
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return "yes";
  if (WIFEXITED(st) && WEXITSTATUS(st) == 1) return "no";
  if (WIFSIGNALED(st))
    return std::string(how) + ": the probe was killed by signal " + std::to_string(WTERMSIG(st));
  return std::string(how) + ": inconclusive";
}
#endif

// What decides whether one foreign ABI exists: a probe, then files that may say so.
struct AbiCheck {
  long (*attempt)();
  const char* probe_name;     // "int 0x80 probe"
  const char* answered;       // evidence when the probe got an answer
  const char* refused;        // evidence when the kernel refused it
  const char* config_option;  // the kernel config option that builds it
  const char* present_path;   // a file whose presence means "yes" (may be null)
};

Abi foreign_abi(const AbiCheck& check, const std::optional<std::string>& config,
                const std::string& machine) {
  Abi a;
  if (machine != "x86_64") {
    a.available = "n/a";
    a.evidence.push_back("not x86_64");
    return a;
  }
#if defined(__x86_64__)
  const std::string probe = probe_abi(check.attempt, check.probe_name);
  if (probe == "yes" || probe == "no") {
    a.available = probe;
    a.evidence.push_back(probe == "yes" ? check.answered : check.refused);
  } else {
    a.evidence.push_back(probe);
  }
#endif
  const bool present = check.present_path && exists(check.present_path);
  if (present) a.evidence.push_back(std::string(check.present_path) + " present");
  const auto cfg = kernel_config(config, check.config_option);
  if (cfg) a.evidence.push_back(std::string(check.config_option) + "=" + (*cfg ? "y" : "n"));
  if (a.available == "unknown") {
    if (present)
      a.available = "yes";
    else if (cfg)
      a.available = on_off(*cfg);
  }
  return a;
}

#if defined(__x86_64__)
constexpr AbiCheck kIa32{int80_getpid,
                         "int 0x80 probe",
                         "int 0x80 getpid answered in a probe child",
                         "int 0x80 refused in a probe child",
                         "CONFIG_IA32_EMULATION",
                         "/proc/sys/abi/vsyscall32"};
constexpr AbiCheck kX32{x32_getpid,
                        "x32 probe",
                        "an x32 getpid answered in a probe child",
                        "an x32 getpid got ENOSYS in a probe child",
                        "CONFIG_X86_X32_ABI",
                        nullptr};
#else
constexpr AbiCheck kIa32{nullptr, "", "", "", "CONFIG_IA32_EMULATION", nullptr};
constexpr AbiCheck kX32{nullptr, "", "", "", "CONFIG_X86_X32_ABI", nullptr};
#endif

Cgroups cgroups() {
  Cgroups c;
  if (exists("/sys/fs/cgroup/cgroup.controllers")) {
    c.version = "v2";
    return c;
  }
  c.hybrid = exists("/sys/fs/cgroup/unified/cgroup.controllers");
  bool v1 = false;
  if (const auto mounts = read_text("/proc/self/mounts", 1 << 20)) {
    std::size_t pos = 0;
    while (!v1 && pos < mounts->size()) {
      auto end = mounts->find('\n', pos);
      if (end == std::string::npos) end = mounts->size();
      const auto w = words(std::string_view(*mounts).substr(pos, end - pos));
      v1 = w.size() > 2 && w[2] == "cgroup";
      pos = end + 1;
    }
  }
  c.version = v1 ? "v1" : "absent";
  return c;
}

}  // namespace

UserNs user_namespaces() {
  UserNs u;
  u.max = read_long("/proc/sys/user/max_user_namespaces");
  u.unprivileged = read_long("/proc/sys/kernel/unprivileged_userns_clone");
  u.apparmor = read_long("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
  u.root = ::geteuid() == 0;
  return u;
}

Seccomp seccomp_support() {
  Seccomp s;
  s.prctl_mode = ::prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
  if (s.prctl_mode < 0) s.prctl_errno = errno;
  if (const auto status = read_text("/proc/self/status")) {
    const auto at = status->find("\nSeccomp:");
    if (at != std::string::npos) {
      const auto end = status->find('\n', at + 1);
      s.status_mode = trim(std::string_view(*status).substr(at + 9, end - (at + 9)));
    }
  }
  if (const auto avail = read_text("/proc/sys/kernel/seccomp/actions_avail")) {
    s.actions = words(*avail);
    for (const auto& a : *s.actions) {
      if (a == "trap") s.trap = true;
      if (a == "kill_process") s.kill_process = true;
    }
  } else {  // no sysctl (no /proc/sys?): ask the kernel itself
    s.trap = action_avail(SECCOMP_RET_TRAP);
    s.kill_process = action_avail(SECCOMP_RET_KILL_PROCESS);
  }
  return s;
}

KernelSupport probe_kernel() {
  KernelSupport k;
  utsname uts{};
  ::uname(&uts);
  k.release = uts.release;
  k.machine = uts.machine;
  k.uid = ::geteuid();
  const auto config = read_text("/boot/config-" + k.release, 16 << 20);
  k.user_ns = user_namespaces();
  k.seccomp = seccomp_support();
  k.io_uring_disabled = read_long("/proc/sys/kernel/io_uring_disabled");
  k.ia32 = foreign_abi(kIa32, config, k.machine);
  k.x32 = foreign_abi(kX32, config, k.machine);
  k.cgroups = cgroups();
  return k;
}

std::string setup_failure_hint(const std::string& step, const UserNs& u, const Seccomp& s) {
  const bool userns_step = step == "userns" || step == "uid_map" || step == "gid_map" ||
                           step == "setgroups" || step == "clone3" || step == "netns";
  if (userns_step && (!u.max || *u.max == 0))
    return u.max ? "user namespaces are off (user.max_user_namespaces = 0)"
                 : "this kernel has no user namespaces";
  if (userns_step && !u.root && u.unprivileged && *u.unprivileged == 0)
    return "unprivileged user namespaces are off (kernel.unprivileged_userns_clone = 0)";
  if (userns_step && !u.root && u.apparmor && *u.apparmor != 0)
    return "AppArmor restricts unprivileged user namespaces "
           "(kernel.apparmor_restrict_unprivileged_userns = 1)";
  if ((step == "seccomp" || step == "seccomp_build") && !s.supported())
    return "this kernel has no usable seccomp filters";
  return "";
}

}  // namespace tactus::jail
