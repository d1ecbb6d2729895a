// What a jail is built from: the backend, the job it runs and its OS-level limits. The spawner
// receives it over its control socket (runtime/spawner/spawn_request.h) and the jail's setup
// reads it; both ends are trusted and run the same binary, so it is a fixed-size struct. The
// risky opt-ins carry a danger_ name.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tactus::jail {

inline constexpr std::uint32_t kSpawnMagic = 0x74616332;  // "tac2"

enum class Backend : std::uint32_t {
  jail = 0,  // namespaces, empty read-only root, rlimits, no capabilities, seccomp
  // Danger: the child process and the restricted VM only (--no-sandbox). Prints a warning.
  danger_none = 1,
};

// What runs in the jail.
enum class Job : std::uint32_t {
  vm = 0,          // the restricted VM, talking to the broker on fd 3
  command = 1,     // a command tool: stdio are the broker's pipes; it receives argv and env on fd 3
                   // and execs (tools/command_tool.h). Its jail sees /usr read-only.
  mcp_server = 2,  // an MCP server: a command job that lives for the run (tools/mcp/), with the
                   // binds below, a tmpfs HOME, and limits suited to a node program.
};

// The host directories an MCP server's jail binds (SpawnRequest::binds): records of
// "<mode><host>\0<target>\0", then one more "\0". mode 'r' binds host read-only at target,
// 'w' writable; over a path inside the jail (host unused), 'h' hides it (an empty read-only
// directory, or /dev/null), 'p' makes it read-only, and 'm' makes a directory a mount point of
// itself (so it cannot be renamed or removed).
inline constexpr std::size_t kJailBindsBytes = 16384;

// The jail's OS-level limits; the VM's own limits travel in the "run" message.
struct SpawnRequest {
  std::uint32_t magic = kSpawnMagic;
  Backend backend = Backend::jail;
  std::uint64_t cpu_seconds = 0;        // RLIMIT_CPU; 0 = unlimited
  std::uint64_t memory = 0;             // the VM heap cap; RLIMIT_AS adds headroom; 0 = unlimited
  std::uint64_t message_limit = 0;      // largest protocol frame the child accepts
  std::uint32_t danger_allow_exec = 0;  // sandbox.jit: executable mappings allowed
  Job job = Job::vm;
  std::uint32_t danger_host_network = 0;  // command jobs: the host's network instead of none
  std::uint32_t reserved = 0;
  std::uint64_t data_limit = 0;      // mcp_server jobs: RLIMIT_DATA (node reserves address space
                                     // it never touches, so RLIMIT_AS cannot be its memory limit)
  char binds[kJailBindsBytes] = {};  // mcp_server jobs: what its root binds (above)
};

}  // namespace tactus::jail
