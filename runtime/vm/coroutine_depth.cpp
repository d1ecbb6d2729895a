#include "runtime/vm/coroutine_depth.h"

#include <lua.hpp>

namespace tactus::vm {
namespace {

int depth = 0;  // one VM per process (the jail runs one procedure), one thread

// Upvalue 1: the original coroutine.resume. Returns what it returns.
int counted_resume(lua_State* L) {
  if (depth >= kMaxCoroutineDepth)
    return luaL_error(L, "stack overflow (coroutines nested more than %d deep)",
                      kMaxCoroutineDepth);
  const int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  ++depth;
  const int status = lua_pcall(L, n, LUA_MULTRET, 0);
  --depth;
  if (status != 0) return lua_error(L);  // a bad argument to resume itself
  return lua_gettop(L);
}

// Upvalues: 1 the coroutine, 2 counted_resume. What coroutine.wrap's function does: resume,
// give back the results, or raise the coroutine's error as it is.
int wrapped_call(lua_State* L) {
  const int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_insert(L, 1);
  lua_call(L, n + 1, LUA_MULTRET);
  if (!lua_toboolean(L, 1)) {
    lua_settop(L, 2);
    return lua_error(L);
  }
  return lua_gettop(L) - 1;
}

// Upvalues: 1 coroutine.create, 2 counted_resume.
int counted_wrap(lua_State* L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_pushcclosure(L, wrapped_call, 2);
  return 1;
}

}  // namespace

void install_coroutine_depth(lua_State* L) {
  lua_getfield(L, LUA_GLOBALSINDEX, "coroutine");
  const int co = lua_gettop(L);
  lua_getfield(L, co, "resume");
  lua_pushcclosure(L, counted_resume, 1);
  const int resume = lua_gettop(L);
  lua_getfield(L, co, "create");
  lua_pushvalue(L, resume);
  lua_pushcclosure(L, counted_wrap, 2);
  lua_setfield(L, co, "wrap");
  lua_setfield(L, co, "resume");
  lua_pop(L, 1);
}

}  // namespace tactus::vm
