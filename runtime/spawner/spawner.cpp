#include "runtime/spawner/spawner.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "runtime/jail/child_setup.h"
#include "runtime/jail/command_child.h"
#include "runtime/jail/namespaces.h"
#include "runtime/jail/seccomp_policy.h"
#include "runtime/vm/vm_main.h"

extern char** environ;

namespace tactus::spawner {

bool send_with_fds(int sock, const void* data, std::size_t len, const int* fds, int n) {
  if (n < 0 || n > kMaxPassedFds) {
    errno = EINVAL;
    return false;
  }
  iovec iov{const_cast<void*>(data), len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)] = {};
  if (n > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
  }
  ssize_t sent;
  do sent = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  return sent == static_cast<ssize_t>(len);
}

long recv_with_fds(int sock, void* data, std::size_t len, int* fds, int max, int* count) {
  *count = 0;
  iovec iov{data, len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  // Every fd that arrived is either handed out or closed: none may leak into a later jail.
  int got[kMaxPassedFds];
  int ngot = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); n >= 0 && c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < k; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (ngot < kMaxPassedFds)
        got[ngot++] = fd;
      else
        ::close(fd);
    }
  }
  if (n >= 0 && ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || ngot > max)) {
    for (int i = 0; i < ngot; ++i) ::close(got[i]);
    errno = EMSGSIZE;
    return -1;
  }
  for (int i = 0; i < ngot; ++i) fds[i] = got[i];
  *count = ngot;
  return n;
}

long recv_with_fd(int sock, void* data, std::size_t len, int* fd) {
  int count = 0;
  *fd = -1;
  return recv_with_fds(sock, data, len, fd, 1, &count);
}

