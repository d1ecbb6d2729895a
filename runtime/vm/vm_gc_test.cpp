// The VM's collector around its set-up: no collection while the sandbox is built, then the
// usual pause when the doubled heap fits the memory limit, else a cycle at once. Either way a
// procedure that makes garbage many times its limit runs to its end.
#include <catch2/catch.hpp>

#include <string>

#include "runtime/protocol/message.h"
#include "runtime/vm/vm.h"
#include "runtime/vm/vm_context.h"

namespace {

using tactus::vm::RunOutcome;
using tactus::vm::Vm;
using tactus::vm::VmLimits;

constexpr std::uint64_t kMiB = 1024 * 1024;

// About 40 MiB of strings, each garbage once the next is made.
const char* kChurn = R"lua(
local n = 0
for i = 1, 40000 do
  local s = string.rep("x", 1000) .. i
  n = n + #s
end
return n
)lua";

RunOutcome run_with_memory(std::uint64_t memory, const char* source,
                           std::uint64_t* used = nullptr) {
  VmLimits limits;
  limits.memory = memory;
  std::string error;
  auto vm = Vm::create(limits, nullptr, error);
  INFO("memory " << memory << ": Vm::create: " << error);
  REQUIRE(vm);
  if (used) *used = vm->context().alloc.used;
  RunOutcome o = vm->run(source, "@test.tac", tactus::protocol::Json::object());
  INFO(o.kind << ": " << o.message);
  CHECK(vm->context().alloc.peak <= (memory ? memory : UINT64_MAX));
  return o;
}

}  // namespace

TEST_CASE("vm: the sandbox builds at the smallest memory limit, and runs there", "[vm][limits]") {
  std::uint64_t used = 0;
  const RunOutcome o = run_with_memory(1 * kMiB, "return 1 + 1", &used);
  CHECK(o.ok);
  CHECK(used < 1 * kMiB);
}

TEST_CASE("vm: garbage many times the memory limit is collected as it is made", "[vm][limits]") {
  // 1 MiB: the doubled heap does not fit, the collector starts at once. 2 and 4 MiB: it fits,
  // or nearly; 64 MiB and none: the usual pause.
  for (std::uint64_t memory : {1 * kMiB, 2 * kMiB, 4 * kMiB, 64 * kMiB, std::uint64_t{0}}) {
    INFO("memory " << memory);
    const RunOutcome o = run_with_memory(memory, kChurn);
    CHECK(o.ok);
    if (o.ok) CHECK(o.result.get<std::int64_t>() > 40000 * 1000);
  }
}
