// The file tools: file.read, file.write, file.list and file.exists over the run's mounts.
//
// Paths are virtual. A relative path is relative to the mount at /workspace; an absolute one
// picks the mount with the longest virtual path that is a prefix of it at a component boundary
// ("/data/x" is in "/data", "/database" is not). The rest of the path is resolved on the host
// by openat2 beneath the mount's directory (opened afresh for each call), so '..' that would
// leave the mount, an absolute symlink, and a symlink that points outside (even one planted
// during the run) are refused ("denied"); symlinks that stay inside are followed. Read-only
// mounts refuse every write before the disk is touched. Messages name virtual paths only, never
// the host's. No tool writes a trusted file, or reads under .tactus (tools/trusted_files.h).
#pragma once

#include <vector>

#include "runtime/protocol/message.h"
#include "tools/registry.h"
#include "tools/tool_context.h"
#include "tools/trusted_files.h"

namespace tactus::tools {

// {path} → {content, size}. not_found: no such file; invalid_args: a directory, not a regular
// file, or over limits.max_read; denied: outside every mount or escaping its mount.
ToolOutcome file_read(const std::vector<Mount>& mounts, const FileLimits& limits,
                      const TrustedFiles& trusted, const protocol::Json& args);

// {path, content, append?} → {bytes}. Creates the file (0644) but not its parent directories
// (not_found). Without append, writes a temporary file beside the target and renames it over,
// so a reader sees the old content or the new, never half of it. Never writes through a symlink
// (a symlink as the last component is invalid_args). denied on a read-only mount or a trusted
// file. limit: the content would take the run past quota.limit (what it wrote so far is
// quota.used, which a successful write adds to).
ToolOutcome file_write(const std::vector<Mount>& mounts, const FileLimits& limits,
                       const TrustedFiles& trusted, DiskQuota& quota, const protocol::Json& args);

// {path? = "."} → {entries: [{name, type: "file"|"dir"|"other", size}], truncated?}, sorted by
// name, at most limits.max_entries. A symlink has its target's type when the target is inside
// the mount, otherwise "other".
ToolOutcome file_list(const std::vector<Mount>& mounts, const FileLimits& limits,
                      const TrustedFiles& trusted, const protocol::Json& args);

// {path} → {exists, type?}. A missing file is {exists: false}; a path outside the mounts is
// still denied.
ToolOutcome file_exists(const std::vector<Mount>& mounts, const FileLimits& limits,
                        const TrustedFiles& trusted, const protocol::Json& args);

}  // namespace tactus::tools
