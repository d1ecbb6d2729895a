#include "runtime/vm/lua_json.h"

#include <lua.hpp>

#include <cmath>

namespace tactus::vm {
namespace {

using protocol::Json;

bool convert(lua_State* L, int idx, Json& out, std::string& error, int depth);

bool is_array(lua_State* L, int idx, std::size_t& n) {
  std::size_t count = 0;
  lua_Number max = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TNUMBER) {
      lua_pop(L, 1);
      return false;
    }
    const lua_Number k = lua_tonumber(L, -1);
    if (k < 1 || k != std::floor(k)) {
      lua_pop(L, 1);
      return false;
    }
    if (k > max) max = k;
    ++count;
  }
  n = count;
  return count > 0 && max == static_cast<lua_Number>(count);
}

bool convert_table(lua_State* L, int idx, Json& out, std::string& error, int depth) {
  if (depth >= protocol::kMaxJsonDepth) {
    error = "table nested too deeply (or cyclic)";
    return false;
  }
  if (!lua_checkstack(L, 4)) {
    error = "stack overflow";
    return false;
  }
  std::size_t n = 0;
  if (is_array(L, idx, n)) {
    out = Json::array();
    for (std::size_t i = 1; i <= n; ++i) {
      lua_rawgeti(L, idx, static_cast<int>(i));
      Json item;
      const bool ok = convert(L, lua_gettop(L), item, error, depth + 1);
      lua_pop(L, 1);
      if (!ok) return false;
      out.push_back(std::move(item));
    }
    return true;
  }
  out = Json::object();
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    std::string key;
    if (lua_type(L, -2) == LUA_TSTRING) {
      std::size_t len;
      const char* s = lua_tolstring(L, -2, &len);
      key.assign(s, len);
    } else if (lua_type(L, -2) == LUA_TNUMBER) {
      lua_pushvalue(L, -2);  // tolstring on a copy: converting the key itself breaks lua_next
      key = lua_tostring(L, -1);
      lua_pop(L, 1);
    } else {
      error = std::string("cannot encode a table key of type ") + luaL_typename(L, -2);
      lua_pop(L, 2);
      return false;
    }
    Json item;
    if (!convert(L, lua_gettop(L), item, error, depth + 1)) {
      lua_pop(L, 2);
      return false;
    }
    out[key] = std::move(item);
    lua_pop(L, 1);
  }
  return true;
}

bool convert(lua_State* L, int idx, Json& out, std::string& error, int depth) {
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      out = nullptr;
      return true;
    case LUA_TBOOLEAN:
      out = lua_toboolean(L, idx) != 0;
      return true;
    case LUA_TNUMBER: {
      const lua_Number v = lua_tonumber(L, idx);
      if (!std::isfinite(v)) {
        error = "cannot encode NaN or infinity";
        return false;
      }
      if (v == std::floor(v) && std::fabs(v) <= 9007199254740992.0)
        out = static_cast<std::int64_t>(v);
      else
        out = v;
      return true;
    }
    case LUA_TSTRING: {
      std::size_t len;
      const char* s = lua_tolstring(L, idx, &len);
      out = std::string(s, len);
      return true;
    }
    case LUA_TTABLE:
      return convert_table(L, idx, out, error, depth);
    default:
      error = std::string("cannot encode a value of type ") + luaL_typename(L, idx);
      return false;
  }
}

}  // namespace

bool to_json(lua_State* L, int idx, Json& out, std::string& error) {
  if (idx < 0 && idx > LUA_REGISTRYINDEX) idx = lua_gettop(L) + idx + 1;
  return convert(L, idx, out, error, 0);
}

void push_json(lua_State* L, const Json& value) {
  luaL_checkstack(L, 3, "JSON value nested too deeply");
  switch (value.type()) {
    case Json::value_t::null:
    case Json::value_t::discarded:
      lua_pushnil(L);
      return;
    case Json::value_t::boolean:
      lua_pushboolean(L, value.get<bool>());
      return;
    case Json::value_t::number_integer:
      lua_pushnumber(L, static_cast<lua_Number>(value.get<std::int64_t>()));
      return;
    case Json::value_t::number_unsigned:
      lua_pushnumber(L, static_cast<lua_Number>(value.get<std::uint64_t>()));
      return;
    case Json::value_t::number_float:
      lua_pushnumber(L, value.get<double>());
      return;
    case Json::value_t::string: {
      const auto& s = value.get_ref<const std::string&>();
      lua_pushlstring(L, s.data(), s.size());
      return;
    }
    case Json::value_t::binary:
      lua_pushnil(L);
      return;
    case Json::value_t::array: {
      lua_createtable(L, static_cast<int>(value.size()), 0);
      int i = 1;
      for (const auto& item : value) {
        push_json(L, item);
        lua_rawseti(L, -2, i++);
      }
      return;
    }
    case Json::value_t::object: {
      lua_createtable(L, 0, static_cast<int>(value.size()));
      for (const auto& item : value.items()) {
        lua_pushlstring(L, item.key().data(), item.key().size());
        push_json(L, item.value());
        lua_rawset(L, -3);
      }
      return;
    }
  }
  lua_pushnil(L);
}

}  // namespace tactus::vm
