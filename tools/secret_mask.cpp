#include "tools/secret_mask.h"

namespace tactus::tools {

std::string excerpt_head(std::string_view text, std::size_t max, const SecretMask* mask) {
  const std::string masked = mask ? mask->mask(text) : std::string(text);
  if (masked.size() <= max) return masked;
  const std::size_t margin = mask ? mask->margin() : 0;
  const std::size_t keep = max > margin ? max - margin : 0;
  return masked.substr(0, keep) + "...";
}

std::string excerpt_tail(std::string_view text, std::size_t max, const SecretMask* mask,
                         bool cut_before) {
  const std::string masked = mask ? mask->mask(text) : std::string(text);
  if (masked.size() <= max && !cut_before) return masked;
  const std::size_t margin = mask ? mask->margin() : 0;
  std::size_t keep = std::min(max, masked.size());
  keep = keep > margin ? keep - margin : 0;
  // When the cut is here (not before), the margin is what lies next to it inside max.
  if (masked.size() > max || cut_before) return "..." + masked.substr(masked.size() - keep);
  return masked;
}

}  // namespace tactus::tools
