#include "tools/terminal_text.h"

#include <unistd.h>

#include <cstdio>

namespace tactus::tools {
namespace {

// The length of the valid UTF-8 sequence at s[i], or 0.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  std::size_t n = c >= 0xf0 && c <= 0xf4   ? 4
                  : c >= 0xe0 && c <= 0xef ? 3
                  : c >= 0xc2 && c <= 0xdf ? 2
                                           : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((b(k) & 0xc0) != 0x80) return 0;
  if (n == 3 && ((c == 0xe0 && b(1) < 0xa0) || (c == 0xed && b(1) >= 0xa0))) return 0;
  if (n == 4 && ((c == 0xf0 && b(1) < 0x90) || (c == 0xf4 && b(1) >= 0x90))) return 0;
  return n;
}

void hex(std::string& out, const char* form, unsigned value) {
  char buf[8];
  std::snprintf(buf, sizeof buf, form, value);
  out += buf;
}

}  // namespace

std::string inert_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7f)) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    if (c < 0x80) {  // C0 or DEL
      hex(out, "\\x%02x", c);
      ++i;
      continue;
    }
    const std::size_t n = utf8_length(text, i);
    if (n == 0) {
      hex(out, "\\x%02x", c);
      ++i;
      continue;
    }
    const unsigned char c1 = static_cast<unsigned char>(text[i + 1]);
    const unsigned c2 = n == 3 ? static_cast<unsigned char>(text[i + 2]) : 0;
    const unsigned cp3 = n == 3 ? (c & 0x0fu) << 12 | (c1 & 0x3fu) << 6 | (c2 & 0x3fu) : 0;
    if (n == 2 && c == 0xc2 && c1 < 0xa0) {  // U+0080..U+009F
      hex(out, "\\u%04x", c1);
    } else if ((cp3 >= 0x202a && cp3 <= 0x202e) || (cp3 >= 0x2066 && cp3 <= 0x2069)) {
      hex(out, "\\u%04x", cp3);  // bidirectional overrides: text shown in another order
    } else {
      out.append(text.substr(i, n));
    }
    i += n;
  }
  return out;
}

bool shows_inert(int fd, bool raw_output) {
  return !raw_output && ::isatty(fd);
}

}  // namespace tactus::tools
