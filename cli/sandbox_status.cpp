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
#include "runtime/jail/kernel_probes.h"
#include "runtime/protocol/message.h"
#include "tools/registry.h"

namespace tactus::cli {
namespace {

using protocol::Json;

constexpr int kExitSandbox = 4;

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

// "the jail fails at step S: reason", or at the run's outcome when setup passed.
std::string jail_failure(const broker::RunResult& r, const jail::UserNs& u,
                         const jail::Seccomp& s) {
  std::string why;
  if (r.status == broker::RunStatus::setup) {
    why = "the jail fails at step " + r.setup_step + ": " + std::strerror(r.setup_errno);
    const std::string hint = jail::setup_failure_hint(r.setup_step, u, s);
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
  const jail::KernelSupport k = jail::probe_kernel();
  const std::string& release = k.release;
  const std::string& machine = k.machine;
  const unsigned uid = k.uid;
  const jail::UserNs& userns = k.user_ns;
  const jail::Seccomp& sec = k.seccomp;
  const std::optional<long>& io_uring = k.io_uring_disabled;
  const jail::Abi& ia32 = k.ia32;
  const jail::Abi& x32 = k.x32;
  const jail::Cgroups& cg = k.cgroups;
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
