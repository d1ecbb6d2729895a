#include "tools/file_tools.h"

#include "tools/trusted_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#ifndef SYS_openat2
#define SYS_openat2 437  // the same number on every architecture
#endif

namespace tactus::tools {
namespace {

using protocol::Json;

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  explicit operator bool() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

ToolOutcome success(Json result) {
  ToolOutcome out;
  out.ok = true;
  out.result = std::move(result);
  return out;
}

// A path as the procedure gave it, quoted and cut short if long, for messages.
std::string shown(std::string_view path) {
  constexpr std::size_t kMax = 200;
  if (path.size() <= kMax) return "'" + std::string(path) + "'";
  return "'" + std::string(path.substr(0, kMax)) + "...'";
}

// The components of a path, without empty ones and "." (which change nothing); ".." is kept
// for the kernel to resolve beneath the mount.
std::vector<std::string> components(std::string_view path) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    std::size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view c = path.substr(pos, end - pos);
    if (!c.empty() && c != ".") out.emplace_back(c);
    pos = end + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& parts, std::size_t from, std::size_t to) {
  std::string out;
  for (std::size_t i = from; i < to; ++i) {
    if (!out.empty()) out += '/';
    out += parts[i];
  }
  return out.empty() ? "." : out;
}

bool is_prefix(const std::vector<std::string>& prefix, const std::vector<std::string>& of) {
  return prefix.size() <= of.size() && std::equal(prefix.begin(), prefix.end(), of.begin());
}

constexpr std::string_view kWorkspace = "/workspace";

// Where a virtual path lands: a mount and the rest of the path below it.
struct Target {
  const Mount* mount = nullptr;
  std::vector<std::string> parts;  // below the mount; empty for the mount itself
  bool names_dir = false;          // the path ends in "/" or "/." (or is ".")

