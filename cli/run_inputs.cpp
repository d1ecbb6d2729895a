// What a run reads from the command line's files: the procedure's source (text only, within the
// message limit) and its input (--input FILE.json, --param k=v), and --mock-config FILE.
#include "cli/run_inputs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/unique_fd.h"
#include "sidecars/units.h"

namespace tactus::cli {

using protocol::Json;

namespace {

// Reads up to size bytes of the open regular file path into text (fewer if it shrank; a file
// growing meanwhile is read as it was when its size was taken).
bool read_up_to(int fd, std::size_t size, const std::string& path, std::string& text,
                std::string& error) {
  text.resize(size);
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = "cannot read '" + path + "': " + std::strerror(errno);
      return false;
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  return true;
}

}  // namespace

// Reads the procedure on the host side. Everything that can be said about the file without
// running it is said here, as one line naming the file.
bool read_source(const std::string& path, std::uint64_t max, std::string& text,
                 std::string& error) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) {
    error = "cannot read '" + path + "': " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    error = "cannot read '" + path + "': " + std::strerror(errno);
    return false;
  }
  if (S_ISDIR(st.st_mode)) {
    error = "'" + path + "' is a directory, not a .tac file";
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    error = "'" + path + "' is not a regular file";
    return false;
  }
  if (static_cast<std::uint64_t>(st.st_size) > max) {
    error = "'" + path + "' is too large (" + sidecars::format_size(st.st_size) +
            "; the message limit allows " + sidecars::format_size(max) + ")";
    return false;
  }
  if (!read_up_to(fd.get(), static_cast<std::size_t>(st.st_size), path, text, error)) return false;
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    error = "'" + path + "' is empty: there is no procedure to run";
    return false;
  }
  if (text[0] == '\x1b') {
    error = "'" + path + "' is a precompiled (binary) chunk; tactus runs Lua source text only";
    return false;
  }
  return true;
}

// --input FILE: a regular file (a device or FIFO could never end, or never begin) of at most
// max bytes (it travels in the run message).
// A JSON file given on the command line (--input, --mock-config): a regular file of at most max
// bytes holding one JSON object. flag names it in errors.
bool read_json_file(const std::string& path, const std::string& flag, std::uint64_t max, Json& out,
                    std::string& error) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0) {
    error = "cannot read '" + path + "': " + std::strerror(errno);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    error = flag + " '" + path + "' is not a regular file (write the " +
            (flag == "--input" ? "input" : "JSON") + " to a file first)";
    return false;
  }
  if (static_cast<std::uint64_t>(st.st_size) > max) {
    error = flag + " '" + path + "' is larger than the message limit of " +
            sidecars::format_size(max) + " (--message-limit)";
    return false;
  }
  std::string text;
  if (!read_up_to(fd.get(), static_cast<std::size_t>(st.st_size), path, text, error)) return false;
  if (protocol::json_depth(text) < 0) {
    error = "'" + path + "': nested too deeply";
    return false;
  }
  try {
    out = Json::parse(text);
  } catch (const Json::parse_error& e) {
    error = "'" + path + "': not valid JSON (at byte " + std::to_string(e.byte) + ")";
    return false;
  }
  if (!out.is_object()) {
    error = "'" + path + "': " + flag + " must be a JSON object";
    return false;
  }
  return true;
}

bool read_input(const CliOptions& o, std::uint64_t max, Json& input, std::string& error) {
  input = Json::object();
  if (!o.input_file.empty() && !read_json_file(o.input_file, "--input", max, input, error))
    return false;
  // Strings for now; [dsl] converts them by the procedure's input schema.
  for (const auto& [k, v] : o.params) input[k] = v;
  return true;
}

}  // namespace tactus::cli
