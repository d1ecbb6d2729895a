#include "runtime/jail/signals.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "runtime/jail/child_setup.h"
#include "runtime/protocol/exit_codes.h"

namespace tactus::jail {
namespace {

// Async-signal-safe decimal formatting.
char* put_uint(char* p, unsigned long v) {
  char tmp[24];
  int n = 0;
  do tmp[n++] = static_cast<char>('0' + v % 10);
  while ((v /= 10) != 0);
  while (n) *p++ = tmp[--n];
  return p;
}

char* put_str(char* p, const char* s) {
  const std::size_t n = std::strlen(s);
  std::memcpy(p, s, n);
  return p + n;
}

void on_sigsys(int, siginfo_t* info, void*) {
  char buf[160];
  char* p = buf + 4;
  p = put_str(p, "{\"method\":\"violation\",\"params\":{\"arch\":");
  p = put_uint(p, info->si_arch);
  p = put_str(p, ",\"nr\":");
  p = put_uint(p, static_cast<unsigned long>(static_cast<unsigned>(info->si_syscall)));
  p = put_str(p, "}}");
  const auto len = static_cast<unsigned>(p - buf - 4);
  buf[0] = static_cast<char>(len >> 24);
  buf[1] = static_cast<char>(len >> 16);
  buf[2] = static_cast<char>(len >> 8);
  buf[3] = static_cast<char>(len);
  [[maybe_unused]] const ssize_t n = ::write(kChannelFd, buf, static_cast<std::size_t>(p - buf));
  // SIGSYS is blocked while this handler runs, so a second trapped syscall makes the kernel
  // reset SIGSYS to its default and kill us with it: the broker sees "killed by SIGSYS".
  ::syscall(SYS_rt_sigaction, SIGSYS, nullptr, nullptr, 8);
  ::syscall(SYS_exit_group, 128 + SIGSYS);  // not reached; exit_group is allowed
}

void on_sigxcpu(int) {
  ::syscall(SYS_exit_group, protocol::kExitCpuLimit);
}

}  // namespace

bool install_jail_signal_handlers() {
  struct sigaction sys {};
  sys.sa_sigaction = on_sigsys;
  sys.sa_flags = SA_SIGINFO;
  sigemptyset(&sys.sa_mask);
  struct sigaction cpu {};
  cpu.sa_handler = on_sigxcpu;
  sigemptyset(&cpu.sa_mask);
  return ::sigaction(SIGSYS, &sys, nullptr) == 0 && ::sigaction(SIGXCPU, &cpu, nullptr) == 0;
}

}  // namespace tactus::jail
