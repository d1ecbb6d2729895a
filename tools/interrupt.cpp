#include "tools/interrupt.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <ctime>

namespace tactus::tools {
namespace {

// One slot per live child; a run has its jail and at most one command jail at a time, and
// tactus serve has at most serve.max_concurrent (at most 256) runs at once. Lock-free so that the
// handler may read them.
constexpr int kSlots = 1024;
// Each holds a pidfd + 1, so that the zero every static starts with means free (no
// initialiser that another file's static could run before).
std::atomic<int> g_children[kSlots];
std::atomic<int> g_signal{0};
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<long>::is_always_lock_free);

void kill_pidfd(int pidfd) {
  ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
}

void kill_children() {
  for (auto& slot : g_children) {
    const int held = slot.load();
    if (held > 0) kill_pidfd(held - 1);
  }
}

std::atomic<long> g_first_ms{0};  // CLOCK_MONOTONIC ms of the first signal

long now_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);  // async-signal-safe
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// Cleanup after the first signal (a transfer's abort, the journal's last commit, reaping) takes
// up to about a second; a second signal within it (Ctrl-C pressed twice) is not a request to
// skip it. A later one ends the process at once, its children killed first.
constexpr long kGraceMs = 2000;

void on_signal(int sig) {
  const int saved_errno = errno;
  int expected = 0;
  if (g_signal.compare_exchange_strong(expected, sig)) {
    g_first_ms.store(now_ms());
    kill_children();
  } else if (now_ms() - g_first_ms.load() > kGraceMs) {
    kill_children();
    ::_exit(128 + expected);
  }
  errno = saved_errno;
}

}  // namespace

void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&sa.sa_mask, sig);  // one at a time
  sa.sa_flags = 0;  // no SA_RESTART: blocking reads and waits return EINTR
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
}

void interrupt_now(int sig) {
  int expected = 0;
  if (g_signal.compare_exchange_strong(expected, sig)) g_first_ms.store(now_ms());
  kill_children();
}

int interrupted() {
  return g_signal.load(std::memory_order_relaxed);
}

KillOnInterrupt::KillOnInterrupt(int pidfd) {
  if (pidfd < 0) return;
  for (int i = 0; i < kSlots && slot_ < 0; ++i) {
    int empty = 0;
    if (g_children[i].compare_exchange_strong(empty, pidfd + 1)) slot_ = i;
  }
  // After the signal nothing new is let run: an interrupted process ends what it started.
  if (interrupted()) kill_pidfd(pidfd);
}

KillOnInterrupt::~KillOnInterrupt() {
  release();
}

void KillOnInterrupt::release() {
  if (slot_ >= 0) g_children[slot_].store(0);
  slot_ = -1;
}

}  // namespace tactus::tools
