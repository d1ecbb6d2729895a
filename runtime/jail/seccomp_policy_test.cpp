// A userspace evaluator runs the exported BPF over a table of (arch, nr, args), including junk
// in the upper halves of integer arguments: the policy is checked as the kernel would run it.
#include <catch2/catch.hpp>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <csignal>
#include <cstddef>
#include <cstring>
#include <set>
#include <stdexcept>

#include "runtime/jail/seccomp_policy.h"

using namespace tactus::jail;

namespace {

// Classic BPF, the subset a seccomp filter may use (the kernel's seccomp_check_filter list).
std::uint32_t run_bpf(const std::vector<sock_filter>& prog, const seccomp_data& data) {
  std::uint32_t A = 0, X = 0, mem[BPF_MEMWORDS] = {};
  auto load = [&](std::uint32_t off) {
    if (off % 4 != 0 || off + 4 > sizeof(seccomp_data)) throw std::runtime_error("bad load");
    std::uint32_t v;
    std::memcpy(&v, reinterpret_cast<const char*>(&data) + off, 4);
    return v;
  };
  for (std::size_t pc = 0; pc < prog.size(); ++pc) {
    const sock_filter& f = prog[pc];
    const std::uint32_t src = BPF_SRC(f.code) == BPF_X ? X : f.k;
    switch (BPF_CLASS(f.code)) {
      case BPF_LD:
        if (f.code == (BPF_LD | BPF_W | BPF_ABS))
          A = load(f.k);
        else if (f.code == (BPF_LD | BPF_MEM))
          A = mem[f.k];
        else if (f.code == (BPF_LD | BPF_IMM))
          A = f.k;
        else
          throw std::runtime_error("unsupported LD");
        break;
      case BPF_LDX:
        if (f.code == (BPF_LDX | BPF_MEM))
          X = mem[f.k];
        else if (f.code == (BPF_LDX | BPF_IMM))
          X = f.k;
        else
          throw std::runtime_error("unsupported LDX");
        break;
      case BPF_ST:
        mem[f.k] = A;
        break;
      case BPF_STX:
        mem[f.k] = X;
        break;
      case BPF_ALU:
        switch (BPF_OP(f.code)) {
          case BPF_AND:
            A &= src;
            break;
          case BPF_OR:
            A |= src;
            break;
          case BPF_ADD:
            A += src;
            break;
          case BPF_SUB:
            A -= src;
            break;
          case BPF_LSH:
            A <<= src;
            break;
          case BPF_RSH:
            A >>= src;
            break;
          case BPF_NEG:
            A = -A;
            break;
          default:
            throw std::runtime_error("unsupported ALU");
        }
        break;
      case BPF_JMP: {
        if (BPF_OP(f.code) == BPF_JA) {
          pc += f.k;
          break;
        }
        bool taken = false;
        switch (BPF_OP(f.code)) {
          case BPF_JEQ:
            taken = A == src;
            break;
          case BPF_JGT:
            taken = A > src;
            break;
          case BPF_JGE:
            taken = A >= src;
            break;
          case BPF_JSET:
            taken = (A & src) != 0;
            break;
          default:
            throw std::runtime_error("unsupported JMP");
        }
        pc += taken ? f.jt : f.jf;
        break;
      }
      case BPF_RET:
        return BPF_RVAL(f.code) == BPF_A ? A : f.k;
      case BPF_MISC:
        if (BPF_MISCOP(f.code) == BPF_TAX)
          X = A;
        else
          A = X;
        break;
      default:
        throw std::runtime_error("unsupported class");
    }
  }
  throw std::runtime_error("fell off the end of the program");
}

seccomp_data call(std::uint32_t arch, int nr, std::initializer_list<std::uint64_t> args = {}) {
  seccomp_data d{};
  d.nr = nr;
  d.arch = arch;
  int i = 0;
  for (auto a : args) d.args[i++] = a;
  return d;
}

std::uint32_t action(const std::vector<sock_filter>& prog, const seccomp_data& d) {
  return run_bpf(prog, d) & SECCOMP_RET_ACTION_FULL;
}

}  // namespace

