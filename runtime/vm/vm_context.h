// Per-VM state shared by the C functions the sandbox installs. Internal to runtime/vm.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/vm/allocator.h"
#include "runtime/vm/vm.h"

namespace tactus::vm {

// A limit that, once crossed, stays crossed: every later VM instruction raises it again, so a
// pcall cannot swallow it.
enum class Tripped { none, instructions, output };

struct VmContext {
  CappedAllocator alloc;
  VmLimits limits;
  HostChannel* channel = nullptr;
  std::uint64_t output_used = 0;
  std::uint64_t instructions_used = 0;
  int hook_step = 0;
  Tripped tripped = Tripped::none;
  bool collect_pending = false;  // an allocation was refused: collect at the next instruction
  std::string trip_message;
  std::string traceback;       // of the last uncaught error
  std::string mode = "run";    // or "validate", "test"
  std::string_view source;     // the procedure's text, during Vm::run (Specification lines)
  std::string chunkname;       // its name, "@path/file.tac"
  bool random_seeded = false;  // math.random has its seed (from the broker, or the procedure)
  // The run is journaled: the state table is sent when it changed (state_sync.h); the
  // fingerprint of the state last sent (0: none yet, which an empty state matches).
  bool journal_state = false;
  // The broker traces this run: agent turns and Lua tool calls are reported ("trace").
  bool trace = false;
  std::uint64_t state_sent = 0;
};

// Pushes the prelude's runner (nil if there is none).
void push_runner(lua_State* L);

VmContext& context_of(lua_State* L);

// Marks the limit crossed and raises its error in L, prefixed with the position of the Lua
// function at stack level (0 from a hook, 1 from a C function). Does not return.
[[noreturn]] void trip(lua_State* L, Tripped what, const std::string& message, int level);

// Builds the allowlisted global environment, runs the prelude and freezes the shared tables.
// Runs inside lua_cpcall; raises on failure.
int install_sandbox(lua_State* L);

// Raises a Host-style error ("code: message") without a position prefix. Does not return.
[[noreturn]] void raise_coded(lua_State* L, std::string_view code, std::string_view message);

}  // namespace tactus::vm
