// Human.* (approve, input, review, select, notify, escalate): what a request must carry, how a
// typed answer becomes its value, and the prompt at the terminal. The run session decides when
// to ask and when to suspend instead (broker/run_session.cpp); `tactus answer` parses with the
// same rules (cli/durable_commands.cpp).
#pragma once

#include <optional>
#include <string>

#include "runtime/protocol/message.h"

namespace tactus::tools {

// Why a Human.KIND request cannot be asked ("Human.approve needs a message"), or "".
std::string human_request_error(const std::string& kind, const protocol::Json& params);

// Whether a request asked at asked_at (unix seconds) with a default and a timeout has passed
// its timeout by now: it then takes its default (a suspended run's request, on resume).
bool human_timeout_passed(const protocol::Json& params, double asked_at, double now);

// An answer given as text (tactus answer --value, or typed at the terminal) as the value the
// Human.* request returns; nullopt with error when it does not fit the request.
std::optional<protocol::Json> parse_answer(const std::string& kind, const protocol::Json& params,
                                           const std::string& text, std::string& error);

// Asks at the terminal (stdin and stderr): the answer's value, or nullopt when it cannot ask
// (no terminal, end of input, an interrupted read). The question is the procedure's text,
// made inert (tools/terminal_text.h).
std::optional<protocol::Json> ask_at_terminal(const std::string& kind,
                                              const protocol::Json& params);

}  // namespace tactus::tools