TEST_CASE("seccomp: the exported program allows exactly the allowlist on x86_64", "[seccomp]") {
  const SeccompProgram p = build_seccomp_policy(false);
  REQUIRE(p.error.empty());
  REQUIRE_FALSE(p.code.empty());
  std::set<int> allowed;
  for (const auto& s : allowed_syscalls()) allowed.insert(seccomp_syscall_resolve_name(s.name));
  for (int nr = 0; nr < 512; ++nr) {
    INFO("syscall " << nr);
    const std::uint32_t want = allowed.count(nr) ? SECCOMP_RET_ALLOW : SECCOMP_RET_TRAP;
    if (nr == SYS_mmap || nr == SYS_mprotect) continue;  // argument-dependent, below
    CHECK(action(p.code, call(AUDIT_ARCH_X86_64, nr)) == want);
  }
  for (const char* name :
       {"ptrace", "openat", "socket", "clone", "clone3", "execve", "ioctl", "io_uring_setup", "bpf",
        "unshare", "setns", "mount", "keyctl", "perf_event_open", "userfaultfd", "process_vm_readv",
        "kill", "rt_sigaction", "tgkill"}) {
    INFO(name);
    CHECK(action(p.code, call(AUDIT_ARCH_X86_64, seccomp_syscall_resolve_name(name))) ==
          SECCOMP_RET_TRAP);
  }
}

TEST_CASE("seccomp: PROT_EXEC is refused on the low 32 bits, whatever the upper half holds",
          "[seccomp]") {
  const SeccompProgram p = build_seccomp_policy(false);
  REQUIRE(p.error.empty());
  const std::uint64_t junk = 0xdeadbeef00000000ull;
  for (int nr : {SYS_mmap, SYS_mprotect}) {
    INFO("syscall " << nr);
    CHECK(action(p.code, call(AUDIT_ARCH_X86_64, nr, {0, 4096, PROT_READ | PROT_WRITE})) ==
          SECCOMP_RET_ALLOW);
    CHECK(action(p.code, call(AUDIT_ARCH_X86_64, nr, {0, 4096, PROT_READ | PROT_EXEC})) ==
          SECCOMP_RET_TRAP);
    CHECK(action(p.code, call(AUDIT_ARCH_X86_64, nr, {0, 4096, junk | PROT_READ})) ==
          SECCOMP_RET_ALLOW);
    CHECK(action(p.code, call(AUDIT_ARCH_X86_64, nr, {0, 4096, junk | PROT_EXEC})) ==
          SECCOMP_RET_TRAP);
    // PROT_EXEC's bit in the upper half only: the kernel reads prot as an int, so no exec.
    CHECK(action(p.code, call(AUDIT_ARCH_X86_64, nr,
                              {0, 4096, (std::uint64_t{PROT_EXEC} << 32) | PROT_READ})) ==
          SECCOMP_RET_ALLOW);
  }
  const SeccompProgram jit = build_seccomp_policy(true);
  REQUIRE(jit.error.empty());
  CHECK(action(jit.code, call(AUDIT_ARCH_X86_64, SYS_mmap, {0, 4096, PROT_READ | PROT_EXEC})) ==
        SECCOMP_RET_ALLOW);
}

TEST_CASE("seccomp: foreign architectures and x32 numbers trap", "[seccomp]") {
  const SeccompProgram p = build_seccomp_policy(false);
  REQUIRE(p.error.empty());
  // i386's read (3) and write (4); aarch64's read (63); x32's read (0 | bit 30).
  CHECK(action(p.code, call(AUDIT_ARCH_I386, 3)) == SECCOMP_RET_TRAP);
  CHECK(action(p.code, call(AUDIT_ARCH_I386, 4)) == SECCOMP_RET_TRAP);
  CHECK(action(p.code, call(AUDIT_ARCH_AARCH64, 63)) == SECCOMP_RET_TRAP);
  CHECK(action(p.code, call(AUDIT_ARCH_X86_64, 0x40000000 | SYS_read)) == SECCOMP_RET_TRAP);
  CHECK(action(p.code, call(AUDIT_ARCH_X86_64, 0x40000000 | SYS_write)) == SECCOMP_RET_TRAP);
  // Negative and huge numbers.
  CHECK(action(p.code, call(AUDIT_ARCH_X86_64, -1)) == SECCOMP_RET_TRAP);
  CHECK(action(p.code, call(AUDIT_ARCH_X86_64, 0x7fffffff)) == SECCOMP_RET_TRAP);
}

