// The restricted environment: an allowlist of globals, read-only shared tables, a protected
// string metatable, and the few doors out (print, Host.call, brokered os.time/os.date), all of
// which go through fd 3. See docs/language.md, "What the restricted environment offers".
#include <lua.hpp>

#include <sys/types.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "runtime/protocol/methods.h"
#include "runtime/vm/call_depth.h"
#include "runtime/vm/embedded_modules.h"
#include "runtime/vm/host_channel.h"
#include "runtime/vm/lua_json.h"
#include "runtime/vm/object_ids.h"
#include "runtime/vm/state_sync.h"
#include "runtime/vm/vm_context.h"

namespace tactus::vm {
namespace {

using protocol::Json;

// Registry keys (addresses of these statics).
char kContextKey;
char kReadonlyKey;    // weak-keyed table: proxy -> backing table
char kPrimitivesKey;  // the read-only primitives table handed to lua/ modules
char kLoadedKey;      // require's cache
char kRunnerKey;      // the prelude's runner (chunk, input) -> result

// ---- read-only tables --------------------------------------------------------------------

int readonly_newindex(lua_State* L) {
  return luaL_error(L, "attempt to modify read-only table '%s'",
                    lua_tostring(L, lua_upvalueindex(1)));
}

// Replaces the table at the top of the stack with a read-only proxy of it.
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

bool is_readonly(lua_State* L, int idx) {
  if (!push_backing(L, idx)) return false;
  lua_pop(L, 1);
  return true;
}

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

// True once an instruction or output limit has tripped (for the prelude's xpcall).
int limit_tripped(lua_State* L) {
  lua_pushboolean(L, context_of(L).tripped != Tripped::none);
  return 1;
}

int safe_collectgarbage(lua_State* L) {
  const char* opt = luaL_optstring(L, 1, "collect");
  if (std::strcmp(opt, "count") != 0)
    return luaL_error(L, "collectgarbage: only \"count\" is available in tactus");
  lua_pushnumber(
      L, static_cast<lua_Number>(lua_gc(L, LUA_GCCOUNT, 0)) + lua_gc(L, LUA_GCCOUNTB, 0) / 1024.0);
  return 1;
}

// ---- doors out: print, Host.call, time -------------------------------------------------------

std::string call_tostring(lua_State* L, int idx) {
  lua_pushvalue(L, lua_upvalueindex(1));  // the original tostring, not the global one
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);
  std::size_t len = 0;
  const char* s = lua_tolstring(L, -1, &len);
  if (!s) luaL_error(L, "'tostring' must return a string to 'print'");
  std::string out(s, len);
  lua_pop(L, 1);
  return out;
}

// print and Log.* count a line's bytes (and its newline) against the output limit; crossing
// it trips the limit in the calling Lua function.
void count_output(lua_State* L, std::size_t bytes) {
  VmContext& c = context_of(L);
  c.output_used += bytes + 1;
  if (c.limits.output != 0 && c.output_used > c.limits.output)
    trip(L, Tripped::output,
         "output limit exceeded (" + std::to_string(c.limits.output) + " bytes)", 1);
}

int sandbox_print(lua_State* L) {
  VmContext& c = context_of(L);
  const int n = lua_gettop(L);
  std::string text;
  for (int i = 1; i <= n; ++i) {
    if (i > 1) text += '\t';
    text += call_tostring(L, i);
  }
  count_output(L, text.size());
  if (!c.channel) return 0;
  std::string reason;
  if (!c.channel->send(protocol::make_notification("print", Json{{"text", text}}), reason))
    raise_coded(L, "failed", "print: " + reason);
  return 0;
}

// One brokered request; raises "code: message" on an error answer or a transport failure.
Json broker_request(lua_State* L, std::string_view method, const Json& params) {
  VmContext& c = context_of(L);
  if (!c.channel) raise_coded(L, "failed", "no broker connection");
  sync_state(L);
  std::string reason;
  auto reply = c.channel->call(method, params, reason);
  if (!reply) {
    if (c.channel->last_send_too_large()) raise_coded(L, "invalid_args", "request " + reason);
    raise_coded(L, "failed", reason);
  }
  if (reply->error) raise_coded(L, reply->error->code, reply->error->message);
  return std::move(reply->result);
}

int host_call(lua_State* L) {
  if (lua_type(L, 1) != LUA_TSTRING)
    raise_coded(L, "invalid_args",
                "Host.call expects a tool name (a string) as its first argument");
  std::string name = lua_tostring(L, 1);
  Json args;  // Host.call(name) sends null args
  std::string error;
  if (!lua_isnone(L, 2) && !to_json(L, 2, args, error))
    raise_coded(L, "invalid_args", "args: " + error);
  Json result = broker_request(L, protocol::method::host_call,
                               Json{{"name", name}, {"args", std::move(args)}});
  push_json(L, result);
  return 1;
}

// llm.chat: one model turn, answered by the broker's providers (tools/llm). The VM never sees
// an API key: it sends the conversation and gets the reply.
int llm_chat(lua_State* L) {
  Json params;
  std::string error;
  if (!to_json(L, 1, params, error)) raise_coded(L, "invalid_args", "llm.chat: " + error);
  Json result = broker_request(L, protocol::method::llm_chat, params);
  push_json(L, result);
  return 1;
}

// Log.*: a structured event; the broker writes it (a readable line, or JSONL) after masking.
int log_event(lua_State* L) {
  VmContext& c = context_of(L);
  const char* level = luaL_checkstring(L, 1);
  const std::string message = call_tostring(L, 2);
  Json fields = Json::object();
  std::string error;
  if (!lua_isnoneornil(L, 3) && !to_json(L, 3, fields, error))
    return luaL_error(L, "Log.%s: fields: %s", level, error.c_str());
  count_output(L, message.size());
  if (!c.channel) return 0;
  std::string reason;
  if (!c.channel->send(protocol::make_notification(
                           protocol::method::log,
                           Json{{"level", level}, {"message", message}, {"fields", fields}}),
                       reason))
    raise_coded(L, "failed", "log: " + reason);
  return 0;
}

// Human.*: one broker request each ("human.approve", ...), answered at the terminal or by
// suspending the run until `tactus answer`. The answer is {value = ...}.
int human_request(lua_State* L) {
  const std::string kind = luaL_checkstring(L, 1);
  const std::string method = std::string(protocol::kHumanPrefix) + kind;
  const protocol::MethodSpec* spec = protocol::find_method(method);
  if (!spec || spec->journal != protocol::Journaling::human)
    return luaL_error(L, "Human.%s does not exist", kind.c_str());
  Json params;
  std::string error;
  if (!to_json(L, 2, params, error)) raise_coded(L, "invalid_args", "Human." + kind + ": " + error);
  Json r = broker_request(L, method, params);
  if (!r.is_object()) raise_coded(L, "failed", "human." + kind + ": malformed answer");
  push_json(L, r.value("value", Json()));
  return 1;
}

// Step.checkpoint: asks the broker whether the journal holds this checkpoint's result
// ("checkpoint" -> {replayed, value}); if not, the VM runs the function and sends the result
// ("checkpoint.result"), which the broker journals.
int checkpoint_request(lua_State* L) {
  const std::string what = luaL_checkstring(L, 1);
  if (what != protocol::method::checkpoint && what != protocol::method::checkpoint_result)
    return luaL_error(L, "unknown checkpoint request");
  Json params;
  std::string error;
  if (!to_json(L, 2, params, error)) raise_coded(L, "invalid_args", "checkpoint: " + error);
  Json r = broker_request(L, what, params);
  if (what == protocol::method::checkpoint && r.is_object() && r.contains("state")) {
    restore_state(L, r["state"]);
    r.erase("state");
  }
  push_json(L, r);
  return 1;
}

// P.sync_state(): the state as the run ends is journaled too.
int sync_state_primitive(lua_State* L) {
  sync_state(L);
  return 0;
}

// "run", "validate" (tactus validate: declarations only, nothing brokered runs) or "test".
int run_mode(lua_State* L) {
  const std::string& mode = context_of(L).mode;
  lua_pushlstring(L, mode.data(), mode.size());
  return 1;
}

// P.source_line(text): the line of the procedure's source where text starts (a Specification's
// Gherkin sits there verbatim in a long string), or nil; and the file's name.
int source_line(lua_State* L) {
  std::size_t n = 0;
  const char* text = luaL_checklstring(L, 1, &n);
  const VmContext& c = context_of(L);
  std::string_view source = c.source;
  std::string unix_lines;
  if (source.find("\r\n") != std::string_view::npos) {
    // Lua reads CRLF in a long string as LF: look for the text in the source read the same way
    // (dropping those CRs changes no line number).
    unix_lines.reserve(source.size());
    for (std::size_t i = 0; i < source.size(); ++i)
      if (!(source[i] == '\r' && i + 1 < source.size() && source[i + 1] == '\n'))
        unix_lines.push_back(source[i]);
    source = unix_lines;
  }
  const auto at = n == 0 ? std::string_view::npos : source.find(std::string_view(text, n));
  if (at == std::string_view::npos)
    lua_pushnil(L);
  else
    lua_pushinteger(L, 1 + static_cast<lua_Integer>(std::count(
                               source.begin(), source.begin() + static_cast<long>(at), '\n')));
  const std::string_view name =
      std::string_view(c.chunkname).substr(c.chunkname.rfind('@', 0) == 0);
  lua_pushlstring(L, name.data(), name.size());
  return 2;
}

int json_encode(lua_State* L) {
  luaL_checkany(L, 1);
  Json value;
  std::string error;
  if (!to_json(L, 1, value, error)) return luaL_error(L, "json.encode: %s", error.c_str());
  const std::string text = protocol::dump_json(value);
  lua_pushlstring(L, text.data(), text.size());
  return 1;
}

int json_decode(lua_State* L) {
  std::size_t len = 0;
  const char* s = luaL_checklstring(L, 1, &len);
  const std::string_view text(s, len);
  if (protocol::json_depth(text) < 0) return luaL_error(L, "json.decode: nested too deeply");
  Json value = Json::parse(text.begin(), text.end(), nullptr, false);
  if (value.is_discarded()) return luaL_error(L, "json.decode: not valid JSON");
  push_json(L, value);
  return 1;
}

// The broker's clock (journaled in [durable], so a resumed run sees the same time).
double broker_now(lua_State* L) {
  Json r = broker_request(L, protocol::method::time_now, Json::object());
  if (!r.is_object() || !r.contains("unix") || !r["unix"].is_number())
    raise_coded(L, "failed", "time.now: malformed answer");
  return r["unix"].get<double>();
}

int get_field_int(lua_State* L, int t, const char* key, int fallback, bool required) {
  lua_getfield(L, t, key);
  int v = fallback;
  if (lua_isnumber(L, -1))
    v = static_cast<int>(lua_tointeger(L, -1));
  else if (required)
    luaL_error(L, "field '%s' missing in date table", key);
  lua_pop(L, 1);
  return v;
}

// os.time([t]): the broker's clock, or the table t read as UTC (the jail has no time zone).
int os_time(lua_State* L) {
  if (lua_isnoneornil(L, 1)) {
    lua_pushnumber(L, static_cast<lua_Number>(static_cast<long long>(broker_now(L))));
    return 1;
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  tm t{};
  t.tm_sec = get_field_int(L, 1, "sec", 0, false);
  t.tm_min = get_field_int(L, 1, "min", 0, false);
  t.tm_hour = get_field_int(L, 1, "hour", 12, false);
  t.tm_mday = get_field_int(L, 1, "day", 0, true);
  t.tm_mon = get_field_int(L, 1, "month", 0, true) - 1;
  t.tm_year = get_field_int(L, 1, "year", 0, true) - 1900;
  lua_pushnumber(L, static_cast<lua_Number>(timegm(&t)));
  return 1;
}

void set_int(lua_State* L, const char* key, int v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, key);
}

// os.date([format[, t]]): formatted in UTC; "*t" / "!*t" give a table.
int os_date(lua_State* L) {
  const char* fmt = luaL_optstring(L, 1, "%c");
  const time_t when = lua_isnoneornil(L, 2) ? static_cast<time_t>(broker_now(L))
                                            : static_cast<time_t>(luaL_checknumber(L, 2));
  if (*fmt == '!') ++fmt;
  tm t{};
  gmtime_r(&when, &t);
  if (std::strcmp(fmt, "*t") == 0) {
    lua_createtable(L, 0, 9);
    set_int(L, "sec", t.tm_sec);
    set_int(L, "min", t.tm_min);
    set_int(L, "hour", t.tm_hour);
    set_int(L, "day", t.tm_mday);
    set_int(L, "month", t.tm_mon + 1);
    set_int(L, "year", t.tm_year + 1900);
    set_int(L, "wday", t.tm_wday + 1);
    set_int(L, "yday", t.tm_yday + 1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "isdst");
    return 1;
  }
  char buf[512];
  const std::size_t n = std::strftime(buf, sizeof(buf), fmt, &t);
  lua_pushlstring(L, buf, n);
  return 1;
}

// os.clock(): seconds since the run started, by the broker's clock (journaled, so a resumed
// run sees the values the first run saw).
int os_clock(lua_State* L) {
  Json r = broker_request(L, protocol::method::time_clock, Json::object());
  if (!r.is_object() || !r.value("seconds", Json()).is_number())
    raise_coded(L, "failed", "time.clock: malformed answer");
  lua_pushnumber(L, r["seconds"].get<double>());
  return 1;
}

// math.random: LuaJIT's generator, seeded once per run from the broker (journaled) on first
// use, so a run is random and a resumed run draws the same numbers. Upvalues: the original
// math.random and math.randomseed. A procedure's own math.randomseed still applies after.
int math_random(lua_State* L) {
  VmContext& c = context_of(L);
  if (!c.random_seeded && c.channel) {
    Json r = broker_request(L, protocol::method::random_seed, Json::object());
    if (!r.is_object() || !r.value("seed", Json()).is_number())
      raise_coded(L, "failed", "random.seed: malformed answer");
    c.random_seeded = true;
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushnumber(L, r["seed"].get<double>());
    lua_call(L, 1, 0);
  }
  const int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

int math_randomseed(lua_State* L) {
  context_of(L).random_seeded = true;  // the procedure chose its own seed
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 0);
  return 0;
}

// ---- require ------------------------------------------------------------------------------

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
void load_procedure_module(lua_State* L, const std::string& name) {
  Json r = broker_request(L, "module.load", Json{{"name", name}});
  if (!r.is_object() || !r.value("source", Json()).is_string() ||
      !r.value("path", Json()).is_string())
    raise_coded(L, "failed", "module.load: malformed answer");
  const auto& source = r["source"].get_ref<const std::string&>();
  // Appended, not "@" + path: GCC 12 at -O3 warns (-Wrestrict) on that form, wrongly.
  std::string chunkname = "@";
  chunkname += r["path"].get_ref<const std::string&>();
  if (luaL_loadbufferx(L, source.data(), source.size(), chunkname.c_str(), "t") != 0) lua_error(L);
  lua_pushlstring(L, name.data(), name.size());
  lua_call(L, 1, 1);
}

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

// P.testing(): the testing runner (lua/tactus/testing/runner.lua), loaded through require when
// a mode needs it (validate's scenario list, tactus test, run --mock). The language's modules
// never require the testing modules, and a plain run never loads them.
int testing_runner(lua_State* L) {
  lua_settop(L, 0);
  lua_pushliteral(L, "tactus.testing.runner");
  return sandbox_require(L);
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

void set_closure(lua_State* L, int table, const char* name, lua_CFunction f, int upvalues = 0) {
  lua_pushcclosure(L, f, upvalues);
  lua_setfield(L, table, name);
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

void add_os(lua_State* L, int env) {
  lua_createtable(L, 0, 3);
  const int os = lua_gettop(L);
  set_closure(L, os, "time", os_time);
  set_closure(L, os, "date", os_date);
  set_closure(L, os, "clock", os_clock);
  make_readonly(L, "os");
  lua_setfield(L, env, "os");
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

// Tables the prelude defines as globals that the procedure must not change.
void freeze_prelude_globals(lua_State* L) {
  for (const char* name : {"Host", "field", "Log", "State", "Human", "Step"}) {
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

  // Only these libraries are opened at all; io, os, debug, package, ffi and jit never exist.
  open_lib(L, "", luaopen_base);  // includes coroutine in LuaJIT
  open_lib(L, LUA_STRLIBNAME, luaopen_string);
  open_lib(L, LUA_TABLIBNAME, luaopen_table);
  open_lib(L, LUA_MATHLIBNAME, luaopen_math);
  install_object_ids(L);  // before tostring and string.format are copied anywhere
  install_call_depth(L);  // before coroutine and string are made read-only
  // math.random and math.randomseed wrapped before the table is made read-only.
  lua_getfield(L, LUA_GLOBALSINDEX, "math");
  lua_getfield(L, -1, "random");
  lua_getfield(L, -2, "randomseed");
  lua_pushcclosure(L, math_random, 2);
  lua_setfield(L, -2, "random");
  lua_getfield(L, -1, "randomseed");
  lua_pushcclosure(L, math_randomseed, 1);
  lua_setfield(L, -2, "randomseed");
  lua_pop(L, 1);
  open_lib(L, LUA_BITLIBNAME, luaopen_bit);

  // string.dump goes from the real table, which strings' own metatable still points at.
  lua_getfield(L, LUA_GLOBALSINDEX, "string");
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);

  lua_newtable(L);
  const int env = lua_gettop(L);
  for (const char* name :
       {"assert", "error", "ipairs", "pcall", "xpcall", "select", "tonumber", "tostring", "type",
        "unpack", "rawequal", "setmetatable", "getmetatable", "_VERSION"})
    copy_global(L, env, name);
  set_closure(L, env, "rawget", safe_rawget);
  set_closure(L, env, "rawset", safe_rawset);
  set_closure(L, env, "rawlen", safe_rawlen);
  set_closure(L, env, "next", safe_next);
  lua_pushcfunction(L, safe_next);
  set_closure(L, env, "pairs", safe_pairs, 1);
  set_closure(L, env, "collectgarbage", safe_collectgarbage);
  lua_getfield(L, LUA_GLOBALSINDEX, "tostring");
  set_closure(L, env, "print", sandbox_print, 1);
  set_closure(L, env, "require", sandbox_require);
  for (const char* lib : {"string", "math", "coroutine", "bit"}) add_library(L, env, lib);
  add_table_library(L, env);
  add_os(L, env);
  protect_string_metatable(L, env);
  lua_pushvalue(L, env);
  lua_setfield(L, env, "_G");

  // Primitives for lua/ modules; the procedure never gets this table from a global.
  lua_pushlightuserdata(L, &kPrimitivesKey);
  lua_createtable(L, 0, 3);
  const int primitives = lua_gettop(L);
  set_closure(L, primitives, "host_call", host_call);
  set_closure(L, primitives, "json_encode", json_encode);
  set_closure(L, primitives, "json_decode", json_decode);
  set_closure(L, primitives, "limit_tripped", limit_tripped);
  set_closure(L, primitives, "llm_chat", llm_chat);
  lua_getfield(L, LUA_GLOBALSINDEX, "tostring");
  set_closure(L, primitives, "log", log_event, 1);
  set_closure(L, primitives, "mode", run_mode);
  set_closure(L, primitives, "source_line", source_line);
  set_closure(L, primitives, "human", human_request);
  set_closure(L, primitives, "checkpoint", checkpoint_request);
  set_closure(L, primitives, "sync_state", sync_state_primitive);
  set_closure(L, primitives, "testing", testing_runner);
  make_readonly(L, "primitives");
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
