// C functions that call back into Lua, nested in each other: each level runs on the process's
// C stack (a resume inside a coroutine inside a resume ..., a gsub callback calling gsub, a sort
// comparator calling sort, a __tostring calling tostring), so a procedure nesting them a
// million deep overflowed it (SIGSEGV, contained by the jail, but no error to catch). They are
// counted instead: past kMaxCallDepth the next one raises
// "stack overflow (C calls nested more than 200 deep)" ("coroutines nested ..." for a resume),
// which the procedure can catch, like deep recursion. Internal to runtime/vm.
#pragma once

struct lua_State;

namespace tactus::vm {

inline constexpr int kMaxCallDepth = 200;

// Held by a C function while it calls back into Lua. Raises the stack overflow error (at
// construction) when kMaxCallDepth are held already. LuaJIT unwinds errors as C++ exceptions
// on x64, so the count is given back on an error too.
class NestedCall {
 public:
  explicit NestedCall(lua_State* L, const char* what = "C calls");
  ~NestedCall();
  NestedCall(const NestedCall&) = delete;
  NestedCall& operator=(const NestedCall&) = delete;
};

// Replaces coroutine.resume, coroutine.wrap and string.gsub in the global tables the sandbox is
// built from (before they are made read-only) with counted ones.
void install_call_depth(lua_State* L);

}  // namespace tactus::vm
