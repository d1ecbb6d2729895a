#include "runtime/vm/state_sync.h"

#include <lua.hpp>

#include <cstdint>
#include <cstring>
#include <string>

#include "runtime/vm/host_channel.h"
#include "runtime/vm/lua_json.h"
#include "runtime/vm/vm_context.h"

namespace tactus::vm {
namespace {

using protocol::Json;

std::uint64_t mix(std::uint64_t x) {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t hash_bytes(const char* p, std::size_t n) {
  std::uint64_t h = mix(n ^ 0x9e3779b97f4a7c15ULL);
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = mix(h ^ w);
  }
  std::uint64_t w = 0;
  std::memcpy(&w, p, n);
  return mix(h ^ w ^ 0x5354524eULL);
}

// A fingerprint of the value at idx from its contents alone (not addresses, not the order a
// table is walked in), so the first run and its replay decide the same way when to send. False
// for what JSON cannot carry (functions, cycles past the depth limit): the encoding then says
// why.
bool fingerprint(lua_State* L, int idx, int depth, std::uint64_t& out) {
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      out = mix(1);
      return true;
    case LUA_TBOOLEAN:
      out = mix(lua_toboolean(L, idx) ? 3 : 2);
      return true;
    case LUA_TNUMBER: {
      const lua_Number d = lua_tonumber(L, idx);
      std::uint64_t bits;
      std::memcpy(&bits, &d, sizeof bits);
      out = mix(bits ^ 0x4e554dULL);
      return true;
    }
    case LUA_TSTRING: {
      std::size_t n = 0;
      const char* s = lua_tolstring(L, idx, &n);
      out = hash_bytes(s, n);
      return true;
    }
    case LUA_TTABLE: {
      if (depth >= protocol::kMaxJsonDepth || !lua_checkstack(L, 3)) return false;
      if (idx < 0) idx = lua_gettop(L) + idx + 1;
      std::uint64_t sum = 0;
      lua_pushnil(L);
      while (lua_next(L, idx) != 0) {
        std::uint64_t k = 0, v = 0;
        if (!fingerprint(L, -2, depth + 1, k) || !fingerprint(L, -1, depth + 1, v)) {
          lua_pop(L, 2);
          return false;
        }
        sum += mix(k * 0x100000001b3ULL + v);  // a sum: the walk's order does not matter
        lua_pop(L, 1);
      }
      out = mix(sum ^ 0x5441424cULL);
      return true;
    }
    default:
      return false;
  }
}

std::uint64_t empty_table_fingerprint() {
  return mix(0 ^ 0x5441424cULL);
}

// The state at the top of the stack as JSON; raises naming the field JSON cannot carry.
Json state_as_json(lua_State* L) {
  Json out;
  std::string error;
  if (to_json(L, -1, out, error)) return out;
  if (lua_istable(L, -1)) {  // find the field that failed, for the message
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
      Json ignored;
      if (!to_json(L, -1, ignored, error)) {
        lua_pop(L, 1);
        const bool named = lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER;
        error = "state." + std::string(named ? lua_tostring(L, -1) : luaL_typename(L, -1)) + ": " +
                error;
        break;
      }
      lua_pop(L, 1);
    }
  }
  raise_coded(L, "invalid_args",
              (error.rfind("state", 0) == 0 ? error : "state: " + error) +
                  " (state is journaled with the run: it holds JSON values only)");
}

}  // namespace

void sync_state(lua_State* L) {
  VmContext& c = context_of(L);
  if (!c.journal_state || !c.channel) return;
  lua_getfield(L, LUA_GLOBALSINDEX, "state");
  std::uint64_t now = 0;
  const bool known = fingerprint(L, -1, 0, now);
  const std::uint64_t sent = c.state_sent != 0 ? c.state_sent : empty_table_fingerprint();
  if (known && now == sent) {
    lua_pop(L, 1);
    return;
  }
  Json state = state_as_json(L);  // raises when !known
  lua_pop(L, 1);
  if (state.is_array() && state.empty()) state = Json::object();  // an empty table is {}
  std::string reason;
  if (!c.channel->send(protocol::make_notification("state", Json{{"state", std::move(state)}}),
                       reason)) {
    if (c.channel->last_send_too_large()) raise_coded(L, "invalid_args", "state " + reason);
    raise_coded(L, "failed", "state: " + reason);
  }
  c.state_sent = now;
}

void restore_state(lua_State* L, const Json& state) {
  VmContext& c = context_of(L);
  lua_getfield(L, LUA_GLOBALSINDEX, "state");
  if (lua_istable(L, -1) && state.is_object()) {
    for (;;) {  // clear it: remove the first key left, until none is
      lua_pushnil(L);
      if (lua_next(L, -2) == 0) break;
      lua_pop(L, 1);
      lua_pushnil(L);
      lua_rawset(L, -3);
    }
    for (const auto& [key, value] : state.items()) {
      lua_pushlstring(L, key.data(), key.size());
      push_json(L, value);
      lua_rawset(L, -3);
    }
  } else {
    lua_pop(L, 1);
    push_json(L, state);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_GLOBALSINDEX, "state");
  }
  std::uint64_t now = 0;
  c.state_sent = fingerprint(L, -1, 0, now) ? now : 0;
  lua_pop(L, 1);
}

}  // namespace tactus::vm
