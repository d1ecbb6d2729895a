// Sizes ("512k", "128m", "2g", bytes) and durations ("30", "30s", "5m", "1h"), as the sidecar
// spec and the CLI flags accept them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tactus::sidecars {

// Bytes; k/m/g are powers of 1024 (either case, optional trailing "b"). nullopt if malformed
// or overflowing.
std::optional<std::uint64_t> parse_size(std::string_view text);

// Seconds; a plain number is seconds; suffixes s, m, h. Fractions allowed. nullopt if
// malformed, negative or absurd (more than 10 years).
std::optional<double> parse_duration(std::string_view text);

// "2.0 GiB", "512 KiB", "17 bytes": for messages.
std::string format_size(std::uint64_t bytes);

}  // namespace tactus::sidecars
