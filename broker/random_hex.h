// Random identifiers: run ids, the journal's lease tokens.
#pragma once

#include <cstddef>
#include <string>

namespace tactus::broker {

// bytes random bytes (getrandom) as 2 * bytes lowercase hex digits. If getrandom fails, the
// process id and the clock stand in: these name things, they protect nothing.
std::string random_hex(std::size_t bytes);

}  // namespace tactus::broker
