// What the host tools of one run may reach, decided by the trusted configuration.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tactus::tools {

// A host directory the file tools expose at a virtual path. The workspace (the procedure's
// directory, unless sandbox.mount_current_dir is false) is mounted at /workspace, and relative
// paths are relative to it; sandbox.volumes add "host:/virtual[:ro|:rw]".
struct Mount {
  std::string virtual_path;  // absolute, no trailing slash: "/workspace", "/data"
  std::string host_path;     // absolute host directory
  bool read_only = false;
};

struct FileLimits {
  std::uint64_t max_read = 16ull << 20;   // bytes file.read returns
  std::uint64_t max_write = 16ull << 20;  // bytes file.write accepts
  std::uint64_t max_entries = 10000;      // entries file.list returns
};

struct ToolContext {
  std::vector<Mount> mounts;
  FileLimits file_limits;
};

}  // namespace tactus::tools
