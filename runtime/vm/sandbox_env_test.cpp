// Tries to break the restricted VM from inside: removed globals, the allowlist, read-only
// tables, the string metatable, binary chunks, the JIT, and the memory/instruction/output limits.
// In-process (no broker): Vm::create(limits, nullptr, ...).
#include <catch2/catch.hpp>

#include <lua.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "runtime/protocol/message.h"
#include "runtime/vm/vm.h"
#include "runtime/vm/vm_context.h"

namespace {

using tactus::protocol::Json;
using tactus::vm::RunOutcome;
using tactus::vm::Vm;
using tactus::vm::VmLimits;

std::string describe(const RunOutcome& o) {
  if (o.ok) return "ok, result = " + tactus::protocol::dump_json(o.result);
  return "failed, kind = " + o.kind + ", message = " + o.message;
}

RunOutcome run_lua(const std::string& source, const VmLimits& limits = {},
                   const Json& input = Json::object()) {
  std::string error;
  auto vm = Vm::create(limits, nullptr, error);
  INFO("Vm::create: " << error);
  REQUIRE(vm);
  return vm->run(source, "@test.tac", input);
}

// Runs source, requires it to succeed, returns its result.
Json run_ok(const std::string& source, const VmLimits& limits = {}) {
  INFO("source: " << source);
  const RunOutcome o = run_lua(source, limits);
  INFO(describe(o));
  REQUIRE(o.ok);
  return o.result;
}

constexpr std::uint64_t kMiB = 1024 * 1024;

}  // namespace

// ---- what is not there ------------------------------------------------------------------------

TEST_CASE("vm: every removed global and library function is absent", "[vm][sandbox]") {
  for (const char* expr : {"io",
                           "os.execute",
                           "os.getenv",
                           "os.exit",
                           "os.remove",
                           "os.rename",
                           "os.tmpname",
                           "os.setlocale",
                           "os.difftime",
                           "debug",
                           "ffi",
                           "jit",
                           "package",
                           "load",
                           "loadstring",
                           "loadfile",
                           "dofile",
                           "getfenv",
                           "setfenv",
                           "module",
                           "newproxy",
                           "gcinfo",
                           "string.dump",
                           "_G.string.dump",
                           "(\"\").dump",
                           "getmetatable(\"\").__index.dump",
                           "rawget(string, \"dump\")",
                           "_G.debug",
                           "_G.jit",
                           "_G.ffi",
                           "_G.package"}) {
    INFO("expression: " << expr);
    const Json r = run_ok(std::string("return type(") + expr + ")");
    CHECK(r == "nil");
  }
}

TEST_CASE("vm: os holds only time, clock and date", "[vm][sandbox]") {
  const Json r = run_ok(
      "local keys = {} for k in pairs(os) do keys[#keys + 1] = k end "
      "table.sort(keys) return table.concat(keys, ',')");
  CHECK(r == "clock,date,time");
}

TEST_CASE("vm: require refuses ffi, jit, io, debug, os, package, string and prelude",
          "[vm][sandbox]") {
  for (const char* name :
       {"ffi", "jit", "io", "debug", "os", "package", "prelude", "string", "table.new", "jit.util",
        "jit.opt", "lua/prelude", "../lua/prelude", "/etc/passwd", "tactus.io.nonexistent"}) {
    INFO("require(\"" << name << "\")");
    const Json r = run_ok(std::string("local ok, e = pcall(require, \"") + name +
                          "\") return {ok = ok, e = tostring(e)}");
    CHECK(r["ok"] == false);
    CHECK_THAT(r["e"].get<std::string>(),
               Catch::Contains(std::string("module '") + name + "' not found"));
  }
  // Directly, not under pcall: the run fails with the same message, with a position.
  const RunOutcome o = run_lua("local ffi = require('ffi')\nreturn ffi");
  INFO(describe(o));
  CHECK_FALSE(o.ok);
  CHECK(o.kind == "error");
  CHECK_THAT(o.message,
             Catch::StartsWith("test.tac:1:") && Catch::Contains("module 'ffi' not found"));
}

TEST_CASE("vm: require gives the embedded tactus modules, read-only and cached", "[vm][sandbox]") {
  const Json r = run_ok(
      "local j = require('tactus.io.json') "
      "local ok, e = pcall(function() j.encode = nil end) "
      "return {t = type(j), enc = type(j.encode), same = rawequal(j, require('tactus.io.json')), "
      "        modify_ok = ok, e = tostring(e)}");
  CHECK(r["t"] == "table");
  CHECK(r["enc"] == "function");
  CHECK(r["same"] == true);
  CHECK(r["modify_ok"] == false);
  CHECK_THAT(r["e"].get<std::string>(),
             Catch::Contains("attempt to modify read-only table 'tactus.io.json'"));
}

