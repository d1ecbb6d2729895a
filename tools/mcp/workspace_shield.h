// What keeps an MCP server off the workspace's trusted files. The file tools check every path
// they open (tools/trusted_files.h); a server opens files itself, inside its jail, so the jail
// mounts over them instead: each .tactus directory, and each hidden file (the journal, the
// audit log, secret files), is replaced by an empty directory or /dev/null; with a writable
// workspace, each file the name rules make trusted (*.tac, *.tac.yml, *.lua, X.yml beside X)
// and each configuration layer is made read-only. A file the server creates during the run is
// not covered: docs/security.md says so.
#pragma once

#include <string>
#include <vector>

#include "tools/tool_context.h"
#include "tools/trusted_files.h"

namespace tactus::tools {

// At most this many entries of the workspace are looked through; more is an error (the server
// then cannot be started with the workspace: workspace: off, or a smaller directory).
inline constexpr std::size_t kShieldMaxEntries = 20000;

// The binds for a workspace at host path `workspace`, seen in the jail at /workspace.
// false: error says why (too many entries).
bool workspace_shield(const std::string& workspace, bool writable, const TrustedFiles& trusted,
                      std::vector<JailBind>& binds, std::string& error);

}  // namespace tactus::tools
