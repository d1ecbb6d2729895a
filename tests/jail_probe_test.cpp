// The probe suite: a child jailed by the project's own jail code tries each escape, and the test
// asserts the exact typed outcome: killed naming the syscall, or the kernel's own errno.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <string>

#include "broker/run_session.h"
#include "runtime/vm/host_channel.h"

using namespace tactus;
using broker::RunStatus;

namespace {

long raw(long nr, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
  return ::syscall(nr, a, b, c, d, e, f);
}

// int 0x80: the 32-bit entry point, with eax = 20 (getpid in the i386 table).
long int80_getpid() {
  long ret = 20;
  asm volatile("int $0x80" : "+a"(ret) : : "memory");
  return ret;
}

// Each probe makes one attempt and returns the syscall's result (or -errno).
const std::map<std::string, long (*)()> kProbes = {
    {"ptrace", [] { return raw(SYS_ptrace, 16 /*PTRACE_ATTACH*/, 1); }},
    {"process_vm_readv", [] { return raw(SYS_process_vm_readv, 1, 0, 0, 0, 0, 0); }},
    {"io_uring_setup", [] { return raw(SYS_io_uring_setup, 8, 0); }},
    {"userfaultfd", [] { return raw(SYS_userfaultfd, 0); }},
    {"unshare", [] { return raw(SYS_unshare, CLONE_NEWUSER); }},
    {"clone", [] { return raw(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0); }},
    {"clone3",
     [] {
       clone_args args{};
       args.exit_signal = SIGCHLD;
       return raw(SYS_clone3, reinterpret_cast<long>(&args), sizeof args);
     }},
    {"setns", [] { return raw(SYS_setns, 0, 0); }},
    {"mount", [] { return raw(SYS_mount, 0, reinterpret_cast<long>("/"), 0, 0, 0); }},
    {"umount2", [] { return raw(SYS_umount2, reinterpret_cast<long>("/"), 0); }},
    {"pivot_root",
     [] { return raw(SYS_pivot_root, reinterpret_cast<long>("/"), reinterpret_cast<long>("/")); }},
    {"chroot", [] { return raw(SYS_chroot, reinterpret_cast<long>("/")); }},
    {"fsopen", [] { return raw(SYS_fsopen, reinterpret_cast<long>("tmpfs"), 0); }},
    {"open_tree", [] { return raw(SYS_open_tree, AT_FDCWD, reinterpret_cast<long>("/"), 0); }},
    {"move_mount", [] { return raw(SYS_move_mount, 0, 0, 0, 0, 0); }},
    {"keyctl", [] { return raw(SYS_keyctl, 0, 0); }},
    {"add_key", [] { return raw(SYS_add_key, 0, 0, 0, 0, 0); }},
    {"bpf", [] { return raw(SYS_bpf, 0, 0, 0); }},
    {"perf_event_open", [] { return raw(SYS_perf_event_open, 0, 0, -1, -1, 0); }},
    {"open", [] { return raw(SYS_open, reinterpret_cast<long>("/etc/passwd"), O_RDONLY); }},
    {"openat",
     [] { return raw(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/etc/passwd"), O_RDONLY); }},
    {"socket", [] { return raw(SYS_socket, 1 /*AF_UNIX*/, 1, 0); }},
    {"fork", [] { return raw(SYS_fork); }},
    {"vfork", [] { return raw(SYS_vfork); }},
    {"execve", [] { return raw(SYS_execve, reinterpret_cast<long>("/bin/sh"), 0, 0); }},
    {"kill_parent", [] { return raw(SYS_kill, 0 /*the whole process group*/, SIGKILL); }},
    {"kill_pid1", [] { return raw(SYS_kill, 1, SIGKILL); }},
    // TIOCSTI with junk in the upper 32 bits of the command: ioctl is not allowed at all.
    {"ioctl_tiocsti",
     [] {
       static const char c = 'x';
       return raw(SYS_ioctl, 3, static_cast<long>(0xdead000000000000ull | TIOCSTI),
                  reinterpret_cast<long>(&c));
     }},
    {"int80", [] { return int80_getpid(); }},
    {"x32", [] { return raw(0x40000000 | SYS_getpid); }},
    {"mprotect_exec",
     [] {
       static char page[8192] __attribute__((aligned(4096)));
       return raw(SYS_mprotect, reinterpret_cast<long>(page), 4096, PROT_READ | PROT_EXEC);
     }},
    {"mmap_exec",
     [] {
       return raw(SYS_mmap, 0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
     }},
    // PROT_EXEC's bit in the upper half of prot, none below: the filter compares the low 32
    // bits, as the kernel reads them, so this is a plain read-only mapping.
    {"mmap_junk_prot",
     [] {
       return raw(SYS_mmap, 0, 4096,
                  static_cast<long>((static_cast<unsigned long>(PROT_EXEC) << 32) | PROT_READ),
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
     }},
    // And PROT_EXEC below with junk above: still refused.
    {"mmap_exec_junk",
     [] {
       return raw(SYS_mmap, 0, 4096, static_cast<long>(0xdead00000000ull | PROT_READ | PROT_EXEC),
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
     }},
    // 4 GiB of address space: over RLIMIT_AS (the 2 GiB heap cap + 512 MiB), so ENOMEM.
    {"mmap_huge",
     [] {
       return raw(SYS_mmap, 0, static_cast<long>(4ull << 30), PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
     }},
    {"read_inherited_fd",
     [] {
       char c;
       for (int fd = 0; fd < 64; ++fd)
         if (fd != 3 && ::read(fd, &c, 1) != -1) return static_cast<long>(fd);
       return static_cast<long>(-errno);
     }},
    {"getuid", [] { return raw(SYS_getuid); }},
};

// The child's main after the jail: speak just enough protocol to get the probe's name, run it,
// and report its return value if it came back at all.
int probe_main(int fd, const spawner::SpawnRequest& request) {
  vm::HostChannel channel(fd, request.message_limit);
  std::string reason;
  channel.send(protocol::make_notification("ready", protocol::Json::object()), reason);
  auto run = channel.receive(reason);
  if (!run) return 1;
  const std::string name = run->params["source"].get<std::string>();
  const auto it = kProbes.find(name);
  long r = it == kProbes.end() ? -9999 : it->second();
  if (r == -1) r = -errno;
  channel.send(protocol::make_notification(
                   "done", protocol::Json{{"status", "ok"}, {"result", {{"returned", r}}}}),
               reason);
  return 0;
}

struct DiscardSink : broker::OutputSink {
  void print(std::string_view) override {}
};

spawner::SpawnerClient& probe_spawner() {
  static spawner::SpawnerClient s =
      spawner::SpawnerClient::fork_spawner(spawner::Backend::jail, probe_main);
  return s;
}

broker::RunResult probe(const std::string& name) {
  broker::RunRequest req;
  req.run_id = "probe-" + name;
  req.source = name;
  req.chunkname = "@probe";
  req.limits.timeout_seconds = 10;
  tools::ToolRegistry tools;
  DiscardSink sink;
  return broker::run_procedure(probe_spawner(), req, tools, sink);
}

void expect_killed_for(const std::string& probe_name, const std::string& syscall,
                       const std::string& arch = "x86_64") {
  const auto r = probe(probe_name);
  INFO("probe " << probe_name << ": " << r.message);
  CHECK(r.status == RunStatus::violation);
  CHECK(r.violation == "seccomp");
  CHECK(r.syscall == syscall);
  CHECK(r.arch == arch);
  CHECK(r.message == "sandbox violation: syscall " + syscall + " (" + std::to_string(r.syscall_nr) +
                         ", " + arch + ")");
  CHECK(broker::exit_code(r.status) == 4);
}

long returned(const broker::RunResult& r) {
  REQUIRE(r.status == RunStatus::ok);
  return r.result["returned"].get<long>();
}

}  // namespace

TEST_CASE("jail: every escape attempt is killed, naming its syscall", "[jail][seccomp]") {
  const std::pair<const char*, const char*> cases[] = {
      {"ptrace", "ptrace"},
      {"process_vm_readv", "process_vm_readv"},
      {"io_uring_setup", "io_uring_setup"},
      {"userfaultfd", "userfaultfd"},
      {"unshare", "unshare"},
      {"clone", "clone"},
      {"clone3", "clone3"},
      {"setns", "setns"},
      {"mount", "mount"},
      {"umount2", "umount2"},
      {"pivot_root", "pivot_root"},
      {"chroot", "chroot"},
      {"fsopen", "fsopen"},
      {"open_tree", "open_tree"},
      {"move_mount", "move_mount"},
      {"keyctl", "keyctl"},
      {"add_key", "add_key"},
      {"bpf", "bpf"},
      {"perf_event_open", "perf_event_open"},
      {"open", "open"},
      {"openat", "openat"},
      {"socket", "socket"},
      {"fork", "fork"},
      {"vfork", "vfork"},
      {"execve", "execve"},
      {"kill_parent", "kill"},
      {"kill_pid1", "kill"},
      {"ioctl_tiocsti", "ioctl"},
      {"mprotect_exec", "mprotect"},
      {"mmap_exec", "mmap"},
      {"getuid", "getuid"},
  };
  for (const auto& [name, syscall] : cases) expect_killed_for(name, syscall);
}

TEST_CASE("jail: foreign syscall ABIs are killed too: int 0x80 and x32 numbers",
          "[jail][seccomp]") {
  expect_killed_for("x32", "getpid", "x32");
  const auto r = probe("int80");
  INFO(r.message);
  // Without IA32 emulation the kernel itself refuses int 0x80 with SIGSEGV before seccomp.
  if (r.status == RunStatus::crashed) {
    CHECK(r.signal == SIGSEGV);
  } else {
    CHECK(r.status == RunStatus::violation);
    CHECK(r.syscall == "getpid");
    CHECK(r.arch == "x86");
  }
}

TEST_CASE("jail: junk in the upper half of an int argument changes nothing", "[jail][seccomp]") {
  CHECK(returned(probe("mmap_junk_prot")) > 0);  // mapped, read-only
  expect_killed_for("mmap_exec_junk", "mmap");
}

TEST_CASE("jail: RLIMIT_AS bites: 4 GiB of address space is refused", "[jail]") {
#ifdef TACTUS_SANITIZE
  SUCCEED("ASan builds set no RLIMIT_AS (its shadow memory needs terabytes)");
#else
  CHECK(returned(probe("mmap_huge")) == -ENOMEM);
#endif
}

TEST_CASE("jail: no fd but 3 is open", "[jail]") {
  CHECK(returned(probe("read_inherited_fd")) == -EBADF);
}

TEST_CASE("jail: an unknown probe name reports back (the harness itself works)", "[jail]") {
  CHECK(returned(probe("no-such-probe")) == -9999);
}