// ---- what is there
// -------------------------------------------------------------------------------

TEST_CASE("vm: the globals are exactly the allowlist", "[vm][sandbox]") {
  const std::map<std::string, std::string> expected = {{"assert", "function"},
                                                       {"error", "function"},
                                                       {"ipairs", "function"},
                                                       {"next", "function"},
                                                       {"pairs", "function"},
                                                       {"pcall", "function"},
                                                       {"xpcall", "function"},
                                                       {"print", "function"},
                                                       {"select", "function"},
                                                       {"tonumber", "function"},
                                                       {"tostring", "function"},
                                                       {"type", "function"},
                                                       {"unpack", "function"},
                                                       {"rawequal", "function"},
                                                       {"rawlen", "function"},
                                                       {"rawget", "function"},
                                                       {"rawset", "function"},
                                                       {"setmetatable", "function"},
                                                       {"getmetatable", "function"},
                                                       {"collectgarbage", "function"},
                                                       {"require", "function"},
                                                       {"string", "table"},
                                                       {"table", "table"},
                                                       {"math", "table"},
                                                       {"coroutine", "table"},
                                                       {"bit", "table"},
                                                       {"os", "table"},
                                                       {"Host", "table"},
                                                       {"_G", "table"},
                                                       {"_VERSION", "string"},
                                                       {"input", "table"},
                                                       // the language (lua/prelude.lua)
                                                       {"Procedure", "table"},
                                                       {"procedure", "function"},
                                                       {"output", "function"},
                                                       {"field", "table"},
                                                       {"Agent", "function"},
                                                       {"agent", "function"},
                                                       {"Tool", "table"},
                                                       {"Toolset", "table"},
                                                       {"State", "table"},
                                                       {"state", "table"},
                                                       {"Log", "table"},
                                                       {"Step", "table"},
                                                       {"checkpoint", "function"},
                                                       {"Specification", "function"},
                                                       {"specifications", "function"},
                                                       {"Mocks", "function"},
                                                       {"Evaluation", "function"},
                                                       {"Human", "table"},
                                                       // Python Tactus's (docs/language.md)
                                                       {"tool", "function"},
                                                       {"toolset", "function"},
                                                       {"step", "function"},
                                                       {"evaluation", "function"},
                                                       {"evaluations", "function"},
                                                       {"stages", "function"},
                                                       {"Stage", "table"},
                                                       {"Iterations", "table"},
                                                       {"MessageHistory", "table"},
                                                       {"Session", "table"},
                                                       {"python", "table"},
                                                       {"default_model", "function"},
                                                       {"default_provider", "function"},
                                                       {"prompt", "function"},
                                                       {"hitl", "function"},
                                                       {"return_prompt", "function"},
                                                       {"error_prompt", "function"},
                                                       {"status_prompt", "function"},
                                                       {"max_turns", "function"},
                                                       {"max_depth", "function"},
                                                       {"Stop", "table"},
                                                       {"Json", "table"},
                                                       {"Retry", "table"},
                                                       {"File", "table"},
                                                       {"Model", "table"},
                                                       {"model", "function"},
                                                       {"Classify", "function"}};
  const Json r =
      run_ok("local t = {} for k, v in pairs(_G) do t[tostring(k)] = type(v) end return t");
  REQUIRE(r.is_object());
  std::map<std::string, std::string> actual;
  for (const auto& item : r.items()) actual[item.key()] = item.value().get<std::string>();
  for (const auto& [name, type] : expected) {
    INFO("global " << name);
    CHECK(actual.count(name) == 1);
    if (actual.count(name)) CHECK(actual[name] == type);
  }
  for (const auto& [name, type] : actual) {
    INFO("unexpected global " << name << " (" << type << ")");
    CHECK(expected.count(name) == 1);
  }
  // _G is the environment itself, and Host offers call.
  CHECK(run_ok("return rawequal(_G, _G._G) and type(Host.call) == 'function'") == true);
}

// ---- read-only shared tables -------------------------------------------------------------------

