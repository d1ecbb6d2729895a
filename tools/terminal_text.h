// Text from a procedure (or a model) made inert for a terminal: a control character other than
// newline and tab is shown escaped, so what is printed cannot clear the screen, move the
// cursor, set the clipboard (OSC 52), rewrite a line with \r, or fake a line of tactus's own.
//   - C0 controls and DEL: "\x1b", "\x07", "\r" as "\x0d" ...
//   - C1 controls written as UTF-8 (U+0080..U+009F, which some terminals obey as CSI, OSC...):
//     "\u009b";
//   - the bidirectional overrides and isolates (U+202A..U+202E, U+2066..U+2069), which make a
//     terminal show text in another order: "\u202e";
//   - a byte that is not part of valid UTF-8: "\xNN" (a lone 0x9b is CSI to an 8-bit terminal).
// A backslash itself is left alone: the escapes are for a person to read, not to decode.
#pragma once

#include <string>
#include <string_view>

namespace tactus::tools {

std::string inert_text(std::string_view text);

// Whether fd's output is shown to a person: a terminal, and --raw-output not given.
bool shows_inert(int fd, bool raw_output);

}  // namespace tactus::tools
