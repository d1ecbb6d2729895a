#include "runtime/vm/call_depth.h"

#include <lua.hpp>

namespace tactus::vm {
namespace {

// One VM runs at a time on one thread (the jail runs one procedure; tests run VMs in turn).
int depth = 0;

// Upvalue 1: the original coroutine.resume. Returns what it returns.
int counted_resume(lua_State* L) {
  const NestedCall nested(L, "coroutines");
  const int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

// Upvalue 1: the original string.gsub (a function replacement calls back into Lua).
int counted_gsub(lua_State* L) {
  const NestedCall nested(L);
  const int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
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

NestedCall::NestedCall(lua_State* L, const char* what) {
  if (depth >= kMaxCallDepth)
    luaL_error(L, "stack overflow (%s nested more than %d deep)", what, kMaxCallDepth);
  ++depth;
}

NestedCall::~NestedCall() {
  --depth;
}

void install_call_depth(lua_State* L) {
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
  lua_getfield(L, LUA_GLOBALSINDEX, "string");
  lua_getfield(L, -1, "gsub");
  lua_pushcclosure(L, counted_gsub, 1);
  lua_setfield(L, -2, "gsub");
  lua_pop(L, 1);
}

}  // namespace tactus::vm
