// The restricted environment's walls: the allowlist of globals and libraries (the tables
// below), read-only shared tables, base functions that see through read-only proxies, and a
// protected string metatable; install_sandbox builds it in order. The doors out (everything
// that calls the broker) are sandbox_doors.cpp, require is sandbox_require.cpp. See
// docs/language.md, "What the restricted environment offers".
#include <lua.hpp>

#include <cstring>
#include <string>

#include "runtime/vm/call_depth.h"
#include "runtime/vm/object_ids.h"
#include "runtime/vm/sandbox_internal.h"
#include "runtime/vm/vm_context.h"

namespace tactus::vm {
namespace sandbox {

char kReadonlyKey;
char kPrimitivesKey;
char kLoadedKey;
char kModuleEnvKey;
char kRunnerKey;

namespace {

char kContextKey;

int safe_rawget(lua_State* L);
int safe_rawset(lua_State* L);
int safe_rawlen(lua_State* L);
int safe_next(lua_State* L);
int safe_pairs(lua_State* L);
int safe_collectgarbage(lua_State* L);

// ---- the allowlist --------------------------------------------------------------------------

// The only libraries opened at all: io, os, debug, package, ffi and jit never exist.
const luaL_Reg kOpenedLibraries[] = {
    {"", luaopen_base},  // includes coroutine in LuaJIT
    {LUA_STRLIBNAME, luaopen_string},
    {LUA_TABLIBNAME, luaopen_table},
    {LUA_MATHLIBNAME, luaopen_math},
    {LUA_BITLIBNAME, luaopen_bit},
};

// Base functions the procedure gets as they are.
constexpr const char* kBaseGlobals[] = {
    "assert",   "error", "ipairs", "pcall",    "xpcall",       "select",       "tonumber",
    "tostring", "type",  "unpack", "rawequal", "setmetatable", "getmetatable", "_VERSION",
};

// What the lua/ modules read from their own globals, as built here, whatever the procedure
// later assigns to its own: a procedure that replaces error, pcall or type cannot turn the
// language's checks off (max_depth, validate's stops). xpcall is not among them: the prelude
// replaces it for the procedure.
constexpr const char* kModuleGlobals[] = {
    "assert",    "error",  "ipairs",   "pcall",        "select",       "tonumber",      "tostring",
    "type",      "unpack", "rawequal", "rawget",       "rawset",       "rawlen",        "next",
    "pairs",     "print",  "require",  "string",       "table",        "math",          "bit",
    "coroutine", "os",     "_G",       "setmetatable", "getmetatable", "collectgarbage"};

// Base functions replaced by ones that see through read-only proxies, or offer less
// (collectgarbage: "count" only). pairs, print and require are closures, set beside them.
const luaL_Reg kReplacedGlobals[] = {
    {"rawget", safe_rawget},
    {"rawset", safe_rawset},
    {"rawlen", safe_rawlen},
    {"next", safe_next},
    {"collectgarbage", safe_collectgarbage},
};

// Libraries the procedure sees whole, through read-only proxies. table.* is there too, each
// function guarded (guarded_table_function); os has time, date and clock only, brokered.
constexpr const char* kReadonlyLibraries[] = {"string", "math", "coroutine", "bit"};

// Removed from string before it is shared: no function can be dumped to bytecode.
constexpr const char* kRemovedFromString[] = {"dump"};

// The tables the prelude defines as globals that the procedure must not change.
constexpr const char* kFrozenPreludeGlobals[] = {
    "Host",           "field",   "Log",    "State", "Human", "Step",  "Stage", "Iterations",
    "MessageHistory", "Session", "python", "Stop",  "Json",  "Retry", "File"};

// ---- read-only tables --------------------------------------------------------------------

int readonly_newindex(lua_State* L) {
  return luaL_error(L, "attempt to modify read-only table '%s'",
                    lua_tostring(L, lua_upvalueindex(1)));
}

// If the value at idx is a read-only proxy, pushes its backing table and returns true.
bool push_backing(lua_State* L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE) return false;
  lua_pushlightuserdata(L, &kReadonlyKey);
  lua_rawget(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, idx);
  lua_rawget(L, -2);
  lua_remove(L, -2);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return false;
  }
  return true;
}

}  // namespace

void make_readonly(lua_State* L, const char* name) {
  const int backing = lua_gettop(L);
  lua_newtable(L);  // the proxy: empty, so every read goes to __index
  lua_createtable(L, 0, 3);
  lua_pushvalue(L, backing);
  lua_setfield(L, -2, "__index");
  lua_pushstring(L, name);
  lua_pushcclosure(L, readonly_newindex, 1);
  lua_setfield(L, -2, "__newindex");
  lua_pushliteral(L, "read-only table");
  lua_setfield(L, -2, "__metatable");
  // A callable table (Step("text", fn)) stays callable through its proxy.
  if (lua_getmetatable(L, backing)) {
    lua_getfield(L, -1, "__call");
    lua_setfield(L, -3, "__call");
    lua_pop(L, 1);
  }
  lua_setmetatable(L, -2);
  // Remember proxy -> backing, so rawget/rawset/next/pairs and the table.* mutators see it.
  lua_pushlightuserdata(L, &kReadonlyKey);
  lua_rawget(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, -2);
  lua_pushvalue(L, backing);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lua_replace(L, backing);
}

