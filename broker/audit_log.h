// audit.path: every Host.call of every run, one JSON object per line, secrets redacted.
#pragma once

#include <string>

#include "runtime/unique_fd.h"

namespace tactus::broker {

class AuditLog {
 public:
  // Opens (creating, with missing parent directories) path for appending. False with error.
  bool open(const std::string& path, std::string& error);
  bool is_open() const { return static_cast<bool>(fd_); }
  // Appends one line (a JSON object's text, already redacted). One write per line, O_APPEND:
  // lines from concurrent runs never interleave.
  void append(const std::string& line);

 private:
  UniqueFd fd_;
};

}  // namespace tactus::broker
