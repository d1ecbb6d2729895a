#include "runtime/vm/host_channel.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tactus::vm {

bool HostChannel::send(std::string_view payload, std::string& reason) {
  too_large_ = payload.size() > limit_;
  if (too_large_) {
    reason = "message of " + std::to_string(payload.size()) + " bytes exceeds the limit of " +
             std::to_string(limit_) + " bytes";
    return false;
  }
  out_.clear();
  protocol::append_frame(out_, payload);
  std::size_t done = 0;
  while (done < out_.size()) {
    const ssize_t n = ::write(fd_, out_.data() + done, out_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      reason = std::string("channel write: ") + std::strerror(errno);
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

std::optional<protocol::Message> HostChannel::receive(std::string& reason) {
  std::string payload;
  while (!decoder_.next(payload)) {
    if (decoder_.error() != protocol::FrameError::none) {
      reason = protocol::to_string(decoder_.error());
      return std::nullopt;
    }
    char buf[64 * 1024];
    const ssize_t n = ::read(fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      reason = n == 0 ? "channel closed" : std::string("channel read: ") + std::strerror(errno);
      return std::nullopt;
    }
    decoder_.feed(buf, static_cast<std::size_t>(n));
  }
  return protocol::parse_message(payload, reason);
}

std::optional<protocol::Message> HostChannel::call(std::string_view method,
                                                   const protocol::Json& params,
                                                   std::string& reason) {
  const std::int64_t id = next_id_++;
  if (!send(protocol::make_request(id, method, params), reason)) return std::nullopt;
  auto reply = receive(reason);
  if (!reply) return std::nullopt;
  if (reply->kind != protocol::MessageKind::response || reply->id != id) {
    reason = "unexpected message from the broker";
    return std::nullopt;
  }
  return reply;
}

}  // namespace tactus::vm
