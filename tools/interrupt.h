// An interrupt of the host process (SIGINT, SIGTERM, SIGHUP) while runs are on. The handler
// records the signal and SIGKILLs every registered child at once (a jail, a command's jail), so
// nothing that could still act is left running; the run then ends as "interrupted", with its
// journal committed up to the request in flight, and the CLI reaps what it started before it
// exits (docs/durability.md). The waits and transfers a tool makes check interrupted() and end
// at once; an answer made after the interrupt is never journaled.
#pragma once

#include <sys/types.h>

namespace tactus::tools {

// Installs the handlers, without SA_RESTART (a blocking read returns EINTR). A second signal
// more than 2 s after the first (the cleanup is stuck) ends the process at once, exit 128 +
// signal, its children killed first; one sooner (Ctrl-C twice) lets the cleanup finish.
void install_interrupt_handlers();

// What the handler does for sig, done from a thread (tactus serve, at the end of its drain):
// every registered child is killed and interrupted() says sig from now on.
void interrupt_now(int sig);

// The first signal that interrupted this process, or 0.
int interrupted();

// A child killed by an interrupt, named by its pidfd, from registration until release (call it
// before the pidfd is closed: the handler signals the pidfd, so a reused pid is never hit, and a
// registered fd number is never another file). Registering after the interrupt kills the child
// at once.
class KillOnInterrupt {
 public:
  explicit KillOnInterrupt(int pidfd);
  ~KillOnInterrupt();
  KillOnInterrupt(const KillOnInterrupt&) = delete;
  KillOnInterrupt& operator=(const KillOnInterrupt&) = delete;
  // Unregisters now (call right before reaping).
  void release();

 private:
  int slot_ = -1;
};

}  // namespace tactus::tools
