#include "tools/jail_channel.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

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

}  // namespace tactus::tools
