// The jail's seccomp allowlist. Built once, in the spawner, with libseccomp; exported as BPF so
// a child only loads it (no libseccomp work and no allocation between fork and the VM).
#pragma once

#include <linux/filter.h>

#include <span>
#include <string>
#include <vector>

namespace tactus::jail {

// One allowlist entry: the syscall and why the VM needs it (docs/security.md lists these).
struct AllowedSyscall {
  const char* name;
  const char* why;
};

// Every syscall the jailed VM may make. Anything else traps into the violation reporter.
std::span<const AllowedSyscall> allowed_syscalls();

struct SeccompProgram {
  std::vector<sock_filter> code;
  std::string error;  // empty on success
};

// danger_allow_exec: permit PROT_EXEC in mmap/mprotect (sandbox.jit). Otherwise mmap and mprotect
// are allowed only without PROT_EXEC, compared on the low 32 bits of the argument.
SeccompProgram build_seccomp_policy(bool danger_allow_exec);

// A command tool's denylist entry (build_command_seccomp_policy).
struct DeniedSyscall {
  const char* name;
  const char* why;
};
std::span<const DeniedSyscall> command_denied_syscalls();

// The policy of a command tool's jail: everything a program normally does is allowed; the
// syscalls of command_denied_syscalls() fail with EPERM, clone3 with ENOSYS, clone with any
// namespace flag with EPERM; a foreign ABI kills the process.
SeccompProgram build_command_seccomp_policy();

// Loads prog into the calling thread (no_new_privs must already be set). Returns 0 or errno.
int load_seccomp_policy(const SeccompProgram& prog);

}  // namespace tactus::jail
