// Conversion between Lua values and JSON, for the protocol and tactus.io.json.
//
// Tables whose keys are exactly 1..n become arrays; other tables become objects and need string
// keys (numbers are written as their decimal text); the empty table is {}. Functions, userdata,
// threads, NaN/inf and nesting deeper than kMaxJsonDepth (which also catches cycles) are refused.
#pragma once

#include <string>

#include "runtime/protocol/message.h"

struct lua_State;

namespace tactus::vm {

// Converts the value at idx. On failure returns false and says why in error.
bool to_json(lua_State* L, int idx, protocol::Json& out, std::string& error);

// Pushes the Lua form of value (null becomes nil). Raises a Lua error if the stack cannot grow.
void push_json(lua_State* L, const protocol::Json& value);

}  // namespace tactus::vm
