// Command tools (tools.commands in the sidecar): a trusted program run for each call in a jail of
// its own, with the call's args as JSON on stdin and its result as JSON on stdout.
//
// The jail is the VM's jail with a different root and policy (runtime/jail): user, pid, mount,
// ipc, uts and cgroup namespaces; nobody; /usr read-only and nothing else of the host; no
// network unless the tool says network: host; rlimits; no capabilities; no_new_privs; the
// command denylist. Its environment is PATH, HOME=/tmp, LANG, and the secrets the sidecar
// names for this tool: nothing of the user's environment.
#pragma once

#include "runtime/protocol/message.h"
#include "tools/registry.h"
#include "tools/tool_context.h"

namespace tactus::tools {

// Bytes of stderr kept for an error message (the last ones).
inline constexpr std::size_t kCommandStderrTail = 2048;

// Runs one call: args (any JSON) on stdin, then waits for exit, the timeout or the output cap.
// ok: exit 0 and stdout one JSON document (the result). timeout: killed at the timeout.
// failed: the jail could not be set up, the program could not be executed, it exited non-zero
// or by a signal (the message carries the end of its stderr), wrote more than max_output, or
// wrote something that is not JSON.
ToolOutcome run_command_tool(const CommandSpec& spec, CommandLauncher& launcher,
                             const protocol::Json& args);

}  // namespace tactus::tools
