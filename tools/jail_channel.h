// A command's jail as its broker side sees it: the fds it is started with, and what it says on
// its channel (fd 3) before the exec, a failed setup step or the exec's errno
// (runtime/jail/command_child.h). Used by command tools and MCP servers.
#pragma once

#include <cstddef>
#include <string>

#include "runtime/protocol/frame.h"
#include "runtime/unique_fd.h"
#include "tools/tool_context.h"

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

// Our ends of a command's jail (a command tool's, an MCP server's): its channel (fd 3), its
// stdin (a socket, so a write to a program that stopped reading is EPIPE, not SIGPIPE; the
// program's end reads only), its stdout and its stderr.
struct CommandEnds {
  UniqueFd channel, in, out, err;
};

// Makes the socketpairs and pipes, and asks launcher for the jail, which gets the other ends.
// On failure the result's error is "cannot start: socketpair: ..." (or pipe) or "cannot start
// its jail: ...".
LaunchedCommand launch_command_jail(CommandLauncher& launcher, const CommandJail& jail,
                                    CommandEnds& ours);

}  // namespace tactus::tools
