// audit.path: every Host.call of every run, one JSON object per line, secrets redacted. Bounded
// like the journal, since what a procedure sends decides its size: a line holds at most
// audit.max_line bytes (a longer one has its largest fields, args first, replaced by
// {"truncated": true, "bytes": N, "head": "..."}), and the file is rotated when a line would
// take it past audit.max_bytes: PATH becomes PATH.1, PATH.1 PATH.2, ..., and the oldest beyond
// kAuditKeep is removed.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/protocol/message.h"
#include "runtime/unique_fd.h"

namespace tactus::tools {
class SecretMask;
}

namespace tactus::broker {

inline constexpr int kAuditKeep = 3;  // rotated files kept: PATH.1 .. PATH.3

struct AuditLimits {
  std::uint64_t max_line = 64ull << 10;
  std::uint64_t max_bytes = 64ull << 20;
};

class AuditLog {
 public:
  // Opens (creating, with missing parent directories) path for appending. False with error.
  bool open(const std::string& path, AuditLimits limits, std::string& error);
  bool is_open() const { return static_cast<bool>(fd_); }
  // Appends one line: line's JSON, already redacted by mask (which also masks the cuts; may be
  // null). One write per line, O_APPEND, under an flock of the file shared by every tactus
  // writing it: lines from concurrent runs never interleave, and one process rotates at a time
  // (another that still holds the rotated file reopens PATH before it writes).
  void append(protocol::Json line, const tools::SecretMask* mask);

 private:
  bool rotate_if_full(std::size_t next_line, UniqueFd& retired);
  bool reopen_if_rotated(UniqueFd& retired);

  std::string path_;
  AuditLimits limits_;
  UniqueFd fd_;
};

// The line as appended: within max_line bytes (fields cut as above). Exposed for tests.
std::string audit_line(protocol::Json line, std::uint64_t max_line, const tools::SecretMask* mask);

}  // namespace tactus::broker
