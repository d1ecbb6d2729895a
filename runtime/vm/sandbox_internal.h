// What the three parts of the restricted environment share, internal to runtime/vm: the walls
// and their allowlist (sandbox_env.cpp), the doors out, everything that calls the broker
// (sandbox_doors.cpp), and require (sandbox_require.cpp).
#pragma once

#include <lua.hpp>

#include <string_view>

#include "runtime/protocol/message.h"

namespace tactus::vm::sandbox {

// Registry keys (the addresses of these statics; defined in sandbox_env.cpp).
extern char kReadonlyKey;    // weak-keyed table: proxy -> backing table
extern char kPrimitivesKey;  // the read-only primitives table handed to lua/ modules
extern char kLoadedKey;      // require's cache
extern char kModuleEnvKey;   // the lua/ modules' globals (install_sandbox)
extern char kRunnerKey;      // the prelude's runner (chunk, input) -> result

// The walls (sandbox_env.cpp).
// Replaces the table at the top of the stack with a read-only proxy of it.
void make_readonly(lua_State* L, const char* name);
bool is_readonly(lua_State* L, int idx);
void set_closure(lua_State* L, int table, const char* name, lua_CFunction f, int upvalues = 0);

// The doors (sandbox_doors.cpp).
// One brokered request; raises "code: message" on an error answer or a transport failure.
protocol::Json broker_request(lua_State* L, std::string_view method, const protocol::Json& params);
// print(...); upvalue 1: the original tostring.
int sandbox_print(lua_State* L);
// math.random and math.randomseed wrapped (seeded by the broker), on the real math table
// before it is shared.
void wrap_math_random(lua_State* L);
// env.os: time, date and clock only, brokered.
void add_os(lua_State* L, int env);
// Pushes the primitives table lua/ modules receive (read-only).
void push_primitives(lua_State* L);

// require (sandbox_require.cpp).
int sandbox_require(lua_State* L);
int procedure_require(lua_State* L);
// P.testing(): the testing runner, loaded when a mode needs it.
int testing_runner(lua_State* L);
int load_procedure(lua_State* L);
// Runs the prelude and keeps the runner it returns (kRunnerKey).
void run_prelude(lua_State* L);

}  // namespace tactus::vm::sandbox
