#include "runtime/jail/seccomp_policy.h"

#include <linux/sched.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tactus::jail {
namespace {

// The VM is one thread that reads and writes fd 3, allocates, and exits. Nothing opens a file,
// a socket or a process; nothing changes identity, namespaces, mounts or signal handlers.
constexpr AllowedSyscall kAllowed[] = {
    {"read", "the channel (fd 3)"},
    {"write", "the channel (fd 3)"},
    {"close", "the C library closes what it no longer needs; no fd can be opened again"},
    {"brk", "malloc grows its heap"},
    {"mmap", "malloc and LuaJIT's allocator; without PROT_EXEC unless sandbox.jit"},
    {"munmap", "free of large blocks, and lua_close"},
    {"mremap", "realloc of large blocks"},
    {"mprotect", "the C library; without PROT_EXEC unless sandbox.jit"},
    {"madvise", "free returning memory"},
    {"futex", "the C++ runtime's locks and once-initialisation"},
    {"getrandom", "LuaJIT seeds its string hash"},
    {"clock_gettime", "os.clock and timings (normally answered by the vDSO)"},
    {"gettimeofday", "the C library's time (normally answered by the vDSO)"},
    {"exit", "thread exit"},
    {"exit_group", "the VM's exit"},
    {"rt_sigreturn", "return from the violation reporter's SIGSYS handler"},
#ifdef TACTUS_SANITIZE
    // Test builds only (ASan+UBSan): the sanitizer runtime checks memory through a pipe and
    // asks for its own ids. Release builds never contain these entries.
    {"pipe2", "sanitizer builds only: ASan's readable-memory check"},
    {"getpid", "sanitizer builds only: the sanitizer runtime"},
    {"gettid", "sanitizer builds only: the sanitizer runtime"},
    {"sched_yield", "sanitizer builds only: the sanitizer runtime's spin locks"},
    {"sigaltstack", "sanitizer builds only: the sanitizer runtime"},
    {"rt_sigprocmask", "sanitizer builds only: the sanitizer runtime"},
#endif
};

// Command tools: what no tool needs and an attacker inside one would want.
constexpr DeniedSyscall kCommandDenied[] = {
    {"ptrace", "reading or steering other processes"},
    {"process_vm_readv", "reading other processes' memory"},
    {"process_vm_writev", "writing other processes' memory"},
    {"pidfd_getfd", "stealing other processes' fds"},
    {"kcmp", "probing other processes"},
    {"bpf", "kernel attack surface"},
    {"perf_event_open", "kernel attack surface, side channels"},
    {"userfaultfd", "widens kernel race windows"},
    {"io_uring_setup", "a second syscall interface seccomp cannot see"},
    {"io_uring_enter", "a second syscall interface seccomp cannot see"},
    {"io_uring_register", "a second syscall interface seccomp cannot see"},
    {"keyctl", "the kernel keyring"},
    {"add_key", "the kernel keyring"},
    {"request_key", "the kernel keyring"},
    {"unshare", "new namespaces (capabilities over them)"},
    {"setns", "joining other namespaces"},
    {"mount", "the mount family"},
    {"umount2", "the mount family"},
    {"pivot_root", "the mount family"},
    {"chroot", "the mount family"},
    {"open_tree", "the mount family"},
    {"move_mount", "the mount family"},
    {"fsopen", "the mount family"},
    {"fsconfig", "the mount family"},
    {"fsmount", "the mount family"},
    {"fspick", "the mount family"},
    {"mount_setattr", "the mount family"},
    {"name_to_handle_at", "file handles bypass path checks"},
    {"open_by_handle_at", "file handles bypass path checks"},
    {"kexec_load", "the kernel itself"},
    {"kexec_file_load", "the kernel itself"},
    {"init_module", "the kernel itself"},
    {"finit_module", "the kernel itself"},
    {"delete_module", "the kernel itself"},
    {"reboot", "the machine"},
    {"swapon", "the machine"},
    {"swapoff", "the machine"},
    {"acct", "the machine"},
    {"quotactl", "the machine"},
    {"syslog", "the kernel log"},
    {"settimeofday", "the clock"},
    {"clock_settime", "the clock"},
    {"clock_adjtime", "the clock"},
    {"adjtimex", "the clock"},
    {"sethostname", "the host's name"},
    {"setdomainname", "the host's name"},
    {"iopl", "hardware ports"},
    {"ioperm", "hardware ports"},
    {"modify_ldt", "kernel attack surface"},
    {"personality", "READ_IMPLIES_EXEC and other legacy modes"},
    {"uselib", "legacy loader"},
    {"vhangup", "terminals"},
    {"fanotify_init", "watching the filesystem"},
    {"lookup_dcookie", "kernel attack surface"},
};

}  // namespace