namespace {

struct Shared {
  const char* expr;
  const char* name;
  const char* key;  // an existing key
};

constexpr Shared kShared[] = {
    {"string", "string", "upper"}, {"table", "table", "concat"},
    {"math", "math", "floor"},     {"coroutine", "coroutine", "wrap"},
    {"bit", "bit", "band"},        {"os", "os", "time"},
    {"Host", "Host", "call"},      {"getmetatable('')", "string metatable", "__index"},
};

std::string readonly_attack(const Shared& s) {
  std::string src = "local T = " + std::string(s.expr) + "\nlocal KEY = '" + s.key + "'\n";
  src += R"lua(
local function count(t) local n = 0 for _ in pairs(t) do n = n + 1 end return n end
local before_n, before_len, existing = count(T), rawlen(T), T[KEY]
local r = {}
local function try(label, f, ...)
  local ok, e = pcall(f, ...)
  r[label] = ok and "NO ERROR" or tostring(e)
end
try("assign_new", function() T.tactus_new_key = 1 end)
try("assign_existing", function() T[KEY] = nil end)
try("assign_index", function() T[1] = 1 end)
try("rawset_new", rawset, T, "tactus_new_key", 1)
try("rawset_existing", rawset, T, KEY, false)
try("setmetatable", setmetatable, T, {})
try("setmetatable_nil", setmetatable, T, nil)
try("insert", table.insert, T, 1)
try("insert_pos", table.insert, T, 1, 1)
try("remove", table.remove, T)
try("remove_pos", table.remove, T, 1)
try("sort", table.sort, T)
r.unchanged = T[KEY] == existing and rawget(T, KEY) == existing and T.tactus_new_key == nil
  and rawget(T, "tactus_new_key") == nil and T[1] == nil and count(T) == before_n
  and rawlen(T) == before_len
r.protected_mt = getmetatable(T)
return r
)lua";
  return src;
}

}  // namespace

TEST_CASE("vm: shared tables refuse every kind of write and stay unchanged", "[vm][sandbox]") {
  for (const Shared& s : kShared) {
    INFO("table " << s.expr);
    const Json r = run_ok(readonly_attack(s));
    const std::string want = std::string("attempt to modify read-only table '") + s.name + "'";
    for (const char* label : {"assign_new", "assign_existing", "assign_index"}) {
      INFO(label);
      const std::string e = r[label].get<std::string>();
      // Exactly the documented message, with the position of the assignment.
      CHECK_THAT(e, Catch::Matches("test\\.tac:[0-9]+: " + want));
    }
    for (const char* label : {"rawset_new", "rawset_existing", "setmetatable", "setmetatable_nil",
                              "insert", "insert_pos", "remove", "remove_pos", "sort"}) {
      INFO(label << ": " << r[label]);
      CHECK(r[label] != "NO ERROR");
    }
    CHECK(r["unchanged"] == true);
    CHECK(r["protected_mt"] == "read-only table");
  }
  // And the functions still work afterwards, in the same run.
  CHECK(run_ok("pcall(function() string.upper = nil end) pcall(rawset, string, 'upper', nil) "
               "return string.upper('a') .. ('b'):upper()") == "AB");
}

TEST_CASE("vm: reading shared tables works: pairs, next, rawget, rawlen", "[vm][sandbox]") {
  const Json r = run_ok(R"lua(
local n, all_fn = 0, true
for k, v in pairs(string) do n = n + 1; if type(v) ~= "function" then all_fn = false end end
local k1 = next(math)
return {
  n = n, all_fn = all_fn,
  has_upper = rawget(string, "upper") == string.upper and type(rawget(string, "upper")) == "function",
  next_math = k1 ~= nil and math[k1] ~= nil,
  rawlen_string = rawlen(string), rawlen_s = rawlen("abc"),
  pi = math.pi, concat = table.concat({1, 2, 3}, "-"), band = bit.band(6, 3),
}
)lua");
  CHECK(r["n"].get<int>() >= 10);  // 13 in LuaJIT 2.1 without dump
  CHECK(r["all_fn"] == true);
  CHECK(r["has_upper"] == true);
  CHECK(r["next_math"] == true);
  CHECK(r["rawlen_string"] == 0);
  CHECK(r["rawlen_s"] == 3);
  CHECK(r["pi"].get<double>() == Approx(3.14159265358979));
  CHECK(r["concat"] == "1-2-3");
  CHECK(r["band"] == 2);
}

// pairs() returns (next, state, nil): the state handed to the procedure must not be the writable
// table behind the proxy.
TEST_CASE("vm: pairs on a read-only table does not hand out the writable table behind it",
          "[vm][sandbox]") {
  for (const Shared& s : kShared) {
    INFO("table " << s.expr);
    const Json r = run_ok("local T = " + std::string(s.expr) + "\nlocal KEY = '" + s.key + "'\n" +
                          R"lua(
local _, state = pairs(T)
local before = T[KEY]
local ok = pcall(function() state[KEY] = "pwned"; state.tactus_new_key = 1 end)
return {writable = ok and rawequal(state[KEY], "pwned"), unchanged = T[KEY] == before and T.tactus_new_key == nil}
)lua");
    CHECK(r["writable"] == false);
    CHECK(r["unchanged"] == true);
  }
  // The concrete attack: swap string.upper for every string in the run.
  CHECK(run_ok("local _, s = pairs(string) pcall(function() s.upper = function() return 'pwned' "
               "end end) "
               "return ('a'):upper()") == "A");
}

