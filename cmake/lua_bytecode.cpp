// Build-time helper: compiles one lua/ file to LuaJIT bytecode for embedding, so a VM loads
// its prelude and tactus.* modules without parsing them (about 0.07 ms instead of 0.7 ms per
// run, docs/performance.md). Debug info is kept: errors inside them still name file:line.
//
// usage: tactus_lua_bytecode INPUT.lua CHUNKNAME OUTPUT
// The bytecode is only ever loaded by the same LuaJIT this build links; procedures' own code is
// still loaded as text only.
#include <lua.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace {

int append(lua_State*, const void* p, size_t n, void* out) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(p), n);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s INPUT.lua CHUNKNAME OUTPUT\n", argv[0]);
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  std::stringstream source;
  source << in.rdbuf();
  if (!in) {
    std::fprintf(stderr, "%s: cannot read %s\n", argv[0], argv[1]);
    return 1;
  }
  lua_State* L = luaL_newstate();
  const std::string text = source.str();
  if (luaL_loadbufferx(L, text.data(), text.size(), argv[2], "t") != 0) {
    std::fprintf(stderr, "%s\n", lua_tostring(L, -1));  // a syntax error fails the build
    return 1;
  }
  std::string bytecode;
  if (lua_dump(L, append, &bytecode) != 0 || bytecode.empty()) {
    std::fprintf(stderr, "%s: cannot dump %s\n", argv[0], argv[1]);
    return 1;
  }
  lua_close(L);
  std::ofstream out(argv[3], std::ios::binary | std::ios::trunc);
  out.write(bytecode.data(), static_cast<std::streamsize>(bytecode.size()));
  return out ? 0 : 1;
}
