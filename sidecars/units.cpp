#include "sidecars/units.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace tactus::sidecars {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<std::uint64_t> parse_size(std::string_view text) {
  text = trim(text);
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  std::string_view suffix(end, static_cast<std::size_t>(text.data() + text.size() - end));
  if (!suffix.empty() && (suffix.back() == 'b' || suffix.back() == 'B') && suffix.size() == 2)
    suffix.remove_suffix(1);
  unsigned shift = 0;
  if (suffix.empty())
    shift = 0;
  else if (suffix.size() != 1)
    return std::nullopt;
  else if (suffix[0] == 'k' || suffix[0] == 'K')
    shift = 10;
  else if (suffix[0] == 'm' || suffix[0] == 'M')
    shift = 20;
  else if (suffix[0] == 'g' || suffix[0] == 'G')
    shift = 30;
  else
    return std::nullopt;
  if (shift && value > (UINT64_MAX >> shift)) return std::nullopt;
  return value << shift;
}

std::optional<double> parse_duration(std::string_view text) {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  double scale = 1;
  switch (text.back()) {
    case 's':
      scale = 1;
      text.remove_suffix(1);
      break;
    case 'm':
      scale = 60;
      text.remove_suffix(1);
      break;
    case 'h':
      scale = 3600;
      text.remove_suffix(1);
      break;
    default:
      break;
  }
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  value *= scale;
  if (!std::isfinite(value) || value < 0 || value > 10.0 * 365 * 24 * 3600) return std::nullopt;
  return value;
}

std::string format_size(std::uint64_t bytes) {
  char buf[64];
  if (bytes >= (1ull << 30) && bytes % (1ull << 30) == 0)
    std::snprintf(buf, sizeof buf, "%llu GiB", static_cast<unsigned long long>(bytes >> 30));
  else if (bytes >= (1ull << 20) && bytes % (1ull << 20) == 0)
    std::snprintf(buf, sizeof buf, "%llu MiB", static_cast<unsigned long long>(bytes >> 20));
  else if (bytes >= (1ull << 10) && bytes % (1ull << 10) == 0)
    std::snprintf(buf, sizeof buf, "%llu KiB", static_cast<unsigned long long>(bytes >> 10));
  else
    std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(bytes));
  return buf;
}

}  // namespace tactus::sidecars