TEST_CASE("vm: table.move cannot write into a read-only table", "[vm][sandbox]") {
  const Json r = run_ok(R"lua(
if not table.move then return "absent" end
local ok, e = pcall(table.move, {1, 2, 3}, 1, 3, 1, string)
return {ok = ok, first = rawequal(string[1], nil)}
)lua");
  if (r == "absent")
    SUCCEED("table.move is not in this LuaJIT");
  else {
    CHECK(r["ok"] == false);
    CHECK(r["first"] == true);
  }
}

// ---- the string metatable ----------------------------------------------------------------------

TEST_CASE("vm: the string metatable is a protected stand-in", "[vm][sandbox]") {
  const Json r = run_ok(R"lua(
local mt = getmetatable("")
local r = {}
r.index_is_string = rawequal(mt.__index, string)
r.set_index = pcall(function() getmetatable("").__index = {} end)
r.set_index_fn = pcall(function() getmetatable("").__index = function() return "pwned" end end)
r.set_tostring = pcall(function() getmetatable("").__tostring = function() return "pwned" end end)
r.rawset_index = pcall(rawset, mt, "__index", {})
r.setmetatable_str = pcall(setmetatable, "", {})
r.setmetatable_mt = pcall(setmetatable, mt, {})
r.upper_after = ("x"):upper()
r.len_after = ("abc"):len()
r.format_after = ("%d-%s"):format(4, "z")
r.mt_same = rawequal(getmetatable(""), getmetatable("other"))
return r
)lua");
  CHECK(r["index_is_string"] == true);
  for (const char* k : {"set_index", "set_index_fn", "set_tostring", "rawset_index",
                        "setmetatable_str", "setmetatable_mt"}) {
    INFO(k);
    CHECK(r[k] == false);
  }
  CHECK(r["upper_after"] == "X");
  CHECK(r["len_after"] == 3);
  CHECK(r["format_after"] == "4-z");
  CHECK(r["mt_same"] == true);
}

// ---- collectgarbage ----------------------------------------------------------------------------

TEST_CASE("vm: collectgarbage offers only \"count\"", "[vm][sandbox]") {
  const Json r = run_ok("return type(collectgarbage('count'))");
  CHECK(r == "number");
  CHECK(run_ok("return collectgarbage('count') > 0") == true);
  for (const char* call : {"collectgarbage()", "collectgarbage('collect')",
                           "collectgarbage('stop')", "collectgarbage('step', 0)",
                           "collectgarbage('setpause', 1000)", "collectgarbage('restart')"}) {
    INFO(call);
    const RunOutcome o = run_lua(std::string("return ") + call);
    INFO(describe(o));
    CHECK_FALSE(o.ok);
    CHECK(o.kind == "error");
    CHECK_THAT(o.message, Catch::Contains("collectgarbage: only \"count\" is available in tactus"));
  }
}

// ---- loading ---------------------------------------------------------------------------------

TEST_CASE("vm: binary chunks are refused", "[vm][sandbox]") {
  // The header of a LuaJIT bytecode dump, then junk.
  const std::string binary = std::string("\x1bLJ\x02\x00\x00\x00", 7) + "return 1";
  const RunOutcome o = run_lua(binary);
  INFO(describe(o));
  CHECK_FALSE(o.ok);
  CHECK(o.kind == "error");
  CHECK_THAT(o.message, Catch::Contains("binary") || Catch::Contains("mode"));
  // Also a bare escape byte.
  const RunOutcome o2 = run_lua("\x1b");
  INFO(describe(o2));
  CHECK_FALSE(o2.ok);
}

TEST_CASE("vm: a syntax error fails the run cleanly", "[vm][sandbox]") {
  const RunOutcome o = run_lua("return (");
  INFO(describe(o));
  CHECK_FALSE(o.ok);
  CHECK(o.kind == "error");
  CHECK_THAT(o.message, Catch::StartsWith("test.tac:1:"));
}

// ---- the JIT ---------------------------------------------------------------------------------

// The VM turns the JIT engine off so that the count hook sees every instruction (compiled traces
// never call it). jit.status() cannot tell from outside: luaopen_jit runs jit_init, which turns
// the compiler ON, so opening the library in the test's state would always report true. So: the
// VM must not have the jit library at all, and the test checks that opening it really flips the
// flag (i.e. that status() is a meaningful probe); the behavioural check is the next test.
TEST_CASE("vm: the jit library is not opened in the VM", "[vm][sandbox]") {
  std::string error;
  auto vm = Vm::create({}, nullptr, error);
  REQUIRE(vm);
  lua_State* L = vm->state();
  const int top = lua_gettop(L);
  lua_getfield(L, LUA_GLOBALSINDEX, "jit");
  CHECK(lua_isnil(L, -1));
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "jit");
    CHECK(lua_isnil(L, -1));
    lua_pop(L, 1);
    lua_getfield(L, -1, "ffi");
    CHECK(lua_isnil(L, -1));
    lua_pop(L, 1);
  }
  lua_settop(L, top);
  // Test-only: open it here, then switch the engine off the way Vm::create does.
  lua_pushcfunction(L, luaopen_jit);
  lua_pushliteral(L, "jit");
  lua_call(L, 1, 0);
  lua_getfield(L, LUA_GLOBALSINDEX, "jit");
  REQUIRE(lua_istable(L, -1));
  const int jit = lua_gettop(L);
  luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
  lua_getfield(L, jit, "status");
  lua_call(L, 0, 1);
  CHECK_FALSE(lua_toboolean(L, -1));
  lua_settop(L, top);
}

