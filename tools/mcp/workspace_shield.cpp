#include "tools/mcp/workspace_shield.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

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

bool is_tactus_target(const std::string& target) {
  return lower(fs::path(target).filename().string()) == ".tactus";
}

}  // namespace

bool workspace_shield(const std::string& workspace, bool writable, const TrustedFiles& trusted,
                      const std::string& code_dir, std::vector<JailBind>& binds,
                      std::string& error) {
  std::error_code ec;
  const fs::path root = fs::path(workspace).lexically_normal();
  const auto target = [&](const fs::path& p) {
    return (fs::path("/workspace") / p.lexically_relative(root)).lexically_normal().string();
  };
  const auto add = [&](const fs::path& p, JailBind::Kind kind) {
    binds.push_back({"", target(p), kind});
  };
  const auto fail = [&](const std::string& what) {
    error = "cannot look through the workspace " + workspace + " for trusted files: " + what;
    return false;
  };
  std::size_t seen = 0;
  // Symlinks are not followed (the jail shows only what lies beneath the workspace anyway). An
  // entry that cannot be read ends the walk with an error: what it holds could not be shielded.
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (++seen > kShieldMaxEntries)
      return fail("it has more than " + std::to_string(kShieldMaxEntries) + " entries");
    if (it.depth() >= kShieldMaxDepth)
      return fail("it is more than " + std::to_string(kShieldMaxDepth) + " directories deep");
    const fs::path& p = it->path();
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) return fail(p.string() + ": " + std::strerror(errno));
    if (S_ISLNK(st.st_mode)) continue;
    const std::string name = lower(p.filename().string());
    if (S_ISDIR(st.st_mode)) {
      if (name == ".tactus" || listed(trusted.dirs, st)) {
        add(p, JailBind::Kind::hidden);
        it.disable_recursion_pending();
      } else if (name == "node_modules" || name == ".git" || (!code_dir.empty() && p == code_dir)) {
        // Installed code and history, not a procedure's: not looked through, and not written.
        if (writable) add(p, JailBind::Kind::protected_);
        it.disable_recursion_pending();
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
  if (ec) return fail(ec.message());
  // Hidden files the walk did not reach (below node_modules or .git): hidden all the same.
  for (const auto& h : trusted.hidden_paths) {
    const fs::path p = fs::path(h).lexically_normal();
    const auto rel = p.lexically_relative(root);
    struct stat st;
    if (rel.empty() || *rel.begin() == ".." || ::lstat(p.c_str(), &st) != 0 || S_ISLNK(st.st_mode))
      continue;
    const std::string t = target(p);
    if (std::none_of(binds.begin(), binds.end(), [&](const JailBind& b) { return b.target == t; }))
      add(p, JailBind::Kind::hidden);
  }
  return true;
}

std::vector<std::string> new_trusted_entries(const std::vector<JailBind>& before,
                                             const std::vector<JailBind>& now) {
  std::set<std::string> old;
  for (const auto& b : before) old.insert(b.target);
  std::vector<std::string> made;
  for (const auto& b : now) {
    if (old.count(b.target)) continue;
    const std::string name = lower(fs::path(b.target).filename().string());
    if (name == "node_modules" || name == ".git") continue;  // not trusted by name
    // A hidden file that appeared is the broker's own (its journal); a .tactus is trusted.
    if (b.kind == JailBind::Kind::protected_ || is_tactus_target(b.target))
      made.push_back(b.target);
  }
  return made;
}

std::vector<std::string> remove_new_trusted(const std::string& workspace,
                                            const std::vector<std::string>& targets,
                                            const TrustedFiles& trusted) {
  std::vector<std::string> left;
  const fs::path root = fs::path(workspace).lexically_normal();
  for (const auto& t : targets) {
    const fs::path host = (root / fs::path(t).lexically_relative("/workspace")).lexically_normal();
    std::error_code ec;
    if (!is_tactus_target(t)) {
      if (!fs::remove(host, ec) && ec) left.push_back(host.string());
      continue;
    }
    // A .tactus the server made: all it holds goes but the broker's hidden files.
    for (auto it = fs::directory_iterator(host, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
      const std::string p = it->path().lexically_normal().string();
      if (std::find(trusted.hidden_paths.begin(), trusted.hidden_paths.end(), p) !=
          trusted.hidden_paths.end())
        continue;
      std::error_code rm;
      fs::remove_all(it->path(), rm);
      if (rm) left.push_back(p);
    }
    if (ec) left.push_back(host.string());
  }
  return left;
}

}  // namespace tactus::tools
