// Cutting text that may hold a secret: mask first, then cut, then drop a margin at the cut.
//
// A cut can split a secret, and a split secret no longer matches its pattern: a tail of a
// command's stderr that begins inside a token shows the token's end. So an excerpt is made from
// text already masked whole, and where the excerpt was cut (or where the text it came from had
// already been cut, as a rolling buffer is), the margin() bytes next to the cut are dropped too:
// any fragment of a secret there is shorter than its longest masked form. The margin does not
// depend on what the bytes are, so an attacker who positions a guess at the cut learns nothing
// from what is dropped (masking the fragments that match would tell a guess that is right).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tactus::tools {

// What the broker masks (broker::Redactor implements it), as the tools need it to cut text.
class SecretMask {
 public:
  virtual ~SecretMask() = default;
  virtual std::string mask(std::string_view text) const = 0;
  // Bytes that hold any fragment of a secret's masked forms: the longest form less one, or 0
  // when there is no secret.
  virtual std::size_t margin() const = 0;
};

// At most max bytes from the start of text (then "..."); cut_before: text is itself the end of
// a longer text (its start is a cut too).
std::string excerpt_head(std::string_view text, std::size_t max, const SecretMask* mask);
// At most max bytes from the end of text ("..." before them); cut_before: text is the end of a
// longer text whose start was dropped (a rolling buffer).
std::string excerpt_tail(std::string_view text, std::size_t max, const SecretMask* mask,
                         bool cut_before = false);

}  // namespace tactus::tools