TEST_CASE("vm: hot loops are still counted instruction by instruction (no compiled traces)",
          "[vm][limits]") {
  VmLimits limits;
  limits.instructions = 1000000;
  // A trivially compilable numeric loop: compiled code would not call the count hook.
  const RunOutcome o = run_lua("local x = 0 for i = 1, 1e9 do x = x + i end return x", limits);
  INFO(describe(o));
  CHECK_FALSE(o.ok);
  CHECK(o.kind == "instructions");
  // A hot loop calling a function.
  const RunOutcome o2 = run_lua(
      "local function f(a) return a + 1 end local x = 0 for i = 1, 1e9 do x = f(x) end return x",
      limits);
  INFO(describe(o2));
  CHECK_FALSE(o2.ok);
  CHECK(o2.kind == "instructions");
}

// ---- memory ----------------------------------------------------------------------------------

TEST_CASE("vm: the memory limit ends an allocation loop", "[vm][limits]") {
  VmLimits limits;
  limits.memory = 4 * kMiB;
  std::string error;
  auto vm = Vm::create(limits, nullptr, error);
  REQUIRE(vm);
  const RunOutcome o =
      vm->run("local t = {} for i = 1, 1e9 do t[#t + 1] = string.rep('x', 1024) .. i end return #t",
              "@test.tac", Json::object());
  INFO(describe(o));
  CHECK_FALSE(o.ok);
  CHECK(o.kind == "memory");
  CHECK_THAT(o.message, Catch::Contains("not enough memory"));
  CHECK(vm->context().alloc.peak <= limits.memory);
  CHECK(vm->context().alloc.refusals > 0);
}

TEST_CASE("vm: the memory limit holds against one huge allocation and table growth",
          "[vm][limits]") {
  VmLimits limits;
  limits.memory = 4 * kMiB;
  for (const char* src : {"return #string.rep('x', 64 * 1024 * 1024)",
                          "local s = 'x' for i = 1, 40 do s = s .. s end return #s",
                          "local t = {} for i = 1, 1e8 do t[i] = i end return #t",
                          "local t = {} for i = 1, 1e8 do t[i .. ''] = true end return 1",
                          "return #table.concat({string.rep('y', 3 * 1024 * 1024), string.rep('z', "
                          "3 * 1024 * 1024)})"}) {
    INFO(src);
    const RunOutcome o = run_lua(src, limits);
    INFO(describe(o));
    CHECK_FALSE(o.ok);
    CHECK(o.kind == "memory");
  }
}

TEST_CASE("vm: a caught allocation failure is not sticky", "[vm][limits]") {
  VmLimits limits;
  limits.memory = 4 * kMiB;
  const Json r = run_ok(R"lua(
local ok, e = pcall(string.rep, "x", 64 * 1024 * 1024)
local t = {}
for i = 1, 100 do t[i] = string.rep("y", 100) .. i end
return {ok = ok, e = tostring(e), n = #t, after = #string.rep("z", 1000)}
)lua",
                        limits);
  CHECK(r["ok"] == false);
  CHECK_THAT(r["e"].get<std::string>(), Catch::Contains("not enough memory"));
  CHECK(r["n"] == 100);
  CHECK(r["after"] == 1000);
}