bool is_readonly(lua_State* L, int idx) {
  if (!push_backing(L, idx)) return false;
  lua_pop(L, 1);
  return true;
}

void set_closure(lua_State* L, int table, const char* name, lua_CFunction f, int upvalues) {
  lua_pushcclosure(L, f, upvalues);
  lua_setfield(L, table, name);
}

namespace {

// ---- base functions that must see through proxies ------------------------------------------

int safe_rawget(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  if (push_backing(L, 1)) lua_replace(L, 1);
  lua_settop(L, 2);
  lua_rawget(L, 1);
  return 1;
}

int safe_rawset(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  luaL_checkany(L, 3);
  if (is_readonly(L, 1)) return luaL_error(L, "attempt to modify a read-only table");
  lua_settop(L, 3);
  lua_rawset(L, 1);
  return 1;
}

int safe_rawlen(lua_State* L) {
  const int t = lua_type(L, 1);
  luaL_argcheck(L, t == LUA_TTABLE || t == LUA_TSTRING, 1, "table or string expected");
  if (push_backing(L, 1)) lua_replace(L, 1);
  lua_pushinteger(L, static_cast<lua_Integer>(lua_objlen(L, 1)));
  return 1;
}

int safe_next(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  if (push_backing(L, 1)) lua_replace(L, 1);
  lua_settop(L, 2);
  return lua_next(L, 1) ? 2 : (lua_pushnil(L), 1);
}

// pairs(t) -> safe_next, t, nil; safe_next sees through a proxy (there is no __pairs in 5.1).
// The state handed out is t itself: handing out the backing table would make it writable.
int safe_pairs(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushvalue(L, lua_upvalueindex(1));  // safe_next
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

// Every table.* function: they read and write with raw accesses, which a proxy would not stop
// (insert, remove, sort, move, ...). Reading a library table through them is no loss.
int guarded_table_function(lua_State* L) {
  const int n = lua_gettop(L);
  for (int i = 1; i <= n; ++i)
    if (is_readonly(L, i)) return luaL_error(L, "attempt to modify a read-only table");
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  const NestedCall nested(L);  // a sort comparator may call sort
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

int safe_collectgarbage(lua_State* L) {
  const char* opt = luaL_optstring(L, 1, "collect");
  if (std::strcmp(opt, "count") != 0)
    return luaL_error(L, "collectgarbage: only \"count\" is available in tactus");
  lua_pushnumber(
      L, static_cast<lua_Number>(lua_gc(L, LUA_GCCOUNT, 0)) + lua_gc(L, LUA_GCCOUNTB, 0) / 1024.0);
  return 1;
}

// ---- building the environment --------------------------------------------------------------

void open_lib(lua_State* L, const char* name, lua_CFunction open) {
  lua_pushcfunction(L, open);
  lua_pushstring(L, name);
  lua_call(L, 1, 0);
}

void copy_global(lua_State* L, int env, const char* name) {
  lua_getfield(L, LUA_GLOBALSINDEX, name);
  if (lua_isnil(L, -1)) luaL_error(L, "sandbox: base function '%s' is missing", name);
  lua_setfield(L, env, name);
}

// Sets env[name] to a read-only proxy of the library table G0[name].
void add_library(lua_State* L, int env, const char* name) {
  lua_getfield(L, LUA_GLOBALSINDEX, name);
  make_readonly(L, name);
  lua_setfield(L, env, name);
}

void add_table_library(lua_State* L, int env) {
  lua_getfield(L, LUA_GLOBALSINDEX, "table");
  const int orig = lua_gettop(L);
  lua_newtable(L);
  const int copy = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, orig)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    if (lua_isfunction(L, -1)) lua_pushcclosure(L, guarded_table_function, 1);
    lua_rawset(L, copy);
  }
  make_readonly(L, "table");
  lua_setfield(L, env, "table");
  lua_pop(L, 1);
}

// getmetatable("") returns this stand-in, whose __index is the read-only string proxy.
void protect_string_metatable(lua_State* L, int env) {
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  const int mt = lua_gettop(L);
  lua_createtable(L, 0, 1);
  lua_getfield(L, env, "string");
  lua_setfield(L, -2, "__index");
  make_readonly(L, "string metatable");
  lua_setfield(L, mt, "__metatable");
  lua_pop(L, 2);
}

// Tables the prelude defines as globals that the procedure must not change.
void freeze_prelude_globals(lua_State* L) {
  for (const char* name : kFrozenPreludeGlobals) {
    lua_getfield(L, LUA_GLOBALSINDEX, name);
    if (lua_istable(L, -1) && !is_readonly(L, -1)) {
      make_readonly(L, name);
      lua_setfield(L, LUA_GLOBALSINDEX, name);
    } else {
      lua_pop(L, 1);
    }
  }
}

}  // namespace
}  // namespace sandbox

