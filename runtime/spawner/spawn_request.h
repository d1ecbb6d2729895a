// The spawner's control messages. Both ends are trusted and run the same binary, so these are
// fixed-size structs sent over a SOCK_SEQPACKET control socket, with fds passed by SCM_RIGHTS.
#pragma once

#include <cstdint>

namespace tactus::spawner {

inline constexpr std::uint32_t kSpawnMagic = 0x74616332;  // "tac2"

enum class Backend : std::uint32_t {
  jail = 0,  // namespaces, empty read-only root, rlimits, no capabilities, seccomp
  // Danger: the child process and the restricted VM only (--no-sandbox). Prints a warning.
  danger_none = 1,
};

// What the jail's OS-level limits are; the VM's own limits travel in the "run" message.
struct SpawnRequest {
  std::uint32_t magic = kSpawnMagic;
  Backend backend = Backend::jail;
  std::uint64_t cpu_seconds = 0;    // RLIMIT_CPU; 0 = unlimited
  std::uint64_t memory = 0;         // the VM heap cap; RLIMIT_AS adds headroom; 0 = unlimited
  std::uint64_t message_limit = 0;  // largest protocol frame the child accepts
  std::uint32_t allow_exec = 0;     // sandbox.jit: executable mappings allowed
  std::uint32_t reserved = 0;
};

// Sent back with the child's pidfd attached (none when error_errno != 0).
struct SpawnReply {
  std::int32_t pid = -1;
  std::int32_t error_errno = 0;
  char step[32] = {};  // which spawner step failed
};

}  // namespace tactus::spawner
