#include "runtime/jail/namespaces.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <sched.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <iterator>

namespace tactus::jail {
namespace {

// Writes text to /proc/<pid>/<file>. Returns 0 or errno.
int write_proc(pid_t pid, const char* file, const char* text) {
  char path[64];
  if (pid > 0)
    std::snprintf(path, sizeof path, "/proc/%d/%s", static_cast<int>(pid), file);
  else
    std::snprintf(path, sizeof path, "/proc/self/%s", file);
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  const ssize_t len = static_cast<ssize_t>(std::strlen(text));
  const ssize_t n = ::write(fd, text, static_cast<std::size_t>(len));
  const int err = n == len ? 0 : (n < 0 ? errno : EIO);
  ::close(fd);
  return err;
}

// The ids the spawner runs as outside (inside its own user namespace when unprivileged, where
// they are mapped to themselves).
uid_t g_outer_uid = 0;
gid_t g_outer_gid = 0;

}  // namespace

unsigned long long jail_clone_flags() {
  return CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;
}

int net_ns_parent_init_once(const char** step) {
  g_outer_uid = ::geteuid();
  g_outer_gid = ::getegid();
  if (g_outer_uid == 0) {
    *step = "netns";
    return ::unshare(CLONE_NEWNET) == 0 ? 0 : errno;
  }
  // Unprivileged: a user namespace of our own owns the network namespace.
  *step = "userns";
  if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) return errno;
  char map[64];
  std::snprintf(map, sizeof map, "%u %u 1\n", g_outer_uid, g_outer_uid);
  *step = "uid_map";
  if (int e = write_proc(0, "uid_map", map)) return e;
  *step = "setgroups";
  if (int e = write_proc(0, "setgroups", "deny")) return e;
  std::snprintf(map, sizeof map, "%u %u 1\n", g_outer_gid, g_outer_gid);
  *step = "gid_map";
  return write_proc(0, "gid_map", map);
}

int user_ns_parent_write_maps(pid_t child, const char** step) {
  char map[64];
  // As root we may map nobody to nobody; otherwise the only id we may map is our own.
  const uid_t outer_uid = g_outer_uid == 0 ? kNobodyUid : g_outer_uid;
  const gid_t outer_gid = g_outer_uid == 0 ? kNobodyGid : g_outer_gid;
  std::snprintf(map, sizeof map, "%u %u 1\n", kNobodyUid, outer_uid);
  *step = "uid_map";
  if (int e = write_proc(child, "uid_map", map)) return e;
  if (g_outer_uid != 0) {
    *step = "setgroups";
    if (int e = write_proc(child, "setgroups", "deny")) return e;
  }
  std::snprintf(map, sizeof map, "%u %u 1\n", kNobodyGid, outer_gid);
  *step = "gid_map";
  return write_proc(child, "gid_map", map);
}

int user_ns_child_wait_maps(int sync_fd, const char** step) {
  static MapOutcome reported;  // static: *step may point into it after we return
  ssize_t n;
  do n = ::read(sync_fd, &reported, sizeof reported);
  while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof reported)) return n < 0 ? errno : EPIPE;
  reported.step[sizeof reported.step - 1] = 0;
  if (reported.err != 0 && reported.step[0]) *step = reported.step;
  return reported.err;
}

bool user_ns_child_become_nobody() {
  // Refused (EPERM) where setgroups is denied, i.e. unprivileged: the groups we came with stay,
  // shown inside as the overflow group and giving nothing in an empty filesystem.
  if (::setgroups(0, nullptr) != 0 && errno != EPERM) return false;
  if (::setresgid(kNobodyGid, kNobodyGid, kNobodyGid) != 0) return false;
  return ::setresuid(kNobodyUid, kNobodyUid, kNobodyUid) == 0;
}

bool mount_ns_child_empty_root(const char** step) {
  *step = "mount_private";
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  // Any existing directory serves as the mount point; it is only seen inside this namespace.
  *step = "mount_tmpfs";
  if (::mount("tactus", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "size=16k,nr_inodes=4,mode=0555") != 0)
    return false;
  *step = "pivot_root";
  if (::chdir("/tmp") != 0) return false;
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return false;
  if (::umount2(".", MNT_DETACH) != 0) return false;  // the old root, stacked under the new
  if (::chdir("/") != 0) return false;
  *step = "remount_ro";
  return ::mount(nullptr, "/", nullptr,
                 MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) == 0;
}