  std::string rest() const {
    std::string r = join(parts, 0, parts.size());
    if (names_dir && !parts.empty()) r += '/';  // so the kernel insists on a directory
    return r;
  }
};

std::string mounted_list(const std::vector<Mount>& mounts) {
  if (mounts.empty()) return "nothing is mounted";
  std::string out = "mounted: ";
  for (std::size_t i = 0; i < mounts.size(); ++i) {
    if (i) out += ", ";
    out += mounts[i].virtual_path;
  }
  return out;
}

// The path argument: a non-empty string without NUL bytes. fallback is used when the argument
// is absent (nullptr: it is required).
std::optional<ToolOutcome> path_arg(std::string_view tool, const Json& args, const char* fallback,
                                    std::string& path) {
  const std::string needs = std::string(tool) + " needs {path = \"...\"}";
  if (!args.is_object() && !(args.is_null() && fallback))
    return tool_failure(ToolError::invalid_args, needs);
  const auto it = args.is_object() ? args.find("path") : args.end();
  if (!args.is_object() || it == args.end() || it->is_null()) {
    if (!fallback) return tool_failure(ToolError::invalid_args, needs);
    path = fallback;
    return std::nullopt;
  }
  if (!it->is_string())
    return tool_failure(ToolError::invalid_args,
                        std::string(tool) + ": path must be a string, not " + it->type_name());
  path = it->get<std::string>();
  if (path.empty())
    return tool_failure(ToolError::invalid_args, std::string(tool) + ": path is empty");
  if (path.find('\0') != std::string::npos)
    return tool_failure(ToolError::invalid_args, std::string(tool) + ": path contains a NUL byte");
  return std::nullopt;
}

// Picks the mount: relative paths are under /workspace; an absolute path goes to the mount with
// the longest virtual path that is a prefix of it at a component boundary.
std::optional<ToolOutcome> select_mount(std::string_view tool, const std::vector<Mount>& mounts,
                                        const std::string& path, Target& t) {
  std::vector<std::string> parts;
  if (path.front() != '/') {
    const bool workspace = std::any_of(mounts.begin(), mounts.end(), [](const Mount& m) {
      return components(m.virtual_path) == components(kWorkspace);
    });
    if (!workspace)
      return tool_failure(ToolError::denied,
                          std::string(tool) + ": " + shown(path) +
                              " is relative, but no workspace is mounted (use an absolute "
                              "path under a mount; " +
                              mounted_list(mounts) + ")");
    parts = components(kWorkspace);
  }
  for (auto& c : components(path)) parts.push_back(std::move(c));

  std::size_t best_len = 0;
  for (const Mount& m : mounts) {
    const auto mc = components(m.virtual_path);
    if (!is_prefix(mc, parts)) continue;
    if (!t.mount || mc.size() > best_len) {
      t.mount = &m;
      best_len = mc.size();
    }
  }
  if (!t.mount)
    return tool_failure(ToolError::denied, std::string(tool) + ": " + shown(path) +
                                               " is outside every mount (" + mounted_list(mounts) +
                                               ")");
  t.parts.assign(std::make_move_iterator(parts.begin() + static_cast<std::ptrdiff_t>(best_len)),
                 std::make_move_iterator(parts.end()));
  t.names_dir = path == "." || path.back() == '/' ||
                (path.size() >= 2 && path.compare(path.size() - 2, 2, "/.") == 0);
  return std::nullopt;
}

// The mount's host directory, opened for this call (a directory swapped in is seen as it is).
std::optional<ToolOutcome> open_mount(std::string_view tool, const Mount& m, Fd& fd) {
  fd = Fd(::open(m.host_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (fd) return std::nullopt;
  return tool_failure(ToolError::failed, std::string(tool) + ": the directory of mount '" +
                                             m.virtual_path +
                                             "' cannot be opened: " + std::strerror(errno));
}

// openat2 confined beneath dirfd: no '..' above it, no absolute symlink, no symlink leading out
// of it (EXDEV), no /proc magic link (ELOOP). Fails closed with ENOSYS on kernels before 5.6.
int open_beneath(int dirfd, const std::string& path, std::uint64_t flags, std::uint64_t mode = 0) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.mode = mode;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0;; ++attempt) {
    const long r = ::syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
    if (r >= 0) return static_cast<int>(r);
    // EAGAIN: a rename elsewhere raced a '..' lookup; the kernel asks to retry.
    if (errno == EINTR || (errno == EAGAIN && attempt < 16)) continue;
    return -1;
  }
}

ToolOutcome from_errno(int err, std::string_view tool, const std::string& path, const Target& t) {
  const std::string what = std::string(tool) + ": " + shown(path);
  switch (err) {
    case EXDEV:
      return tool_failure(ToolError::denied,
                          what + ": path escapes its mount '" + t.mount->virtual_path + "'");
    case ELOOP:
      return tool_failure(ToolError::denied,
                          what + ": too many symlinks, or a link the file tools do not follow");
    case ENOENT:
      return tool_failure(ToolError::not_found, what + ": no such file or directory");
    case ENOTDIR:
      return tool_failure(ToolError::not_found,
                          what + ": a component of the path is not a directory");
    case EACCES:
    case EPERM:
      return tool_failure(ToolError::denied, what + ": permission denied on the host");
    case ENAMETOOLONG:
      return tool_failure(ToolError::invalid_args, what + ": path too long");
    case EISDIR:
      return tool_failure(ToolError::invalid_args, what + " is a directory");
    case ENOSYS:
      return tool_failure(ToolError::failed,
                          std::string(tool) +
                              ": the kernel lacks openat2 (Linux 5.6 or later), without which "
                              "the file tools cannot confine paths to their mounts");
    default:
      return tool_failure(ToolError::failed, what + ": " + std::strerror(err));
  }
}

const char* type_of(const struct stat& st) {
  if (S_ISREG(st.st_mode)) return "file";
  if (S_ISDIR(st.st_mode)) return "dir";
  return "other";
}

bool same_inode(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// Resolution common to every tool: the argument, the mount, the mount's directory.
struct Resolved {
  std::string path;
  Target target;
  Fd mount_fd;
};

std::optional<ToolOutcome> resolve(std::string_view tool, const std::vector<Mount>& mounts,
                                   const Json& args, const char* fallback, Resolved& r) {
  if (auto e = path_arg(tool, args, fallback, r.path)) return e;
  if (auto e = select_mount(tool, mounts, r.path, r.target)) return e;
  return open_mount(tool, *r.target.mount, r.mount_fd);
}

// A read-only mount nested in a writable one (/workspace/data:ro in /workspace) whose host
// directory is also inside the outer one's must not be written through '..' or a symlink that
// reaches it from the outer mount: walks up from the directory about to be written to the mount.
std::optional<ToolOutcome> check_nested_read_only(std::string_view tool,
                                                  const std::vector<Mount>& mounts,
                                                  const Resolved& r, int parent_fd) {
  const auto outer = components(r.target.mount->virtual_path);
  std::vector<std::pair<struct stat, const Mount*>> nested;
  for (const Mount& m : mounts) {
    if (!m.read_only || &m == r.target.mount) continue;
    const auto mc = components(m.virtual_path);
    if (mc.size() <= outer.size() || !is_prefix(outer, mc)) continue;
    struct stat st;
    if (::stat(m.host_path.c_str(), &st) == 0) nested.emplace_back(st, &m);
  }
  if (nested.empty()) return std::nullopt;
  struct stat root, cur_st;
  if (::fstat(r.mount_fd.get(), &root) != 0) return from_errno(errno, tool, r.path, r.target);
  Fd cur(::fcntl(parent_fd, F_DUPFD_CLOEXEC, 0));
  for (int depth = 0; cur && depth < 4096; ++depth) {
    if (::fstat(cur.get(), &cur_st) != 0) break;
    for (const auto& [st, m] : nested)
      if (same_inode(st, cur_st))
        return tool_failure(ToolError::denied, std::string(tool) + ": " + shown(r.path) +
                                                   " is inside '" + m->virtual_path +
                                                   "', which is mounted read-only");
    if (same_inode(root, cur_st)) return std::nullopt;
    Fd up(::openat(cur.get(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
    struct stat up_st;
    if (!up || ::fstat(up.get(), &up_st) != 0 || same_inode(up_st, cur_st)) break;
    cur = std::move(up);
  }
  return tool_failure(ToolError::failed, std::string(tool) + ": " + shown(r.path) +
                                             ": could not check the read-only mounts nested in '" +
                                             r.target.mount->virtual_path + "'");
}

bool write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

std::string temp_name() {
  std::uint64_t bits = 0;
  if (::getrandom(&bits, sizeof bits, GRND_NONBLOCK) != sizeof bits) {
    static std::uint64_t counter = 0;
    bits = (static_cast<std::uint64_t>(::getpid()) << 32) ^ ++counter ^
           static_cast<std::uint64_t>(::time(nullptr));
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, ".tactus-write-%016llx.tmp",
                static_cast<unsigned long long>(bits));
  return buf;
}

ToolOutcome trusted_refusal(std::string_view tool, const std::string& path,
                            const std::string& why) {
  return tool_failure(ToolError::denied, std::string(tool) + ": " + shown(path) +
                                             " is trusted configuration (" + why + ")");
}

std::string symlink_refused(std::string_view tool, const std::string& path) {
  return std::string(tool) + ": " + shown(path) +
         " is a symlink; file.write does not write through symlinks";
}

ToolOutcome append_to(std::string_view tool, const Resolved& r, const TrustedFiles& trusted,
                      int parent_fd, const std::string& base, const std::string& content) {
  Fd fd(::openat(parent_fd, base.c_str(),
                 O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
                 0644));
  if (!fd) {
    if (errno == ELOOP) return tool_failure(ToolError::invalid_args, symlink_refused(tool, r.path));
    if (errno == ENXIO)  // a FIFO without a reader
      return tool_failure(ToolError::invalid_args,
                          std::string(tool) + ": " + shown(r.path) + " is not a regular file");
    return from_errno(errno, tool, r.path, r.target);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return from_errno(errno, tool, r.path, r.target);
  if (!S_ISREG(st.st_mode))
    return tool_failure(ToolError::invalid_args,
                        std::string(tool) + ": " + shown(r.path) + " is not a regular file");
  // On the inode opened: a hard link put in place since refuse_write looked is caught here.
  if (auto why = refuse_modify(trusted, fd.get())) return trusted_refusal(tool, r.path, *why);
  if (!write_all(fd.get(), content)) return from_errno(errno, tool, r.path, r.target);
  return success(Json{{"bytes", content.size()}});
}

// Writes a temporary file beside the target and renames it over, so a reader sees the old
// content or the new, never part of it.
ToolOutcome replace_file(std::string_view tool, const Resolved& r, int parent_fd,
                         const std::string& base, const std::string& content) {
  struct stat old;
  const bool exists = ::fstatat(parent_fd, base.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0;
  if (!exists && errno != ENOENT) return from_errno(errno, tool, r.path, r.target);
  if (exists && S_ISLNK(old.st_mode))
    return tool_failure(ToolError::invalid_args, symlink_refused(tool, r.path));
  if (exists && S_ISDIR(old.st_mode))
    return tool_failure(ToolError::invalid_args,
                        std::string(tool) + ": " + shown(r.path) + " is a directory");
  if (exists && !S_ISREG(old.st_mode))
    return tool_failure(ToolError::invalid_args,
                        std::string(tool) + ": " + shown(r.path) + " is not a regular file");

  std::string tmp;
  Fd fd;
  for (int attempt = 0; attempt < 16 && !fd; ++attempt) {
    tmp = temp_name();
    fd = Fd(open_beneath(parent_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOCTTY, 0644));
    if (!fd && errno != EEXIST) return from_errno(errno, tool, r.path, r.target);
  }
  if (!fd) return from_errno(EEXIST, tool, r.path, r.target);

  // The replacement keeps the old file's permissions, never its set-id bits.
  bool ok = !exists || ::fchmod(fd.get(), old.st_mode & 0777) == 0;
  ok = ok && write_all(fd.get(), content) && ::fdatasync(fd.get()) == 0;
  ok = ok && ::renameat(parent_fd, tmp.c_str(), parent_fd, base.c_str()) == 0;
  if (!ok) {
    const int err = errno;
    ::unlinkat(parent_fd, tmp.c_str(), 0);
    return from_errno(err, tool, r.path, r.target);
  }
  return success(Json{{"bytes", content.size()}});
}

}  // namespace

ToolOutcome file_read(const std::vector<Mount>& mounts, const FileLimits& limits,
                      const TrustedFiles& trusted, const Json& args) {
  constexpr std::string_view tool = "file.read";
  Resolved r;
  if (auto e = resolve(tool, mounts, args, nullptr, r)) return *e;
  // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
  Fd fd(open_beneath(r.mount_fd.get(), r.target.rest(), O_RDONLY | O_NONBLOCK | O_NOCTTY));
  if (!fd) return from_errno(errno, tool, r.path, r.target);
  if (auto why = refuse_read(trusted, fd.get())) return trusted_refusal(tool, r.path, *why);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return from_errno(errno, tool, r.path, r.target);
  const std::string what = std::string(tool) + ": " + shown(r.path);
  if (S_ISDIR(st.st_mode))
    return tool_failure(ToolError::invalid_args, what + " is a directory (file.list lists it)");
  if (!S_ISREG(st.st_mode))
    return tool_failure(ToolError::invalid_args, what + " is not a regular file");
  const std::uint64_t cap = limits.max_read;
  const auto over = [&](std::uint64_t size, const char* how) {
    return tool_failure(ToolError::invalid_args, what + how + std::to_string(size) +
                                                     " bytes, over the read limit of " +
                                                     std::to_string(cap) + " bytes");
  };
  if (static_cast<std::uint64_t>(st.st_size) > cap) return over(st.st_size, " is ");

  // Reads until end of file, one byte past the limit at most (the file may grow meanwhile).
  const std::uint64_t hard = cap < UINT64_MAX ? cap + 1 : cap;
  std::string content(static_cast<std::size_t>(st.st_size) + 1, '\0');
  std::size_t used = 0;
  for (;;) {
    if (used == content.size()) {
      if (used >= hard) break;
      content.resize(static_cast<std::size_t>(std::min<std::uint64_t>(used * 2, hard)));
    }
    const ssize_t n = ::read(fd.get(), content.data() + used, content.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return from_errno(errno, tool, r.path, r.target);
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  if (used > cap) return over(used, " grew to at least ");
  content.resize(used);
  return success(Json{{"content", std::move(content)}, {"size", used}});
}

ToolOutcome file_write(const std::vector<Mount>& mounts, const FileLimits& limits,
                       const TrustedFiles& trusted, DiskQuota& quota, const Json& args) {
  constexpr std::string_view tool = "file.write";
  Resolved r;
  // Arguments first, so that a bad call is invalid_args wherever it points.
  if (args.is_object()) {
    const auto c = args.find("content");
    if (c == args.end() || !c->is_string())
      return tool_failure(ToolError::invalid_args, "file.write: content must be a string");
    const auto a = args.find("append");
    if (a != args.end() && !a->is_null() && !a->is_boolean())
      return tool_failure(ToolError::invalid_args, "file.write: append must be a boolean");
  }
  if (auto e = path_arg(tool, args, nullptr, r.path)) return *e;
  if (auto e = select_mount(tool, mounts, r.path, r.target)) return *e;
  if (r.target.mount->read_only)
    return tool_failure(ToolError::denied,
                        "file.write: '" + r.target.mount->virtual_path + "' is mounted read-only" +
                            (r.target.mount->virtual_path == kWorkspace
                                 ? " (sandbox.workspace: rw in a sidecar makes the "
                                   "procedure's directory writable)"
                                 : ""));
  const auto& content = args.at("content").get_ref<const std::string&>();
  if (content.size() > limits.max_write)
    return tool_failure(ToolError::invalid_args, "file.write: content is " +
                                                     std::to_string(content.size()) +
                                                     " bytes, over the write limit of " +
                                                     std::to_string(limits.max_write) + " bytes");
  const auto& parts = r.target.parts;
  if (parts.empty() || r.target.names_dir)
    return tool_failure(ToolError::invalid_args,
                        "file.write: " + shown(r.path) + " names a directory, not a file");
  const std::string& base = parts.back();
  if (base == "..")
    return tool_failure(ToolError::invalid_args,
                        "file.write: " + shown(r.path) + " does not name a file");
  if (auto e = open_mount(tool, *r.target.mount, r.mount_fd)) return *e;

  Fd parent(open_beneath(r.mount_fd.get(), join(parts, 0, parts.size() - 1), O_PATH | O_DIRECTORY));
  if (!parent) {
    if (errno == ENOENT || errno == ENOTDIR)
      return tool_failure(ToolError::not_found,
                          "file.write: the directory of " + shown(r.path) +
                              " does not exist (file.write does not create directories)");
    return from_errno(errno, tool, r.path, r.target);
  }
  if (auto e = check_nested_read_only(tool, mounts, r, parent.get())) return *e;
  if (auto why = refuse_write(trusted, parent.get(), base))
    return trusted_refusal(tool, r.path, *why);
  if (content.size() > quota.limit || quota.used > quota.limit - content.size())
    return tool_failure(ToolError::limit,
                        "file.write: disk limit of " + std::to_string(quota.limit) +
                            " bytes exceeded (sandbox.limits.disk): this run has written " +
                            std::to_string(quota.used) + " bytes, " + shown(r.path) +
                            " would add " + std::to_string(content.size()));
  const auto a = args.find("append");
  const bool append = a != args.end() && a->is_boolean() && a->get<bool>();
  ToolOutcome out = append ? append_to(tool, r, trusted, parent.get(), base, content)
                           : replace_file(tool, r, parent.get(), base, content);
  if (out.ok) quota.used += content.size();
  return out;
}

ToolOutcome file_list(const std::vector<Mount>& mounts, const FileLimits& limits,
                      const TrustedFiles& trusted, const Json& args) {
  constexpr std::string_view tool = "file.list";
  Resolved r;
  if (auto e = resolve(tool, mounts, args, ".", r)) return *e;
  const std::string rest = r.target.rest();
  Fd fd(open_beneath(r.mount_fd.get(), rest, O_RDONLY | O_DIRECTORY));
  if (!fd) {
    if (errno == ENOTDIR)
      return tool_failure(ToolError::invalid_args,
                          "file.list: " + shown(r.path) + " is not a directory");
    return from_errno(errno, tool, r.path, r.target);
  }
  if (auto why = refuse_read(trusted, fd.get())) return trusted_refusal(tool, r.path, *why);
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::fdopendir(fd.get()), ::closedir);
  if (!dir) return from_errno(errno, tool, r.path, r.target);
  fd.release();

  // Keeps the smallest names only, so a huge directory costs memory in proportion to the limit.
  const std::size_t max =
      static_cast<std::size_t>(std::min<std::uint64_t>(limits.max_entries, std::size_t(-1) / 4));
  std::vector<std::string> names;
  bool truncated = false;
  for (;;) {
    errno = 0;
    const dirent* ent = ::readdir(dir.get());
    if (!ent) {
      if (errno != 0) return from_errno(errno, tool, r.path, r.target);
      break;
    }
    const std::string_view name = ent->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
    if (names.size() >= 2 * max + 64) {
      std::nth_element(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(max),
                       names.end());
      names.resize(max);
      truncated = true;
    }
  }
  std::sort(names.begin(), names.end());
  if (names.size() > max) {
    names.resize(max);
    truncated = true;
  }

  Json entries = Json::array();
  const int dfd = ::dirfd(dir.get());
  const std::string prefix = rest == "." ? "" : (rest.back() == '/' ? rest : rest + "/");
  for (const auto& name : names) {
    struct stat st;
    if (::fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone since
    if (S_ISLNK(st.st_mode)) {
      // A symlink shows its target when the target is inside the mount, otherwise "other".
      Fd target(open_beneath(r.mount_fd.get(), prefix + name, O_PATH));
      struct stat tst;
      if (target && ::fstat(target.get(), &tst) == 0) st = tst;
    }
    entries.push_back({{"name", name},
                       {"type", type_of(st)},
                       {"size", S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0}});
  }
  Json result{{"entries", std::move(entries)}};
  if (truncated) result["truncated"] = true;
  return success(std::move(result));
}

ToolOutcome file_exists(const std::vector<Mount>& mounts, const FileLimits&,
                        const TrustedFiles& trusted, const Json& args) {
  constexpr std::string_view tool = "file.exists";
  Resolved r;
  if (auto e = resolve(tool, mounts, args, nullptr, r)) return *e;
  Fd fd(open_beneath(r.mount_fd.get(), r.target.rest(), O_PATH));
  if (!fd) {
    if (errno == ENOENT || errno == ENOTDIR) return success(Json{{"exists", false}});
    return from_errno(errno, tool, r.path, r.target);
  }
  if (auto why = refuse_read(trusted, fd.get())) return trusted_refusal(tool, r.path, *why);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return from_errno(errno, tool, r.path, r.target);
  return success(Json{{"exists", true}, {"type", type_of(st)}});
}

}  // namespace tactus::tools