namespace {

// The spawner was forked from the user's shell environment, which may hold API keys. Jails
// are forked from the spawner, so wipe the strings themselves, not just the environ pointer:
// nothing a jail could find in its own memory.
void scrub_environment() {
  for (char** e = environ; e && *e; ++e) explicit_bzero(*e, std::strlen(*e));
  clearenv();
}

// clone3 with CLONE_PARENT: the broker (our parent) becomes the child's parent, and we get a
// pidfd for it that cannot refer to a recycled pid.
pid_t clone_child_of_broker(unsigned long long namespaces, int* pidfd) {
  clone_args args{};
  args.flags = CLONE_PARENT | CLONE_PIDFD | namespaces;
  args.pidfd = reinterpret_cast<std::uint64_t>(pidfd);
  args.exit_signal = 0;  // with CLONE_PARENT the kernel uses our own exit signal (SIGCHLD)
  return static_cast<pid_t>(::syscall(SYS_clone3, &args, sizeof(args)));
}

int vm_child_main(int fd, const SpawnRequest& request) {
  return vm::vm_main(fd, request.message_limit);
}

// What the spawner prepares once, off every run's critical path.
struct SpawnerState {
  jail::ChildMain main = vm_child_main;
  bool prepared = false;
  const char* init_step = nullptr;  // set when the jail cannot be had on this kernel
  int init_errno = 0;
  jail::SeccompProgram policy;          // no executable memory
  jail::SeccompProgram jit_policy;      // sandbox.jit, built on first use
  jail::SeccompProgram command_policy;  // command tools, built on first use
  // The network namespace we started in, kept before moving into the empty one, for command
  // tools configured with network: host. -1 where we cannot go back to it (unprivileged).
  int host_netns = -1;
};

void reply_error(int control, const char* step, int err) {
  SpawnReply reply;
  reply.error_errno = err;
  std::snprintf(reply.step, sizeof(reply.step), "%s", step);
  send_with_fd(control, &reply, sizeof(reply), -1);
}

// The network namespace (about 0.4 ms) and the seccomp program, once per spawner.
void prepare_jail(SpawnerState& st) {
  if (st.prepared) return;
  st.prepared = true;
  const char* step = nullptr;
  // Only root can return to the host's network namespace once it has left it.
  if (::geteuid() == 0) st.host_netns = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (int e = jail::net_ns_parent_init_once(&step)) {
    st.init_step = step;
    st.init_errno = e;
    return;
  }
  st.policy = jail::build_seccomp_policy(false);
  if (!st.policy.error.empty()) {
    st.init_step = "seccomp_build";
    st.init_errno = EINVAL;
  }
}

// The seccomp program a jail of req loads, built on first use.
const jail::SeccompProgram& policy_for(SpawnerState& st, const SpawnRequest& req) {
  if (req.job == Job::command || req.job == Job::mcp_server) {
    if (st.command_policy.code.empty()) st.command_policy = jail::build_command_seccomp_policy();
    return st.command_policy;
  }
  if (!req.danger_allow_exec) return st.policy;
  if (st.jit_policy.code.empty()) st.jit_policy = jail::build_seccomp_policy(true);
  return st.jit_policy;
}

// clone_child_of_broker, in the host's network namespace when a command tool asks for it.
pid_t clone_in_network(SpawnerState& st, const SpawnRequest& req, unsigned long long flags,
                       int* pidfd, const char** step) {
  if (!(req.job != Job::vm && req.danger_host_network)) return clone_child_of_broker(flags, pidfd);
  *step = "netns_host";
  if (st.host_netns < 0) {
    errno = EPERM;  // unprivileged: the host's network namespace is out of reach
    return -1;
  }
  const int empty = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (empty < 0) return -1;
  if (::setns(st.host_netns, CLONE_NEWNET) != 0) {
    ::close(empty);
    return -1;
  }
  *step = "clone3";
  const pid_t pid = clone_child_of_broker(flags, pidfd);
  if (pid == 0) return 0;  // the child keeps the host's network and goes on to its recipe
  const int saved = errno;
  // Back into the empty namespace before anything else is forked; if that fails, no later jail
  // may inherit the host's network, so the spawner ends (the broker reports it gone).
  if (::setns(empty, CLONE_NEWNET) != 0) ::_exit(1);
  ::close(empty);
  errno = saved;
  return pid;
}

// Forks one child for req; returns its pid (and pidfd) or -1 with step and errno set.
// fds: the channel, then for command jobs the command's stdin, stdout and stderr.
pid_t spawn_one(SpawnerState& st, const int* fds, const SpawnRequest& req, int* pidfd,
                const char** step, int* err) {
  const bool jailed = req.backend == Backend::jail;
  jail::ChildPlan plan;
  plan.channel = fds[0];
  plan.main = st.main;
  if (req.job == Job::command || req.job == Job::mcp_server) {
    plan.main = jail::command_child_main;
    for (int i = 0; i < 3; ++i) plan.stdio[i] = fds[1 + i];
  }
  int sync[2] = {-1, -1};
  if (jailed) {
    prepare_jail(st);
    if (st.init_step) {
      *step = st.init_step;
      *err = st.init_errno;
      return -1;
    }
    plan.policy = &policy_for(st, req);
    if (plan.policy->code.empty()) {
      *step = "seccomp_build";
      *err = EINVAL;
      return -1;
    }
    if (::pipe2(sync, O_CLOEXEC) != 0) {
      *step = "sync_pipe";
      *err = errno;
      return -1;
    }
    plan.sync_fd = sync[0];
  }
  *step = "clone3";
  const pid_t pid = clone_in_network(st, req, jailed ? jail::jail_clone_flags() : 0, pidfd, step);
  if (pid == 0) {
    ::signal(SIGPIPE, SIG_DFL);
    ::signal(SIGINT, SIG_DFL);
    if (sync[1] >= 0) ::close(sync[1]);
    jail::run_child(plan, req);  // never returns
  }
  *err = errno;
  if (jailed) {
    ::close(sync[0]);
    if (pid > 0) {
      // The parent half of the user namespace; the child waits for this int before going on.
      const char* map_step = "uid_map";
      jail::MapOutcome outcome;
      outcome.err = jail::user_ns_parent_write_maps(pid, &map_step);
      std::snprintf(outcome.step, sizeof outcome.step, "%s", map_step);
      [[maybe_unused]] const ssize_t n = ::write(sync[1], &outcome, sizeof outcome);
    }
    ::close(sync[1]);
  }
  return pid;
}

[[noreturn]] void spawner_main(int control, pid_t broker, jail::ChildMain main,
                               bool jail_expected) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != broker) ::_exit(0);
  ::signal(SIGPIPE, SIG_IGN);
  // Ctrl-C, SIGTERM to the group, a closed terminal: the broker's to handle (it ends its runs
  // as interrupted); we go when it goes (PR_SET_PDEATHSIG, or its destructor's SIGKILL).
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGTERM, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  ::tzset();  // load the time zone now: a jail cannot open /etc/localtime
  scrub_environment();
  SpawnerState st;
  st.main = main;
  // While the broker reads the procedure and its configuration, not when the first run waits.
  if (jail_expected) prepare_jail(st);

  for (;;) {
    SpawnRequest req;
    int fds[kMaxPassedFds];
    int nfds = 0;
    const long n = recv_with_fds(control, &req, sizeof(req), fds, kMaxPassedFds, &nfds);
    if (n == 0) ::_exit(0);  // the broker is gone
    if (n < 0) {
      if (errno == EMSGSIZE) {
        reply_error(control, "request", EMSGSIZE);
        continue;
      }
      ::_exit(1);
    }
    const bool stdio_job = req.job == Job::command || req.job == Job::mcp_server;
    const int wanted = n == sizeof(req) && stdio_job ? kCommandJobFds : 1;
    if (n != sizeof(req) || req.magic != kSpawnMagic || nfds != wanted ||
        (req.job != Job::vm && !stdio_job)) {
      for (int i = 0; i < nfds; ++i) ::close(fds[i]);
      reply_error(control, "request", EPROTO);
      continue;
    }
    int pidfd = -1;
    const char* step = nullptr;
    int err = 0;
    const pid_t pid = spawn_one(st, fds, req, &pidfd, &step, &err);
    for (int i = 0; i < nfds; ++i) ::close(fds[i]);
    if (pid < 0) {
      reply_error(control, step, err);
      continue;
    }
    SpawnReply reply;
    reply.pid = pid;
    send_with_fd(control, &reply, sizeof(reply), pidfd);
    ::close(pidfd);
  }
}

}  // namespace

