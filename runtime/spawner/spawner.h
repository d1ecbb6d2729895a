// The spawner: a small single-threaded process forked first thing in main(), before any
// thread exists and before any configuration or secret is read. It forks one child per run.
// Children are created with CLONE_PARENT, so the tactus process (the broker) is their parent:
// it reaps them, gets their rusage and owns their pidfds; the spawner keeps no state per run.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "runtime/jail/child_setup.h"
#include "runtime/spawner/spawn_request.h"
#include "runtime/unique_fd.h"

namespace tactus::spawner {

struct SpawnedChild {
  pid_t pid = -1;
  UniqueFd pidfd;
  // Empty on success; otherwise "step: strerror", with the step and errno apart too.
  std::string error;
  std::string step;
  int error_errno = 0;
};

class SpawnerClient {
 public:
  // Forks the spawner. Call before any thread is started. Never returns in the spawner.
  // expected: the backend the first runs will ask for; the jail's one-time preparation starts
  // at once for Backend::jail. main is what a contained child runs (the VM; tests pass a probe).
  static SpawnerClient fork_spawner(Backend expected = Backend::jail,
                                    jail::ChildMain main = nullptr);

  // Asks for a child whose fd 3 is channel (the child end of the run's socketpair; the caller
  // keeps the other end). Blocks for the fork only. Thread-safe: requests are taken one at a
  // time.
  SpawnedChild spawn(UniqueFd channel, const SpawnRequest& request);

  // A command tool's jail (request.job == Job::command): channel is fd 3 as above; in, out and
  // err become its stdin, stdout and stderr.
  SpawnedChild spawn_command(UniqueFd channel, UniqueFd in, UniqueFd out, UniqueFd err,
                             const SpawnRequest& request);

  pid_t pid() const { return pid_; }

  // Ends the spawner and reaps it: a tactus that returns leaves no process behind (its jails
  // are the broker's children, reaped by the sessions that ran them).
  ~SpawnerClient();
  SpawnerClient(SpawnerClient&& other) noexcept
      : pid_(other.pid_), control_(std::move(other.control_)), lock_(std::move(other.lock_)) {
    other.pid_ = -1;
  }
  SpawnerClient& operator=(SpawnerClient&&) = delete;

 private:
  SpawnerClient(pid_t pid, UniqueFd control) : pid_(pid), control_(std::move(control)) {}
  // Sends request with n fds, calls drop_fds once they are on their way, awaits the reply.
  SpawnedChild request_child(const SpawnRequest& request, const int* fds, int n,
                             const std::function<void()>& drop_fds);
  pid_t pid_;
  UniqueFd control_;
  // One request and its reply at a time on control_: tactus serve spawns from many threads.
  std::unique_ptr<std::mutex> lock_ = std::make_unique<std::mutex>();
};

// The most fds one control message carries.
inline constexpr int kMaxPassedFds = 4;

// Sends one message with n (at most kMaxPassedFds) fds attached. False on failure (errno).
bool send_with_fds(int sock, const void* data, std::size_t len, const int* fds, int n);
// Receives one message and up to max fds. Returns bytes received (0 on EOF, -1 on error);
// *count is how many fds arrived (they are O_CLOEXEC).
long recv_with_fds(int sock, void* data, std::size_t len, int* fds, int max, int* count);

inline bool send_with_fd(int sock, const void* data, std::size_t len, int fd) {
  return send_with_fds(sock, data, len, &fd, fd >= 0 ? 1 : 0);
}
// Returns bytes received (0 on EOF, -1 on error); *fd is -1 when none arrived.
long recv_with_fd(int sock, void* data, std::size_t len, int* fd);

}  // namespace tactus::spawner
