// Per-run ids instead of heap addresses: tostring of a table, function, thread or userdata
// (without __tostring) is "table: #3", the same id for the same object all run long, and
// string.format's %s shows the same. A heap address would tell a procedure where LuaJIT's
// allocations lie, which is what an exploit of any later memory bug needs first (ASLR undone).
// Internal to runtime/vm.
#pragma once

struct lua_State;

namespace tactus::vm {

// Replaces the base library's tostring and string.format (in the global table the sandbox is
// built from, before anything copies them), so every door that turns a value into text (print,
// Log, tostring, %s) shows ids.
void install_object_ids(lua_State* L);

}  // namespace tactus::vm
