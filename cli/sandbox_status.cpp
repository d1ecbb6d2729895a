#include "cli/sandbox_status.h"

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

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/run_session.h"
#include "runtime/protocol/message.h"
#include "tools/registry.h"

namespace tactus::cli {
namespace {

using protocol::Json;

constexpr int kExitSandbox = 4;

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

UserNs user_namespaces() {
  UserNs u;
  u.max = read_long("/proc/sys/user/max_user_namespaces");
  u.unprivileged = read_long("/proc/sys/kernel/unprivileged_userns_clone");
  u.apparmor = read_long("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
  u.root = ::geteuid() == 0;
  return u;
}

struct Seccomp {
  int prctl_mode = -1;  // PR_GET_SECCOMP: 0 none, 2 filter; -1 with prctl_errno
  int prctl_errno = 0;
  std::optional<std::string> status_mode;           // "Seccomp:" in /proc/self/status
  std::optional<std::vector<std::string>> actions;  // kernel.seccomp.actions_avail
  bool trap = false, kill_process = false;
  bool supported() const { return prctl_mode >= 0 && status_mode && trap && kill_process; }
};

bool action_avail(unsigned action) {
  return ::syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
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

// A 32-bit syscall ABI: "yes", "no" or "unknown", and what says so.
struct Abi {
  std::string available = "unknown";
  std::vector<std::string> evidence;
};

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

struct Cgroups {
  std::string version;  // v2 | v1 | absent
  bool hybrid = false;  // v1 with a v2 hierarchy at /sys/fs/cgroup/unified
};

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

// ---- the trial run ------------------------------------------------------------------------

struct DiscardSink : broker::OutputSink {
  void print(std::string_view) override {}
};

broker::RunResult trial_run(spawner::SpawnerClient& spawner) {
  broker::RunRequest req;
  req.run_id = "sandbox-status";
  req.source = "return 1";
  req.chunkname = "=sandbox status";
  req.limits.timeout_seconds = 10;
  req.limits.cpu_seconds = 10;
  req.backend = spawner::Backend::jail;
  tools::ToolRegistry tools;
  DiscardSink sink;
  broker::RunResult r = broker::run_procedure(spawner, req, tools, sink);
  if (r.status == broker::RunStatus::ok && r.result != Json(1)) {
    r.status = broker::RunStatus::error;
    r.message = "the trial run returned " + protocol::dump_json(r.result) + " instead of 1";
  }
  return r;
}

// What the facts say about a failed step, if anything.
std::string failure_hint(const broker::RunResult& r, const UserNs& u, const Seccomp& s) {
  const std::string& step = r.setup_step;
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

// "the jail fails at step S: reason", or at the run's outcome when setup passed.
std::string jail_failure(const broker::RunResult& r, const UserNs& u, const Seccomp& s) {
  std::string why;
  if (r.status == broker::RunStatus::setup) {
    why = "the jail fails at step " + r.setup_step + ": " + std::strerror(r.setup_errno);
    const std::string hint = failure_hint(r, u, s);
    if (!hint.empty()) why += "; " + hint;
  } else {
    why = std::string("the jail fails: ") + broker::to_string(r.status) + ": " + r.message;
  }
  return why;
}

// ---- the report ---------------------------------------------------------------------------

std::string fmt_ms(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", ms);
  return buf;
}

std::string opt_text(const std::optional<long>& v) {
  return v ? std::to_string(*v) : "absent";
}

Json opt_json(const std::optional<long>& v) {
  return v ? Json(*v) : Json(nullptr);
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

const char* kIoUringNote = "the jail's seccomp allowlist refuses io_uring_* regardless";
const char* kForeignAbiNote = "the jail's seccomp filter traps foreign architectures anyway";

std::string io_uring_state(const std::optional<long>& d) {
  if (!d) return "absent";
  switch (*d) {
    case 0:
      return "enabled";
    case 1:
      return "restricted";
    case 2:
      return "disabled";
    default:
      return "unknown";
  }
}

std::string io_uring_text(const std::optional<long>& d) {
  if (!d) return "no kernel.io_uring_disabled (kernel before 6.6, or built without io_uring)";
  switch (*d) {
    case 0:
      return "enabled for every process (kernel.io_uring_disabled = 0)";
    case 1:
      return "restricted to CAP_SYS_ADMIN and kernel.io_uring_group (kernel.io_uring_disabled = "
             "1)";
    case 2:
      return "disabled (kernel.io_uring_disabled = 2)";
    default:
      return "kernel.io_uring_disabled = " + std::to_string(*d);
  }
}

void write_out(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

}  // namespace

int sandbox_status_command(bool json, spawner::SpawnerClient& spawner) {
  utsname uts{};
  ::uname(&uts);
  const std::string release = uts.release, machine = uts.machine;
  const uid_t uid = ::geteuid();
  const auto config = read_text("/boot/config-" + release, 16 << 20);

  const UserNs userns = user_namespaces();
  const Seccomp sec = seccomp_support();
  const std::optional<long> io_uring = read_long("/proc/sys/kernel/io_uring_disabled");
  const Abi ia32 = foreign_abi(kIa32, config, machine);
  const Abi x32 = foreign_abi(kX32, config, machine);
  const Cgroups cg = cgroups();
  const broker::RunResult trial = trial_run(spawner);
  const bool works = trial.status == broker::RunStatus::ok;
  const std::string jail_result = works ? "jail" : "none: " + jail_failure(trial, userns, sec);
  // A run refused by the spawner has only spawn_ms.
  const double trial_ms =
      trial.timings.total_ms > 0 ? trial.timings.total_ms : trial.timings.spawn_ms;

  if (json) {
    Json doc;
    doc["kernel"] = {{"release", release}, {"machine", machine}};
    doc["uid"] = uid;
    doc["root"] = userns.root;
    doc["user_namespaces"] = {{"available", userns.available()},
                              {"max_user_namespaces", opt_json(userns.max)},
                              {"unprivileged_userns_clone", opt_json(userns.unprivileged)},
                              {"apparmor_restrict_unprivileged_userns", opt_json(userns.apparmor)},
                              {"root", userns.root},
                              {"outside_uid", userns.root ? 65534 : static_cast<long>(uid)}};
    Json seccomp = {{"supported", sec.supported()},
                    {"prctl_get_seccomp", sec.prctl_mode},
                    {"status_line", sec.status_mode ? Json(*sec.status_mode) : Json(nullptr)},
                    {"actions_avail", sec.actions ? Json(*sec.actions) : Json(nullptr)},
                    {"trap", sec.trap},
                    {"kill_process", sec.kill_process}};
    if (sec.prctl_mode < 0) seccomp["prctl_errno"] = sec.prctl_errno;
    doc["seccomp"] = std::move(seccomp);
    doc["io_uring"] = {{"io_uring_disabled", opt_json(io_uring)},
                       {"state", io_uring_state(io_uring)},
                       {"note", kIoUringNote}};
    doc["ia32"] = {
        {"available", ia32.available}, {"evidence", ia32.evidence}, {"note", kForeignAbiNote}};
    doc["x32"] = {
        {"available", x32.available}, {"evidence", x32.evidence}, {"note", kForeignAbiNote}};
    doc["cgroups"] = {{"version", cg.version}, {"hybrid", cg.hybrid}};
    Json t = {{"result", jail_result},
              {"status", broker::to_string(trial.status)},
              {"total_ms", trial_ms}};
    if (!works) {
      t["message"] = trial.message;
      if (trial.status == broker::RunStatus::setup) {
        t["step"] = trial.setup_step;
        t["errno"] = trial.setup_errno;
      }
    }
    doc["trial"] = std::move(t);
    doc["backend"] = works ? "jail" : "unavailable";
    write_out(protocol::dump_json(doc, 2) + "\n");
    return works ? 0 : kExitSandbox;
  }

  std::vector<std::pair<std::string, std::string>> lines;
  lines.emplace_back("kernel", release + " " + machine);
  lines.emplace_back("running as",
                     userns.root ? "root (uid 0): nobody in the jail is uid 65534 outside"
                                 : "uid " + std::to_string(uid) +
                                       " (unprivileged): nobody in the jail is this uid outside");
  std::string max_text;
  if (!userns.max)
    max_text = "absent (no user.max_user_namespaces: a kernel without user namespaces)";
  else if (*userns.max == 0)
    max_text = "off (user.max_user_namespaces = 0)";
  else
    max_text = "on (user.max_user_namespaces = " + std::to_string(*userns.max) + ")";
  lines.emplace_back("user namespaces", max_text);
  std::string unpriv = "kernel.unprivileged_userns_clone = " + opt_text(userns.unprivileged);
  if (userns.apparmor)
    unpriv += ", kernel.apparmor_restrict_unprivileged_userns = " + opt_text(userns.apparmor);
  if (userns.root) unpriv += " (not needed as root)";
  lines.emplace_back("unprivileged userns", unpriv);
  lines.emplace_back("userns for the jail", userns.available() ? "available" : "not available");

  std::string sec_text = sec.supported() ? "supported" : "not usable";
  std::vector<std::string> sec_facts;
  sec_facts.push_back(sec.prctl_mode >= 0
                          ? "PR_GET_SECCOMP = " + std::to_string(sec.prctl_mode)
                          : std::string("PR_GET_SECCOMP fails: ") + std::strerror(sec.prctl_errno));
  sec_facts.push_back(sec.status_mode ? "Seccomp: " + *sec.status_mode + " in /proc/self/status"
                                      : "no Seccomp: line in /proc/self/status");
  sec_facts.push_back(std::string("trap ") + (sec.trap ? "available" : "missing") +
                      ", kill_process " + (sec.kill_process ? "available" : "missing"));
  sec_text += " (" + join(sec_facts, "; ") + ")";
  if (sec.prctl_mode == 2) sec_text += "; tactus itself already runs under a filter, which stacks";
  lines.emplace_back("seccomp filters", sec_text);
  lines.emplace_back("io_uring", io_uring_text(io_uring) + "; " + kIoUringNote);
  lines.emplace_back("ia32 syscall abi",
                     ia32.available +
                         (ia32.evidence.empty() ? "" : " (" + join(ia32.evidence, "; ") + ")") +
                         "; " + kForeignAbiNote);
  lines.emplace_back("x32 syscall abi",
                     x32.available +
                         (x32.evidence.empty() ? "" : " (" + join(x32.evidence, "; ") + ")") +
                         "; " + kForeignAbiNote);
  std::string cg_text = cg.version;
  if (cg.hybrid) cg_text += " (hybrid: v2 also at /sys/fs/cgroup/unified)";
  cg_text += "; the jail sets no cgroup limits yet";
  lines.emplace_back("cgroups", cg_text);
  lines.emplace_back("trial run",
                     jail_result + (works ? " (a whole run of 'return 1' in " : " (failed after ") +
                         fmt_ms(trial_ms) + " ms)");

  std::size_t width = 0;
  for (const auto& [key, value] : lines) width = std::max(width, key.size());
  std::string text;
  for (const auto& [key, value] : lines)
    text += key + ":" + std::string(width - key.size() + 1, ' ') + value + "\n";
  text += works ? "backend: jail\n"
                : "backend: unavailable (tactus run fails closed; --no-sandbox runs without "
                  "isolation)\n";
  write_out(text);
  return works ? 0 : kExitSandbox;
}

}  // namespace tactus::cli
