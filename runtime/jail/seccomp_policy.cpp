#include "runtime/jail/seccomp_policy.h"

#include <linux/seccomp.h>
#include <seccomp.h>
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

}  // namespace

std::span<const AllowedSyscall> allowed_syscalls() {
  return kAllowed;
}

SeccompProgram build_seccomp_policy(bool allow_exec) {
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
    if (prot_arg && !allow_exec) {
      // prot is an int: compare its low 32 bits only, so junk in the upper half changes nothing.
      const int prot_index = 2;
      rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                            SCMP_CMP32(prot_index, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    } else {
      rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    }
  }
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

int load_seccomp_policy(const SeccompProgram& prog) {
  if (prog.code.empty()) return EINVAL;
  sock_fprog fprog{static_cast<unsigned short>(prog.code.size()),
                   const_cast<sock_filter*>(prog.code.data())};
  return ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) == 0 ? 0 : errno;
}

}  // namespace tactus::jail
