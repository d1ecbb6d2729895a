// Lowercase, byte by byte, as header names, content types and typed answers are compared in
// tools/ (the C locale: ASCII letters only). One helper for the files that need it.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>

namespace tactus::tools {

inline std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace tactus::tools
