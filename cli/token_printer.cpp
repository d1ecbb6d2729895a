#include "cli/token_printer.h"

#include <unistd.h>

#include <cerrno>

#include "tools/terminal_text.h"

namespace tactus::cli {

void TokenPrinter::token(std::string_view text) {
  pending_.append(text);
  const auto last = pending_.find_last_of('\n');
  if (last == std::string::npos) return;
  write_masked(std::string_view(pending_).substr(0, last + 1));
  pending_.erase(0, last + 1);
}

void TokenPrinter::end() {
  if (pending_.empty()) return;
  pending_.push_back('\n');
  write_masked(pending_);
  pending_.clear();
}

void TokenPrinter::write_masked(std::string_view text) {
  if (sink_) return sink_(redactor_ ? redactor_->redact(text) : std::string(text));
  // Shown on a terminal only (cli/run_command.cpp): a model's text is made inert there too.
  const std::string out =
      tools::inert_text(redactor_ ? redactor_->redact(text) : std::string(text));
  std::string_view rest(out);
  while (!rest.empty()) {
    const ssize_t n = ::write(fd_, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
}

bool multiline_secret(const std::map<std::string, std::string>& secret_values) {
  for (const auto& [name, value] : secret_values)
    if (value.find_first_of("\r\n") != std::string::npos) return true;
  return false;
}

}  // namespace tactus::cli
