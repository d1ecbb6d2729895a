// What a command's jail says on its channel (fd 3) before the exec: a failed setup step, or
// the exec's errno (runtime/jail/command_child.h). Read by command tools and MCP servers.
#pragma once

#include <cstddef>
#include <string>

#include "runtime/protocol/frame.h"

namespace tactus::tools {

struct ChannelState {
  protocol::FrameDecoder decoder;
  bool open = true;        // false at EOF: the exec closed it (or the jail ended)
  std::string setup_step;  // a failed setup step
  int setup_errno = 0;
  int exec_errno = 0;  // exec_failed
  explicit ChannelState(std::size_t limit) : decoder(limit) {}
};

// Reads what is there (fd is non-blocking) and records it in ch.
void read_channel(int fd, ChannelState& ch);

// Sets O_NONBLOCK; false on failure.
bool nonblocking(int fd);

}  // namespace tactus::tools
