// The spawner's control messages. Both ends are trusted and run the same binary, so these are
// fixed-size structs sent over a SOCK_SEQPACKET control socket, with fds passed by SCM_RIGHTS.
#pragma once

#include <cstdint>

#include "runtime/jail/jail_spec.h"

namespace tactus::spawner {

// The jail's description (runtime/jail/jail_spec.h), as the spawner's callers name it.
using jail::Backend;
using jail::Job;
using jail::kSpawnMagic;
using jail::SpawnRequest;

// A command job arrives with four fds, in this order: the channel, then the command's stdin,
// stdout and stderr.
inline constexpr int kCommandJobFds = 4;

// Sent back with the child's pidfd attached (none when error_errno != 0).
struct SpawnReply {
  std::int32_t pid = -1;
  std::int32_t error_errno = 0;
  char step[32] = {};  // which spawner step failed
};

}  // namespace tactus::spawner
