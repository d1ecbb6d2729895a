#include "broker/audit_log.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "tools/secret_mask.h"

namespace tactus::broker {
namespace {

using protocol::Json;

// Fields a line may lose, in the order they are cut: what the procedure sent, then what a tool
// said back. The rest (time, run, tool, outcome, duration) is small and always kept.
constexpr const char* kCuttable[] = {"args", "message", "usage"};

// Never through a symlink, never blocking (a FIFO put in its place), only a regular file.
int open_append(const std::string& path) {
  const int fd =
      ::open(path.c_str(),
             O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK, 0600);
  struct stat st {};
  if (fd >= 0 && (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
    ::close(fd);
    errno = EINVAL;
    return -1;
  }
  return fd;
}

// Holds an flock for one append.
class FileLock {
 public:
  explicit FileLock(int fd) : fd_(fd) {
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  ~FileLock() { ::flock(fd_, LOCK_UN); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

}  // namespace

std::string audit_line(Json line, std::uint64_t max_line, const tools::SecretMask* mask) {
  std::string text = protocol::dump_json(line);
  for (const char* field : kCuttable) {
    if (text.size() <= max_line) return text;
    if (!line.is_object() || !line.contains(field)) continue;
    const std::string value =
        line[field].is_string() ? line[field].get<std::string>() : protocol::dump_json(line[field]);
    line[field] = Json{{"truncated", true}, {"bytes", value.size()}, {"head", ""}};
    const std::size_t rest = protocol::dump_json(line).size();
    // What is left for the head, less room for JSON escapes (each byte at most 6: \u00XX).
    const std::size_t room = max_line > rest ? (max_line - rest) / 6 : 0;
    line[field]["head"] = tools::excerpt_head(value, room, mask);
    text = protocol::dump_json(line);
  }
  if (text.size() <= max_line) return text;
  // Only the fixed fields are left and still too long (a tool name of 100,000 characters): the
  // small ones, and an excerpt of the tool's name.
  Json small = {{"truncated", true}, {"bytes", text.size()}};
  for (const char* key : {"time", "run_id", "tool", "outcome", "duration_ms"}) {
    if (!line.is_object() || !line.contains(key)) continue;
    small[key] = line[key].is_string()
                     ? Json(tools::excerpt_head(line[key].get<std::string>(), 64, mask))
                     : line[key];
  }
  return protocol::dump_json(small);
}

bool AuditLog::open(const std::string& path, AuditLimits limits, std::string& error) {
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  path_ = path;
  limits_ = limits;
  fd_.reset(open_append(path));
  if (!fd_) {
    error = "audit.path: cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

// Another process rotated the file since we opened it: write to the new PATH, not PATH.1.
// The old descriptor goes to retired (closed once its lock is released). False: no file.
bool AuditLog::reopen_if_rotated(UniqueFd& retired) {
  struct stat ours {
  }, named{};
  if (::fstat(fd_.get(), &ours) != 0) return false;
  if (::stat(path_.c_str(), &named) == 0 && named.st_dev == ours.st_dev &&
      named.st_ino == ours.st_ino)
    return true;
  UniqueFd fresh(open_append(path_));
  if (!fresh) return false;
  retired = std::move(fd_);
  fd_ = std::move(fresh);
  return true;
}

// Rotates when next_line would take the file past max_bytes (a file holding nothing yet takes
// any line). True when it did: the new file is in fd_, the old descriptor in retired.
bool AuditLog::rotate_if_full(std::size_t next_line, UniqueFd& retired) {
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) return false;
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size == 0 || size + next_line <= limits_.max_bytes) return false;
  const auto name = [this](int i) { return i == 0 ? path_ : path_ + "." + std::to_string(i); };
  ::unlink(name(kAuditKeep).c_str());
  for (int i = kAuditKeep - 1; i >= 1; --i) ::rename(name(i).c_str(), name(i + 1).c_str());
  // The file itself could not be moved (a directory we cannot write): keep writing to it
  // rather than lose lines.
  if (::rename(path_.c_str(), name(1).c_str()) != 0) return false;
  UniqueFd fresh(open_append(path_));
  if (!fresh) return false;
  retired = std::move(fd_);
  fd_ = std::move(fresh);
  return true;
}

void AuditLog::append(Json line, const tools::SecretMask* mask) {
  if (!fd_) return;
  std::string text = audit_line(std::move(line), limits_.max_line, mask);
  text.push_back('\n');
  // Each step holds the flock of the file it checks; after a switch to a new file, that one is
  // locked and checked again (a few tries: rotations by others are rare).
  for (int attempt = 0; attempt < 4; ++attempt) {
    UniqueFd retired;  // destroyed after the lock on it
    FileLock lock(fd_.get());
    if (!reopen_if_rotated(retired)) return;
    if (retired) continue;
    if (rotate_if_full(text.size(), retired)) continue;
    ssize_t n;
    do n = ::write(fd_.get(), text.data(), text.size());
    while (n < 0 && errno == EINTR);
    return;
  }
}

}  // namespace tactus::broker
