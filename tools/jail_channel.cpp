#include "tools/jail_channel.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/protocol/message.h"
#include "runtime/protocol/methods.h"

namespace tactus::tools {

bool nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

void read_channel(int fd, ChannelState& ch) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0 || !ch.decoder.feed(buf, static_cast<std::size_t>(n))) {
      ch.open = false;
      return;
    }
    std::string payload, reason;
    while (ch.decoder.next(payload)) {
      const auto m = protocol::parse_message(payload, reason);
      if (!m || m->kind != protocol::MessageKind::notification) continue;
      if (m->method == protocol::method::setup_failed) {
        ch.setup_step = m->params.value("step", std::string("?"));
        ch.setup_errno = m->params.value("errno", 0);
      } else if (m->method == protocol::method::exec_failed) {
        ch.exec_errno = m->params.value("errno", 0);
      }
    }
  }
}

LaunchedCommand launch_command_jail(CommandLauncher& launcher, const CommandJail& jail,
                                    CommandEnds& ours) {
  LaunchedCommand failed;
  const auto cannot = [&](const char* what) {
    failed.error = std::string("cannot start: ") + what + ": " + std::strerror(errno);
    return std::move(failed);
  };
  int sv[2], in[2], out[2], err[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return cannot("socketpair");
  ours.channel = UniqueFd(sv[0]);
  UniqueFd channel(sv[1]);
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0) return cannot("socketpair");
  ours.in = UniqueFd(in[0]);
  UniqueFd stdin_end(in[1]);
  ::shutdown(stdin_end.get(), SHUT_WR);  // the program's stdin reads only
  if (::pipe2(out, O_CLOEXEC) != 0) return cannot("pipe");
  ours.out = UniqueFd(out[0]);
  UniqueFd stdout_end(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) return cannot("pipe");
  ours.err = UniqueFd(err[0]);
  UniqueFd stderr_end(err[1]);
  LaunchedCommand child = launcher.launch(jail, std::move(channel), std::move(stdin_end),
                                          std::move(stdout_end), std::move(stderr_end));
  if (!child.error.empty()) child.error = "cannot start its jail: " + child.error;
  return child;
}

}  // namespace tactus::tools