// The heap fills up slowly inside a pcall; once the pcall has failed all of it is garbage.
// collectgarbage() is not available to the procedure, so the VM must be able to reclaim it.
// LuaJIT does not collect when an allocation fails; the count hook collects at its next step
// (every 10000 instructions), so a procedure that caught the error gets its memory back then.
TEST_CASE("vm: after a caught gradual exhaustion the garbage is reclaimed at the next hook step",
          "[vm][limits]") {
  VmLimits limits;
  limits.memory = 4 * kMiB;
  const RunOutcome o = run_lua(R"lua(
local ok, e = pcall(function()
  local t = {}
  for i = 1, 1e9 do t[#t + 1] = string.rep("x", 1024) .. i end
end)
for _ = 1, 20000 do end  -- no allocation: lets the hook step come round
local s = {}
for i = 1, 1000 do s[i] = string.rep("z", 1024) .. i end
return {ok = ok, e = tostring(e), n = #s}
)lua",
                               limits);
  INFO(describe(o));
  CHECK(o.ok);
  if (o.ok) {
    CHECK(o.result["ok"] == false);
    CHECK(o.result["n"] == 1000);
  }
}

// ---- instructions ------------------------------------------------------------------------------

namespace {
VmLimits instruction_limits() {
  VmLimits l;
  l.instructions = 100000;
  return l;
}
}  // namespace

TEST_CASE("vm: the instruction limit ends an infinite loop, with its position", "[vm][limits]") {
  const RunOutcome o = run_lua("while true do end", instruction_limits());
  INFO(describe(o));
  CHECK_FALSE(o.ok);
  CHECK(o.kind == "instructions");
  CHECK_THAT(o.message, Catch::Contains("instruction limit exceeded"));
  CHECK_THAT(o.message, Catch::StartsWith("test.tac:1:"));
}

TEST_CASE("vm: the instruction limit is sticky: pcall, xpcall and coroutines cannot swallow it",
          "[vm][limits]") {
  for (const char* src : {
           "pcall(function() while true do end end) return 'escaped'",
           "local ok, e = pcall(function() while true do end end)\nreturn 'escaped: ' .. "
           "tostring(e)",
           "for i = 1, 10 do pcall(function() while true do end end) end return 'escaped'",
           "xpcall(function() while true do end end, function(e) return e end) return 'escaped'",
           "local co = coroutine.create(function() while true do end end)\n"
           "local ok, e = coroutine.resume(co) return 'escaped: ' .. tostring(e)",
           "local f = coroutine.wrap(function() while true do end end)\n"
           "pcall(f) return 'escaped'",
           "local co = coroutine.create(function() pcall(function() while true do end end) "
           "coroutine.yield('escaped') end)\nlocal ok, v = coroutine.resume(co) return v",
           "return (pcall(function() while true do end end))",
       }) {
    INFO("source: " << src);
    const RunOutcome o = run_lua(src, instruction_limits());
    INFO(describe(o));
    CHECK_FALSE(o.ok);
    CHECK(o.kind == "instructions");
    CHECK_THAT(o.message, Catch::Contains("instruction limit exceeded (100000)"));
  }
}

// LuaJIT calls an xpcall message handler for an error raised in the count hook while the hook
// is still marked active, so no hook fires inside that handler: it would run unmetered (and a
// handler with `while true do end` would never end). The handler below records how far it got in
// a global; it must not get anywhere once the limit has tripped.
TEST_CASE("vm: an xpcall message handler cannot run unmetered after the instruction limit trips",
          "[vm][limits]") {
  std::string error;
  auto vm = Vm::create(instruction_limits(), nullptr, error);
  REQUIRE(vm);
  const RunOutcome o = vm->run(R"lua(
xpcall(function() while true do end end, function(e)
  local n = 0
  for i = 1, 1000000 do n = n + 1 end
  handler_count = n
  return e
end)
return 'escaped'
)lua",
                               "@test.tac", Json::object());
  INFO(describe(o));
  CHECK_FALSE(o.ok);
  CHECK(o.kind == "instructions");
  lua_State* L = vm->state();
  lua_getfield(L, LUA_GLOBALSINDEX, "handler_count");
  INFO("handler_count = " << (lua_isnil(L, -1) ? std::string("nil") : lua_tostring(L, -1)));
  CHECK(lua_isnil(L, -1));
  lua_pop(L, 1);
}

TEST_CASE("vm: without an instruction limit a long loop finishes", "[vm][limits]") {
  CHECK(run_ok("local x = 0 for i = 1, 300000 do x = x + 1 end return x") == 300000);
}

// ---- output ----------------------------------------------------------------------------------

TEST_CASE("vm: the output limit counts print even without a broker, and is sticky",
          "[vm][limits]") {
  VmLimits limits;
  limits.output = 100;
  for (const char* src : {
           "for i = 1, 20 do print(string.rep('x', 9)) end return 'escaped'",
           "for i = 1, 20 do pcall(print, string.rep('x', 9)) end return 'escaped'",
           "for i = 1, 20 do pcall(function() print(string.rep('x', 9)) end) end return 'escaped'",
           "pcall(print, string.rep('x', 200)) return 'escaped'",
           "print(string.rep('x', 50), string.rep('y', 50))",
       }) {
    INFO("source: " << src);
    const RunOutcome o = run_lua(src, limits);
    INFO(describe(o));
    CHECK_FALSE(o.ok);
    CHECK(o.kind == "output");
    CHECK_THAT(o.message, Catch::Contains("output limit exceeded (100 bytes)"));
  }
  // Under the limit: fine.
  CHECK(run_ok("for i = 1, 9 do print(string.rep('x', 9)) end return 'ok'", limits) == "ok");
}

