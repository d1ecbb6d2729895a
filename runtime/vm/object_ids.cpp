#include "runtime/vm/object_ids.h"

#include "runtime/vm/call_depth.h"

#include <lua.hpp>

#include <string>
#include <string_view>

namespace tactus::vm {
namespace {

constexpr int kTypeCdata = 10;  // LuaJIT's FFI type (ffi is never opened; kept safe anyway)

bool has_address(int type) {
  return type == LUA_TTABLE || type == LUA_TFUNCTION || type == LUA_TTHREAD ||
         type == LUA_TUSERDATA || type == LUA_TLIGHTUSERDATA || type == kTypeCdata;
}

// Upvalues: 1 the original tostring, 2 the ids (a table with weak keys), 3 the last id given.
int tostring_with_ids(lua_State* L) {
  luaL_checkany(L, 1);
  const int type = lua_type(L, 1);
  if (!has_address(type) || luaL_getmetafield(L, 1, "__tostring")) {
    const NestedCall nested(L);  // a __tostring may call tostring
    lua_settop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 1, 1);
    // What a __tostring returned: anything but text would reach print or %s as its address.
    if (has_address(lua_type(L, -1))) return luaL_error(L, "'__tostring' must return a string");
    return 1;
  }
  lua_settop(L, 1);
  lua_pushvalue(L, 1);
  lua_rawget(L, lua_upvalueindex(2));
  lua_Integer id = lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (id == 0) {
    id = lua_tointeger(L, lua_upvalueindex(3)) + 1;
    lua_pushinteger(L, id);
    lua_replace(L, lua_upvalueindex(3));
    lua_pushvalue(L, 1);
    lua_pushinteger(L, id);
    lua_rawset(L, lua_upvalueindex(2));
  }
  const std::string text = std::string(lua_typename(L, type)) + ": #" + std::to_string(id);
  lua_pushlstring(L, text.data(), text.size());
  return 1;
}

// Upvalues: 1 the original string.format, 2 tostring_with_ids. Each %s or %q argument that has
// an address is given as its text first (a __tostring that returns no string is an error, as
// the original would print the address of what it returned); %p is refused; everything else
// is the original's.
int format_with_ids(lua_State* L) {
  const NestedCall nested(L);  // a __tostring may call string.format
  std::size_t len = 0;
  const char* fmt = luaL_checklstring(L, 1, &len);
  const int top = lua_gettop(L);
  int arg = 1;
  for (std::size_t i = 0; i < len; ++i) {
    if (fmt[i] != '%') continue;
    if (++i < len && fmt[i] == '%') continue;
    while (i < len && std::string_view("-+ #0123456789.").find(fmt[i]) != std::string_view::npos)
      ++i;
    if (i >= len) break;
    ++arg;
    if (fmt[i] == 'p') return luaL_error(L, "string.format: %%p is not available in tactus");
    if ((fmt[i] != 's' && fmt[i] != 'q') || arg > top || !has_address(lua_type(L, arg))) continue;
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushvalue(L, arg);
    lua_call(L, 1, 1);
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
      return luaL_error(L, "'__tostring' must return a string");
    lua_replace(L, arg);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, top, 1);
  return 1;
}

}  // namespace

void install_object_ids(lua_State* L) {
  lua_getfield(L, LUA_GLOBALSINDEX, "tostring");
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_pushinteger(L, 0);
  lua_pushcclosure(L, tostring_with_ids, 3);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_GLOBALSINDEX, "tostring");  // the ids tostring stays on the stack

  lua_getfield(L, LUA_GLOBALSINDEX, "string");
  lua_getfield(L, -1, "format");
  lua_pushvalue(L, -3);
  lua_pushcclosure(L, format_with_ids, 2);
  lua_setfield(L, -2, "format");
  lua_pop(L, 2);
}

}  // namespace tactus::vm
