// The spawner's control messages. Both ends are trusted and run the same binary, so these are
// fixed-size structs sent over a SOCK_SEQPACKET control socket, with fds passed by SCM_RIGHTS.
#pragma once

#include <cstdint>

namespace tactus::spawner {

inline constexpr std::uint32_t kSpawnMagic = 0x74616331;  // "tac1"

// What the jail's OS-level limits are; the VM's own limits travel in the "run" message.
struct SpawnRequest {
  std::uint32_t magic = kSpawnMagic;
  std::uint32_t reserved = 0;
  std::uint64_t cpu_seconds = 0;    // RLIMIT_CPU; 0 = unlimited
  std::uint64_t message_limit = 0;  // largest protocol frame the child accepts
};

// Sent back with the child's pidfd attached (none when error_errno != 0).
struct SpawnReply {
  std::int32_t pid = -1;
  std::int32_t error_errno = 0;
  char step[32] = {};  // which spawner step failed
};

}  // namespace tactus::spawner
