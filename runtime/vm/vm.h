// One restricted LuaJIT VM: a fresh lua_State per run, built by sandbox_env.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "runtime/protocol/message.h"

struct lua_State;

namespace tactus::vm {

class HostChannel;
struct VmContext;

struct VmLimits {
  std::uint64_t memory = 0;        // bytes of Lua heap; 0 = none
  std::uint64_t output = 0;        // bytes of print output; 0 = none
  std::uint64_t instructions = 0;  // VM instructions; 0 = none
};

// How a run ended, as the VM saw it. kind is "error", "memory", "instructions" or "output".
struct RunOutcome {
  bool ok = false;
  protocol::Json result;
  std::string kind;
  std::string message;
  std::string traceback;
};

class Vm {
 public:
  // channel may be null (tests): Host.call and brokered os.* then fail with "failed: ...".
  // Returns null with error set if the state cannot be built within the limits.
  static std::unique_ptr<Vm> create(const VmLimits& limits, HostChannel* channel,
                                    std::string& error);
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  // Loads source as text (binary chunks are refused) and hands it to the prelude's runner:
  // the global input is set, the top level runs, then the main procedure if one was declared.
  // mode "validate" runs the declarations only and returns what was declared; "test" runs one
  // scenario of the file's Specification (options: {scenario, mock}) and returns its report.
  // options reach the runner as its third argument (null: none).
  RunOutcome run(std::string_view source, const std::string& chunkname, const protocol::Json& input,
                 const std::string& mode = "run", const protocol::Json& options = protocol::Json());

  // The broker journals this run: the state table is sent to it as it changes
  // (docs/durability.md). Off by default (tests, validate, tactus test).
  void set_journaled(bool on);
  // The broker traces this run (telemetry): P.trace sends its events. Off by default.
  void set_traced(bool on);

  lua_State* state() const { return L_; }
  const VmContext& context() const { return *ctx_; }

 private:
  Vm() = default;
  std::unique_ptr<VmContext> ctx_;
  lua_State* L_ = nullptr;
};

}  // namespace tactus::vm
