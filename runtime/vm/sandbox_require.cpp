// require in the restricted environment: the embedded tactus.* modules (bytecode compiled
// from lua/ at build time), and the procedure's own modules beside it, served by the broker
// (module.load) and loaded as text. Each is loaded once; a plain table it returns is read-only.
#include <lua.hpp>

#include <string>

#include "runtime/protocol/methods.h"
#include "runtime/vm/embedded_modules.h"
#include "runtime/vm/sandbox_internal.h"
#include "runtime/vm/vm_context.h"

namespace tactus::vm::sandbox {
namespace {

using protocol::Json;

const EmbeddedModule* find_module(std::string_view name) {
  if (name == "prelude") return nullptr;
  for (const auto& m : embedded_modules())
    if (m.name == name) return &m;
  return nullptr;
}

// Loads an embedded chunk and calls it with (name, primitives), leaving one result. Embedded
// modules are bytecode compiled from lua/ at build time by this build's LuaJIT (mode "b":
// trusted, and only these); everything from a procedure is loaded as text only.
void run_embedded(lua_State* L, const EmbeddedModule& m) {
  if (luaL_loadbufferx(L, m.source.data(), m.source.size(), std::string(m.chunkname).c_str(),
                       "b") != 0)
    lua_error(L);
  // The modules' own globals (install_sandbox): what the procedure assigns cannot reach them.
  lua_pushlightuserdata(L, &kModuleEnvKey);
  lua_rawget(L, LUA_REGISTRYINDEX);
  if (lua_istable(L, -1))
    lua_setfenv(L, -2);
  else
    lua_pop(L, 1);
  lua_pushlstring(L, m.name.data(), m.name.size());
  lua_pushlightuserdata(L, &kPrimitivesKey);
  lua_rawget(L, LUA_REGISTRYINDEX);
  lua_call(L, 2, 1);
}

// "helpers.util": dot-separated identifiers, outside the embedded tactus.* namespace.
bool is_procedure_module_name(const std::string& name) {
  if (name.empty() || name.size() > 200 || name.rfind("tactus.", 0) == 0 || name == "prelude")
    return false;
  bool start = true;
  for (char c : name) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (c == '.') {
      if (start) return false;
      start = true;
    } else if (alpha || (digit && !start)) {
      start = false;
    } else {
      return false;
    }
  }
  return !start;
}

// A text module beside the procedure, served by the broker (module.load), run like the
// procedure itself: text only, in this VM's environment. Leaves its result on the stack.
// Asks the broker for a text chunk (module.load with params) and leaves it compiled, uncalled,
// named by the path the broker gives. Text only: the procedure's code is never bytecode.
void push_served_chunk(lua_State* L, Json params) {
  Json r = broker_request(L, protocol::method::module_load, std::move(params));
  if (!r.is_object() || !r.value("source", Json()).is_string() ||
      !r.value("path", Json()).is_string())
    raise_coded(L, "failed", "module.load: malformed answer");
  const auto& source = r["source"].get_ref<const std::string&>();
  // Appended, not "@" + path: GCC 12 at -O3 warns (-Wrestrict) on that form, wrongly.
  std::string chunkname = "@";
  chunkname += r["path"].get_ref<const std::string&>();
  if (luaL_loadbufferx(L, source.data(), source.size(), chunkname.c_str(), "t") != 0) lua_error(L);
}

void load_procedure_module(lua_State* L, const std::string& name) {
  push_served_chunk(L, Json{{"name", name}});
  lua_pushlstring(L, name.data(), name.size());
  lua_call(L, 1, 1);
}

}  // namespace

