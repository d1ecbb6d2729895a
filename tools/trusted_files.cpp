#include "tools/trusted_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "runtime/unique_fd.h"

namespace tactus::tools {
namespace {

constexpr std::string_view kTactusDir = ".tactus";
// A .tactus directory holds a config file, a journal and an audit log: the scan stops long
// before a tree this size, and what it did not reach is still caught by name.
constexpr std::size_t kMaxScanned = 10000;
constexpr int kMaxDepth = 8;

// Names whose files are code or policy, compared without case (a case-insensitive filesystem
// would load "X.TAC.YML" as the sidecar of x.tac).
constexpr std::string_view kTrustedSuffixes[] = {".tac.yml", ".tac.yaml", ".tac", ".lua"};

FileId id_of(const struct stat& st) {
  return {st.st_dev, st.st_ino};
}

bool contains(const std::vector<FileId>& ids, const FileId& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

bool ends_with_nocase(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  return std::equal(suffix.begin(), suffix.end(), s.end() - suffix.size(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) ==
           std::tolower(static_cast<unsigned char>(b));
  });
}

bool equal_nocase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ends_with_nocase(a, b);
}

std::optional<std::string> trusted_name(std::string_view name) {
  if (equal_nocase(name, kTactusDir)) return "a .tactus directory";
  for (const auto suffix : kTrustedSuffixes)
    if (ends_with_nocase(name, suffix))
      return suffix == ".tac"   ? "a .tac source"
             : suffix == ".lua" ? "a Lua module"
                                : "a sidecar (*" + std::string(suffix) + ")";
  return std::nullopt;
}

// X.yml or X.yaml beside a file X: the sidecar `tactus run X` would read.
std::optional<std::string> sidecar_of_existing(int dir_fd, std::string_view name) {
  for (const std::string_view ext : {std::string_view(".yml"), std::string_view(".yaml")}) {
    if (!ends_with_nocase(name, ext) || name.size() == ext.size()) continue;
    const std::string stem(name.substr(0, name.size() - ext.size()));
    struct stat st;
    if (::fstatat(dir_fd, stem.c_str(), &st, 0) == 0 && S_ISREG(st.st_mode))
      return "the sidecar of '" + stem + "'";
  }
  return std::nullopt;
}

// The host path of an open fd, as the kernel names it now; empty if it cannot be read.
std::string host_path_of(int fd) {
  char link[64], buf[PATH_MAX + 1];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = ::readlink(link, buf, PATH_MAX);
  if (n <= 0) return "";
  return std::string(buf, static_cast<std::size_t>(n));
}

bool has_tactus_component(std::string_view path) {
  std::size_t pos = 0;
  while (pos <= path.size()) {
    std::size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    if (equal_nocase(path.substr(pos, end - pos), kTactusDir)) return true;
    pos = end + 1;
  }
  return false;
}

// Why the directory dir_fd, or one above it, is trusted: a .tactus directory by name or inode.
// writing: a write below an MCP server's install dir is refused too.
std::optional<std::string> refuse_directory_chain(const TrustedFiles& t, int dir_fd,
                                                  bool writing = false) {
  const std::string path = host_path_of(dir_fd);
  if (path.empty() || path[0] != '/') return "its directory cannot be checked";
  if (has_tactus_component(path)) return "inside a .tactus directory";
  UniqueFd cur(::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0));
  for (int depth = 0; cur.get() >= 0 && depth < 4096; ++depth) {
    struct stat st;
    if (::fstat(cur.get(), &st) != 0) return "its directory cannot be checked";
    if (contains(t.dirs, id_of(st))) return "inside a .tactus directory";
    if (writing && contains(t.code_dirs, id_of(st))) return "inside an MCP server's install dir";
    UniqueFd up(::openat(cur.get(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
    struct stat up_st;
    if (up.get() < 0 || ::fstat(up.get(), &up_st) != 0) return "its directory cannot be checked";
    if (id_of(up_st) == id_of(st)) return std::nullopt;  // the root
    cur = std::move(up);
  }
  return "its directory cannot be checked";
}

void scan(TrustedFiles& t, int dir_fd, int depth, std::size_t& seen) {
  UniqueFd own(::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0));
  if (own.get() < 0) return;
  DIR* dir = ::fdopendir(own.get());
  if (!dir) return;
  own.release();
  while (const dirent* ent = ::readdir(dir)) {
    const std::string_view name = ent->d_name;
    if (name == "." || name == "..") continue;
    if (++seen > kMaxScanned) break;
    struct stat st;
    if (::fstatat(::dirfd(dir), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      t.dirs.push_back(id_of(st));
      if (depth >= kMaxDepth) continue;
      UniqueFd sub(
          ::openat(::dirfd(dir), ent->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub.get() >= 0) scan(t, sub.get(), depth + 1, seen);
    } else {
      t.files.push_back(id_of(st));
      t.hidden.push_back(id_of(st));
    }
  }
  ::closedir(dir);
}

void add_file(TrustedFiles& t, const std::string& path, bool hidden) {
  if (path.empty()) return;
  struct stat st;
  for (const bool follow : {true, false}) {
    if ((follow ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st)) != 0) continue;
    t.files.push_back(id_of(st));
    if (hidden) t.hidden.push_back(id_of(st));
  }
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash ? slash : 1);
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (hidden && path[0] == '/') t.hidden_paths.push_back(path);
  if (base.empty() || ::stat(dir.c_str(), &st) != 0) return;
  // As /proc/self/fd will name it: the directory with its symlinks resolved.
  char real[PATH_MAX];
  if (hidden && ::realpath(dir.c_str(), real))
    t.hidden_paths.push_back(std::string(real) + (std::string_view(real) == "/" ? "" : "/") + base);
  t.names.push_back({id_of(st), base, hidden});
}

bool hidden_name(const TrustedFiles& t, const struct stat& dir, std::string_view name) {
  for (const auto& n : t.names)
    if (n.hidden && n.dir == id_of(dir) && n.name == name) return true;
  return false;
}

}  // namespace

TrustedFiles collect_trusted_files(const std::vector<std::string>& files,
                                   const std::vector<std::string>& hidden,
                                   const std::vector<std::string>& tactus_dirs,
                                   const std::vector<std::string>& code_dirs) {
  TrustedFiles t;
  for (const auto& d : code_dirs) {
    struct stat st;
    if (::stat(d.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) t.code_dirs.push_back(id_of(st));
  }
  for (const auto& f : files) add_file(t, f, false);
  for (const auto& f : hidden) add_file(t, f, true);
  std::size_t seen = 0;
  for (const auto& d : tactus_dirs) {
    UniqueFd fd(::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    struct stat st;
    if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0) continue;
    t.dirs.push_back(id_of(st));
    scan(t, fd.get(), 1, seen);
  }
  return t;
}

std::optional<std::string> trusted_by_name(std::string_view name) {
  return trusted_name(name);
}

std::optional<std::string> refuse_read(const TrustedFiles& t, int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return "it cannot be checked";
  if (contains(t.dirs, id_of(st))) return "a .tactus directory";
  if (S_ISDIR(st.st_mode)) return refuse_directory_chain(t, fd);
  const std::string path = host_path_of(fd);
  if (path.empty() || path[0] != '/') return "it cannot be checked";
  if (has_tactus_component(path)) return "inside a .tactus directory";
  const std::string hidden = "a journal, audit, secret or .tactus file (or a link to one)";
  if (contains(t.hidden, id_of(st))) return hidden;
  for (const auto& p : t.hidden_paths)
    if (p == path) return hidden;
  const auto slash = path.rfind('/');
  UniqueFd parent(::open(path.substr(0, std::max<std::size_t>(slash, 1)).c_str(),
                         O_PATH | O_DIRECTORY | O_CLOEXEC));
  struct stat dir;
  if (parent.get() < 0 || ::fstat(parent.get(), &dir) != 0) return "it cannot be checked";
  if (hidden_name(t, dir, std::string_view(path).substr(slash + 1))) return hidden;
  return refuse_directory_chain(t, parent.get());
}

std::optional<std::string> refuse_write(const TrustedFiles& t, int parent_fd,
                                        const std::string& name) {
  if (auto why = trusted_name(name)) return why;
  struct stat dir;
  if (::fstat(parent_fd, &dir) != 0) return "its directory cannot be checked";
  for (const auto& n : t.names)
    if (n.dir == id_of(dir) && n.name == name) return "a configured trusted file";
  if (auto why = sidecar_of_existing(parent_fd, name)) return why;
  const std::string dir_path = host_path_of(parent_fd);
  for (const auto& p : t.hidden_paths)
    if (p == dir_path + (dir_path == "/" ? "" : "/") + name) return "a configured trusted file";
  if (auto why = refuse_directory_chain(t, parent_fd, true)) return why;
  struct stat st;
  // The entry itself and, for a symlink, what it points to (file.write refuses symlinks, but
  // the better reason is this one).
  for (const int flags : {AT_SYMLINK_NOFOLLOW, 0})
    if (::fstatat(parent_fd, name.c_str(), &st, flags) == 0 &&
        (contains(t.files, id_of(st)) || contains(t.dirs, id_of(st))))
      return "a trusted file (or a link to one)";
  return std::nullopt;
}

std::optional<std::string> refuse_modify(const TrustedFiles& t, int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return "it cannot be checked";
  if (contains(t.files, id_of(st))) return "a trusted file (or a link to one)";
  if (!t.code_dirs.empty()) {
    const std::string path = host_path_of(fd);
    const auto slash = path.rfind('/');
    UniqueFd parent(slash == std::string::npos
                        ? -1
                        : ::open(path.substr(0, std::max<std::size_t>(slash, 1)).c_str(),
                                 O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (parent.get() < 0) return "it cannot be checked";
    if (auto why = refuse_directory_chain(t, parent.get(), true)) return why;
  }
  if (st.st_nlink > 1)
    return "a file with " + std::to_string(st.st_nlink) +
           " hard links, one of which may be trusted (file.write appends only to files with one)";
  return std::nullopt;
}

}  // namespace tactus::tools