using namespace sandbox;

void push_runner(lua_State* L) {
  lua_pushlightuserdata(L, &kRunnerKey);
  lua_rawget(L, LUA_REGISTRYINDEX);
}

VmContext& context_of(lua_State* L) {
  lua_pushlightuserdata(L, &kContextKey);
  lua_rawget(L, LUA_REGISTRYINDEX);
  auto* c = static_cast<VmContext*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  return *c;
}

void raise_coded(lua_State* L, std::string_view code, std::string_view message) {
  std::string text;
  text.reserve(code.size() + 2 + message.size());
  text.append(code).append(": ").append(message);
  lua_pushlstring(L, text.data(), text.size());
  text = std::string();  // lua_error longjmps: release our copy first
  lua_error(L);
  __builtin_unreachable();
}

int install_sandbox(lua_State* L) {
  auto* ctx = static_cast<VmContext*>(lua_touserdata(L, 1));
  lua_settop(L, 0);
  lua_pushlightuserdata(L, &kContextKey);
  lua_pushlightuserdata(L, ctx);
  lua_rawset(L, LUA_REGISTRYINDEX);

  // Registry tables: proxy map (weak keys), require cache.
  lua_pushlightuserdata(L, &kReadonlyKey);
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawset(L, LUA_REGISTRYINDEX);
  lua_pushlightuserdata(L, &kLoadedKey);
  lua_newtable(L);
  lua_rawset(L, LUA_REGISTRYINDEX);

  for (const luaL_Reg& lib : kOpenedLibraries) open_lib(L, lib.name, lib.func);
  install_object_ids(L);  // before tostring and string.format are copied anywhere
  install_call_depth(L);  // before coroutine and string are made read-only
  wrap_math_random(L);    // before math is made read-only

  // string.dump goes from the real table, which strings' own metatable still points at.
  lua_getfield(L, LUA_GLOBALSINDEX, "string");
  for (const char* name : kRemovedFromString) {
    lua_pushnil(L);
    lua_setfield(L, -2, name);
  }
  lua_pop(L, 1);

  lua_newtable(L);
  const int env = lua_gettop(L);
  for (const char* name : kBaseGlobals) copy_global(L, env, name);
  for (const luaL_Reg& f : kReplacedGlobals) set_closure(L, env, f.name, f.func);
  lua_pushcfunction(L, safe_next);
  set_closure(L, env, "pairs", safe_pairs, 1);
  lua_getfield(L, LUA_GLOBALSINDEX, "tostring");
  set_closure(L, env, "print", sandbox_print, 1);
  set_closure(L, env, "require", procedure_require);
  for (const char* lib : kReadonlyLibraries) add_library(L, env, lib);
  add_table_library(L, env);
  add_os(L, env);
  protect_string_metatable(L, env);
  lua_pushvalue(L, env);
  lua_setfield(L, env, "_G");

  // The lua/ modules' globals: kModuleGlobals as they are now, over env (every other read, and
  // every assignment, goes to env). run_embedded gives each embedded chunk this table.
  lua_pushlightuserdata(L, &kModuleEnvKey);
  lua_newtable(L);
  for (const char* name : kModuleGlobals) {
    lua_getfield(L, env, name);
    lua_setfield(L, -2, name);
  }
  lua_createtable(L, 0, 3);
  lua_pushvalue(L, env);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, env);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_rawset(L, LUA_REGISTRYINDEX);

  // Primitives for lua/ modules; the procedure never gets this table from a global.
  lua_pushlightuserdata(L, &kPrimitivesKey);
  push_primitives(L);
  lua_rawset(L, LUA_REGISTRYINDEX);

  // From here on every chunk loaded or function created sees only env.
  lua_pushvalue(L, env);
  lua_replace(L, LUA_GLOBALSINDEX);
  run_prelude(L);
  freeze_prelude_globals(L);
  lua_settop(L, 0);
  return 0;
}

void trip(lua_State* L, Tripped what, const std::string& message, int level) {
  VmContext& c = context_of(L);
  if (c.tripped == Tripped::none) {
    c.tripped = what;
    luaL_where(L, level);
    c.trip_message = std::string(lua_tostring(L, -1)) + message;
    lua_pop(L, 1);
  }
  // Fire the count hook on every instruction from now on; it re-raises the same error.
  lua_sethook(L, lua_gethook(L), LUA_MASKCOUNT, 1);
  lua_pushlstring(L, c.trip_message.data(), c.trip_message.size());
  lua_error(L);
  __builtin_unreachable();
}

}  // namespace tactus::vm