int sandbox_require(lua_State* L) {
  std::size_t len = 0;
  const char* s = luaL_checklstring(L, 1, &len);
  const std::string name(s, len);
  // Refused, not cut: "a\0b" would otherwise be looked up, and reported, as "a".
  if (name.find('\0') != std::string::npos)
    return luaL_error(L, "require: the module name contains a NUL byte");
  lua_pushlightuserdata(L, &kLoadedKey);
  lua_rawget(L, LUA_REGISTRYINDEX);
  const int loaded = lua_gettop(L);
  lua_getfield(L, loaded, name.c_str());
  if (lua_toboolean(L, -1)) {
    if (lua_islightuserdata(L, -1))
      return luaL_error(L, "loop while loading module '%s'", name.c_str());
    return 1;
  }
  lua_pop(L, 1);
  const EmbeddedModule* m = find_module(name);
  const bool from_procedure = !m && is_procedure_module_name(name) && context_of(L).channel;
  if (!m && !from_procedure)
    return luaL_error(L,
                      "module '%s' not found (only tactus.* modules embedded in tactus can be "
                      "required)",
                      name.c_str());
  lua_pushlightuserdata(L, &kLoadedKey);  // in-progress marker
  lua_setfield(L, loaded, name.c_str());
  if (m) {
    run_embedded(L, *m);
  } else {
    load_procedure_module(L, name);
  }
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  // A plain table becomes read-only; one with a metatable (a tool handle such as
  // tactus.tools.done) guards itself and must keep its __call.
  if (lua_istable(L, -1) && !lua_getmetatable(L, -1))
    make_readonly(L, name.c_str());
  else if (lua_istable(L, -1))
    lua_pop(L, 1);
  lua_pushvalue(L, -1);
  lua_setfield(L, loaded, name.c_str());
  return 1;
}

// P.load_procedure(path, env): Procedure.run("helpers/sum.tac") of a sub-procedure file the
// broker serves from beneath the project (module.load {procedure}); its text is compiled (text
// only) with env as its globals and returned uncalled. The Lua side runs it nested, in this VM
// and its limits (lua/tactus/dsl/subprocedure.lua).
int load_procedure(lua_State* L) {
  std::size_t len = 0;
  const char* s = luaL_checklstring(L, 1, &len);
  const std::string path(s, len);
  // Refused, not cut: "x.tac\0junk" would otherwise load x.tac.
  if (path.find('\0') != std::string::npos)
    return luaL_error(L, "Procedure.run: the path contains a NUL byte");
  luaL_checktype(L, 2, LUA_TTABLE);
  if (!context_of(L).channel) return luaL_error(L, "Procedure.run: no broker to load from");
  push_served_chunk(L, Json{{"procedure", path}});
  lua_pushvalue(L, 2);
  lua_setfenv(L, -2);
  return 1;
}

namespace {

// The tactus.* modules a procedure may require itself: the documented ones. The rest are the
// language's insides (its registries, settings and the request door), reached by lua/ modules
// through P.require only: a procedure that could require them could change its own limits.
constexpr std::string_view kPublicModules[] = {"tactus.io.json",    "tactus.io.csv",
                                               "tactus.io.tsv",     "tactus.io.file",
                                               "tactus.tools.done", "tactus.testing.regex"};

}  // namespace

// The global require: the public tactus.* modules and the procedure's own modules.
int procedure_require(lua_State* L) {
  std::size_t len = 0;
  const char* s = luaL_checklstring(L, 1, &len);
  const std::string_view name(s, len);
  // An embedded module that is not public is refused by name; any other is looked up (and a
  // tactus.* name that is no module is "not found", as before).
  if (find_module(name) != nullptr) {
    bool public_module = false;
    for (const auto m : kPublicModules) public_module = public_module || m == name;
    if (!public_module)
      return luaL_error(L,
                        "module '%s' is internal to tactus (a procedure may require "
                        "tactus.io.json, tactus.io.csv, tactus.io.tsv, tactus.io.file, "
                        "tactus.tools.done, tactus.testing.regex)",
                        std::string(name.substr(0, 200)).c_str());
  }
  return sandbox_require(L);
}

// P.testing(): the testing runner (lua/tactus/testing/runner.lua), loaded through require when
// a mode needs it (validate's scenario list, tactus test, run --mock). The language's modules
// never require the testing modules, and a plain run never loads them.
int testing_runner(lua_State* L) {
  lua_settop(L, 0);
  lua_pushliteral(L, "tactus.testing.runner");
  return sandbox_require(L);
}

// The prelude returns the runner (chunk, input) -> result that Vm::run calls: it runs the
// top-level declarations, then the main procedure with validated input and output.
void run_prelude(lua_State* L) {
  for (const auto& m : embedded_modules()) {
    if (m.name != "prelude") continue;
    run_embedded(L, m);
    if (!lua_isfunction(L, -1)) luaL_error(L, "sandbox: the prelude returned no runner");
    lua_pushlightuserdata(L, &kRunnerKey);
    lua_insert(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
    return;
  }
  luaL_error(L, "sandbox: the prelude is not embedded");
}

}  // namespace tactus::vm::sandbox
