// Signal handlers the jail installs before seccomp. The VM cannot change them afterwards:
// rt_sigaction is not in the allowlist.
#pragma once

namespace tactus::jail {

// SIGSYS (a syscall outside the allowlist): write {"method":"violation","params":{"arch","nr"}}
// to fd 3, then die by SIGSYS. SIGXCPU: exit with protocol::kExitCpuLimit
// (runtime/protocol/exit_codes.h).
bool install_jail_signal_handlers();

}  // namespace tactus::jail