SpawnerClient SpawnerClient::fork_spawner(Backend expected, jail::ChildMain main) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    std::perror("tactus: cannot create the spawner's control socket");
    std::exit(4);
  }
  const pid_t broker = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("tactus: cannot fork the spawner");
    std::exit(4);
  }
  if (pid == 0) {
    ::close(sv[0]);
    spawner_main(sv[1], broker, main ? main : vm_child_main, expected == Backend::jail);
  }
  ::close(sv[1]);
  return SpawnerClient(pid, UniqueFd(sv[0]));
}

SpawnerClient::~SpawnerClient() {
  if (pid_ <= 0) return;
  control_.reset();
  // It holds no state worth a goodbye, and may be busy preparing the jail: kill, then reap.
  ::kill(pid_, SIGKILL);
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
}

SpawnedChild SpawnerClient::spawn(UniqueFd channel, const SpawnRequest& request) {
  const int fd = channel.get();
  return request_child(request, &fd, 1, [&] { channel.reset(); });
}

SpawnedChild SpawnerClient::spawn_command(UniqueFd channel, UniqueFd in, UniqueFd out, UniqueFd err,
                                          const SpawnRequest& request) {
  const int fds[kCommandJobFds] = {channel.get(), in.get(), out.get(), err.get()};
  return request_child(request, fds, kCommandJobFds, [&] {
    channel.reset();
    in.reset();
    out.reset();
    err.reset();
  });
}

SpawnedChild SpawnerClient::request_child(const SpawnRequest& request, const int* fds, int nfds,
                                          const std::function<void()>& drop_fds) {
  SpawnedChild out;
  const std::lock_guard<std::mutex> one_at_a_time(*lock_);
  if (!send_with_fds(control_.get(), &request, sizeof(request), fds, nfds)) {
    out.error = std::string("spawner request: ") + std::strerror(errno);
    return out;
  }
  drop_fds();  // the child's copies are the only ones left, so its exit means EOF for us
  SpawnReply reply;
  int pidfd = -1;
  const long n = recv_with_fd(control_.get(), &reply, sizeof(reply), &pidfd);
  UniqueFd owned(pidfd);
  if (n != static_cast<long>(sizeof(reply))) {
    out.error = n == 0 ? "spawner: exited" : std::string("spawner reply: ") + std::strerror(errno);
    return out;
  }
  if (reply.error_errno != 0 || !owned) {
    reply.step[sizeof(reply.step) - 1] = 0;
    out.step = reply.step;
    out.error_errno = reply.error_errno;
    out.error = std::string(reply.step) + ": " + std::strerror(reply.error_errno);
    return out;
  }
  out.pid = reply.pid;
  out.pidfd = std::move(owned);
  return out;
}

}  // namespace tactus::spawner