namespace {

// The flags a read-only bind remount must keep: inside a user namespace the kernel refuses
// to clear the ones the original mount has (they are locked), atime flags included.
unsigned long locked_flags(const char* path) {
  struct statvfs st;
  if (::statvfs(path, &st) != 0) return 0;
  unsigned long f = 0;
  if (st.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (st.f_flag & ST_NODEV) f |= MS_NODEV;
  if (st.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (st.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (st.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (st.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

// Binds host (a directory or a file) at target below the new root, read-only. A missing
// host path is skipped when optional.
bool bind_read_only(const char* host, const char* target, bool optional) {
  struct stat st;
  if (::lstat(host, &st) != 0) return optional && errno == ENOENT;
  if (S_ISDIR(st.st_mode)) {
    if (::mkdir(target, 0755) != 0 && errno != EEXIST) return false;
  } else {
    const int fd = ::open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    ::close(fd);
  }
  if (::mount(host, target, nullptr, MS_BIND | MS_REC, nullptr) != 0) return false;
  return ::mount(nullptr, target, nullptr,
                 MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | locked_flags(target), nullptr) == 0;
}

// /bin and friends: a link where the host has a link (merged /usr), a read-only bind where
// it has a directory.
bool link_or_bind(const char* name) {
  char host[32], target[32], link[64];
  std::snprintf(host, sizeof host, "/%s", name);
  std::snprintf(target, sizeof target, "/tmp/%s", name);
  struct stat st;
  if (::lstat(host, &st) != 0) return errno == ENOENT;
  if (!S_ISLNK(st.st_mode)) return bind_read_only(host, target, false);
  const ssize_t n = ::readlink(host, link, sizeof link - 1);
  if (n <= 0) return false;
  link[n] = 0;
  return ::symlink(link, target) == 0;
}

// mkdir -p of an absolute path below the staging root "/tmp".
bool make_dirs(const char* path) {
  char buf[4096 + 8];
  if (std::snprintf(buf, sizeof buf, "/tmp%s", path) >= static_cast<int>(sizeof buf)) {
    errno = ENAMETOOLONG;
    return false;
  }
  for (char* p = buf + 5; *p; ++p) {
    if (*p != '/') continue;
    *p = 0;
    if (::mkdir(buf, 0755) != 0 && errno != EEXIST) return false;
    *p = '/';
  }
  return ::mkdir(buf, 0755) == 0 || errno == EEXIST;
}

// An MCP server's binds (jail_spec.h, kJailBindsBytes). Host directories ('r', 'w') are bound
// at their targets below the staging root, before pivot_root; what shields the workspace's
// trusted files ('h', 'p') is mounted after it (after_pivot), at paths inside the jail, so no
// symlink the procedure might have made can lead a mount out to the host. A writable bind keeps
// the host's permissions: the jail's user (nobody, or the unprivileged caller) writes only where
// that user may.
// Read-only (when asked), nosuid and nodev on the bind at path and on every mount below it: a
// remount would change the top one only, and a host mount inside the workspace would stay
// writable. mount_setattr where the kernel has it (5.12), else the remount.
bool restrict_tree(const char* path, bool read_only) {
#ifdef SYS_mount_setattr
  struct {
    std::uint64_t attr_set, attr_clr, propagation, userns_fd;
  } attr = {(read_only ? 0x1u : 0u) | 0x2u | 0x4u, 0, 0, 0};  // MOUNT_ATTR_RDONLY, NOSUID, NODEV
  constexpr unsigned kAtRecursive = 0x8000;                   // AT_RECURSIVE
  if (::syscall(SYS_mount_setattr, AT_FDCWD, path, kAtRecursive, &attr, sizeof attr) == 0)
    return true;
  if (errno != ENOSYS) return false;
#endif
  const unsigned long ro = read_only ? MS_RDONLY : 0;
  return ::mount(nullptr, path, nullptr,
                 MS_REMOUNT | MS_BIND | ro | MS_NOSUID | MS_NODEV | locked_flags(path),
                 nullptr) == 0;
}

// The host directories are opened before the staging root covers /tmp (a workspace may be
// below it) and bound from /proc/self/fd; sources[] holds them, in the order of the 'r' and
// 'w' records.
constexpr int kMaxHostBinds = 8;

bool open_sources(const char* binds, int (&sources)[kMaxHostBinds]) {
  const char* end = binds + kJailBindsBytes;
  int n = 0;
  for (const char* p = binds; p < end && *p;) {
    const char mode = *p++;
    const char* host = p;
    p += ::strnlen(p, static_cast<std::size_t>(end - p)) + 1;
    if (p >= end) return errno = EINVAL, false;
    p += ::strnlen(p, static_cast<std::size_t>(end - p)) + 1;
    if (mode != 'r' && mode != 'w') continue;
    if (n == kMaxHostBinds || host[0] != '/') return errno = EINVAL, false;
    if ((sources[n++] = ::open(host, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) return false;
  }
  return true;
}

bool bind_each(const char* binds, const int (&sources)[kMaxHostBinds], bool after_pivot) {
  const char* end = binds + kJailBindsBytes;
  int source = 0;
  for (const char* p = binds; p < end && *p;) {
    const char mode = *p++;
    p += ::strnlen(p, static_cast<std::size_t>(end - p)) + 1;  // the host: opened already
    if (p >= end) return errno = EINVAL, false;
    const char* target = p;
    p += ::strnlen(p, static_cast<std::size_t>(end - p)) + 1;
    if (p > end || target[0] != '/') return errno = EINVAL, false;
    const bool shield = mode == 'h' || mode == 'p' || mode == 'm';
    if (!shield && mode != 'r' && mode != 'w') return errno = EINVAL, false;
    if (shield != after_pivot) continue;
    char path[4096 + 8];
    if (std::snprintf(path, sizeof path, "%s%s", after_pivot ? "" : "/tmp", target) >=
        static_cast<int>(sizeof path))
      return errno = ENAMETOOLONG, false;
    struct stat st;
    const bool exists = ::lstat(path, &st) == 0;
    if (exists && S_ISLNK(st.st_mode)) return errno = ELOOP, false;  // never mount over a link
    if (shield) {
      if (!exists) continue;  // gone since the broker looked: nothing to shield
      if (mode == 'm') {      // a directory as a mount point of its own: rename and rmdir fail
        if (::mount(path, path, nullptr, MS_BIND | MS_REC, nullptr) != 0) return false;
      } else if (mode == 'p') {  // the file itself, read-only
        if (::mount(path, path, nullptr, MS_BIND, nullptr) != 0) return false;
        if (::mount(nullptr, path, nullptr,
                    MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | locked_flags(path),
                    nullptr) != 0)
          return false;
      } else if (S_ISDIR(st.st_mode) ? ::mount("hidden", path, "tmpfs",
                                               MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                               "size=4k,nr_inodes=1,mode=0555") != 0
                                     : ::mount("/dev/null", path, nullptr, MS_BIND, nullptr) != 0) {
        return false;
      }
      continue;
    }
    char from[32];
    std::snprintf(from, sizeof from, "/proc/self/fd/%d", sources[source++]);
    if (!exists && !make_dirs(target)) return false;
    if (::mount(from, path, nullptr, MS_BIND | MS_REC, nullptr) != 0) return false;
    if (!restrict_tree(path, mode == 'r')) return false;
  }
  return true;
}

}  // namespace

bool mount_ns_child_command_root(const SpawnRequest& req, const char** step) {
  const bool danger_host_network = req.danger_host_network != 0;
  const bool mcp = req.job == Job::mcp_server;
  // As root our own id is not mapped inside (only nobody is), and files cannot be created
  // with an unmapped owner: build the root as nobody.
  *step = "setfsuid";
  ::setfsuid(kNobodyUid);
  ::setfsgid(kNobodyGid);
  errno = EPERM;
  if (::setfsuid(static_cast<uid_t>(-1)) != static_cast<int>(kNobodyUid)) return false;
  *step = "mount_private";
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  int sources[kMaxHostBinds];
  std::fill(std::begin(sources), std::end(sources), -1);
  *step = "open_mcp_binds";
  if (mcp && !open_sources(req.binds, sources)) return false;
  *step = "mount_tmpfs";
  if (::mount("tactus", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755") != 0)
    return false;
  *step = "bind_usr";
  if (!bind_read_only("/usr", "/tmp/usr", false)) return false;
  *step = "link_bin";
  for (const char* name : {"bin", "sbin", "lib", "lib32", "lib64", "libx32"})
    if (!link_or_bind(name)) return false;
  *step = "bind_dev";
  if (::mkdir("/tmp/dev", 0755) != 0) return false;
  for (const char* dev : {"null", "zero", "urandom", "random"}) {
    char host[32], target[32];
    std::snprintf(host, sizeof host, "/dev/%s", dev);
    std::snprintf(target, sizeof target, "/tmp/dev/%s", dev);
    const int fd = ::open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return false;
    ::close(fd);
    if (::mount(host, target, nullptr, MS_BIND, nullptr) != 0) return false;
  }
  if (danger_host_network) {
    *step = "bind_etc";
    if (::mkdir("/tmp/etc", 0755) != 0) return false;
    for (const char* f : {"resolv.conf", "hosts", "nsswitch.conf", "ssl"}) {
      char host[32], target[32];
      std::snprintf(host, sizeof host, "/etc/%s", f);
      std::snprintf(target, sizeof target, "/tmp/etc/%s", f);
      if (!bind_read_only(host, target, true)) return false;
    }
  }
  *step = "mount_scratch";
  if (::mkdir("/tmp/tmp", 01777) != 0) return false;
  if (::mount("scratch", "/tmp/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
              mcp ? "size=64m,nr_inodes=4096,mode=1777" : "size=16m,nr_inodes=1024,mode=1777") != 0)
    return false;
  if (mcp) {
    // A server's HOME (npm and node write caches there), then what its configuration binds.
    *step = "mount_home";
    if (::mkdir("/tmp/home", 0755) != 0) return false;
    if (::mount("home", "/tmp/home", "tmpfs", MS_NOSUID | MS_NODEV,
                "size=16m,nr_inodes=1024,mode=1777") != 0)
      return false;
    *step = "bind_mcp";
    if (!bind_each(req.binds, sources, false)) return false;
    for (int fd : sources)
      if (fd >= 0) ::close(fd);
  }
  *step = "pivot_root";
  if (::chdir("/tmp") != 0) return false;
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return false;
  if (::umount2(".", MNT_DETACH) != 0) return false;
  if (::chdir("/") != 0) return false;
  *step = "shield_mcp";
  if (mcp && !bind_each(req.binds, sources, true)) return false;
  *step = "remount_ro";
  return ::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
                 nullptr) == 0;
}

}  // namespace tactus::jail
