#include "runtime/vm/vm.h"

#include <lua.hpp>

#include <cctype>
#include <string>

#include "runtime/vm/lua_json.h"
#include "runtime/vm/vm_context.h"

namespace tactus::vm {
namespace {

// The hook runs every kHookStep instructions even without a budget: it collects the garbage a
// caught "not enough memory" left behind, and a tripped limit switches it to every instruction.
constexpr int kHookStep = 10000;

void count_hook(lua_State* L, lua_Debug*) {
  VmContext& c = context_of(L);
  if (c.collect_pending) {
    // LuaJIT does not collect when an allocation fails, so garbage left by a caught "not
    // enough memory" would keep the heap at its cap. (Calling lua_sethook from inside the
    // allocator to collect sooner crashes LuaJIT mid-resize, so it waits for the next step.)
    c.collect_pending = false;
    lua_gc(L, LUA_GCCOLLECT, 0);
  }
  if (c.tripped != Tripped::none) {
    lua_pushlstring(L, c.trip_message.data(), c.trip_message.size());
    lua_error(L);
  }
  c.instructions_used += static_cast<std::uint64_t>(c.hook_step);
  if (c.limits.instructions != 0 && c.instructions_used >= c.limits.instructions)
    trip(L, Tripped::instructions,
         "instruction limit exceeded (" + std::to_string(c.limits.instructions) + ")", 0);
}

std::string describe_error_value(lua_State* L, int idx) {
  switch (lua_type(L, idx)) {
    case LUA_TSTRING:
    case LUA_TNUMBER:
      return lua_tostring(L, idx);
    case LUA_TNIL:
      return "error(nil): an error without a message";
    case LUA_TTABLE: {
      protocol::Json j;
      std::string ignored;
      if (to_json(L, idx, j, ignored)) return "error object: " + protocol::dump_json(j);
      return "(error object is a table value)";
    }
    default:
      return std::string("(error object is a ") + luaL_typename(L, idx) + " value)";
  }
}

// The procedure's frames only: tactus's own lua/ modules and the error() call itself are
// noise to the user ("invalid input: ..." has no frame of theirs at all).
std::string procedure_frames(const std::string& traceback) {
  std::string out, line;
  std::size_t kept = 0, start = 0;
  while (start <= traceback.size()) {
    const auto end = traceback.find('\n', start);
    line = traceback.substr(start, end == std::string::npos ? std::string::npos : end - start);
    start = end == std::string::npos ? traceback.size() + 1 : end + 1;
    const bool internal = line.rfind("\tlua/", 0) == 0 || line == "\t[C]: in function 'error'" ||
                          line.rfind("\t[C]: in function <lua/", 0) == 0;
    if (internal) continue;
    // A function without a name at its call site ("[C]: at 0x...", "[builtin#89]: at 0x...")
    // is shown by its address: not given out.
    if (const auto at = line.find(": at 0x"); at != std::string::npos)
      line = line.substr(0, at) + ": in ?";
    if (!out.empty()) out += '\n';
    out += line;
    if (line.rfind("\t", 0) == 0) ++kept;
  }
  return kept ? out : "";
}

// "FILE:LINE:" of the innermost frame running the procedure's own chunk, or "". Walks the
// frames without pushing anything, so it works on a stack that just overflowed.
std::string procedure_position(lua_State* L, const std::string& chunkname) {
  lua_Debug ar;
  for (int level = 1; level < 256 && lua_getstack(L, level, &ar); ++level) {
    if (!lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0 || !ar.source) continue;
    if (chunkname == ar.source)
      return chunkname.substr(1) + ":" + std::to_string(ar.currentline) + ":";
  }
  return "";
}

constexpr char kHandler[] = "local h = ... return function(e) return (h(e)) end";

// The message handler of the main pcall: keeps the message, records the traceback. A message
// without a position (a Host.call error, a stack overflow, error(nil), an error object) gets
// the procedure's innermost line, so every error of the procedure starts with FILE:LINE:.
int on_error(lua_State* L) {
  VmContext& c = context_of(L);
  std::string message = describe_error_value(L, 1);
  const std::string file = c.chunkname.rfind("@", 0) == 0 ? c.chunkname.substr(1) : std::string();
  if (!file.empty() && c.tripped == Tripped::none && message != "not enough memory" &&
      message.rfind(file + ":", 0) != 0) {
    const std::string where = procedure_position(L, c.chunkname);
    if (!where.empty()) message = where + " " + message;
  }
  // After a stack overflow there may be no room for a traceback: the message is kept anyway.
  c.traceback.clear();
  if (lua_checkstack(L, 64)) {
    luaL_traceback(L, L, nullptr, 2);  // from below the Lua wrapper (kHandler)
    c.traceback = procedure_frames(lua_tostring(L, -1));
  }
  lua_pushlstring(L, message.data(), message.size());
  return 1;
}

}  // namespace

std::unique_ptr<Vm> Vm::create(const VmLimits& limits, HostChannel* channel, std::string& error) {
  std::unique_ptr<Vm> vm(new Vm());
  vm->ctx_ = std::make_unique<VmContext>();
  VmContext& c = *vm->ctx_;
  c.limits = limits;
  c.alloc.limit = limits.memory;
  c.channel = channel;
  vm->L_ = lua_newstate(capped_alloc, &c.alloc);
  if (!vm->L_) {
    error = "not enough memory to create the VM";
    return nullptr;
  }
  lua_State* L = vm->L_;
  // The interpreter only: hooks see every instruction, and no executable memory is needed.
  luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
  c.hook_step = limits.instructions != 0 && limits.instructions < kHookStep
                    ? static_cast<int>(limits.instructions)
                    : kHookStep;
  lua_sethook(L, count_hook, LUA_MASKCOUNT, c.hook_step);
  c.alloc.on_refusal = [](void* ctx) { static_cast<VmContext*>(ctx)->collect_pending = true; };
  c.alloc.on_refusal_arg = &c;
  // No collection while the sandbox is built: it is nearly all live data (the prelude and
  // the modules), so a cycle then would mark it all to free next to nothing, in every run.
  // Restarted with the usual pause (-1: the first cycle begins once the heap has doubled) when
  // the doubled heap is within the memory limit; else at once (0), as before.
  lua_gc(L, LUA_GCSTOP, 0);
  if (lua_cpcall(L, install_sandbox, &c) != 0) {
    error = std::string("cannot build the sandbox: ") +
            (lua_isstring(L, -1) ? lua_tostring(L, -1) : "unknown error");
    return nullptr;
  }
  const bool room = limits.memory == 0 || 2 * c.alloc.used < limits.memory;
  lua_gc(L, LUA_GCRESTART, room ? -1 : 0);
  return vm;
}

void Vm::set_journaled(bool on) {
  ctx_->journal_state = on;
}

void Vm::set_traced(bool on) {
  ctx_->trace = on;
}

Vm::~Vm() {
  if (L_) lua_close(L_);
}

RunOutcome Vm::run(std::string_view source, const std::string& chunkname,
                   const protocol::Json& input, const std::string& mode,
                   const protocol::Json& options) {
  lua_State* L = L_;
  VmContext& c = *ctx_;
  RunOutcome out;
  lua_settop(L, 0);
  // The handler is a Lua function calling on_error: after a stack overflow LuaJIT runs a Lua
  // handler (with the error's position) but fails a C one as an error in error handling.
  if (luaL_loadbuffer(L, kHandler, sizeof kHandler - 1, "=tactus") != 0) {
    out.kind = "error";
    out.message = "cannot build the error handler";
    return out;
  }
  lua_pushcfunction(L, on_error);
  lua_call(L, 1, 1);
  c.mode = mode;
  c.source = source;
  c.chunkname = chunkname;
  int status = luaL_loadbufferx(L, source.data(), source.size(), chunkname.c_str(), "t");
  if (status == 0) {
    // runner(chunk, input, options): declarations first, then the main procedure
    // (lua/prelude.lua).
    push_runner(L);
    lua_insert(L, -2);
    push_json(L, input);
    push_json(L, options);
    status = lua_pcall(L, 3, 1, 1);
  } else {
    c.traceback.clear();
  }
  // A limit that tripped inside a pcall whose caller then returned at once (no instruction
  // left to re-raise it) still fails the run.
  c.source = std::string_view();
  if (status == 0 && c.tripped != Tripped::none) {
    status = LUA_ERRRUN;
    lua_pushlstring(L, c.trip_message.data(), c.trip_message.size());
  }
  if (status == 0) {
    std::string error;
    if (to_json(L, -1, out.result, error)) {
      out.ok = true;
    } else {
      out.kind = "error";
      out.message = "the result cannot be returned: " + error;
    }
    lua_settop(L, 0);
    return out;
  }
  out.message = lua_isstring(L, -1) ? lua_tostring(L, -1) : "unknown error";
  out.traceback = c.traceback;
  if (c.tripped == Tripped::instructions)
    out.kind = "instructions";
  else if (c.tripped == Tripped::output)
    out.kind = "output";
  else if (status == LUA_ERRMEM || (status == LUA_ERRERR && c.alloc.refusals > 0))
    out.kind = "memory";
  else
    out.kind = "error";
  if (c.tripped != Tripped::none) out.message = c.trip_message;
  lua_settop(L, 0);
  return out;
}

}  // namespace tactus::vm