TEST_CASE("seccomp: every allowlist entry has a reason", "[seccomp]") {
  for (const auto& s : allowed_syscalls()) {
    INFO(s.name);
    CHECK(std::strlen(s.why) > 5);
    CHECK(seccomp_syscall_resolve_name(s.name) != __NR_SCMP_ERROR);
  }
}

TEST_CASE("seccomp: the command denylist refuses what tools never need", "[seccomp][command]") {
  const SeccompProgram p = build_command_seccomp_policy();
  REQUIRE(p.error.empty());
  // run_bpf: the whole return value, so the errno in ERRNO's data is compared too.
  const std::uint32_t eperm = SECCOMP_RET_ERRNO | EPERM;
  for (const auto& s : command_denied_syscalls()) {
    INFO(s.name);
    CHECK(std::strlen(s.why) > 5);
    const int nr = seccomp_syscall_resolve_name(s.name);
    if (nr < 0) continue;  // not on x86_64
    CHECK(run_bpf(p.code, call(AUDIT_ARCH_X86_64, nr)) == eperm);
  }
  // What programs do is allowed.
  for (int nr : {SYS_openat, SYS_read, SYS_execve, SYS_socket, SYS_wait4, SYS_pipe2, SYS_mmap})
    CHECK(run_bpf(p.code, call(AUDIT_ARCH_X86_64, nr, {0, 4096, PROT_READ | PROT_EXEC})) ==
          SECCOMP_RET_ALLOW);
  // clone: a plain fork is allowed; any namespace flag is refused, whatever the upper half.
  const std::uint64_t junk = 0xdeadbeef00000000ull;
  CHECK(run_bpf(p.code, call(AUDIT_ARCH_X86_64, SYS_clone, {SIGCHLD})) == SECCOMP_RET_ALLOW);
  CHECK(run_bpf(p.code, call(AUDIT_ARCH_X86_64, SYS_clone, {junk | SIGCHLD})) == SECCOMP_RET_ALLOW);
  for (std::uint64_t flag : {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWUTS,
                             CLONE_NEWIPC, CLONE_NEWCGROUP}) {
    CHECK(run_bpf(p.code, call(AUDIT_ARCH_X86_64, SYS_clone, {flag | SIGCHLD})) == eperm);
    CHECK(run_bpf(p.code, call(AUDIT_ARCH_X86_64, SYS_clone, {junk | flag})) == eperm);
  }
  CHECK(run_bpf(p.code, call(AUDIT_ARCH_X86_64, SYS_clone3)) == (SECCOMP_RET_ERRNO | ENOSYS));
  // ioctl: pushing input into a terminal is refused; other requests pass.
  CHECK(run_bpf(p.code, call(AUDIT_ARCH_X86_64, SYS_ioctl, {0, TIOCSTI})) == eperm);
  CHECK(run_bpf(p.code, call(AUDIT_ARCH_X86_64, SYS_ioctl, {0, junk | TIOCSTI})) == eperm);
  CHECK(run_bpf(p.code, call(AUDIT_ARCH_X86_64, SYS_ioctl, {0, TCGETS})) == SECCOMP_RET_ALLOW);
  // Foreign ABIs die.
  CHECK(run_bpf(p.code, call(AUDIT_ARCH_I386, 3)) == SECCOMP_RET_KILL_PROCESS);
  CHECK(run_bpf(p.code, call(AUDIT_ARCH_X86_64, 0x40000000 | SYS_read)) ==
        SECCOMP_RET_KILL_PROCESS);
}
