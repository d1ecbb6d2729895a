// The lua/ tree, compiled to bytecode and embedded at build time by cmake/embed_lua.cmake.
#pragma once

#include <span>
#include <string_view>

namespace tactus::vm {

struct EmbeddedModule {
  std::string_view name;       // "prelude", "tactus.io.json"
  std::string_view chunkname;  // "@lua/tactus/io/json.lua"
  std::string_view source;     // LuaJIT bytecode (cmake/lua_bytecode.cpp), with debug info
};

std::span<const EmbeddedModule> embedded_modules();

}  // namespace tactus::vm
