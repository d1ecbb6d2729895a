// The main of a command tool's jail: receives what to exec on fd 3, then execs it.
#pragma once

#include "runtime/jail/jail_spec.h"

namespace tactus::jail {

// Receives {"method":"exec","params":{"argv":[...],"env":["K=V",...],"cwd"?:DIR}} on fd,
// changes to cwd when given (an MCP server's), then execs argv
// with exactly that environment; fd is closed by the exec, which is how the broker learns that
// it succeeded. On failure sends {"method":"exec_failed","params":{"errno":N}} and returns
// protocol::kExitCannotExec (runtime/protocol/exit_codes.h).
int command_child_main(int fd, const SpawnRequest& request);

}  // namespace tactus::jail
