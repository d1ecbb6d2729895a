// What keeps an MCP server off the workspace's trusted files. The file tools check every path
// they open (tools/trusted_files.h); a server opens files itself, inside its jail, so the jail
// mounts over them instead: each .tactus directory, and each hidden file (the journal, the
// audit log, secret files), is replaced by an empty directory or /dev/null; with a writable
// workspace, each file the name rules make trusted (*.tac, *.tac.yml, *.lua, X.yml beside X),
// each configuration layer, the server's install dir and every .git and node_modules directory
// is made read-only, and every directory above those a mount point of itself (so none is
// renamed away). A trusted file a writable server creates during the run is found after its
// call (trusted_entries, against the look before it started) and removed, and the run ends.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "tools/tool_context.h"
#include "tools/trusted_files.h"

namespace tactus::tools {

// At most this many entries, this deep, are looked through; more is an error (the server then
// is not started: give it workspace: off, or a smaller directory).
inline constexpr std::size_t kShieldMaxEntries = 20000;
inline constexpr int kShieldMaxDepth = 48;

// The binds for a workspace at host path `workspace`, seen in the jail at /workspace.
// code_dir: the server's install dir when it lies in the workspace (made read-only there too).
// false: error says why (an entry that cannot be read, too many, too deep): fail closed.
bool workspace_shield(const std::string& workspace, bool writable, const TrustedFiles& trusted,
                      const std::string& code_dir, std::vector<JailBind>& binds,
                      std::string& error);

// What a server with a writable workspace could have made: every file or symlink the name
// rules make trusted, and every .tactus, anywhere below the host path workspace (node_modules
// and .git included), as host paths. false: it could not be looked through (error), which the
// caller takes as a breach.
inline constexpr std::size_t kGuardMaxEntries = 200000;
bool trusted_entries(const std::string& workspace, std::set<std::string>& out, std::string& error);

// Removes each path of made (host paths below workspace) without following a symlink on the
// way: a file or link is unlinked; a .tactus keeps only the paths in keep (the journal the
// broker may have made there). Returns what it could not remove.
std::vector<std::string> remove_made(const std::string& workspace,
                                     const std::vector<std::string>& made,
                                     const std::vector<std::string>& keep);

}  // namespace tactus::tools
