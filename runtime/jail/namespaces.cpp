#include "runtime/jail/namespaces.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

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

}  // namespace tactus::jail