// A tail call hands pcall's results straight back to Vm::run: no instruction of the chunk runs
// after the limit trips, so the sticky re-raise in the count hook never happens. The run must
// still end with the limit, not ok.
TEST_CASE("vm: a limit tripped under a tail-called pcall still fails the run", "[vm][limits]") {
  for (const char* src :
       {"return pcall(function() while true do end end)",
        "return coroutine.resume(coroutine.create(function() while true do end end))",
        "return xpcall(function() while true do end end, tostring)"}) {
    INFO("source: " << src);
    const RunOutcome o = run_lua(src, instruction_limits());
    INFO(describe(o));
    CHECK_FALSE(o.ok);
    CHECK(o.kind == "instructions");
  }
  VmLimits limits;
  limits.output = 100;
  const RunOutcome o = run_lua("return pcall(print, string.rep('x', 200))", limits);
  INFO(describe(o));
  CHECK_FALSE(o.ok);
  CHECK(o.kind == "output");
}

// ---- Host.call and os.* without a broker -------------------------------------------------------

TEST_CASE("vm: Host.call without a broker fails with a coded error that pcall catches",
          "[vm][sandbox]") {
  const Json r = run_ok(R"lua(
local r = {}
local ok, e = pcall(Host.call, "host.ping", {a = 1})
r.ping = {ok = ok, e = tostring(e)}
ok, e = pcall(Host.call, "host.ping", {f = print})
r.fn = {ok = ok, e = tostring(e)}
ok, e = pcall(Host.call, "host.ping", print)
r.fn2 = {ok = ok, e = tostring(e)}
ok, e = pcall(Host.call)
r.noname = {ok = ok, e = tostring(e)}
ok, e = pcall(Host.call, 42)
r.number = {ok = ok, e = tostring(e)}
local cyc = {} cyc.self = cyc
ok, e = pcall(Host.call, "host.ping", cyc)
r.cyclic = {ok = ok, e = tostring(e)}
ok, e = pcall(os.time)
r.time = {ok = ok, e = tostring(e)}
ok, e = pcall(os.date)
r.date = {ok = ok, e = tostring(e)}
ok, e = pcall(os.clock)
r.clock = {ok = ok, e = tostring(e)}
return r
)lua");
  CHECK(r["ping"]["ok"] == false);
  CHECK_THAT(r["ping"]["e"].get<std::string>(), Catch::StartsWith("failed:"));
  for (const char* k : {"fn", "fn2", "noname", "number", "cyclic"}) {
    INFO(k << ": " << r[k]);
    CHECK(r[k]["ok"] == false);
    CHECK_THAT(r[k]["e"].get<std::string>(), Catch::StartsWith("invalid_args:"));
  }
  for (const char* k : {"time", "date", "clock"}) {
    INFO(k << ": " << r[k]);
    CHECK(r[k]["ok"] == false);
    CHECK_THAT(r[k]["e"].get<std::string>(), Catch::StartsWith("failed:"));
  }
}

TEST_CASE("vm: os.time with a table and os.date with a time need no broker", "[vm][sandbox]") {
  const Json r = run_ok(R"lua(
return {
  t = os.time({year = 2000, month = 1, day = 1, hour = 0}),
  d = os.date("!%Y-%m-%d %H:%M:%S", 946684800),
  y = os.date("*t", 0).year,
}
)lua");
  CHECK(r["t"] == 946684800);
  CHECK(r["d"] == "2000-01-01 00:00:00");
  CHECK(r["y"] == 1970);
}

// ---- results as JSON ---------------------------------------------------------------------------

TEST_CASE("vm: results convert to JSON: scalars, arrays, nested tables, input", "[vm][json]") {
  CHECK(run_ok("return nil").is_null());
  CHECK(run_ok("return 42") == 42);
  CHECK(run_ok("return -1.5") == -1.5);
  CHECK(run_ok("return 'x\\0y'") == std::string("x\0y", 3));
  CHECK(run_ok("return {1, 2, 3}") == Json::array({1, 2, 3}));
  CHECK(run_ok("return {a = {b = {c = {1, 'two', true, false}}}, n = 1.25}") ==
        Json::parse(R"({"a":{"b":{"c":[1,"two",true,false]}},"n":1.25})"));
  CHECK(run_ok("return {}") == Json::object());
  CHECK(run_ok("return {[1] = 'a', [3] = 'c'}") == Json::parse(R"({"1":"a","3":"c"})"));
  CHECK(run_ok("return 2^53") == 9007199254740992LL);

  const Json input = Json::parse(R"({"a":[1,2,{"b":"c"}],"n":1.5,"s":"x","t":true,"o":{"k":"v"}})");
  const RunOutcome o = run_lua("return input", {}, input);
  INFO(describe(o));
  REQUIRE(o.ok);
  CHECK(o.result == input);
}

