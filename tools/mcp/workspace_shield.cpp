#include "tools/mcp/workspace_shield.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "tools/lowercase.h"

namespace tactus::tools {
namespace {

namespace fs = std::filesystem;

bool ends_with(const std::string& s, const char* suffix) {
  const std::string t(suffix);
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

// The name rules of tools/trusted_files.h: code, and the policy beside it.
bool trusted_name(const fs::path& p) {
  const std::string name = lower(p.filename().string());
  if (ends_with(name, ".tac") || ends_with(name, ".tac.yml") || ends_with(name, ".tac.yaml") ||
      ends_with(name, ".lua"))
    return true;
  std::error_code ec;
  if (ends_with(name, ".yml") || ends_with(name, ".yaml")) {
    const fs::path beside = p.parent_path() / p.stem();
    return fs::exists(fs::symlink_status(beside, ec));
  }
  return false;
}

bool listed(const std::vector<FileId>& ids, const struct stat& st) {
  const FileId id{st.st_dev, st.st_ino};
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

bool workspace_shield(const std::string& workspace, bool writable, const TrustedFiles& trusted,
                      std::vector<JailBind>& binds, std::string& error) {
  std::error_code ec;
  const fs::path root = fs::path(workspace).lexically_normal();
  std::size_t seen = 0;
  const auto add = [&](const fs::path& p, JailBind::Kind kind) {
    binds.push_back({"", (fs::path("/workspace") / p.lexically_relative(root)).string(), kind});
  };
  // Symlinks are not followed (the jail shows only what lies beneath the workspace anyway).
  for (auto it = fs::recursive_directory_iterator(
           root, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (++seen > kShieldMaxEntries) {
      error = "the workspace " + workspace + " has more than " + std::to_string(kShieldMaxEntries) +
              " entries to look through for trusted files";
      return false;
    }
    const fs::path& p = it->path();
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0 || S_ISLNK(st.st_mode)) continue;
    const std::string name = lower(p.filename().string());
    if (S_ISDIR(st.st_mode)) {
      if (name == ".tactus" || listed(trusted.dirs, st)) {
        add(p, JailBind::Kind::hidden);
        it.disable_recursion_pending();
      } else if (name == "node_modules" || name == ".git") {
        it.disable_recursion_pending();  // installed code, not a procedure's: not looked through
      }
      continue;
    }
    const bool hidden = listed(trusted.hidden, st) ||
                        std::find(trusted.hidden_paths.begin(), trusted.hidden_paths.end(),
                                  p.lexically_normal().string()) != trusted.hidden_paths.end();
    if (hidden)
      add(p, JailBind::Kind::hidden);
    else if (writable && (listed(trusted.files, st) || trusted_name(p)))
      add(p, JailBind::Kind::protected_);
  }
  return true;
}

}  // namespace tactus::tools
