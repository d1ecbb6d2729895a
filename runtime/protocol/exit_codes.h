// The exit codes a jailed process ends with on purpose: the child sets them, the broker reads
// them (broker/run_result.cpp, tools/command_tool.cpp). One list, below both sides.
#pragma once

namespace tactus::protocol {

// The jail could not be built (a containment step failed; its setup_failed says which).
inline constexpr int kExitSetupFailed = 121;
// The VM could not speak the protocol (no ready, no run, a result it could not send).
inline constexpr int kExitProtocol = 122;
// The CPU-time soft limit (SIGXCPU) ran out. Needed because a jail is pid 1 of its pid
// namespace, and the kernel does not deliver a default-action SIGXCPU to it.
inline constexpr int kExitCpuLimit = 124;
// A command tool's program could not be executed (as a shell reports it).
inline constexpr int kExitCannotExec = 127;

}  // namespace tactus::protocol
