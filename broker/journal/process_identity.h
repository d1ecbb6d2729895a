// Who a process is, precisely enough to tell later whether it is still running: a pid alone
// is not enough, since pids are reused and a machine reboots. The journal's run leases record
// this for their holder, so a lease left by a process that died is recognised and taken over.
#pragma once

#include <cstdint>
#include <string>

namespace tactus::broker {

struct ProcessIdentity {
  std::int64_t pid = 0;
  // Clock ticks after boot at which the process started (/proc/PID/stat, field 22); tells a
  // reused pid apart. 0 when unknown.
  std::uint64_t start_time = 0;
  // /proc/sys/kernel/random/boot_id: a pid recorded on an earlier boot names nothing now.
  // Empty when unknown.
  std::string boot_id;
};

ProcessIdentity current_process_identity();

// True while the process id names is running on this machine: same boot, the pid exists and is
// not a zombie, and it started when id says (each check skipped where a side is unknown).
// Pids are those of this pid namespace: a lease held from another container is not seen.
bool is_running(const ProcessIdentity& id);

}  // namespace tactus::broker
