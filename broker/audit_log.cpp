#include "broker/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace tactus::broker {

bool AuditLog::open(const std::string& path, std::string& error) {
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  fd_.reset(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600));
  if (!fd_) {
    error = "audit.path: cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

void AuditLog::append(const std::string& line) {
  if (!fd_) return;
  std::string text = line;
  text.push_back('\n');
  ssize_t n;
  do n = ::write(fd_.get(), text.data(), text.size());
  while (n < 0 && errno == EINTR);
}

}  // namespace tactus::broker
