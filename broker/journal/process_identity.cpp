#include "broker/journal/process_identity.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <optional>
#include <sstream>

namespace tactus::broker {
namespace {

std::string read_boot_id() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

struct StatFields {
  char state = '?';
  std::uint64_t start_time = 0;
};

// /proc/PID/stat: "pid (comm) state ppid ...". comm may hold spaces and ')', so the fields
// are counted from the last ')'. nullopt when there is no such process (or no /proc).
std::optional<StatFields> read_stat(std::int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  const auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 1));
  StatFields out;
  fields >> out.state;  // field 3
  std::string skip;
  for (int field = 4; field < 22 && fields >> skip; ++field) {
  }
  fields >> out.start_time;  // field 22
  if (!fields) return std::nullopt;
  return out;
}

}  // namespace

ProcessIdentity current_process_identity() {
  ProcessIdentity id;
  id.pid = ::getpid();
  if (const auto stat = read_stat(id.pid)) id.start_time = stat->start_time;
  id.boot_id = read_boot_id();
  return id;
}

bool is_running(const ProcessIdentity& id) {
  if (id.pid <= 0) return false;
  if (!id.boot_id.empty()) {
    const std::string now = read_boot_id();
    if (!now.empty() && now != id.boot_id) return false;
  }
  if (const auto stat = read_stat(id.pid)) {
    // A zombie has died and merely waits to be reaped: its lease is as stale as any.
    if (stat->state == 'Z' || stat->state == 'X') return false;
    return id.start_time == 0 || stat->start_time == id.start_time;
  }
  // No /proc entry: either no such process, or /proc hides it (hidepid). kill(0) tells which.
  return ::kill(static_cast<pid_t>(id.pid), 0) == 0 || errno == EPERM;
}

}  // namespace tactus::broker
