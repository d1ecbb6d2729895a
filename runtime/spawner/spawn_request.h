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

// What runs in the jail.
enum class Job : std::uint32_t {
  vm = 0,       // the restricted VM, talking to the broker on fd 3
  command = 1,  // a command tool: stdio are the broker's pipes; it receives argv and env on fd 3
                // and execs (tools/command_tool.h). Its jail sees /usr read-only.
};

// What the jail's OS-level limits are; the VM's own limits travel in the "run" message.
struct SpawnRequest {
  std::uint32_t magic = kSpawnMagic;
  Backend backend = Backend::jail;
  std::uint64_t cpu_seconds = 0;    // RLIMIT_CPU; 0 = unlimited
  std::uint64_t memory = 0;         // the VM heap cap; RLIMIT_AS adds headroom; 0 = unlimited
  std::uint64_t message_limit = 0;  // largest protocol frame the child accepts
  std::uint32_t allow_exec = 0;     // sandbox.jit: executable mappings allowed
  Job job = Job::vm;
  std::uint32_t network_host = 0;  // command jobs: the host's network instead of none
  std::uint32_t reserved = 0;
};

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
