// Signal handlers the jail installs before seccomp. The VM cannot change them afterwards:
// rt_sigaction is not in the allowlist.
#pragma once

namespace tactus::jail {

// Exit code of a child whose CPU-time soft limit (SIGXCPU) ran out. Needed because a jail is
// pid 1 of its pid namespace, and the kernel does not deliver a default-action SIGXCPU to it.
inline constexpr int kExitCpuLimit = 124;

// SIGSYS (a syscall outside the allowlist): write {"method":"violation","params":{"arch","nr"}}
// to fd 3, then die by SIGSYS. SIGXCPU: exit with kExitCpuLimit.
bool install_jail_signal_handlers();

}  // namespace tactus::jail