TEST_CASE("vm: results that are not JSON fail the run cleanly", "[vm][json]") {
  struct Case {
    const char* src;
    const char* says;
  };
  for (const Case& c :
       {Case{"local t = {} t.self = t return t", "nested too deeply"},
        Case{"local t = {} t[1] = t return t", "nested too deeply"},
        Case{"local t = {} local u = t for i = 1, 500 do u.x = {} u = u.x end return t",
             "nested too deeply"},
        Case{"return 0/0", "NaN"}, Case{"return {x = 1/0}", "infinity"},
        Case{"return print", "function"}, Case{"return {f = function() end}", "function"},
        Case{"return coroutine.create(print)", "thread"}, Case{"return {[{}] = 1}", "key"}}) {
    INFO(c.src);
    const RunOutcome o = run_lua(c.src);
    INFO(describe(o));
    CHECK_FALSE(o.ok);
    CHECK(o.kind == "error");
    CHECK_THAT(o.message,
               Catch::StartsWith("the result cannot be returned:") && Catch::Contains(c.says));
  }
}

TEST_CASE("vm: tactus.io.json encode/decode round-trips and refuses bad input", "[vm][json]") {
  const Json r = run_ok(R"lua(
local json = require("tactus.io.json")
local v = {a = {1, 2, 3}, b = "x\n\"y\"", c = {d = true, e = 1.5}}
local s = json.encode(v)
local back = json.decode(s)
local cyc = {} cyc.self = cyc
local ok1, e1 = pcall(json.encode, cyc)
local ok2, e2 = pcall(json.decode, "{not json")
local ok3, e3 = pcall(json.decode, string.rep("[", 1000) .. string.rep("]", 1000))
local ok4, e4 = pcall(json.encode, print)
return {back = back, again = json.encode(back) == s, ok1 = ok1, e1 = tostring(e1),
        ok2 = ok2, e2 = tostring(e2), ok3 = ok3, e3 = tostring(e3), ok4 = ok4, e4 = tostring(e4)}
)lua");
  CHECK(r["back"] == Json::parse(R"({"a":[1,2,3],"b":"x\n\"y\"","c":{"d":true,"e":1.5}})"));
  CHECK(r["again"] == true);
  CHECK(r["ok1"] == false);
  CHECK_THAT(r["e1"].get<std::string>(), Catch::Contains("nested too deeply"));
  CHECK(r["ok2"] == false);
  CHECK_THAT(r["e2"].get<std::string>(), Catch::Contains("not valid JSON"));
  CHECK(r["ok3"] == false);
  CHECK_THAT(r["e3"].get<std::string>(), Catch::Contains("nested too deeply"));
  CHECK(r["ok4"] == false);
  CHECK_THAT(r["e4"].get<std::string>(), Catch::Contains("function"));
}

TEST_CASE("vm: error values of any type end the run as a readable error", "[vm][sandbox]") {
  struct Case {
    const char* src;
    const char* says;
  };
  for (const Case& c :
       {Case{"error('boom')", "test.tac:1: boom"}, Case{"error('boom', 0)", "boom"},
        Case{"error({code = 7})", "error object: {\"code\":7}"}, Case{"error(nil)", "nil"},
        Case{"error(print)", "function"},
        Case{"error(setmetatable({}, {__index = function() error('x') end}))", "error object"}}) {
    INFO(c.src);
    const RunOutcome o = run_lua(c.src);
    INFO(describe(o));
    CHECK_FALSE(o.ok);
    CHECK(o.kind == "error");
    CHECK_THAT(o.message, Catch::Contains(c.says));
  }
  const RunOutcome o = run_lua("local function f() error('deep') end\nf()");
  CHECK_THAT(o.traceback, Catch::Contains("stack traceback") && Catch::Contains("test.tac:1"));
}

TEST_CASE("vm: the request door and the language's insides cannot be required", "[vm][sandbox]") {
  // A procedure that reached the request door could install mocks answering its own Human.*
  // requests; one that reached the registries could raise its own limits (max_depth). Only the
  // documented modules are require-able.
  const Json r = run_ok(R"(
    local out = {}
    for _, name in ipairs({ "tactus.host", "tactus.dsl.dialect", "tactus.dsl.tools",
                            "tactus.testing.runner", "tactus.testing.mocks",
                            "tactus.testing.evaluators", "tactus.dsl.stdlib" }) do
      local ok, err = pcall(require, name)
      out[#out + 1] = ok and "loaded" or tostring(err)
    end
    out[#out + 1] = type(require("tactus.io.json").encode)
    out[#out + 1] = type(require("tactus.testing.regex").search)
    return out)");
  REQUIRE(r.size() == 9);
  for (std::size_t i = 0; i < 7; ++i)
    CHECK(r[i].get<std::string>().find("is internal to tactus") != std::string::npos);
  CHECK(r[7] == "function");
  CHECK(r[8] == "function");
}
