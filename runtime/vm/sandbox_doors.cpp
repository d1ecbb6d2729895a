// The doors out of the restricted environment: everything that calls the broker over fd 3
// (print, Host.call, llm.chat, Log.*, Human.*, checkpoints, the state, the brokered clocks and
// random seed) and the primitives table lua/ modules reach them by. The walls around them are
// sandbox_env.cpp.
#include <lua.hpp>

#include <sys/types.h>
#include <time.h>

#include <cstring>
#include <iterator>
#include <string>

#include "runtime/protocol/methods.h"
#include "runtime/vm/host_channel.h"
#include "runtime/vm/lua_json.h"
#include "runtime/vm/sandbox_internal.h"
#include "runtime/vm/state_sync.h"
#include "runtime/vm/vm_context.h"

namespace tactus::vm::sandbox {
namespace {

using protocol::Json;

int host_call(lua_State* L);
int llm_chat(lua_State* L);
int human_request(lua_State* L);
int checkpoint_request(lua_State* L);
int sync_state_primitive(lua_State* L);
int run_mode(lua_State* L);
int source_line(lua_State* L);
int json_encode(lua_State* L);
int json_decode(lua_State* L);
int limit_tripped(lua_State* L);
int trace_event(lua_State* L);
int traced(lua_State* L);

// The primitives lua/ modules receive as their second argument (P); the procedure never gets
// this table from a global. P.log is set apart: it keeps the original tostring as an upvalue.
const luaL_Reg kPrimitives[] = {
    {"host_call", host_call},
    {"llm_chat", llm_chat},
    {"human", human_request},
    {"checkpoint", checkpoint_request},
    {"sync_state", sync_state_primitive},
    {"mode", run_mode},
    {"source_line", source_line},
    {"json_encode", json_encode},
    {"json_decode", json_decode},
    {"limit_tripped", limit_tripped},
    {"trace", trace_event},
    {"traced", traced},
    {"testing", testing_runner},
    {"load_procedure", load_procedure},
    {"require", sandbox_require},  // lua/ modules' require: every embedded module
};

// P.trace(event, op, name, error): an agent turn or a Lua tool call beginning or ending, sent
// only when the broker traces the run (a notification: nothing waits for it).
int trace_event(lua_State* L) {
  VmContext& c = context_of(L);
  if (!c.trace || !c.channel) return 0;
  Json p = {{"event", luaL_checkstring(L, 1)},
            {"op", luaL_checkstring(L, 2)},
            {"name", luaL_checkstring(L, 3)}};
  if (lua_type(L, 4) == LUA_TSTRING) p["error"] = lua_tostring(L, 4);
  std::string reason;
  if (!c.channel->send(protocol::make_notification(protocol::method::trace, std::move(p)), reason))
    raise_coded(L, "failed", "trace: " + reason);
  return 0;
}

// P.traced(): whether the broker traces this run.
int traced(lua_State* L) {
  lua_pushboolean(L, context_of(L).trace);
  return 1;
}

// True once an instruction or output limit has tripped (for the prelude's xpcall).
int limit_tripped(lua_State* L) {
  lua_pushboolean(L, context_of(L).tripped != Tripped::none);
  return 1;
}

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

}  // namespace

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
  if (!c.channel->send(
          protocol::make_notification(std::string(protocol::method::print), Json{{"text", text}}),
          reason))
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

namespace {

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

// The broker's clock (journaled, so a resumed run sees the same time: docs/durability.md).
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

}  // namespace

void wrap_math_random(lua_State* L) {
  lua_getfield(L, LUA_GLOBALSINDEX, "math");
  lua_getfield(L, -1, "random");
  lua_getfield(L, -2, "randomseed");
  lua_pushcclosure(L, math_random, 2);
  lua_setfield(L, -2, "random");
  lua_getfield(L, -1, "randomseed");
  lua_pushcclosure(L, math_randomseed, 1);
  lua_setfield(L, -2, "randomseed");
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

void push_primitives(lua_State* L) {
  lua_createtable(L, 0, static_cast<int>(std::size(kPrimitives)) + 1);
  const int primitives = lua_gettop(L);
  for (const luaL_Reg& r : kPrimitives) set_closure(L, primitives, r.name, r.func);
  lua_getfield(L, LUA_GLOBALSINDEX, "tostring");
  set_closure(L, primitives, "log", log_event, 1);
  make_readonly(L, "primitives");
}

}  // namespace tactus::vm::sandbox
