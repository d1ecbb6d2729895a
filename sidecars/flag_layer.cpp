#include "sidecars/config.h"

namespace tactus::sidecars {
namespace {

template <class T>
void set(Setting<T>& setting, const std::optional<T>& flag, const char* name) {
  if (!flag) return;
  setting.value = *flag;
  setting.origin = Origin{name};
}

}  // namespace

void apply_flags(const LimitFlags& flags, Config& config) {
  set(config.timeout, flags.timeout_seconds, "--timeout");
  set(config.memory, flags.memory, "--memory");
  set(config.cpu, flags.cpu_seconds, "--cpu");
  set(config.output, flags.output, "--output-limit");
  set(config.instructions, flags.instructions, "--instructions");
  set(config.message, flags.message, "--message-limit");
}

RunLimits run_limits(const Config& config) {
  RunLimits l;
  l.timeout_seconds = config.timeout.value;
  l.memory = config.memory.value;
  l.cpu_seconds = config.cpu.value;
  l.output = config.output.value;
  l.instructions = config.instructions.value;
  l.message = config.message.value;
  return l;
}

}  // namespace tactus::sidecars
