// The protocol's methods (docs/protocol.md): one list, used by the jailed side to send them and
// by the broker to dispatch and journal them, instead of string literals on each side.
//
//   name        the method as it travels
//   kind        request (answered by id) or notification
//   from        who sends it
//   journal     how a durable run journals a request: deferred (effect-free: committed no
//               later than the next effect, line printed or the run's end), in_flight (an
//               outside effect: journaled unanswered before it runs, answered after), human
//               (committed before it is asked; journaled unanswered when the run suspends),
//               by_tool (host.call: deferred for an effect-free tool, else in_flight);
//               not_journaled for notifications ("state" is journaled as an entry of its own).
#pragma once

#include <cstdint>
#include <iterator>
#include <string_view>

namespace tactus::protocol {

enum class MethodKind : std::uint8_t { request, notification };
// vm: the jailed VM (runtime/vm/); command: a command tool's jailed child (runtime/jail/).
enum class Sender : std::uint8_t { vm, command, broker };
enum class Journaling : std::uint8_t { not_journaled, deferred, in_flight, human, by_tool };

struct MethodSpec {
  std::string_view name;
  MethodKind kind;
  Sender from;
  Journaling journal;
};

namespace method {
// The child's run, in order.
inline constexpr std::string_view setup = "setup";                // step times
inline constexpr std::string_view setup_failed = "setup_failed";  // {step, errno}
inline constexpr std::string_view ready = "ready";
inline constexpr std::string_view run = "run";  // broker -> child: source, input, limits
inline constexpr std::string_view done = "done";
inline constexpr std::string_view violation = "violation";  // the SIGSYS handler: {nr, arch}
// What the procedure does.
inline constexpr std::string_view print = "print";
inline constexpr std::string_view log = "log";
inline constexpr std::string_view state = "state";
// An agent turn or a Lua tool call beginning or ending, for the run's trace (telemetry:);
// sent only when the run message asks for it.
inline constexpr std::string_view trace = "trace";
inline constexpr std::string_view host_call = "host.call";
inline constexpr std::string_view llm_chat = "llm.chat";
inline constexpr std::string_view module_load = "module.load";
inline constexpr std::string_view time_now = "time.now";
inline constexpr std::string_view time_clock = "time.clock";
inline constexpr std::string_view random_seed = "random.seed";
inline constexpr std::string_view checkpoint = "checkpoint";
inline constexpr std::string_view checkpoint_result = "checkpoint.result";
inline constexpr std::string_view human_approve = "human.approve";
inline constexpr std::string_view human_input = "human.input";
inline constexpr std::string_view human_review = "human.review";
inline constexpr std::string_view human_select = "human.select";
inline constexpr std::string_view human_notify = "human.notify";
inline constexpr std::string_view human_escalate = "human.escalate";
// A command tool's jail.
inline constexpr std::string_view exec = "exec";  // broker -> child: {argv, env}
inline constexpr std::string_view exec_failed = "exec_failed";
}  // namespace method

// Human.KIND travels as "human.KIND".
inline constexpr std::string_view kHumanPrefix = "human.";

inline constexpr MethodSpec kMethods[] = {
    // The hot path first: find_method scans in order.
    {method::host_call, MethodKind::request, Sender::vm, Journaling::by_tool},
    {method::llm_chat, MethodKind::request, Sender::vm, Journaling::in_flight},
    {method::print, MethodKind::notification, Sender::vm, Journaling::not_journaled},
    {method::log, MethodKind::notification, Sender::vm, Journaling::not_journaled},
    {method::state, MethodKind::notification, Sender::vm, Journaling::not_journaled},
    {method::trace, MethodKind::notification, Sender::vm, Journaling::not_journaled},
    {method::time_now, MethodKind::request, Sender::vm, Journaling::deferred},
    {method::time_clock, MethodKind::request, Sender::vm, Journaling::deferred},
    {method::random_seed, MethodKind::request, Sender::vm, Journaling::deferred},
    {method::module_load, MethodKind::request, Sender::vm, Journaling::deferred},
    {method::checkpoint, MethodKind::request, Sender::vm, Journaling::deferred},
    {method::checkpoint_result, MethodKind::request, Sender::vm, Journaling::deferred},
    {method::human_approve, MethodKind::request, Sender::vm, Journaling::human},
    {method::human_input, MethodKind::request, Sender::vm, Journaling::human},
    {method::human_review, MethodKind::request, Sender::vm, Journaling::human},
    {method::human_select, MethodKind::request, Sender::vm, Journaling::human},
    {method::human_notify, MethodKind::request, Sender::vm, Journaling::human},
    {method::human_escalate, MethodKind::request, Sender::vm, Journaling::human},
    {method::done, MethodKind::notification, Sender::vm, Journaling::not_journaled},
    {method::setup, MethodKind::notification, Sender::vm, Journaling::not_journaled},
    {method::setup_failed, MethodKind::notification, Sender::vm, Journaling::not_journaled},
    {method::ready, MethodKind::notification, Sender::vm, Journaling::not_journaled},
    {method::violation, MethodKind::notification, Sender::vm, Journaling::not_journaled},
    {method::run, MethodKind::notification, Sender::broker, Journaling::not_journaled},
    {method::exec, MethodKind::notification, Sender::broker, Journaling::not_journaled},
    {method::exec_failed, MethodKind::notification, Sender::command, Journaling::not_journaled},
};

// The position of the method called name in kMethods, or -1. An index, not a pointer: GCC's
// sanitizer builds cannot compare pointers into kMethods in constant evaluation.
constexpr int method_index(std::string_view name) {
  for (int i = 0; i < static_cast<int>(std::size(kMethods)); ++i)
    if (kMethods[i].name == name) return i;
  return -1;
}

// The method called name, or nullptr.
constexpr const MethodSpec* find_method(std::string_view name) {
  const int i = method_index(name);
  return i < 0 ? nullptr : &kMethods[i];
}

constexpr bool is_human(std::string_view name) {
  return name.substr(0, kHumanPrefix.size()) == kHumanPrefix;
}

}  // namespace tactus::protocol
