// The VM's side of fd 3: blocking, one request at a time. The VM is single-threaded and every
// Host.call waits for its answer, so no event loop is needed here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/protocol/frame.h"
#include "runtime/protocol/message.h"

namespace tactus::vm {

class HostChannel {
 public:
  HostChannel(int fd, std::size_t message_limit)
      : fd_(fd), limit_(message_limit), decoder_(message_limit) {}

  // Frames and writes one message. False (with reason) if it exceeds the limit or the write
  // failed.
  bool send(std::string_view payload, std::string& reason);
  // Blocks for the next message. nullopt (with reason) on EOF, a bad frame or a bad message.
  std::optional<protocol::Message> receive(std::string& reason);

  // One request/response exchange. On a transport failure returns nullopt with reason; an error
  // response is returned as a Message whose error is set.
  std::optional<protocol::Message> call(std::string_view method, const protocol::Json& params,
                                        std::string& reason);

  std::size_t limit() const { return limit_; }
  // Whether the last failed send failed because the message was over the limit.
  bool last_send_too_large() const { return too_large_; }

 private:
  int fd_;
  std::size_t limit_;
  protocol::FrameDecoder decoder_;
  std::string out_;
  std::int64_t next_id_ = 1;
  bool too_large_ = false;
};

}  // namespace tactus::vm
