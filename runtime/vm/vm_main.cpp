#include "runtime/vm/vm_main.h"

#include "runtime/protocol/exit_codes.h"
#include "runtime/protocol/frame.h"
#include "runtime/protocol/methods.h"
#include "runtime/vm/host_channel.h"
#include "runtime/vm/vm.h"

namespace tactus::vm {
namespace {

using protocol::Json;

std::uint64_t limit_field(const Json& limits, const char* key) {
  if (!limits.is_object() || !limits.contains(key) || !limits[key].is_number_unsigned()) return 0;
  return limits[key].get<std::uint64_t>();
}

Json outcome_params(const RunOutcome& o) {
  if (o.ok) return Json{{"status", "ok"}, {"result", o.result}};
  return Json{{"status", "error"},
              {"error", {{"kind", o.kind}, {"message", o.message}, {"traceback", o.traceback}}}};
}

}  // namespace

void report_setup_failure(int fd, const char* step, int err) {
  HostChannel channel(fd, protocol::kDefaultMessageLimit);
  std::string ignored;
  channel.send(protocol::make_notification("setup_failed", Json{{"step", step}, {"errno", err}}),
               ignored);
}

int vm_main(int fd, std::uint64_t message_limit) {
  HostChannel channel(fd, message_limit ? message_limit : protocol::kDefaultMessageLimit);
  std::string reason;
  if (!channel.send(protocol::make_notification(protocol::method::ready, Json::object()), reason))
    return protocol::kExitProtocol;
  auto run = channel.receive(reason);
  if (!run || run->kind != protocol::MessageKind::notification ||
      run->method != protocol::method::run)
    return protocol::kExitProtocol;
  const Json& p = run->params;
  if (!p.contains("source") || !p["source"].is_string() || !p.contains("chunkname") ||
      !p["chunkname"].is_string())
    return protocol::kExitProtocol;

  VmLimits limits;
  const Json limits_json = p.value("limits", Json::object());
  limits.memory = limit_field(limits_json, "memory");
  limits.output = limit_field(limits_json, "output");
  limits.instructions = limit_field(limits_json, "instructions");

  RunOutcome outcome;
  std::string error;
  // Kept past the done message and never closed: this process ends with _exit once vm_main
  // returns (runtime/jail/child_setup.cpp), which frees the VM's memory at once. lua_close
  // would free every object one by one first, and before the done message, the run's answer.
  std::unique_ptr<Vm> vm = Vm::create(limits, &channel, error);
  if (vm) {
    const Json mode = p.value("mode", Json("run"));
    const std::string m = mode == "validate" || mode == "test" ? mode.get<std::string>() : "run";
    const Json journaled = p.value("journal", Json(false));
    vm->set_journaled(journaled.is_boolean() && journaled.get<bool>());
    const Json traced = p.value("trace", Json(false));
    vm->set_traced(traced.is_boolean() && traced.get<bool>());
    outcome = vm->run(p["source"].get_ref<const std::string&>(), p["chunkname"].get<std::string>(),
                      p.value("input", Json()), m, p.value("options", Json()));
  } else {
    outcome.kind = "memory";
    outcome.message = error;
  }
  if (!channel.send(protocol::make_notification(protocol::method::done, outcome_params(outcome)),
                    reason)) {
    if (!channel.last_send_too_large()) return protocol::kExitProtocol;
    RunOutcome too_big;
    too_big.kind = "error";
    too_big.message = "the result is too large to return: " + reason;
    if (!channel.send(protocol::make_notification(protocol::method::done, outcome_params(too_big)),
                      reason))
      return protocol::kExitProtocol;
  }
  (void)vm.release();
  return 0;
}

}  // namespace tactus::vm