std::span<const AllowedSyscall> allowed_syscalls() {
  return kAllowed;
}

namespace {

// Exports ctx as BPF and releases it. rc: the status of building ctx so far.
SeccompProgram export_program(scmp_filter_ctx ctx, int rc, std::string error) {
  SeccompProgram out;
  out.error = std::move(error);
  int pipefd[2] = {-1, -1};
  if (rc == 0 && ::pipe(pipefd) != 0) rc = -errno;
  if (rc == 0) rc = seccomp_export_bpf(ctx, pipefd[1]);
  if (pipefd[1] >= 0) ::close(pipefd[1]);
  // The write end is closed, so this reads the whole program up to EOF. BPF_MAXINSNS bounds a
  // program the kernel would accept; anything longer is an error here, not a truncation.
  std::string bytes;
  while (rc == 0) {
    char buf[4096];
    const ssize_t n = ::read(pipefd[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) rc = -errno;
    if (n <= 0) break;
    bytes.append(buf, static_cast<std::size_t>(n));
  }
  if (rc == 0 && (bytes.empty() || bytes.size() % sizeof(sock_filter) != 0 ||
                  bytes.size() / sizeof(sock_filter) > BPF_MAXINSNS))
    rc = -EIO;
  if (rc == 0) {
    out.code.resize(bytes.size() / sizeof(sock_filter));
    std::memcpy(out.code.data(), bytes.data(), bytes.size());
  }
  if (pipefd[0] >= 0) ::close(pipefd[0]);
  seccomp_release(ctx);
  if (rc != 0 && out.error.empty()) out.error = std::string("libseccomp: ") + std::strerror(-rc);
  if (rc != 0) out.code.clear();
  return out;
}

}  // namespace

std::span<const DeniedSyscall> command_denied_syscalls() {
  return kCommandDenied;
}

SeccompProgram build_command_seccomp_policy() {
  // A command tool is a trusted program given untrusted input: it may do what programs do
  // (open files in its read-only view, fork, exec, pipe), so this is a denylist of what no
  // tool needs and an exploit would want. Denied calls fail with EPERM (clone3 with ENOSYS, so
  // the C library falls back to clone, whose flags can be checked); foreign ABIs are killed.
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) return {{}, "seccomp_init failed"};
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  std::string error;
  for (const auto& s : kCommandDenied) {
    if (rc != 0) break;
    const int nr = seccomp_syscall_resolve_name(s.name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture (or this libseccomp)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
  }
  if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  // clone (and unshare, denied above) must not make namespaces: a nested user namespace would
  // hand the tool capabilities over fresh ones. The flags are an int: 32-bit masked compares.
  for (const unsigned flag : {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWUTS,
                              CLONE_NEWIPC, CLONE_NEWCGROUP}) {
    if (rc != 0) break;
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                          SCMP_CMP32(0, SCMP_CMP_MASKED_EQ, flag, flag));
  }
  // Pushing input into a terminal the tool might share: none is open, but never allow it.
  for (const unsigned long req : {TIOCSTI, TIOCLINUX}) {
    if (rc != 0) break;
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                          SCMP_CMP32(1, SCMP_CMP_MASKED_EQ, 0xffffffffu, req));
  }
  return export_program(ctx, rc, error);
}

SeccompProgram build_seccomp_policy(bool danger_allow_exec) {
  SeccompProgram out;
  // Every syscall not listed traps into the violation reporter (runtime/jail/signals.cpp),
  // which reports {nr, arch} on fd 3 and dies by SIGSYS; the syscall never runs. Foreign
  // architectures (int 0x80, x32 numbers) trap the same way, so they are reported too.
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
  if (!ctx) {
    out.error = "seccomp_init failed";
    return out;
  }
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_TRAP);
  for (const auto& s : kAllowed) {
    if (rc != 0) break;
    const int nr = seccomp_syscall_resolve_name(s.name);
    if (nr == __NR_SCMP_ERROR) {
      rc = -EINVAL;
      out.error = std::string("unknown syscall ") + s.name;
      break;
    }
    const bool prot_arg = std::strcmp(s.name, "mmap") == 0 || std::strcmp(s.name, "mprotect") == 0;
    if (prot_arg && !danger_allow_exec) {
      // prot is an int: compare its low 32 bits only, so junk in the upper half changes nothing.
      const int prot_index = 2;
      rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                            SCMP_CMP32(prot_index, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    } else {
      rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    }
  }
  return export_program(ctx, rc, std::move(out.error));
}

int load_seccomp_policy(const SeccompProgram& prog) {
  if (prog.code.empty()) return EINVAL;
  sock_fprog fprog{static_cast<unsigned short>(prog.code.size()),
                   const_cast<sock_filter*>(prog.code.data())};
  return ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) == 0 ? 0 : errno;
}

}  // namespace tactus::jail
