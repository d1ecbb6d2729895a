// Coroutines nested in coroutines: each resume runs on the C stack of the one that resumed it,
// so a million nested coroutine.wrap calls overflow the process's stack (SIGSEGV, which the jail
// contains, but the procedure gets no error to catch). coroutine.resume and coroutine.wrap are
// counted instead: past kMaxCoroutineDepth the resume raises
// "stack overflow (coroutines nested more than 200 deep)", like deep recursion.
// Internal to runtime/vm.
#pragma once

struct lua_State;

namespace tactus::vm {

inline constexpr int kMaxCoroutineDepth = 200;

// Replaces coroutine.resume and coroutine.wrap in the global coroutine table the sandbox is
// built from (before it is made read-only).
void install_coroutine_depth(lua_State* L);

}  // namespace tactus::vm
