// The jail's namespaces, as halves on either side of the clone: *_parent_* runs in the spawner,
// *_child_* in the new child.
#pragma once

#include <sys/types.h>

#include "runtime/jail/jail_spec.h"

namespace tactus::jail {

inline constexpr uid_t kNobodyUid = 65534;
inline constexpr gid_t kNobodyGid = 65534;

// The clone3 flags of a jail. The network namespace is not among them: the spawner made one
// empty network namespace at start (net_ns_parent_init_once) and every jail inherits it.
unsigned long long jail_clone_flags();

// Spawner, once at start: move into an empty network namespace (unprivileged, inside a user
// namespace of its own that maps only its own ids). Returns 0 or errno; step names the failure.
int net_ns_parent_init_once(const char** step);

// Spawner, after clone3: map nobody inside the child's user namespace to a non-root id outside
// (nobody when we are root, our own id otherwise). Returns 0 or errno.
int user_ns_parent_write_maps(pid_t child, const char** step);

// What the parent half sends the child through the sync pipe.
struct MapOutcome {
  int err = 0;
  char step[16] = {};  // uid_map, setgroups or gid_map
};

// Child: wait for the parent half; returns 0, or the errno it reported with *step set.
int user_ns_child_wait_maps(int sync_fd, const char** step);
// Child: become nobody/nobody inside, with no supplementary groups where the kernel allows it.
bool user_ns_child_become_nobody();

// Child: pivot_root into an empty tmpfs and remount it read-only: no /proc, /dev or /sys.
bool mount_ns_child_empty_root(const char** step);

// Child, command tools: pivot_root into a fresh tmpfs holding /usr (read-only bind), the
// merged-/usr links (/bin, /sbin, /lib, /lib64), /dev/null, /dev/zero, /dev/urandom and
// /dev/random (binds), and a small writable /tmp; the root itself is then read-only. With
// danger_host_network, /etc/resolv.conf, /etc/hosts, /etc/nsswitch.conf and /etc/ssl are bound
// read-only too, so names resolve and TLS verifies. Nothing else of the host is visible.
// An MCP server (Job::mcp_server) also gets a 64 MiB /tmp, a tmpfs /home, and req.binds.
bool mount_ns_child_command_root(const SpawnRequest& req, const char** step);

}  // namespace tactus::jail
