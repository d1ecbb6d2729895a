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

// The name rules of tools/trusted_files.h (trusted_by_name), and the policy beside code: X.yml
// or X.yaml beside any entry X (wider than refuse_write's, which needs X to be a file).
bool trusted_name(const fs::path& p) {
  if (trusted_by_name(p.filename().string())) return true;
  const std::string name = lower(p.filename().string());
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

// Every directory between /workspace and a shielded entry becomes a mount point of itself
// (first, so the shields are mounted inside them): a writable server cannot rename one away
// and write a new trusted file where it was.
void pin_ancestors(std::vector<JailBind>& binds) {
  std::set<std::string> dirs;
  for (const auto& b : binds)
    for (fs::path d = fs::path(b.target).parent_path(); d != "/workspace" && d != "/" && !d.empty();
         d = d.parent_path())
      dirs.insert(d.string());
  std::vector<JailBind> pins;
  for (const auto& d : dirs) pins.push_back({"", d, JailBind::Kind::pinned});
  binds.insert(binds.begin(), pins.begin(), pins.end());  // set order: parents first
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
  if (writable) pin_ancestors(binds);
  return true;
}

bool trusted_entries(const std::string& workspace, std::set<std::string>& out, std::string& error) {
  std::error_code ec;
  const fs::path root = fs::path(workspace).lexically_normal();
  std::size_t seen = 0;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (++seen > kGuardMaxEntries) {
      error = "it has more than " + std::to_string(kGuardMaxEntries) + " entries";
      return false;
    }
    const fs::path& p = it->path();
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) {
      error = p.string() + ": " + std::strerror(errno);
      return false;
    }
    const bool tactus = lower(p.filename().string()) == ".tactus";
    if (tactus || (!S_ISDIR(st.st_mode) && trusted_name(p))) out.insert(p.string());
    if (tactus && S_ISDIR(st.st_mode)) it.disable_recursion_pending();
  }
  if (ec) error = ec.message();
  return !ec;
}

std::vector<std::string> remove_made(const std::string& workspace,
                                     const std::vector<std::string>& made,
                                     const std::vector<std::string>& keep) {
  std::vector<std::string> left;
  const fs::path root = fs::path(workspace).lexically_normal();
  for (const auto& m : made) {
    const fs::path path = fs::path(m).lexically_normal();
    const fs::path rel = path.lexically_relative(root);
    // Every directory on the way must be one, not a link (nothing runs in the jail now, and the
    // file tools make no links, so what is seen here stays).
    bool plain = !rel.empty() && *rel.begin() != "..";
    fs::path at = root;
    for (auto part = rel.begin(); plain && std::next(part) != rel.end(); ++part) {
      at /= *part;
      struct stat st;
      plain = ::lstat(at.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    }
    struct stat st;
    if (!plain || ::lstat(path.c_str(), &st) != 0) {
      if (plain && errno == ENOENT) continue;  // gone already
      left.push_back(m);
      continue;
    }
    if (!S_ISDIR(st.st_mode)) {
      if (::unlink(path.c_str()) != 0) left.push_back(m);
      continue;
    }
    // A .tactus the server made: what it holds goes, but the broker's own files.
    std::error_code ec;
    for (auto it = fs::directory_iterator(path, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
      const std::string child = it->path().lexically_normal().string();
      if (std::find(keep.begin(), keep.end(), child) != keep.end()) continue;
      std::error_code rm;
      fs::remove_all(it->path(), rm);  // a link in it is removed, not followed
      if (rm) left.push_back(child);
    }
    if (ec) left.push_back(m);
  }
  return left;
}

}  // namespace tactus::tools
